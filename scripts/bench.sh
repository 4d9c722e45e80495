#!/usr/bin/env bash
# The comparative benchmark from a fresh machine: install what it needs
# (Debian packages including wrk via setup.sh; a venv with uvloop, httptools
# and matplotlib), build and install ringloop into the venv, then run
# `python -m ringloop.bench --quick` (under 2 minutes) and print its tables.
# Results (results.txt, results.json, bench.png) go to build/bench-results.
#
#   scripts/bench.sh                  the quick mode
#   scripts/bench.sh --full           every scenario, 3 rounds (~8 minutes)
#   scripts/bench.sh --only 'echo/*'  other options: python -m ringloop.bench -h
#
# RINGLOOP_PYTHON and RINGLOOP_VENV as for scripts/test_python.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

"$root/scripts/setup.sh"
. "$root/scripts/python_env.sh"
venv_require uvloop=uvloop httptools=httptools matplotlib=matplotlib
install_ringloop py-bench

mode=(--quick)
for arg in "$@"; do
    [ "$arg" != --full ] || mode=()
done
cd "$root"
exec "$vpy" -m ringloop.bench ${mode[@]+"${mode[@]}"} \
    --out "$root/build/bench-results" "$@"
