"""The version is written once, in project(VERSION) of CMakeLists.txt; the
package metadata, the extension (from the C header the build generates),
ringloop.__version__ and the shipped probe all come from there."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys

import pytest

import ringloop
from ringloop import _ext

CMAKELISTS = os.path.join(os.path.dirname(__file__), "..", "..",
                          "CMakeLists.txt")


def test_versions_agree() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", _ext.CORE_VERSION)
    assert ringloop.__version__ == _ext.CORE_VERSION
    assert importlib.metadata.version("ringloop") == _ext.CORE_VERSION


@pytest.mark.skipif(not os.path.exists(CMAKELISTS),
                    reason="not run from a checkout")
def test_built_from_this_checkout() -> None:
    with open(CMAKELISTS) as f:
        m = re.search(r"^project\(ringloop VERSION ([0-9.]+)[ )]", f.read(),
                      re.MULTILINE)
    assert m, "no project(ringloop VERSION ...) in CMakeLists.txt"
    assert _ext.CORE_VERSION == m.group(1)


def test_probe_reports_it() -> None:
    env = dict(os.environ)
    env.pop("RINGLOOP_PROBE", None)
    proc = subprocess.run([sys.executable, "-m", "ringloop.probe"],
                          capture_output=True, text=True, env=env,
                          timeout=60)
    first = proc.stdout.splitlines()[0]
    assert first.startswith(f"ringloop-probe {ringloop.__version__} ("), first
