#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set-up, build with -Werror,
# the C suite under both backends (and each RINGLOOP_DISABLE switch), the
# same again built with AddressSanitizer and UBSan, the Python suite on
# every supported CPython here, CPython's asyncio tests and uvloop's test
# suite bound to ringloop, and the feature matrix.
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

# The Python package and its tests (pytest on asyncio, ringloop-epoll and
# ringloop-uring) on every supported CPython this machine has; then
# CPython's own asyncio loop tests bound to ringloop, on the oldest and the
# newest of them (each runs its own test.test_asyncio). The conformance
# harness fails on any test that passes on asyncio's loop but not on both
# backends, except those listed in tests/conformance/exceptions.txt.
. "$root/scripts/find_python.sh"
pythons=()
for v in 3.10 3.11 3.12 3.13; do
    if p=$(find_python "python$v"); then
        pythons+=("$p")
    else
        echo "== python $v: not on this machine, skipped"
    fi
done
[ ${#pythons[@]} -gt 0 ] || { echo "no supported Python found" >&2; exit 1; }
for p in "${pythons[@]}"; do
    RINGLOOP_PYTHON=$p "$root/scripts/test_python.sh"
done

# The self-contained wheel (scripts/wheel.sh: the sdist, a wheel built from
# it with liburing linked in, repaired by auditwheel), for the first Python
# only: installed into a fresh venv, it imports and serves with liburing
# hidden, and ldd finds no liburing in it (tests/python/test_wheel.py).
echo "== wheel"
wheel=$(RINGLOOP_DIST="$build/dist" "$root/scripts/wheel.sh" "${pythons[0]##*/python}" | tail -1)
RINGLOOP_PYTHON=${pythons[0]} RINGLOOP_TEST_WHEEL=$wheel \
    "$root/scripts/test_python.sh" -k test_wheel

echo "== asyncio conformance"
for p in $(printf '%s\n' "${pythons[0]}" "${pythons[-1]}" | uniq); do
    RINGLOOP_PYTHON=$p RINGLOOP_NO_INSTALL=1 "$root/tests/conformance/run.sh"
done

# uvloop's own test suite (the asyncio classes of uvloop 0.23.0's sdist,
# fetched with pip into build/uvloop-suite/) bound to ringloop; fails on any
# test that passes on asyncio's loop but not on both backends, except those
# listed in tests/uvloop_suite/exceptions.txt.
echo "== uvloop test suite"
RINGLOOP_NO_INSTALL=1 "$root/tests/uvloop_suite/run.sh"

# The feature matrix: the C and Python suites once per io_uring fast path
# switched off and with io_uring refused at setup (seccomp), as a grid.
echo "== feature matrix"
# Its pytest runs leave out the bad-input table, the debug-mode callback
# checks and the server recipes (real uvicorn, gunicorn, ... processes):
# they exercise no io_uring path of their own, and ran above on every Python.
RINGLOOP_MATRIX_PYTHON="$root/scripts/test_python.sh -k 'not test_bad_input and not test_debug_callbacks and not test_servers_recipes'" \
    "$root/tests/matrix.sh" --no-build "$build/release"
