"""ringloop: a drop-in asyncio event loop for Linux on io_uring or epoll.

Three ways to switch an asyncio program to ringloop::

    ringloop.run(main())                               # like asyncio.run
    asyncio.run(main(), loop_factory=ringloop.new_event_loop)   # 3.12+
    ringloop.install(); asyncio.run(main())             # via the policy

Pick a backend with ``backend="uring"`` / ``"epoll"`` on any entry point, or
with the RINGLOOP_BACKEND environment variable; the default takes io_uring
when the kernel allows it and says why not in ``loop.backend_fallback_reason``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Coroutine, TypeVar

from ._compat import run_with
from ._ext import Handle, TimerHandle
from ._loop import Loop

__all__ = ["Loop", "Handle", "TimerHandle", "new_event_loop",
           "EventLoopPolicy", "install", "run"]
from ._ext import CORE_VERSION as __version__  # CMakeLists.txt's

_T = TypeVar("_T")


def new_event_loop(backend: str | None = None) -> Loop:
    """Return a new ringloop event loop.

    backend: "uring", "epoll", or None (RINGLOOP_BACKEND, else automatic).
    """
    return Loop(backend=backend)


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """An asyncio event loop policy whose loops are ringloop loops."""

    def __init__(self, backend: str | None = None) -> None:
        super().__init__()
        self._ringloop_backend = backend

    def new_event_loop(self) -> Loop:
        return Loop(backend=self._ringloop_backend)


def install(backend: str | None = None) -> None:
    """Make asyncio create ringloop loops (sets the event loop policy)."""
    asyncio.set_event_loop_policy(EventLoopPolicy(backend))


def run(main: Coroutine[Any, Any, _T], *, backend: str | None = None,
        debug: bool | None = None) -> _T:
    """Run a coroutine on a new ringloop loop, like asyncio.run()."""
    def factory() -> Loop:
        return new_event_loop(backend)

    return run_with(factory, main, debug)
