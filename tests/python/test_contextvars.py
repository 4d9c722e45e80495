"""Every callback runs in its contextvars context, as in asyncio."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

var: contextvars.ContextVar[str] = contextvars.ContextVar("var",
                                                          default="unset")


def test_call_soon_copies_current_context(loop: Any) -> None:
    seen: list[str] = []
    token = var.set("outer")
    try:
        loop.call_soon(lambda: seen.append(var.get()))
    finally:
        var.reset(token)
    loop.call_soon(lambda: seen.append(var.get()))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["outer", "unset"]


def test_callback_changes_stay_in_its_context(loop: Any) -> None:
    ctx = contextvars.copy_context()
    seen: list[str] = []

    def setter() -> None:
        var.set("set in callback")

    loop.call_soon(setter, context=ctx)
    loop.call_soon(lambda: seen.append(var.get()), context=ctx)
    loop.call_soon(lambda: seen.append(var.get()))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["set in callback", "unset"]
    assert ctx[var] == "set in callback"
    assert var.get() == "unset"


def test_timer_and_threadsafe_context(loop: Any) -> None:
    seen: list[str] = []
    ctx = contextvars.copy_context()
    ctx.run(var.set, "ctx")
    loop.call_later(0.001, lambda: seen.append(var.get()), context=ctx)

    def worker() -> None:
        var.set("thread")
        loop.call_soon_threadsafe(lambda: seen.append(var.get()))

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    assert sorted(seen) == ["ctx", "thread"]


def test_tasks_inherit_and_isolate(run: Any) -> None:
    async def child(tag: str) -> tuple[str, str]:
        before = var.get()
        var.set(tag)
        await asyncio.sleep(0)
        return before, var.get()

    async def main() -> Any:
        var.set("parent")
        res = await asyncio.gather(child("a"), child("b"))
        return res, var.get()

    assert run(main()) == ([("parent", "a"), ("parent", "b")], "parent")


def test_create_task_with_context(run: Any) -> None:
    import sys
    if sys.version_info < (3, 11):
        import pytest
        pytest.skip("create_task(context=) is 3.11+")

    async def read() -> str:
        return var.get()

    async def main() -> str:
        ctx = contextvars.copy_context()
        ctx.run(var.set, "explicit")
        return await asyncio.get_running_loop().create_task(read(),
                                                            context=ctx)

    assert run(main()) == "explicit"


def test_reader_runs_in_registration_context(loop: Any) -> None:
    import socket
    a, b = socket.socketpair()
    seen: list[str] = []
    try:
        var.set("at add_reader")

        def on_read() -> None:
            seen.append(var.get())
            a.recv(10)
            loop.remove_reader(a)
            loop.stop()

        loop.add_reader(a, on_read)
        var.set("later")
        b.send(b"x")
        loop.run_forever()
    finally:
        a.close()
        b.close()
        var.set("unset")
    assert seen == ["at add_reader"]


def test_exception_handler_runs_in_handle_context(loop: Any) -> None:
    import sys
    ctx = contextvars.copy_context()
    ctx.run(var.set, "handle ctx")
    seen: list[str] = []
    loop.set_exception_handler(lambda lp, c: seen.append(var.get()))
    loop.call_soon(lambda: 1 / 0, context=ctx)
    loop.call_soon(loop.stop)
    loop.run_forever()
    # 3.12+: the handler runs in the failing handle's context
    assert seen == ["handle ctx" if sys.version_info >= (3, 12) else "unset"]
