#!/usr/bin/env bash
# The Python package's tests: build and install ringloop with `pip install .`
# into a venv (made once, reused), then run pytest on tests/python, where
# each test runs on stock asyncio, ringloop-epoll and ringloop-uring.
#
#   RINGLOOP_PYTHON   interpreter to test (default: python3), e.g.
#                     RINGLOOP_PYTHON=python3.13 scripts/test_python.sh
#   RINGLOOP_VENV     venv directory (default: build/venv-pyX.Y)
# Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${RINGLOOP_PYTHON:-python3}
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
venv=${RINGLOOP_VENV:-$root/build/venv-py$pyver}

if [ ! -x "$venv/bin/python" ]; then
    echo "== python: creating $venv"
    "$python" -m venv "$venv"
fi
vpy=$venv/bin/python
pip=("$vpy" -m pip --disable-pip-version-check -q)

# Build requirements live in the venv so that rebuilds reuse the CMake build
# directory (build/py-<tag>) instead of starting from scratch. trustme makes
# the TLS tests' certificates.
"$vpy" -c 'import pytest, scikit_build_core, trustme' 2>/dev/null ||
    "${pip[@]}" install pytest "scikit-build-core>=0.10" trustme

echo "== python $pyver: pip install ."
"${pip[@]}" install --no-build-isolation --force-reinstall --no-deps \
    --config-settings=build-dir="$root/build/py-{wheel_tag}" \
    --config-settings=cmake.define.RINGLOOP_WERROR=ON "$root"

echo "== python $pyver: pytest tests/python"
# From tests/python, `import ringloop` finds the installed package (the
# sources live under python/, never on sys.path).
cd "$root/tests/python"
export PYTHONDONTWRITEBYTECODE=1
exec "$vpy" -m pytest -p no:cacheprovider -q "$@" .
