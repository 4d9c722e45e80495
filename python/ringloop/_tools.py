"""Where the native helper programs shipped with ringloop live.

A pip install puts ringloop-probe and ringloop-loadgen into the package's
_bin/ directory. A developer running from a CMake build tree can point at
other binaries with RINGLOOP_PROBE / RINGLOOP_LOADGEN.
"""

from __future__ import annotations

import os

_BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bin")


def find_tool(name: str) -> str:
    """Return the path of the helper program `name` (e.g. "ringloop-probe").

    The environment variable RINGLOOP_<NAME> (without the "ringloop-"
    prefix, upper case) wins; otherwise the copy installed in the package.
    Raises FileNotFoundError, naming both places, when neither exists.
    """
    short = name[len("ringloop-"):] if name.startswith("ringloop-") else name
    env = "RINGLOOP_" + short.upper().replace("-", "_")
    override = os.environ.get(env)
    if override:
        if not os.access(override, os.X_OK):
            raise FileNotFoundError(f"{env}={override!r} is not an executable")
        return override
    path = os.path.join(_BIN, name)
    if os.access(path, os.X_OK):
        return path
    raise FileNotFoundError(
        f"{name} is not installed in {_BIN} (reinstall ringloop with pip) "
        f"and {env} is not set")
