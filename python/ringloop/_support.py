"""Cold-path helpers the C extension calls: formatting and debug checks.

They reproduce what asyncio does in the same places (asyncio.format_helpers,
BaseEventLoop._check_callback, the slow-callback warning), using only public
APIs, so that messages and reprs read exactly as asyncio's.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import reprlib
import sys
import traceback
from typing import Any

logger = logging.getLogger("asyncio")

#: asyncio.constants.DEBUG_STACK_DEPTH
DEBUG_STACK_DEPTH = 10


def _get_function_source(func: Any) -> tuple[str, int] | None:
    func = inspect.unwrap(func)
    if inspect.isfunction(func):
        code = func.__code__
        return (code.co_filename, code.co_firstlineno)
    if isinstance(func, (functools.partial, functools.partialmethod)):
        return _get_function_source(func.func)
    return None


def _format_args_and_kwargs(args: Any, kwargs: Any, *, debug: bool) -> str:
    if not debug:
        return "()"
    items = []
    if args:
        items.extend(reprlib.repr(arg) for arg in args)
    if kwargs:
        items.extend(f"{k}={reprlib.repr(v)}" for k, v in kwargs.items())
    return "({})".format(", ".join(items))


def _format_callback(func: Any, args: Any, kwargs: Any, *, debug: bool,
                     suffix: str = "") -> str:
    if isinstance(func, functools.partial):
        suffix = _format_args_and_kwargs(args, kwargs, debug=debug) + suffix
        return _format_callback(func.func, func.args, func.keywords,
                                debug=debug, suffix=suffix)
    if getattr(func, "__qualname__", None):
        func_repr = func.__qualname__
    elif getattr(func, "__name__", None):
        func_repr = func.__name__
    else:
        func_repr = repr(func)
    func_repr += _format_args_and_kwargs(args, kwargs, debug=debug)
    if suffix:
        func_repr += suffix
    return func_repr


def format_callback_source(func: Any, args: Any, debug: bool = False) -> str:
    """asyncio.format_helpers._format_callback_source()"""
    func_repr = _format_callback(func, args, None, debug=debug)
    source = _get_function_source(func)
    if source:
        func_repr += f" at {source[0]}:{source[1]}"
    return func_repr


def extract_stack() -> traceback.StackSummary:
    """The caller's caller's stack, as asyncio's debug mode records it."""
    stack = traceback.StackSummary.extract(
        traceback.walk_stack(sys._getframe(1)), limit=DEBUG_STACK_DEPTH,
        lookup_lines=False)
    stack.reverse()
    return stack


def handle_repr(handle: Any) -> str:
    """repr() of a Handle or TimerHandle, as asyncio's _repr_info()."""
    info = [type(handle).__name__]
    if handle._cancelled:
        info.append("cancelled")
    if handle._callback is not None:
        loop = handle._loop
        info.append(format_callback_source(
            handle._callback, handle._args,
            debug=loop.get_debug() if loop is not None else False))
    if handle._source_traceback:
        frame = handle._source_traceback[-1]
        info.append(f"created at {frame[0]}:{frame[1]}")
    if hasattr(handle, "_when"):
        info.insert(2 if handle._cancelled else 1, f"when={handle._when}")
    return "<{}>".format(" ".join(info))


# asyncio's own tests, so that what it calls a coroutine (the version's
# iscoroutine(), and iscoroutinefunction(): inspect's, or a function
# carrying asyncio's own _is_coroutine marker object) is exactly what is
# refused here. Any other _is_coroutine attribute (Cython functions have
# _is_coroutine = False; a Mock makes one up on access) means nothing.
# Python 3.14 deprecates coroutines.iscoroutinefunction() and has asyncio
# call the private _iscoroutinefunction() instead.
_iscoroutine = asyncio.coroutines.iscoroutine
_iscoroutinefunction = getattr(asyncio.coroutines, "_iscoroutinefunction",
                               asyncio.coroutines.iscoroutinefunction)


def is_coroutine_callback(callback: Any) -> bool:
    """What asyncio refuses as a callback: a coroutine or one's function."""
    return _iscoroutine(callback) or _iscoroutinefunction(callback)


def check_callback(callback: Any, method: str) -> None:
    """asyncio.BaseEventLoop._check_callback() (debug mode)."""
    if is_coroutine_callback(callback):
        raise TypeError(f"coroutines cannot be used with {method}()")
    if not callable(callback):
        raise TypeError(
            f"a callable object was expected by {method}(), "
            f"got {callback!r}")


def format_handle(handle: Any) -> str:
    """asyncio.base_events._format_handle()"""
    cb = handle._callback
    if isinstance(getattr(cb, "__self__", None), asyncio.Task):
        return repr(cb.__self__)
    return str(handle)


def log_slow_callback(handle: Any, dt: float) -> None:
    logger.warning("Executing %s took %.3f seconds", format_handle(handle), dt)
