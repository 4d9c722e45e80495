"""Exception handler, debug-mode checks and misuse errors, as asyncio."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest


def test_exception_in_callback_reaches_handler(loop: Any) -> None:
    contexts: list[dict[str, Any]] = []

    def handler(lp: Any, context: dict[str, Any]) -> None:
        assert lp is loop
        contexts.append(context)

    def bad() -> None:
        raise ZeroDivisionError("oops")

    loop.set_exception_handler(handler)
    assert loop.get_exception_handler() is handler
    h = loop.call_soon(bad)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert len(contexts) == 1
    ctx = contexts[0]
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert ctx["handle"] is h
    assert ctx["message"].startswith("Exception in callback ")
    assert "bad" in ctx["message"]


def test_exception_in_timer_and_loop_continues(loop: Any) -> None:
    errors: list[BaseException] = []
    out: list[int] = []
    loop.set_exception_handler(lambda lp, c: errors.append(c["exception"]))
    loop.call_later(0.001, lambda: 1 / 0)
    loop.call_later(0.002, out.append, 1)
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert [type(e) for e in errors] == [ZeroDivisionError]
    assert out == [1]


def test_base_exception_in_callback_goes_to_handler(loop: Any) -> None:
    errors: list[BaseException] = []
    loop.set_exception_handler(lambda lp, c: errors.append(c["exception"]))

    def cancel_me() -> None:
        raise asyncio.CancelledError()

    loop.call_soon(cancel_me)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert [type(e) for e in errors] == [asyncio.CancelledError]


def test_default_exception_handler_logs(loop: Any,
                                        caplog: pytest.LogCaptureFixture
                                        ) -> None:
    def bad() -> None:
        raise ValueError("logged")

    loop.call_soon(bad)
    loop.call_soon(loop.stop)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.run_forever()
    rec = [r for r in caplog.records if r.name == "asyncio"]
    assert len(rec) == 1
    assert rec[0].getMessage().startswith("Exception in callback ")
    assert "handle: <Handle " in rec[0].getMessage()
    assert rec[0].exc_info and rec[0].exc_info[0] is ValueError


def test_default_exception_handler_format(loop: Any,
                                          caplog: pytest.LogCaptureFixture
                                          ) -> None:
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.default_exception_handler({"message": "hello", "b": 2,
                                        "a": "x"})
        loop.call_exception_handler({})
    msgs = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert msgs == ["hello\na: 'x'\nb: 2",
                    "Unhandled exception in event loop"]


def test_failing_custom_handler(loop: Any,
                                caplog: pytest.LogCaptureFixture) -> None:
    def handler(lp: Any, ctx: dict[str, Any]) -> None:
        raise RuntimeError("handler broke")

    loop.set_exception_handler(handler)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler({"message": "x"})
    msgs = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert msgs[0].startswith("Unhandled error in exception handler")


def test_set_exception_handler_type_check(loop: Any) -> None:
    with pytest.raises(TypeError):
        loop.set_exception_handler(42)


def test_unretrieved_task_exception_logged(run: Any,
                                           caplog: pytest.LogCaptureFixture
                                           ) -> None:
    async def bad() -> None:
        raise ValueError("never retrieved")

    async def main() -> None:
        t = asyncio.ensure_future(bad())
        await asyncio.sleep(0.01)
        del t

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        run(main())
        import gc
        gc.collect()
    msgs = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert any("Task exception was never retrieved" in m for m in msgs)


# ---- misuse ---------------------------------------------------------------

def test_run_while_running(loop: Any) -> None:
    errors: list[str] = []

    async def inner() -> None:
        pass

    async def main() -> None:
        coro = inner()
        try:
            loop.run_until_complete(coro)
        except RuntimeError as exc:
            errors.append(str(exc))
        finally:
            coro.close()
        try:
            loop.run_forever()
        except RuntimeError as exc:
            errors.append(str(exc))

    loop.run_until_complete(main())
    assert errors == ["This event loop is already running"] * 2


def test_run_inside_another_loop(loop: Any, loop_factory: Any) -> None:
    other = loop_factory()
    try:
        async def main() -> str:
            try:
                other.run_forever()
            except RuntimeError as exc:
                return str(exc)
            return "no error"

        assert loop.run_until_complete(main()) == (
            "Cannot run the event loop while another loop is running")
    finally:
        other.close()


def test_close_running_loop(loop: Any) -> None:
    async def main() -> str:
        try:
            loop.close()
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    assert loop.run_until_complete(main()) == (
        "Cannot close a running event loop")


def test_use_after_close(loop_factory: Any) -> None:
    loop = loop_factory()
    loop.close()

    async def coro() -> None:
        pass

    for call in (lambda: loop.call_soon(print),
                 lambda: loop.call_later(1, print),
                 lambda: loop.call_at(1, print),
                 lambda: loop.call_soon_threadsafe(print),
                 lambda: loop.run_forever(),
                 lambda: loop.run_in_executor(None, print),
                 lambda: loop.add_reader(0, print)):
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            call()
    c = coro()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_until_complete(c)
    c.close()
    c = coro()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.create_task(c)
    c.close()
    assert loop.remove_reader(0) is False
    assert loop.is_closed()
    loop.time()  # still works


# ---- debug mode -----------------------------------------------------------

def test_debug_flag(loop: Any) -> None:
    loop.set_debug(False)  # python -X dev turns it on by default
    assert loop.get_debug() is False
    loop.set_debug(True)
    assert loop.get_debug()
    loop.set_debug(False)
    assert not loop.get_debug()


def test_debug_thread_check(loop: Any) -> None:
    loop.set_debug(True)
    errors: list[str] = []

    def other_thread() -> None:
        try:
            loop.call_soon(print)
        except RuntimeError as exc:
            errors.append(str(exc))
        loop.call_soon_threadsafe(loop.stop)

    loop.call_soon(lambda: threading.Thread(target=other_thread).start())
    loop.run_forever()
    assert errors == ["Non-thread-safe operation invoked on an event loop "
                      "other than the current one"]


def test_debug_coroutine_callback(loop: Any) -> None:
    loop.set_debug(True)

    async def coro() -> None:
        pass

    with pytest.raises(TypeError,
                       match=r"coroutines cannot be used with call_soon\(\)"):
        loop.call_soon(coro)
    with pytest.raises(TypeError, match="coroutines cannot be used with "
                                        r"call_at\(\)"):
        loop.call_later(1, coro)
    with pytest.raises(TypeError, match="a callable object was expected"):
        loop.call_soon(42)


def test_debug_slow_callback_warning(loop: Any,
                                     caplog: pytest.LogCaptureFixture) -> None:
    loop.set_debug(True)
    loop.slow_callback_duration = 0.0  # every callback is "slow"

    def slow() -> None:
        time.sleep(0.001)

    loop.call_soon(slow)
    loop.call_soon(loop.stop)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.run_forever()
    msgs = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert any(m.startswith("Executing <Handle ") and ".slow() at " in m and
               " took " in m and m.endswith(" seconds") for m in msgs), msgs


def test_debug_source_traceback(loop: Any) -> None:
    loop.set_debug(True)
    h = loop.call_soon(lambda: None)
    assert h._source_traceback
    frame = h._source_traceback[-1]
    assert frame.name == "test_debug_source_traceback"
    assert "created at " in repr(h)
    h.cancel()


def test_debug_exception_context_has_source_traceback(loop: Any) -> None:
    loop.set_debug(True)
    contexts: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda lp, c: contexts.append(c))
    loop.call_soon(lambda: 1 / 0)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert "source_traceback" in contexts[0]
