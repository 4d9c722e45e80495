#!/usr/bin/env bash
# asyncio conformance (tests/conformance/run.py) in the project venv, set up
# the way scripts/test_python.sh does it: the venv is made once and reused,
# and ringloop is rebuilt and installed from this tree (incrementally, in
# build/py-<tag>) before the run, so the harness tests the current code.
#
#   RINGLOOP_PYTHON      interpreter (default python3); its test.test_asyncio
#                        is the suite that runs (e.g. python3.13)
#   RINGLOOP_VENV        venv directory (default build/venv-pyX.Y)
#   RINGLOOP_NO_INSTALL  set to 1 to test what the venv already has
# Arguments go to run.py, e.g. --report, -m events,sock, -b epoll, TEST_ID.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
python=${RINGLOOP_PYTHON:-python3}
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
venv=${RINGLOOP_VENV:-$root/build/venv-py$pyver}

if [ ! -x "$venv/bin/python" ]; then
    echo "== python: creating $venv"
    "$python" -m venv "$venv"
fi
vpy=$venv/bin/python

if [ "${RINGLOOP_NO_INSTALL:-0}" != 1 ]; then
    pip=("$vpy" -m pip --disable-pip-version-check -q)
    "$vpy" -c 'import scikit_build_core' 2>/dev/null ||
        "${pip[@]}" install "scikit-build-core>=0.10"
    echo "== python $pyver: pip install ."
    "${pip[@]}" install --no-build-isolation --force-reinstall --no-deps \
        --config-settings=build-dir="$root/build/py-{wheel_tag}" \
        --config-settings=cmake.define.RINGLOOP_WERROR=ON "$root"
fi

echo "== python $pyver: asyncio conformance"
export PYTHONDONTWRITEBYTECODE=1
# Run from outside the tree: `import ringloop` must find the installed
# package, never the sources under python/.
cd "${TMPDIR:-/tmp}"
exec "$vpy" "$root/tests/conformance/run.py" "$@"
