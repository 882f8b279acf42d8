#!/usr/bin/env bash
# The install check (CTest "install_check", registered by register.cmake):
#
#   check.sh BUILD_DIR [CMAKE_CONFIGURE_ARG]...
#
# installs the wscoro build in BUILD_DIR into a temporary prefix (`cmake --install`), configures the
# separate project next to this script against that prefix only (CMAKE_PREFIX_PATH), builds it and
# runs it. The extra arguments go to that configure step: the generator, and the compiler and flags
# of the main build (an ASan-built library needs an ASan-built program). $CMAKE picks the cmake.
set -euo pipefail

build_dir=$1
shift
cmake=${CMAKE:-cmake}
source_dir=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== install $build_dir into $work/prefix"
"$cmake" --install "$build_dir" --prefix "$work/prefix"

echo "== configure $source_dir against it"
"$cmake" -S "$source_dir" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" "$@"

echo "== build"
"$cmake" --build "$work/build"

echo "== run"
timeout -k 5 60 "$work/build/app"
