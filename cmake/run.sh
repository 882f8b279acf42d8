#!/usr/bin/env bash
# The two set-up commands of the README:
#   bash cmake/run.sh demo   installs what is missing, builds Release, runs the demo server:
#                            `wscoro serve` in chat mode on port 8080 (open http://localhost:8080/)
#   bash cmake/run.sh test   installs what is missing, builds and runs the whole test suite
#                            (debug, then the asan preset: AddressSanitizer + UBSan, then tsan)
#   bash cmake/run.sh bench  builds Release and runs the benchmark matrix (bench/run.py; options
#                            are passed on, e.g. --only echo16 --repeat 3 --svg chart.svg)
#   bash cmake/run.sh fuzz [seconds]  builds the fuzz preset (clang, libFuzzer) and runs every
#                            target for that long (default 60) over a copy of its corpus; `test`
#                            ends with this
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

# --- fuzzing (test/fuzz) ---
fuzz_targets=(fuzz_upgrade_request fuzz_parse_url fuzz_frame_header fuzz_json_message fuzz_connection_input)

# One target for $2 seconds over a copy of its committed corpus (what it learns stays out of the
# tree). Leaves build/fuzz/runs/<target>/{log,summary}, and the crashing input under artifacts/.
fuzz_one() {  # target seconds
    local target=$1 seconds=$2
    local dir=build/fuzz/runs/$target
    rm -rf "$dir"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    cp test/fuzz/corpus/"$target"/* "$dir/corpus/"
    local status=0
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        build/fuzz/test/fuzz/"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log" 2>&1 || status=$?
    local runs
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log")
    if [ "$status" -eq 0 ]; then
        echo "fuzz $target: ok, ${runs:-?} runs in ${seconds}s, corpus $(ls "$dir/corpus" | wc -l) inputs" >"$dir/summary"
    else
        echo "fuzz $target: FAILED (exit $status), input: $(ls -d "$dir"/artifacts/* 2>/dev/null | head -1), log: $dir/log" >"$dir/summary"
    fi
    return "$status"
}

# Every target, two at a time (2 cores); fails if any crashed, leaked, hung or broke an invariant.
run_fuzz() {  # seconds
    local seconds=${1:-60}
    build fuzz
    ctest --preset fuzz  # the committed corpora once, as regression tests
    local running=() failed=0 target
    for target in "${fuzz_targets[@]}"; do
        fuzz_one "$target" "$seconds" &
        running+=($!)
        if [ ${#running[@]} -ge 2 ]; then
            wait "${running[0]}" || failed=$((failed + 1))
            running=("${running[@]:1}")
        fi
    done
    for pid in "${running[@]}"; do wait "$pid" || failed=$((failed + 1)); done
    for target in "${fuzz_targets[@]}"; do
        cat build/fuzz/runs/"$target"/summary
        grep -q FAILED build/fuzz/runs/"$target"/summary && tail -n 30 build/fuzz/runs/"$target"/log
    done
    echo "fuzz: $(( ${#fuzz_targets[@]} - failed )) passed, $failed failed"
    [ "$failed" -eq 0 ]
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
    echo "=== fuzz ==="
    run_fuzz 60
    ;;
fuzz)
    install_missing
    run_fuzz "${2:-60}"
    ;;
bench)
    install_missing
    build release
    shift
    exec python3 bench/run.py --build build/release "$@"
    ;;
*)
    echo "usage: bash cmake/run.sh demo|test|bench|fuzz [seconds]" >&2
    exit 2
    ;;
esac
