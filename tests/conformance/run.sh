#!/usr/bin/env bash
# asyncio conformance (tests/conformance/run.py) in the project venv, with
# ringloop rebuilt and installed from this tree first (harness.sh).
#
#   RINGLOOP_PYTHON      interpreter (default python3); its test.test_asyncio
#                        is the suite that runs (e.g. python3.13)
#   RINGLOOP_VENV        venv directory (default build/venv-pyX.Y)
#   RINGLOOP_NO_INSTALL  set to 1 to test what the venv already has
# Arguments go to run.py, e.g. --report, -m events,sock, -b epoll, TEST_ID.
set -euo pipefail
. "$(dirname "$0")/harness.sh"
run_harness "asyncio conformance" conformance "$@"
