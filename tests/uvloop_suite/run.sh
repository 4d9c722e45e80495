#!/usr/bin/env bash
# uvloop's test suite (tests/uvloop_suite/run.py) in the project venv, with
# ringloop rebuilt and installed from this tree first
# (tests/conformance/harness.sh). uvloop's sdist (its tests) and wheels are
# fetched with pip into build/uvloop-suite/ on the first run only.
#
#   RINGLOOP_PYTHON      interpreter (default python3), e.g. python3.13
#   RINGLOOP_VENV        venv directory (default build/venv-pyX.Y)
#   RINGLOOP_NO_INSTALL  set to 1 to test what the venv already has
# Arguments go to run.py, e.g. --report, -m test_tcp,test_udp, -b epoll,
# TEST_ID.
set -euo pipefail
. "$(dirname "$0")/../conformance/harness.sh"
run_harness "uvloop test suite" uvloop_suite "$@"
