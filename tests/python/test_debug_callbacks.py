"""Which callables the loop refuses as coroutines, with debug on and off.

asyncio refuses a callback only when asyncio.coroutines says it is a
coroutine or a coroutine function (iscoroutine(), iscoroutinefunction():
inspect's test, or asyncio's own _is_coroutine marker object): call_soon,
call_later, call_at, call_soon_threadsafe and run_in_executor in debug mode,
add_signal_handler always, add_reader and add_writer never. Any other
_is_coroutine attribute means nothing: Cython functions carry
_is_coroutine = False, and a Mock makes one up when asked.

Each case runs on asyncio's loop and on the loop under test; the outcome
(no exception, or the exception type and its message up to the repr of the
callback) must be the same.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import signal
from typing import Any, Callable
from unittest import mock

import pytest

from conftest import make_factory


async def _corofn() -> None:
    pass


def _plain() -> None:
    pass


def _marked(value: Any) -> Callable[[], None]:
    def f() -> None:
        pass

    f._is_coroutine = value  # type: ignore[attr-defined]
    return f


class _CythonLike:
    """A callable with _is_coroutine = False, as Cython functions have."""

    _is_coroutine = False

    def __call__(self) -> None:
        pass


def _gen() -> Any:
    yield


CALLABLES: dict[str, Callable[[], Any]] = {
    "plain function": lambda: _plain,
    "Mock()": mock.Mock,
    "MagicMock()": mock.MagicMock,
    "AsyncMock()": mock.AsyncMock,
    "_is_coroutine = False": _CythonLike,
    "_is_coroutine = True": lambda: _marked(True),
    "_is_coroutine = asyncio's marker":
        lambda: _marked(asyncio.coroutines._is_coroutine),
    "coroutine function": lambda: _corofn,
    "partial(coroutine function)": lambda: functools.partial(_corofn),
    "coroutine": _corofn,
    "generator": _gen,
}


def _schedule(name: str) -> Callable[[Any, Any], Any]:
    """call_soon-like methods: call, then cancel the handle."""
    def run(loop: Any, cb: Any) -> None:
        if name == "call_later":
            h = loop.call_later(3600, cb)
        elif name == "call_at":
            h = loop.call_at(loop.time() + 3600, cb)
        else:
            h = getattr(loop, name)(cb)
        h.cancel()
    return run


def _run_in_executor(loop: Any, cb: Any) -> None:
    fut = loop.run_in_executor(None, cb)
    # Whatever the callable did in the thread is no concern here.
    loop.run_until_complete(asyncio.wait([fut]))
    if not fut.exception():
        result = fut.result()
        if inspect.iscoroutine(result):
            result.close()


def _add_signal_handler(loop: Any, cb: Any) -> None:
    loop.add_signal_handler(signal.SIGUSR1, cb)
    loop.remove_signal_handler(signal.SIGUSR1)


def _watch(add: str, remove: str, end: int) -> Callable[[Any, Any], Any]:
    def run(loop: Any, cb: Any) -> None:
        fds = os.pipe()
        try:
            getattr(loop, add)(fds[end], cb)
            getattr(loop, remove)(fds[end])
        finally:
            os.close(fds[0])
            os.close(fds[1])
    return run


METHODS: dict[str, Callable[[Any, Any], Any]] = {
    "call_soon": _schedule("call_soon"),
    "call_later": _schedule("call_later"),
    "call_at": _schedule("call_at"),
    "call_soon_threadsafe": _schedule("call_soon_threadsafe"),
    "run_in_executor": _run_in_executor,
    "add_signal_handler": _add_signal_handler,
    "add_reader": _watch("add_reader", "remove_reader", 0),
    "add_writer": _watch("add_writer", "remove_writer", 1),
}


def outcome(kind: str, method: str, callable_name: str,
            debug: bool) -> tuple[type[BaseException], str] | None:
    """What calling method with the callable does on a fresh loop of kind:
    None, or the exception type and its message up to the callback's repr
    (which differs from object to object)."""
    loop = make_factory(kind)()
    cb = CALLABLES[callable_name]()
    try:
        loop.set_debug(debug)
        try:
            METHODS[method](loop, cb)
        except Exception as exc:
            return type(exc), str(exc).split(", got ")[0]
        return None
    finally:
        if inspect.iscoroutine(cb) or inspect.isgenerator(cb):
            cb.close()
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


@pytest.mark.parametrize("debug", [False, True], ids=["nodebug", "debug"])
@pytest.mark.parametrize("callable_name", list(CALLABLES))
@pytest.mark.parametrize("method", list(METHODS))
def test_callback_check(kind: str, method: str, callable_name: str,
                        debug: bool) -> None:
    expected = outcome("asyncio", method, callable_name, debug)
    if kind == "asyncio":
        return
    got = outcome(kind, method, callable_name, debug)
    assert got == expected


@pytest.mark.parametrize("debug", [False, True], ids=["nodebug", "debug"])
def test_mock_callback_runs(kind: str, debug: bool) -> None:
    """A Mock is an ordinary callback: it is scheduled and called."""
    loop = make_factory(kind)()
    try:
        loop.set_debug(debug)
        cb = mock.Mock()
        loop.call_soon(cb, 1)
        loop.call_soon_threadsafe(cb, 2)
        loop.call_later(0, cb, 3)
        loop.run_until_complete(asyncio.sleep(0.01))
        assert sorted(c.args for c in cb.call_args_list) == [(1,), (2,), (3,)]
    finally:
        loop.close()


def test_refusal_messages_name_the_method(kind: str) -> None:
    loop = make_factory(kind)()
    try:
        loop.set_debug(True)
        with pytest.raises(TypeError,
                           match=r"coroutines cannot be used with call_at\(\)"):
            loop.call_later(1, _corofn)
        with pytest.raises(
                TypeError,
                match=r"coroutines cannot be used with add_signal_handler\(\)"):
            loop.add_signal_handler(signal.SIGUSR1, _corofn)
    finally:
        loop.close()
