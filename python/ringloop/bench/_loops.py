"""The event loops the benchmark compares, created as their users create them.

Each server and microbenchmark process makes its loop with make_loop(name)
and reports describe(loop), so that the runner can check that a row labelled
"ringloop-uring" really ran on io_uring.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

LOOPS = ("asyncio", "uvloop", "ringloop-epoll", "ringloop-uring")
BASELINE = "uvloop"


def missing_reason(name: str) -> str | None:
    """Why loop `name` cannot run in this environment, or None if it can."""
    if name not in LOOPS:
        return f"unknown loop {name!r} (known: {', '.join(LOOPS)})"
    if name == "uvloop":
        try:
            importlib.import_module("uvloop")
        except ImportError:
            return "uvloop is not installed (pip install uvloop)"
    if name.startswith("ringloop-"):
        try:
            make_loop(name).close()
        except (ImportError, OSError) as exc:
            return f"{name} cannot be created here: {exc}"
    return None


def make_loop(name: str) -> asyncio.AbstractEventLoop:
    """A new event loop of kind `name`, made the way its docs say."""
    if name == "asyncio":
        # asyncio's default loop on Linux: the selector loop, on epoll.
        return asyncio.new_event_loop()
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if name in ("ringloop-epoll", "ringloop-uring"):
        import ringloop

        return ringloop.new_event_loop(backend=name.split("-", 1)[1])
    raise ValueError(f"unknown loop {name!r}")


def describe(loop: Any) -> dict[str, Any]:
    """What `loop` is: its class, and for ringloop its backend and features."""
    cls = type(loop)
    info: dict[str, Any] = {"class": f"{cls.__module__}.{cls.__qualname__}"}
    backend = getattr(loop, "backend", None)
    if backend is not None:
        info["backend"] = backend
        info["backend_features"] = sorted(getattr(loop, "backend_features",
                                                  ()))
    return info


def check_identity(name: str, info: dict[str, Any]) -> str | None:
    """None when `info` (from describe) is the loop `name`, else why not."""
    cls = info.get("class", "")
    if name == "asyncio":
        ok = cls.startswith("asyncio.")
    elif name == "uvloop":
        ok = cls.startswith("uvloop.")
    else:
        ok = cls.startswith("ringloop.") and (
            info.get("backend") == name.split("-", 1)[1])
    return None if ok else f"expected a {name} loop, the server ran {info}"


def versions() -> dict[str, str | None]:
    """Versions of the loop packages (None: not installed)."""
    out: dict[str, str | None] = {}
    for mod in ("ringloop", "uvloop", "httptools"):
        try:
            out[mod] = getattr(importlib.import_module(mod), "__version__",
                               "?")
        except ImportError:
            out[mod] = None
    return out
