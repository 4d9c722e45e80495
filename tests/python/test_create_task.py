"""loop.create_task(): ringloop's is C (servers call it once per request),
so everything asyncio's BaseEventLoop.create_task() does is checked here
against asyncio's own loop: the name, the context (3.11+), the task
factory (called with or without context=, then set_name()), the eager task
factory (3.12+), the closed loop, the argument errors, and the source
traceback in debug mode."""

from __future__ import annotations

import asyncio
import contextvars
import sys
from typing import Any

import pytest

PY311 = sys.version_info >= (3, 11)
PY312 = sys.version_info >= (3, 12)
# asyncio 3.13.0 names a factory's task "None" when create_task() got no
# name (3.13.1 fixed it); ringloop keeps the other versions' behaviour.
NAMES_NONE = sys.version_info[:3] == (3, 13, 0)

var: contextvars.ContextVar[str] = contextvars.ContextVar("var",
                                                          default="unset")


async def _value() -> str:
    return var.get()


def test_name_and_default(loop: Any) -> None:
    async def main() -> None:
        t = loop.create_task(_value())
        assert isinstance(t, asyncio.Task)
        assert t.get_loop() is loop
        assert t.get_name().startswith("Task-")
        named = loop.create_task(_value(), name="the-name")
        assert named.get_name() == "the-name"
        obj = loop.create_task(_value(), name=42)
        assert obj.get_name() == "42"
        assert await t == "unset"
        await named
        await obj
        coro_kw = loop.create_task(coro=_value())
        assert await coro_kw == "unset"

    loop.run_until_complete(main())


@pytest.mark.skipif(not PY311, reason="context= is 3.11+")
def test_context(loop: Any) -> None:
    async def main() -> None:
        ctx = contextvars.copy_context()
        ctx.run(var.set, "in-ctx")
        t = loop.create_task(_value(), context=ctx)
        if PY312:
            assert t.get_context() is ctx
        assert await t == "in-ctx"
        var.set("current")
        t = loop.create_task(_value(), context=None)
        assert await t == "current"

    loop.run_until_complete(main())


def test_task_factory(loop: Any, kind: str) -> None:
    calls: list[tuple[Any, ...]] = []

    def factory(lp: Any, coro: Any, **kw: Any) -> asyncio.Task[Any]:
        calls.append((lp, sorted(kw)))
        return asyncio.Task(coro, loop=lp, **kw)

    async def main() -> None:
        loop.set_task_factory(factory)
        assert loop.get_task_factory() is factory
        t = loop.create_task(_value())
        assert calls == [(loop, [])]
        if not (NAMES_NONE and kind == "asyncio"):
            assert t.get_name().startswith("Task-")
        t2 = loop.create_task(_value(), name="via-factory")
        assert t2.get_name() == "via-factory"
        if PY311:
            ctx = contextvars.copy_context()
            ctx.run(var.set, "ctx")
            t3 = loop.create_task(_value(), context=ctx)
            assert calls[-1] == (loop, ["context"])
            assert await t3 == "ctx"
        await t
        await t2
        loop.set_task_factory(None)
        assert loop.get_task_factory() is None
        before = len(calls)
        await loop.create_task(_value())
        assert len(calls) == before

    loop.run_until_complete(main())


def test_task_factory_returns_non_task(loop: Any, kind: str) -> None:
    """Whatever the factory returns is returned; set_name() only with a
    name (so a factory's object without it works without one)."""
    class Thing:
        def __init__(self, coro: Any) -> None:
            coro.close()
            self.names: list[str] = []

        def set_name(self, name: str) -> None:
            self.names.append(name)

    def failing(lp: Any, coro: Any) -> Any:
        coro.close()
        raise ZeroDivisionError

    loop.set_task_factory(lambda lp, coro: Thing(coro))
    try:
        thing = loop.create_task(_value())
        assert isinstance(thing, Thing)
        if not (NAMES_NONE and kind == "asyncio"):
            assert thing.names == []
        thing = loop.create_task(_value(), name="n")
        assert thing.names[-1:] == ["n"]
        loop.set_task_factory(failing)
        with pytest.raises(ZeroDivisionError):
            loop.create_task(_value())
    finally:
        loop.set_task_factory(None)


def test_set_task_factory_checks(loop: Any) -> None:
    with pytest.raises(TypeError):
        loop.set_task_factory(1)
    assert loop.get_task_factory() is None


@pytest.mark.skipif(not PY312, reason="eager_task_factory is 3.12+")
def test_eager_task_factory(loop: Any) -> None:
    order: list[str] = []

    async def body() -> str:
        order.append("body")
        return var.get()

    async def main() -> None:
        loop.set_task_factory(asyncio.eager_task_factory)
        t = loop.create_task(body(), name="eager")
        order.append("after")
        assert t.done()
        assert t.get_name() == "eager"
        assert await t == "unset"
        assert order == ["body", "after"]
        loop.set_task_factory(None)

    loop.run_until_complete(main())


def test_closed_and_bad_arguments(loop: Any) -> None:
    coro = _value()
    with pytest.raises(TypeError):
        loop.create_task()
    with pytest.raises(TypeError):
        loop.create_task(coro, None)
    with pytest.raises(TypeError):
        loop.create_task(coro, bogus=1)
    with pytest.raises(TypeError):
        loop.create_task(42)
    loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        loop.create_task(coro)
    coro.close()


def test_source_traceback_debug(loop: Any) -> None:
    """In debug mode the task's source traceback ends at the caller of
    create_task(), not inside it."""
    loop.set_debug(True)

    async def main() -> None:
        t = loop.create_task(_value())
        tb = t._source_traceback
        assert tb[-1].name == "main"
        assert tb[-1].filename == __file__
        await t

    loop.run_until_complete(main())
