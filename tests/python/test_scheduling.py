"""call_soon / call_later / call_at, handles, stop and run_forever."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from typing import Any

import pytest


def test_call_soon_order(loop: Any) -> None:
    out: list[int] = []
    for i in range(10):
        loop.call_soon(out.append, i)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == list(range(10))


def test_call_soon_from_callback_runs_next_iteration(loop: Any) -> None:
    out: list[str] = []

    def first() -> None:
        out.append("first")
        loop.call_soon(out.append, "nested")

    loop.call_soon(first)
    loop.call_soon(out.append, "second")
    loop.call_soon(loop.stop)  # stops after this batch: nested not yet run
    loop.run_forever()
    assert out == ["first", "second"]
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == ["first", "second", "nested"]


def test_call_later_order(loop: Any) -> None:
    out: list[int] = []
    loop.call_later(0.03, out.append, 3)
    loop.call_later(0.01, out.append, 1)
    loop.call_later(0.02, out.append, 2)
    loop.call_later(0.04, loop.stop)
    loop.run_forever()
    assert out == [1, 2, 3]


def test_call_at_and_when(loop: Any) -> None:
    out: list[Any] = []
    when = loop.time() + 0.01
    h = loop.call_at(when, lambda: out.append(loop.time() >= when))
    assert h.when() == when
    loop.call_at(when + 0.01, loop.stop)
    loop.run_forever()
    assert out == [True]


def test_call_later_zero_and_negative(loop: Any) -> None:
    out: list[int] = []
    loop.call_later(-1, out.append, 1)
    loop.call_later(0, out.append, 2)
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert out == [1, 2]


def test_none_delay_and_when(loop: Any) -> None:
    with pytest.raises(TypeError):
        loop.call_later(None, print)
    # asyncio < 3.12 asserts instead
    with pytest.raises((TypeError, AssertionError)):
        loop.call_at(None, print)


def test_time_is_monotonic_clock(loop: Any) -> None:
    a = time.monotonic()
    t = loop.time()
    b = time.monotonic()
    assert a <= t <= b


def test_cancel_handle(loop: Any) -> None:
    out: list[int] = []
    h = loop.call_soon(out.append, 1)
    t = loop.call_later(0.001, out.append, 2)
    assert not h.cancelled()
    h.cancel()
    t.cancel()
    h.cancel()  # idempotent
    assert h.cancelled() and t.cancelled()
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    assert out == []


def test_cancel_from_another_callback(loop: Any) -> None:
    out: list[int] = []
    h2: Any = None

    def first() -> None:
        h2.cancel()

    loop.call_soon(first)
    h2 = loop.call_soon(out.append, 2)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == []


def test_handle_repr(loop: Any) -> None:
    def cb() -> None:
        pass

    loop.set_debug(False)  # python -X dev turns it on by default
    h = loop.call_soon(cb)
    r = repr(h)
    assert r.startswith("<Handle ") and "cb" in r and "test_scheduling" in r
    h.cancel()
    assert repr(h) == "<Handle cancelled>"
    t = loop.call_at(12345.5, cb)
    assert repr(t).startswith("<TimerHandle when=12345.5 ")
    t.cancel()
    assert repr(t) == "<TimerHandle cancelled when=12345.5>"


def test_timer_handle_compare(loop: Any) -> None:
    a = loop.call_at(100, print)
    b = loop.call_at(200, print)
    assert a < b and b > a and a <= b and a != b
    assert hash(a) == hash(100.0)
    a.cancel()
    b.cancel()


def test_handle_get_context(loop: Any) -> None:
    ctx = contextvars.copy_context()
    h = loop.call_soon(lambda: None, context=ctx)
    if not hasattr(h, "get_context"):
        pytest.skip("asyncio's Handle.get_context() is 3.12+")
    assert h.get_context() is ctx
    h.cancel()


def test_call_soon_threadsafe_wakes_sleeping_loop(loop: Any) -> None:
    out: list[str] = []

    def worker() -> None:
        time.sleep(0.05)
        loop.call_soon_threadsafe(out.append, "from thread")
        loop.call_soon_threadsafe(loop.stop)

    t = threading.Thread(target=worker)
    t.start()
    loop.run_forever()  # nothing else scheduled: sleeps until woken
    t.join()
    assert out == ["from thread"]


def test_call_soon_threadsafe_many_threads(loop: Any) -> None:
    n_threads, n_calls = 4, 200
    got: list[int] = []
    done = loop.create_future()

    def add(i: int) -> None:
        got.append(i)
        if len(got) == n_threads * n_calls and not done.done():
            done.set_result(None)

    def worker(k: int) -> None:
        for i in range(n_calls):
            loop.call_soon_threadsafe(add, k * n_calls + i)

    threads = [threading.Thread(target=worker, args=(k,))
               for k in range(n_threads)]
    for t in threads:
        t.start()
    loop.run_until_complete(done)
    for t in threads:
        t.join()
    assert sorted(got) == list(range(n_threads * n_calls))


def test_stop_before_run_forever(loop: Any) -> None:
    out: list[int] = []
    loop.call_soon(out.append, 1)
    loop.stop()
    loop.run_forever()  # runs one iteration, then returns
    assert out == [1]
    assert not loop.is_running()


def test_run_forever_is_running(loop: Any) -> None:
    seen: list[bool] = []
    loop.call_soon(lambda: seen.append(loop.is_running()))
    loop.call_soon(loop.stop)
    assert not loop.is_running()
    loop.run_forever()
    assert seen == [True]
    assert not loop.is_running()


def test_run_until_complete_result_and_exception(loop: Any) -> None:
    async def ok() -> int:
        return 5

    async def bad() -> None:
        raise KeyError("x")

    assert loop.run_until_complete(ok()) == 5
    with pytest.raises(KeyError):
        loop.run_until_complete(bad())


def test_run_until_complete_stopped_early(loop: Any) -> None:
    fut = loop.create_future()
    loop.call_soon(loop.stop)
    with pytest.raises(RuntimeError,
                       match="Event loop stopped before Future completed"):
        loop.run_until_complete(fut)


def test_close_with_pending_callbacks(loop_factory: Any) -> None:
    loop = loop_factory()
    out: list[int] = []
    loop.call_soon(out.append, 1)
    loop.call_later(0.001, out.append, 2)
    loop.call_later(3600, out.append, 3)
    loop.close()
    assert loop.is_closed()
    assert out == []
    loop.close()  # idempotent


def test_keyboard_interrupt_in_callback(loop: Any) -> None:
    out: list[int] = []

    def interrupt() -> None:
        raise KeyboardInterrupt

    loop.call_soon(out.append, 1)
    loop.call_soon(interrupt)
    loop.call_soon(out.append, 2)
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert out == [1]
    assert not loop.is_running()
    # the rest of the batch runs on the next run
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == [1, 2]


def test_system_exit_in_callback(loop: Any) -> None:
    def leave() -> None:
        raise SystemExit(3)

    loop.call_soon(leave)
    with pytest.raises(SystemExit):
        loop.run_forever()


def test_task_factory(loop: Any) -> None:
    made: list[Any] = []

    def factory(lp: Any, coro: Any, **kw: Any) -> asyncio.Task[Any]:
        t = asyncio.Task(coro, loop=lp, **kw)
        made.append(t)
        return t

    async def main() -> int:
        return 1

    assert loop.get_task_factory() is None
    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory
    t = loop.create_task(main(), name="named")
    assert t.get_name() == "named"
    assert loop.run_until_complete(t) == 1
    assert made == [t]
    loop.set_task_factory(None)
    with pytest.raises(TypeError):
        loop.set_task_factory(1)


def test_create_task_name(loop: Any) -> None:
    async def main() -> None:
        pass

    t = loop.create_task(main(), name="hello")
    assert t.get_name() == "hello"
    loop.run_until_complete(t)


def test_create_future(loop: Any) -> None:
    f = loop.create_future()
    assert isinstance(f, asyncio.Future)
    assert f.get_loop() is loop
    f.cancel()


def test_callback_with_many_args_and_kw_context(loop: Any) -> None:
    out: list[Any] = []
    ctx = contextvars.copy_context()
    loop.call_soon(lambda *a: out.append(a), 1, 2, 3, 4, 5, context=ctx)
    loop.call_later(0, lambda *a: out.append(a), "x", context=None)
    loop.call_soon(loop.stop)
    loop.run_forever()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == [(1, 2, 3, 4, 5), ("x",)]


def test_bad_keyword(loop: Any) -> None:
    with pytest.raises(TypeError):
        loop.call_soon(print, nope=1)


def test_many_timers_cancel_half(loop: Any) -> None:
    fired: list[int] = []
    handles = [loop.call_later(0.001 * (i % 7), fired.append, i)
               for i in range(2000)]
    for h in handles[::2]:
        h.cancel()
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    assert sorted(fired) == list(range(1, 2000, 2))


class _Owner:
    """Holds the loop and its own scheduled handles: a reference cycle
    through the loop's ready queue and timer heap."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.soon = loop.call_soon(self.method)
        self.later = loop.call_later(3600, self.method)
        self.threadsafe = loop.call_soon_threadsafe(self.method)

    def method(self) -> None:
        pass


def test_cycle_through_scheduled_handles_is_collected(
        loop_factory: Any) -> None:
    """A loop dropped (unclosed) with handles whose callbacks refer back to
    it is garbage the collector can free, on every loop."""
    import gc
    import warnings
    import weakref

    loop = loop_factory()
    owner = _Owner(loop)
    loop.call_later(3600, owner.method)  # a handle only the loop holds
    refs = [weakref.ref(owner), weakref.ref(loop)]
    del owner, loop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        for _ in range(3):
            gc.collect()
    assert [r() for r in refs] == [None, None]


def test_handles_reused_after_collection(loop: Any) -> None:
    """Handles kept by the user after they ran, then dropped, and handles
    revived from the loop's reuse list behave as new ones."""
    import gc

    out: list[int] = []
    kept = [loop.call_soon(out.append, i) for i in range(100)]
    timers = [loop.call_later(3600, out.append, -1) for _ in range(100)]
    loop.call_soon(loop.stop)
    loop.run_forever()
    for t in timers:
        t.cancel()
    assert all(gc.is_tracked(h) for h in kept + timers)
    del kept, timers
    gc.collect()
    again = [loop.call_soon(out.append, i) for i in range(100, 200)]
    later = loop.call_later(0, out.append, 200)
    assert not any(h.cancelled() for h in again) and not later.cancelled()
    loop.call_soon(loop.stop)
    loop.run_forever()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == list(range(201))


_CYCLE_VAR: contextvars.ContextVar[Any] = contextvars.ContextVar("cycle")


def test_cycle_through_scheduled_context_is_collected(
        loop_factory: Any) -> None:
    """The context copied for a scheduled callback holds a value that refers
    back to the loop; dropping the unclosed loop leaves garbage the
    collector frees."""
    import gc
    import warnings
    import weakref

    class Holder:
        pass

    def schedule() -> list[Any]:
        loop = loop_factory()
        holder = Holder()
        holder.loop = loop  # type: ignore[attr-defined]
        _CYCLE_VAR.set(holder)
        loop.call_soon(lambda: None)
        loop.call_later(3600, lambda: None)
        return [weakref.ref(holder), weakref.ref(loop)]

    refs = contextvars.copy_context().run(schedule)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        for _ in range(3):
            gc.collect()
    assert [r() for r in refs] == [None, None]


def test_scheduled_handle_context_is_usable(loop: Any) -> None:
    """The context of a scheduled handle, asked for before it runs, is an
    ordinary tracked Context that sees the values of scheduling time."""
    import gc

    var: contextvars.ContextVar[str] = contextvars.ContextVar("v")
    seen: list[str] = []

    def cb() -> None:
        seen.append(var.get())
        var.set("changed")

    def schedule() -> Any:
        var.set("scheduled")
        return loop.call_soon(cb)

    h = contextvars.copy_context().run(schedule)
    ctx = h._context
    assert isinstance(ctx, contextvars.Context)
    assert gc.is_tracked(ctx)
    assert ctx[var] == "scheduled"
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["scheduled"]
    assert ctx[var] == "changed"  # the callback ran in that very context
    assert gc.is_tracked(h)


def test_gc_keeps_what_a_held_handle_reaches(loop_factory: Any) -> None:
    """The program holds a scheduled handle; the loop, the callback and its
    arguments are reachable only through it. A collection must not treat
    them as garbage (no finalizer, no cleared weakref, loop still open)."""
    import gc
    import weakref

    class Payload:
        pass

    def gen() -> Any:
        yield 1
        yield 2

    class Holder:
        pass

    hold = Holder()
    cleared: list[str] = []

    def make() -> None:
        lp = loop_factory()
        arg = Payload()
        hold.ref = weakref.ref(  # type: ignore[attr-defined]
            arg, lambda r: cleared.append("weakref cleared"))
        hold.h1 = lp.call_later(3600, print, arg)  # type: ignore
        g = gen()
        next(g)
        hold.h2 = lp.call_later(3600, g.send, None)  # type: ignore
        hold.h3 = lp.call_soon(g.send, None)  # type: ignore

    make()
    gc.collect()
    assert cleared == []
    assert hold.ref() is not None  # type: ignore[attr-defined]
    lp = hold.h1._loop  # type: ignore[attr-defined]
    assert not lp.is_closed()
    assert not hold.h1.cancelled()  # type: ignore[attr-defined]
    assert hold.h2._callback(None) == 2  # the generator is alive  # type: ignore
    for h in (hold.h1, hold.h2, hold.h3):  # type: ignore[attr-defined]
        h.cancel()
    lp.close()
