#!/usr/bin/env bash
# The comparative benchmark from a fresh machine: install what it needs
# (Debian packages including wrk via setup.sh; a venv with uvloop, httptools,
# uvicorn, fastapi, aiohttp, aiofiles and matplotlib), build and install
# ringloop into the venv, build the raw liburing echo server
# (bench/echo_raw_uring.c, the floor of the 1 KiB Protocol echo rows), then run
# `python -m ringloop.bench --quick` (under 2 minutes) and print its tables.
# Results (results.txt, results.json, bench.png) go to build/bench-results.
#
#   scripts/bench.sh                  the quick mode
#   scripts/bench.sh --full           every scenario, 3 rounds, 5 for the
#                                     app/* and http/close/* (~13 minutes)
#   scripts/bench.sh --only 'echo/*'  other options: python -m ringloop.bench -h
#
# RINGLOOP_PYTHON and RINGLOOP_VENV as for scripts/test_python.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

"$root/scripts/setup.sh"
. "$root/scripts/python_env.sh"
venv_require uvloop=uvloop httptools=httptools uvicorn=uvicorn \
    fastapi=fastapi aiohttp=aiohttp aiofiles=aiofiles matplotlib=matplotlib
install_ringloop py-bench

# The raw server as bench/run_c.sh builds it (CMake's bench option); without
# it (no Google Benchmark, say) the runner notes that it has no raw row.
raw_build=${RINGLOOP_BUILD_DIR:-$root/build}/bench
if cmake -S "$root" -B "$raw_build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DRINGLOOP_BUILD_BENCH=ON -DRINGLOOP_BUILD_TESTS=OFF \
    -DRINGLOOP_BUILD_TOOLS=OFF >/dev/null &&
    cmake --build "$raw_build" -j"$(nproc)" --target echo_raw_uring \
        >/dev/null; then
    export RINGLOOP_ECHO_RAW_URING=$raw_build/bench/echo_raw_uring
else
    echo "note: could not build bench/echo_raw_uring.c: no raw server row"
fi

mode=(--quick)
for arg in "$@"; do
    [ "$arg" != --full ] || mode=()
done
cd "$root"
exec "$vpy" -m ringloop.bench ${mode[@]+"${mode[@]}"} \
    --out "$root/build/bench-results" "$@"
