"""Cross-loop call_soon_threadsafe round trips in Python: two event loops,
each run_forever() on its own thread, bounce one callback N times. Prints
the process CPU time and the wall time per round trip, and (ringloop) how
many wakes went as ring messages.

    python bench/cross_loop.py [--loop uring|epoll|asyncio] [-n ROUND_TRIPS]

Compare msg_ring with the eventfd path by running it twice, once with
RINGLOOP_DISABLE=msg_ring (docs/multithreading.md has the numbers).
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time

import ringloop


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--loop", default="uring",
                    choices=["uring", "epoll", "asyncio"])
    ap.add_argument("-n", type=int, default=50000, help="round trips")
    args = ap.parse_args()

    def new() -> asyncio.AbstractEventLoop:
        if args.loop == "asyncio":
            return asyncio.SelectorEventLoop()
        return ringloop.new_event_loop(args.loop)

    a, b = new(), new()
    hops = 2 * args.n
    left = [hops]
    done = threading.Event()

    def hop(here: asyncio.AbstractEventLoop,
            there: asyncio.AbstractEventLoop) -> None:
        left[0] -= 1
        if left[0] <= 0:
            done.set()
            return
        there.call_soon_threadsafe(hop, there, here)

    threads = [threading.Thread(target=lp.run_forever) for lp in (a, b)]
    for t in threads:
        t.start()
    time.sleep(0.1)  # both loops asleep
    cpu0, wall0 = time.process_time(), time.perf_counter()
    a.call_soon_threadsafe(hop, a, b)
    if not done.wait(600):
        raise SystemExit("stalled: a wake was lost")
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    sent = 0
    for lp in (a, b):
        stats = getattr(lp, "stats", None)
        if stats:
            sent += int(stats().get("msg_ring_sent", 0))
        lp.call_soon_threadsafe(lp.stop)
    for t in threads:
        t.join()
    for lp in (a, b):
        lp.close()
    print(f"{args.loop}: {args.n} round trips: "
          f"{cpu / args.n * 1e6:.2f} us CPU and "
          f"{wall / args.n * 1e6:.2f} us wall per round trip, "
          f"{sent / hops:.2f} ring messages per hop")


if __name__ == "__main__":
    main()
