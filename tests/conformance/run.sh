#!/usr/bin/env bash
# asyncio conformance (tests/conformance/run.py) in the project venv, set up
# by scripts/python_env.sh as for scripts/test_python.sh: the venv is made
# once and reused, and ringloop is rebuilt and installed from this tree
# (incrementally, in build/py-<tag>) before the run, so the harness tests
# the current code.
#
#   RINGLOOP_PYTHON      interpreter (default python3); its test.test_asyncio
#                        is the suite that runs (e.g. python3.13)
#   RINGLOOP_VENV        venv directory (default build/venv-pyX.Y)
#   RINGLOOP_NO_INSTALL  set to 1 to test what the venv already has
# Arguments go to run.py, e.g. --report, -m events,sock, -b epoll, TEST_ID.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/scripts/python_env.sh"

if [ "${RINGLOOP_NO_INSTALL:-0}" != 1 ]; then
    install_ringloop py RINGLOOP_WERROR=ON
fi

echo "== python $pyver: asyncio conformance"
export PYTHONDONTWRITEBYTECODE=1
# Run from outside the tree: `import ringloop` must find the installed
# package, never the sources under python/.
cd "${TMPDIR:-/tmp}"
exec "$vpy" "$root/tests/conformance/run.py" "$@"
