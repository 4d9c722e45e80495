"""The probe as pip installs it: `python -m ringloop.probe` and the
`ringloop-probe` console script run the binary shipped in ringloop/_bin.

The probe's own behaviour (every field, the simulated refusals) is tested
by tests/probe/test_probe.py under CTest; these tests check the packaging
and that the installed probe agrees with the installed extension."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig

import pytest

import ringloop
from ringloop import _tools


def run_probe(*args: str, env: dict[str, str] | None = None,
              script: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the installed probe with this process's environment (the
    feature matrix sets RINGLOOP_BACKEND/RINGLOOP_DISABLE) plus `env`."""
    if script:
        exe = os.path.join(sysconfig.get_path("scripts"), "ringloop-probe")
        cmd = [exe, *args]
    else:
        cmd = [sys.executable, "-m", "ringloop.probe", *args]
    full_env = dict(os.environ)
    full_env.pop("RINGLOOP_PROBE", None)
    full_env.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env,
                          timeout=60)


def test_shipped_in_package() -> None:
    path = _tools.find_tool("ringloop-probe")
    assert os.path.dirname(path).endswith(os.path.join("ringloop", "_bin"))
    assert os.access(path, os.X_OK)
    assert os.access(_tools.find_tool("ringloop-loadgen"), os.X_OK)


@pytest.mark.parametrize("script", [False, True],
                         ids=["python-m", "console-script"])
def test_json_agrees_with_a_loop(script: bool) -> None:
    proc = run_probe("--json", script=script)
    report = json.loads(proc.stdout)
    # Exit status 0 exactly when io_uring is usable.
    assert (proc.returncode == 0) == report["usable"], proc.stderr
    assert report["ringloop_version"] == ringloop.__version__
    for field in ("kernel", "io_uring", "setup_flags", "features", "opcodes",
                  "loop", "auto", "fast_paths"):
        assert field in report
    assert report["kernel"]["release"] == os.uname().release

    # "loop" is a loop made under this environment, as the extension makes
    # one here.
    seen = report["loop"]
    if not seen["ok"]:
        with pytest.raises(OSError):
            ringloop.new_event_loop().close()
        return
    loop = ringloop.new_event_loop()
    try:
        assert seen["backend"] == loop.backend
        # The probe shows the C API's -errno, the loop a Python errno.
        assert -seen["fallback_errno"] == loop.backend_fallback_errno
        if loop.backend == "uring":
            assert set(seen["features"]) == set(loop.backend_features)
    finally:
        loop.close()


def test_table_by_default() -> None:
    proc = run_probe()
    assert proc.returncode in (0, 1), proc.stderr
    assert proc.stdout.startswith("ringloop-probe ")
    assert "io_uring" in proc.stdout


def test_disable_word_is_reported() -> None:
    proc = run_probe("--json", env={"RINGLOOP_DISABLE": "bufring",
                                    "RINGLOOP_BACKEND": "auto"})
    report = json.loads(proc.stdout)
    if not report["usable"]:
        pytest.skip("io_uring unusable here")
    bufring = [fp for fp in report["fast_paths"] if fp["word"] == "bufring"]
    assert bufring and bufring[0]["disabled"] and not bufring[0]["active"]
    assert report["loop"]["env_disable"] == "bufring"
    assert "bufring" not in report["loop"]["features"]
    # "auto" ignores the environment: what a plain loop would use.
    assert ("bufring" in report["auto"]["features"]) == bufring[0]["available"]


def test_bad_argument_is_an_error() -> None:
    proc = run_probe("--no-such-option")
    assert proc.returncode == 2
    assert "usage" in proc.stderr


def test_missing_binary_is_a_clear_error() -> None:
    proc = run_probe(env={"RINGLOOP_PROBE": "/nonexistent/ringloop-probe"})
    assert proc.returncode == 2
    assert "RINGLOOP_PROBE" in proc.stderr
    assert "Traceback" not in proc.stderr
