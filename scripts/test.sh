#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set-up, build with -Werror,
# the C suite under both backends (and each RINGLOOP_DISABLE switch), then
# the same again built with AddressSanitizer and UBSan.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${RINGLOOP_BUILD_DIR:-$root/build}
jobs=$(nproc)

"$root/scripts/setup.sh"

run_c_suite() { # NAME EXTRA-CMAKE-ARGS...
    local dir=$build/$1
    shift
    echo "== C suite: $(basename "$dir")"
    cmake -S "$root" -B "$dir" -DRINGLOOP_BUILD_TESTS=ON -DRINGLOOP_WERROR=ON \
        "$@" >/dev/null
    cmake --build "$dir" -j"$jobs" >/dev/null
    ctest --test-dir "$dir" --output-on-failure -j"$jobs"
}

run_c_suite release -DCMAKE_BUILD_TYPE=RelWithDebInfo
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_c_suite sanitize -DCMAKE_BUILD_TYPE=Debug \
    -DRINGLOOP_SANITIZE=address,undefined

# The Python package and its tests (added by [pyloop]).
if [ -x "$root/scripts/test_python.sh" ]; then
    "$root/scripts/test_python.sh"
fi
