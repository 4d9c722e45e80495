# Sourced by tests/conformance/run.sh and tests/uvloop_suite/run.sh: run a
# loop test harness (TESTS_DIR/run.py, on harness.py) in the project venv,
# set up by scripts/python_env.sh as for scripts/test_python.sh: the venv is
# made once and reused, and ringloop is rebuilt and installed from this tree
# (incrementally, in build/py-<tag>) before the run, so the harness tests the
# current code.
#
#   RINGLOOP_PYTHON      interpreter (default python3), e.g. python3.13
#   RINGLOOP_VENV        venv directory (default build/venv-pyX.Y)
#   RINGLOOP_NO_INSTALL  set to 1 to test what the venv already has

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$root/scripts/python_env.sh"

# run_harness TITLE TESTS_DIR [RUN.PY ARGUMENTS...]: never returns.
run_harness() {
    local title=$1 dir=$2
    shift 2
    if [ "${RINGLOOP_NO_INSTALL:-0}" != 1 ]; then
        install_ringloop py RINGLOOP_WERROR=ON
    fi
    echo "== python $pyver: $title"
    export PYTHONDONTWRITEBYTECODE=1
    # Run from outside the tree: `import ringloop` must find the installed
    # package, never the sources under python/.
    cd "${TMPDIR:-/tmp}"
    exec "$vpy" "$root/tests/$dir/run.py" "$@"
}
