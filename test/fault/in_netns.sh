#!/bin/sh
# Runs a command in a new network namespace of its own (needs root: unshare --net), and tells it
# the namespace it came from (WSCORO_OUTER_NETNS), so that a test that takes the loopback
# interface down can check that it is not in the machine's namespace before touching anything.
set -eu
outer=$(readlink /proc/self/ns/net)
exec unshare --net env WSCORO_OUTER_NETNS="$outer" "$@"
