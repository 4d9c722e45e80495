#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set-up, build with -Werror,
# the C suite under both backends (and each RINGLOOP_DISABLE switch), the
# same again built with AddressSanitizer and UBSan, the Python suite, the
# asyncio conformance harness, and the feature matrix.
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

# The Python package and its tests: pytest on asyncio, ringloop-epoll and
# ringloop-uring.
"$root/scripts/test_python.sh"

# CPython's own asyncio loop tests bound to ringloop (the package the step
# above installed); fails on any test that passes on asyncio's loop but not
# on both backends, except those listed in tests/conformance/exceptions.txt.
echo "== asyncio conformance"
RINGLOOP_NO_INSTALL=1 "$root/tests/conformance/run.sh"

# The feature matrix: the C and Python suites once per io_uring fast path
# switched off and with io_uring refused at setup (seccomp), as a grid.
echo "== feature matrix"
"$root/tests/matrix.sh" --no-build "$build/release"
