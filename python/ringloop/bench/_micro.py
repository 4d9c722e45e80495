"""In-process microbenchmarks: `python -m ringloop.bench._micro LOOP`.

Each runs on a running loop of kind LOOP (see _loops.py) and counts
operations per second of wall time, from the first call to the moment the
loop has run every callback it was given:

  call_soon            a callback schedules BATCH callbacks with call_soon
                       (one argument each) and then itself again; the loop
                       runs them all
  call_later_cancel    the same with call_later(1 hour) and an immediate
                       cancel() of each handle; one op is the pair, and
                       none of the callbacks may run
  call_soon_threadsafe another thread calls call_soon_threadsafe N times as
                       fast as it can; the loop runs every callback

Prints one JSON object: {"loop": {...}, "results": {NAME: {"ops_per_s":
median, "samples": [...], "n": N}}}. A benchmark whose callbacks did not all
run (or ran when cancelled) is reported with an "error" instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
from typing import Any, Callable

from ._loops import describe, make_loop

BATCH = 1000
NAMES = ("call_soon", "call_later_cancel", "call_soon_threadsafe")


class Miscount(Exception):
    pass


def _drive(loop: asyncio.AbstractEventLoop, n: int,
           batch: Callable[[int], None]) -> float:
    """Seconds for a callback on `loop` to call batch(k) with k = BATCH at
    a time, then itself again, until n; the loop runs what batch queued."""
    done = loop.create_future()
    left = n

    def driver(_: Any = None) -> None:
        nonlocal left
        batch(min(BATCH, left))
        left -= BATCH
        loop.call_soon(driver if left > 0 else done.set_result, None)

    t0 = time.perf_counter()
    loop.call_soon(driver)
    loop.run_until_complete(done)
    return time.perf_counter() - t0


def bench_call_soon(loop: asyncio.AbstractEventLoop, n: int) -> float:
    ran = 0

    def cb(arg: int) -> None:
        nonlocal ran
        ran += 1

    def batch(k: int) -> None:
        call_soon = loop.call_soon
        for i in range(k):
            call_soon(cb, i)

    dt = _drive(loop, n, batch)
    if ran != n:
        raise Miscount(f"{ran} of {n} callbacks ran")
    return n / dt


def bench_call_later_cancel(loop: asyncio.AbstractEventLoop, n: int) -> float:
    ran = 0

    def cb(arg: int) -> None:
        nonlocal ran
        ran += 1

    def batch(k: int) -> None:
        call_later = loop.call_later
        for i in range(k):
            call_later(3600.0, cb, i).cancel()

    dt = _drive(loop, n, batch)
    if ran:
        raise Miscount(f"{ran} cancelled callbacks ran")
    return n / dt


def bench_call_soon_threadsafe(loop: asyncio.AbstractEventLoop,
                               n: int) -> float:
    done = loop.create_future()
    ran = 0

    def cb(arg: int) -> None:
        nonlocal ran
        ran += 1
        if ran == n:
            done.set_result(None)

    def producer() -> None:
        call = loop.call_soon_threadsafe
        for i in range(n):
            call(cb, i)

    thread = threading.Thread(target=producer)
    t0 = time.perf_counter()
    loop.call_soon(thread.start)
    loop.run_until_complete(done)
    dt = time.perf_counter() - t0
    thread.join()
    return n / dt


BENCHES: dict[str, Callable[[asyncio.AbstractEventLoop, int], float]] = {
    "call_soon": bench_call_soon,
    "call_later_cancel": bench_call_later_cancel,
    "call_soon_threadsafe": bench_call_soon_threadsafe,
}


def run(loop_name: str, n: int, reps: int,
        only: list[str] | None = None) -> dict[str, Any]:
    loop = make_loop(loop_name)
    asyncio.set_event_loop(loop)
    out: dict[str, Any] = {"loop": describe(loop), "results": {}}

    def on_error(loop: Any, context: dict[str, Any]) -> None:
        # A failing callback would leave run_until_complete waiting forever.
        loop.stop()
        out.setdefault("errors", []).append(str(context.get("exception") or
                                               context.get("message")))

    loop.set_exception_handler(on_error)
    try:
        for bench in only or NAMES:
            fn = BENCHES[bench]
            try:
                fn(loop, min(n, 10 * BATCH))  # warm up
                samples = [fn(loop, n) for _ in range(reps)]
            except (Miscount, RuntimeError) as exc:
                out["results"][bench] = {"error": str(exc), "n": n}
                continue
            out["results"][bench] = {
                "ops_per_s": statistics.median(samples),
                "samples": samples, "n": n}
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ringloop.bench._micro")
    ap.add_argument("loop")
    ap.add_argument("-n", type=int, default=200_000, help="ops per sample")
    ap.add_argument("--reps", type=int, default=5, help="samples per bench")
    ap.add_argument("--only", action="append", choices=NAMES)
    args = ap.parse_args(argv)
    print(json.dumps(run(args.loop, args.n, args.reps, args.only)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
