"""Programs written the way asyncio tutorials teach them, on every loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import os
import threading
from typing import Any, AsyncIterator

import pytest


async def _double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


def _square(x: int) -> int:  # module level: picklable for process pools
    return x * x


def test_create_task_and_gather(run: Any) -> None:
    async def main() -> list[int]:
        tasks = [asyncio.create_task(_double(i)) for i in range(10)]
        return await asyncio.gather(*tasks)

    assert run(main()) == [2 * i for i in range(10)]


def test_ensure_future_and_gather_exceptions(run: Any) -> None:
    async def boom() -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    async def main() -> list[Any]:
        fut = asyncio.ensure_future(_double(4))
        return await asyncio.gather(fut, boom(), return_exceptions=True)

    res = run(main())
    assert res[0] == 8
    assert isinstance(res[1], ValueError)


def test_sleep_ordering(run: Any) -> None:
    order: list[int] = []

    async def worker(delay: float, tag: int) -> None:
        await asyncio.sleep(delay)
        order.append(tag)

    async def main() -> None:
        await asyncio.gather(worker(0.03, 3), worker(0.01, 1),
                             worker(0.02, 2))

    run(main())
    assert order == [1, 2, 3]


def test_wait_with_timeout(run: Any) -> None:
    async def main() -> tuple[int, int]:
        never = asyncio.get_running_loop().create_future()
        fast = asyncio.ensure_future(_double(1))
        done, pending = await asyncio.wait({fast, never}, timeout=0.05)
        never.cancel()
        return len(done), len(pending)

    assert run(main()) == (1, 1)


def test_wait_first_completed(run: Any) -> None:
    async def main() -> int:
        slow = asyncio.ensure_future(asyncio.sleep(10))
        fast = asyncio.ensure_future(_double(3))
        done, pending = await asyncio.wait(
            {slow, fast}, return_when=asyncio.FIRST_COMPLETED)
        for p in pending:
            p.cancel()
        return done.pop().result()

    assert run(main()) == 6


def test_wait_for_timeout(run: Any) -> None:
    async def main() -> str:
        try:
            await asyncio.wait_for(asyncio.sleep(10), timeout=0.01)
        except asyncio.TimeoutError:
            return "timeout"
        return "no timeout"

    assert run(main()) == "timeout"


def test_wait_for_result(run: Any) -> None:
    async def main() -> int:
        return await asyncio.wait_for(_double(5), timeout=10)

    assert run(main()) == 10


def test_cancellation(run: Any) -> None:
    events: list[str] = []

    async def worker() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise
        finally:
            events.append("finally")

    async def main() -> bool:
        task = asyncio.create_task(worker())
        await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return task.cancelled()

    assert run(main()) is True
    assert events == ["cancelled", "finally"]


def test_shield(run: Any) -> None:
    async def main() -> int:
        inner = asyncio.ensure_future(_double(21))
        outer = asyncio.shield(inner)
        outer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await outer
        return await inner

    assert run(main()) == 42


def test_future_resolved_by_callback(run: Any) -> None:
    async def main() -> str:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        loop.call_later(0.01, fut.set_result, "done")
        return await fut

    assert run(main()) == "done"


def test_future_resolved_from_thread(run: Any) -> None:
    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        futs = [loop.create_future() for _ in range(20)]

        def worker() -> None:
            for i, f in enumerate(futs):
                loop.call_soon_threadsafe(f.set_result, i)

        t = threading.Thread(target=worker)
        t.start()
        res = await asyncio.gather(*futs)
        t.join()
        return res

    assert run(main()) == list(range(20))


def test_run_coroutine_threadsafe(run: Any) -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        result: list[int] = []

        def worker() -> None:
            cf = asyncio.run_coroutine_threadsafe(_double(8), loop)
            result.append(cf.result(timeout=30))

        await asyncio.to_thread(worker)
        return result[0]

    assert run(main()) == 16


def test_run_in_executor_threads(run: Any) -> None:
    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        return await asyncio.gather(
            *[loop.run_in_executor(None, _square, i) for i in range(8)])

    assert run(main()) == [i * i for i in range(8)]


def test_run_in_executor_custom_thread_pool(run: Any) -> None:
    async def main() -> str:
        loop = asyncio.get_running_loop()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            return await loop.run_in_executor(
                pool, lambda: threading.current_thread().name)

    assert run(main()) != threading.current_thread().name


def test_run_in_executor_process_pool(run: Any) -> None:
    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        # forkserver: no fork() of this multi-threaded test process
        ctx = multiprocessing.get_context("forkserver")
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as pool:
            return await asyncio.gather(
                *[loop.run_in_executor(pool, _square, i) for i in range(4)])

    assert run(main()) == [0, 1, 4, 9]


def test_wrap_future(run: Any) -> None:
    async def main() -> int:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            cf = pool.submit(_square, 7)
            return await asyncio.wrap_future(cf)

    assert run(main()) == 49


def test_to_thread(run: Any) -> None:
    async def main() -> tuple[int, bool]:
        main_thread = threading.get_ident()
        ident = await asyncio.to_thread(threading.get_ident)
        return await asyncio.to_thread(_square, 6), ident != main_thread

    assert run(main()) == (36, True)


def test_default_executor_shutdown(run: Any) -> None:
    async def main() -> str:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, _square, 2)
        await loop.shutdown_default_executor()
        try:
            await loop.run_in_executor(None, _square, 2)
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    assert run(main()) == "Executor shutdown has been called"


def test_set_default_executor(run: Any) -> None:
    async def main() -> str:
        loop = asyncio.get_running_loop()
        pool = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="mine")
        loop.set_default_executor(pool)
        return await loop.run_in_executor(
            None, lambda: threading.current_thread().name)

    assert run(main()).startswith("mine")


class Ticker:
    def __init__(self, n: int) -> None:
        self.n = n
        self.i = 0

    def __aiter__(self) -> "Ticker":
        return self

    async def __anext__(self) -> int:
        if self.i >= self.n:
            raise StopAsyncIteration
        await asyncio.sleep(0)
        self.i += 1
        return self.i


def test_async_iterator_and_comprehension(run: Any) -> None:
    async def main() -> tuple[list[int], list[int]]:
        a = [i async for i in Ticker(5)]
        b = [await _double(i) for i in range(3)]
        return a, b

    assert run(main()) == ([1, 2, 3, 4, 5], [0, 2, 4])


def test_async_context_manager(run: Any) -> None:
    log: list[str] = []

    @contextlib.asynccontextmanager
    async def resource() -> AsyncIterator[str]:
        log.append("open")
        await asyncio.sleep(0)
        try:
            yield "res"
        finally:
            await asyncio.sleep(0)
            log.append("close")

    async def main() -> str:
        async with resource() as r:
            log.append(r)
        return "ok"

    assert run(main()) == "ok"
    assert log == ["open", "res", "close"]


def test_async_generator(run: Any) -> None:
    async def gen(n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    async def main() -> list[int]:
        return [x async for x in gen(4) if x % 2 == 0]

    assert run(main()) == [0, 2]


def test_async_generator_shutdown(run: Any) -> None:
    state: list[str] = []

    async def gen() -> AsyncIterator[int]:
        try:
            for i in range(100):
                yield i
                await asyncio.sleep(0)
        finally:
            await asyncio.sleep(0)
            state.append("finalized")

    holder: list[Any] = []

    async def main() -> int:
        g = gen()
        holder.append(g)  # keep it alive: only shutdown_asyncgens closes it
        return await g.__anext__()

    assert run(main()) == 0
    assert state == ["finalized"]


def test_shutdown_asyncgens_on_loop(loop: Any) -> None:
    closed: list[bool] = []

    async def gen() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    holder: list[Any] = []

    async def first() -> int:
        # the firstiter hook sees it: it is iterated inside the loop
        holder.append(gen())
        return await holder[0].__anext__()

    assert loop.run_until_complete(first()) == 1
    assert closed == []
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert closed == [True]


def test_task_names_and_current_task(run: Any) -> None:
    async def main() -> tuple[str, bool]:
        async def child() -> bool:
            return asyncio.current_task() is not None

        t = asyncio.create_task(child(), name="child-task")
        ok = await t
        return t.get_name(), ok

    assert run(main()) == ("child-task", True)


def test_all_tasks_cancelled_at_exit(run: Any) -> None:
    cancelled: list[bool] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main() -> None:
        asyncio.create_task(forever())
        await asyncio.sleep(0)

    run(main())
    assert cancelled == [True]


def test_queue_producer_consumer(run: Any) -> None:
    async def main() -> int:
        q: asyncio.Queue[int | None] = asyncio.Queue(maxsize=3)
        total = 0

        async def producer() -> None:
            for i in range(50):
                await q.put(i)
            await q.put(None)

        async def consumer() -> None:
            nonlocal total
            while (item := await q.get()) is not None:
                total += item

        await asyncio.gather(producer(), consumer())
        return total

    assert run(main()) == sum(range(50))


def test_locks_events_semaphores(run: Any) -> None:
    async def main() -> list[int]:
        ev = asyncio.Event()
        sem = asyncio.Semaphore(2)
        lock = asyncio.Lock()
        out: list[int] = []

        async def w(i: int) -> None:
            await ev.wait()
            async with sem:
                async with lock:
                    out.append(i)
                await asyncio.sleep(0)

        tasks = [asyncio.create_task(w(i)) for i in range(5)]
        await asyncio.sleep(0)
        ev.set()
        await asyncio.gather(*tasks)
        return sorted(out)

    assert run(main()) == [0, 1, 2, 3, 4]


def test_subprocess_free_pipe_roundtrip(run: Any) -> None:
    # os.pipe + add_reader through a StreamReader-free path
    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        os.set_blocking(r, False)
        fut = loop.create_future()

        def readable() -> None:
            data = os.read(r, 100)
            loop.remove_reader(r)
            fut.set_result(data)

        loop.add_reader(r, readable)
        loop.call_soon(os.write, w, b"ping")
        try:
            return await fut
        finally:
            os.close(r)
            os.close(w)

    assert run(main()) == b"ping"


@pytest.mark.skipif(not hasattr(asyncio, "timeout"), reason="3.11+")
def test_asyncio_timeout_and_taskgroup(run: Any) -> None:
    async def main() -> tuple[str, list[int]]:
        try:
            async with asyncio.timeout(0.01):
                await asyncio.sleep(10)
            res = "no timeout"
        except TimeoutError:
            res = "timeout"
        async with asyncio.TaskGroup() as tg:
            ts = [tg.create_task(_double(i)) for i in range(3)]
        return res, [t.result() for t in ts]

    assert run(main()) == ("timeout", [0, 2, 4])
