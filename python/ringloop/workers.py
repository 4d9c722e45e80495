"""Gunicorn worker classes that run their app on a ringloop event loop.

ASGI apps (FastAPI, Starlette, ...), on the ``uvicorn-worker`` package::

    gunicorn -k ringloop.workers.UvicornWorker app:app

aiohttp.web apps, on ``aiohttp.worker.GunicornWebWorker``::

    gunicorn -k ringloop.workers.AiohttpWorker app:make_app

Each worker process makes its own loop after the fork. The backend is the
RINGLOOP_BACKEND environment variable's (``uring`` or ``epoll``; unset:
io_uring when the kernel allows it, else epoll), e.g.
``gunicorn -e RINGLOOP_BACKEND=epoll ...``; or name it in the class:
``UvicornUringWorker``, ``UvicornEpollWorker``, ``AiohttpUringWorker``,
``AiohttpEpollWorker`` (a named ``uring`` fails rather than fall back), or
subclass and set ``ringloop_backend``.

gunicorn's own settings keep their meaning: --max-requests (the worker
exits and the arbiter starts another), --graceful-timeout, --reload,
--timeout. The classes are made on first use, so that this module imports
without uvicorn-worker or aiohttp; a missing one is named in the ImportError.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
from typing import Any

import ringloop

__all__ = [
    "UvicornWorker", "UvicornUringWorker", "UvicornEpollWorker",
    "AiohttpWorker", "AiohttpUringWorker", "AiohttpEpollWorker",
]

# name -> (kind, backend): which builder below, and the backend it names.
_CLASSES: dict[str, tuple[str, str | None]] = {
    "UvicornWorker": ("uvicorn", None),
    "UvicornUringWorker": ("uvicorn", "uring"),
    "UvicornEpollWorker": ("uvicorn", "epoll"),
    "AiohttpWorker": ("aiohttp", None),
    "AiohttpUringWorker": ("aiohttp", "uring"),
    "AiohttpEpollWorker": ("aiohttp", "epoll"),
}
_built: dict[str, type] = {}


def _import_needed(module: str, package: str, name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"ringloop.workers.{name} needs the {package} package "
            f"(pip install {package}): {exc}", name=module) from exc


def _loop_factory(backend: str | None) -> Any:
    # A new ringloop loop; backend None defers to RINGLOOP_BACKEND.
    return functools.partial(ringloop.new_event_loop, backend)


def _uvicorn_base(name: str) -> type:
    base = _import_needed("uvicorn_worker", "uvicorn-worker", name).UvicornWorker

    class UvicornWorker(base):  # type: ignore[misc, valid-type]
        """uvicorn_worker.UvicornWorker, its app served on ringloop."""

        ringloop_backend: str | None = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # uvicorn's Config takes a loop factory (a callable, or an
            # import string) since 0.36; "auto" would pick uvloop.
            self.CONFIG_KWARGS = {**base.CONFIG_KWARGS,
                                  "loop": _loop_factory(self.ringloop_backend)}
            super().__init__(*args, **kwargs)

        async def _serve(self) -> None:
            # gunicorn's reloader (a thread) can only clear self.alive and
            # write to the worker's pipe, which uvicorn's server never
            # reads: watch the pipe and stop the server as SIGTERM does.
            asyncio.get_running_loop().add_reader(self.PIPE[0],
                                                  self._ringloop_wakeup)
            await super()._serve()

        def _ringloop_wakeup(self) -> None:
            try:
                os.read(self.PIPE[0], 64)
            except BlockingIOError:
                pass
            if not self.alive:
                asyncio.get_running_loop().remove_reader(self.PIPE[0])
                os.kill(os.getpid(), signal.SIGTERM)

    return UvicornWorker


def _aiohttp_base(name: str) -> type:
    # aiohttp does not depend on gunicorn: name the one that is missing.
    _import_needed("gunicorn", "gunicorn", name)
    base = _import_needed("aiohttp.worker", "aiohttp", name).GunicornWebWorker

    class AiohttpWorker(base):  # type: ignore[misc, valid-type]
        """aiohttp.worker.GunicornWebWorker, its app served on ringloop."""

        ringloop_backend: str | None = None

        def init_process(self) -> None:
            # GunicornWebWorker.init_process makes asyncio's loop after the
            # fork and calls gunicorn's Worker.init_process: the same with
            # a ringloop loop (the arbiter runs no loop to close).
            self.loop = ringloop.new_event_loop(type(self).ringloop_backend)
            asyncio.set_event_loop(self.loop)
            super(base, self).init_process()

    return AiohttpWorker


def _build(name: str) -> type:
    kind, backend = _CLASSES[name]
    root_name = "UvicornWorker" if kind == "uvicorn" else "AiohttpWorker"
    if root_name not in _built:
        builder = _uvicorn_base if kind == "uvicorn" else _aiohttp_base
        cls = builder(name)  # name: for the ImportError
        cls.__module__ = __name__
        cls.__qualname__ = root_name
        _built[root_name] = cls
    root = _built[root_name]
    if name == root_name:
        return root
    cls = type(name, (root,), {
        "ringloop_backend": backend, "__module__": __name__,
        "__doc__": f"{root_name} on ringloop's {backend} backend."})
    _built[name] = cls
    return cls


def __getattr__(name: str) -> type:
    if name in _CLASSES:
        cls = _built.get(name) or _build(name)
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
