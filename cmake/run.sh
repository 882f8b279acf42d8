#!/usr/bin/env bash
# The two set-up commands of the README:
#   bash cmake/run.sh demo   installs what is missing, builds Release, runs the demo server:
#                            `wscoro serve` in chat mode on port 8080 (open http://localhost:8080/)
#   bash cmake/run.sh test   installs what is missing, builds and runs the whole test suite
#                            (debug, then the asan preset: AddressSanitizer + UBSan, then tsan)
#   bash cmake/run.sh bench  builds Release and runs the benchmark matrix (bench/run.py; options
#                            are passed on, e.g. --only echo16 --repeat 3 --svg chart.svg)
# Works on a fresh Debian 12 as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ cmake ninja-build pkg-config python3
          libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev doctest-dev libcli11-dev
          python3-websockets iproute2 clang libclang-rt-14-dev)

install_missing() {
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The browser test: Debian's Chromium and Node.js, and playwright-core from npm (no browser download).
install_browser_test_tools() {
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    local missing=()
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    command -v node >/dev/null || missing+=(nodejs)
    command -v npm >/dev/null || missing+=(npm)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing: ${missing[*]}"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
    npm ci --prefix test/browser --no-audit --no-fund --loglevel=error
}

jobs=$(nproc 2>/dev/null || echo 2)

build() {  # preset
    cmake --preset "$1" >/dev/null
    cmake --build --preset "$1" -j "$jobs"
}

case "${1:-}" in
demo)
    install_missing
    build release
    shift
    echo "open http://localhost:8080/ in a browser (Ctrl-C stops the server)"
    exec build/release/apps/wscoro/wscoro serve "$@"
    ;;
test)
    install_missing
    install_browser_test_tools
    for preset in debug asan tsan; do
        echo "=== $preset ==="
        build "$preset"
        if [ "$preset" = tsan ]; then
            # install_check builds a separate consumer without -fsanitize=thread, which cannot link
            # a ThreadSanitizer build of the library; it runs in the other two presets.
            ctest --preset "$preset" -j "$jobs" -E '^install_check$'
        else
            ctest --preset "$preset" -j "$jobs"
        fi
    done
    ;;
bench)
    install_missing
    build release
    shift
    exec python3 bench/run.py --build build/release "$@"
    ;;
*)
    echo "usage: bash cmake/run.sh demo|test|bench" >&2
    exit 2
    ;;
esac
