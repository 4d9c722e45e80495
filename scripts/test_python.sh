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
. "$root/scripts/python_env.sh"

# trustme makes the TLS tests' certificates. The servers of the README's
# recipes (test_servers_recipes.py) and the clients that talk to them;
# uvicorn also serves test_stats.py's app (--loop ringloop:new_event_loop),
# httptools test_bench.py's application scenarios.
venv_require pytest=pytest trustme=trustme
venv_require uvicorn=uvicorn uvicorn_worker=uvicorn-worker gunicorn=gunicorn \
    aiohttp=aiohttp hypercorn=hypercorn httpx=httpx websockets=websockets \
    httptools=httptools
install_ringloop py RINGLOOP_WERROR=ON

echo "== python $pyver: pytest tests/python"
# From tests/python, `import ringloop` finds the installed package (the
# sources live under python/, never on sys.path).
cd "$root/tests/python"
export PYTHONDONTWRITEBYTECODE=1
exec "$vpy" -m pytest -p no:cacheprovider -q "$@" .
