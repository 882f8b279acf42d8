#!/usr/bin/env bash
# Runs an example server and an example client against each other over loopback (a CTest, label
# "examples"):
#
#   run_example_pair.sh SERVER CLIENT [--expect TEXT]... -- [CLIENT_ARG]...
#
# SERVER is started on 127.0.0.1:0 and must print `listening on ws://HOST:PORT/PATH` on stdout;
# "{url}" in the client arguments becomes that URL. The client must exit 0 and print every TEXT
# (as a substring of some line). Then the server gets SIGTERM and must exit 0.
# Everything is bounded: the server by `timeout`, the wait for its line by `read -t`.
set -euo pipefail

server=$1 client=$2
shift 2
expect=()
while [ $# -gt 0 ]; do
    case $1 in
    --expect) expect+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

work=$(mktemp -d)
server_pid=""
cleanup() {
    # TERM, not KILL: `timeout` forwards it to the server, and sends KILL 5 s later if still needed.
    if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAILED: $*" >&2
    echo "--- server stderr" >&2; cat "$work/server.err" >&2 || true
    echo "--- client output" >&2; cat "$work/client.out" >&2 || true
    exit 1
}

# `timeout` bounds the server's life, forwards our SIGTERM to it and exits with its status.
# --foreground: forward the signal once, to the server only; without it, timeout also signals its
# whole process group, and a second SIGTERM may reach the server after it restored the default
# action on its way out (exit status 143).
coproc SERVER { exec timeout --foreground -k 5 60 "$server" 127.0.0.1:0 2>"$work/server.err"; }
server_pid=$SERVER_PID
server_out=${SERVER[0]}
touch "$work/client.out"

line=""
read -r -t 20 -u "$server_out" line || fail "the server did not announce itself within 20 s"
[[ $line =~ ^listening\ on\ (ws://[^ ]+)$ ]] || fail "unexpected first line from the server: $line"
url=${BASH_REMATCH[1]}
echo "server: $line"

args=()
for a in "$@"; do args+=("${a//\{url\}/$url}"); done
status=0
timeout -k 5 30 "$client" "${args[@]}" >"$work/client.out" 2>&1 || status=$?
[ "$status" -eq 0 ] || fail "the client exited with status $status"
for text in "${expect[@]}"; do
    grep -qF -- "$text" "$work/client.out" || fail "the client did not print '$text'"
done

kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=""
[ "$status" -eq 0 ] || fail "the server exited with status $status after SIGTERM"
echo "client output:"
cat "$work/client.out"
echo "OK"
