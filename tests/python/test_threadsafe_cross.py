"""call_soon_threadsafe from one event loop's thread to another's.

Two loops, each run_forever() on its own thread, bounce a ball with
call_soon_threadsafe: every hop is made from a callback of the sending
loop, so between two ringloop io_uring loops (msg_ring on) the wake is an
IORING_OP_MSG_RING, else an eventfd write; on asyncio it is the self-pipe.
A lost wake would stall the ball: the test waits for it with a timeout that
fails (it never asserts on speed).
"""

from __future__ import annotations

import asyncio
import os
import platform
import threading
from typing import Callable

import pytest

import ringloop
from conftest import _URING_SKIP, make_factory

HOPS = 4000
TIMEOUT = 60.0


def _pingpong(factories: list[Callable[[], asyncio.AbstractEventLoop]],
              hops: int, balls: int = 1) -> list[int]:
    """Bounce `balls` balls around the loops (in a ring) for `hops` hops in
    all; returns how many hops each loop ran. Checks that ring messages
    went exactly between ringloop io_uring loops with msg_ring on."""
    loops = [f() for f in factories]
    counts = [0] * len(loops)
    total = [0]
    lock = threading.Lock()
    done = threading.Event()
    started = [threading.Event() for _ in loops]
    errors: list[BaseException] = []

    def hop(i: int, ball: int) -> None:
        try:
            # a callback runs on its own loop's thread, inside its run
            assert asyncio.get_running_loop() is loops[i]
            counts[i] += 1
            with lock:
                total[0] += 1
                finished = total[0] >= hops
            if finished:
                done.set()
                return
            j = (i + 1) % len(loops)
            loops[j].call_soon_threadsafe(hop, j, ball)
        except BaseException as exc:  # reported by the test body
            errors.append(exc)
            done.set()

    def run(i: int) -> None:
        asyncio.set_event_loop(loops[i])
        loops[i].call_soon(started[i].set)
        loops[i].run_forever()

    threads = [threading.Thread(target=run, args=(i,), daemon=True)
               for i in range(len(loops))]
    for t in threads:
        t.start()
    try:
        for ev in started:
            assert ev.wait(TIMEOUT), "a loop did not start"
        for b in range(balls):
            loops[b % len(loops)].call_soon_threadsafe(hop, b % len(loops), b)
        finished = done.wait(TIMEOUT)
    finally:
        for lp in loops:
            lp.call_soon_threadsafe(lp.stop)
        for t in threads:
            t.join(TIMEOUT)
    alive = [t for t in threads if t.is_alive()]
    sent = [_msg_ring_sent(lp) for lp in loops] if not alive else []
    if not alive:
        for lp in loops:
            lp.close()
    if errors:
        raise errors[0]
    assert not alive, "a loop did not stop: its wake was lost"
    assert finished, f"the ball stalled after {total[0]} of {hops} hops " \
                     "(a wake was lost)"
    assert total[0] >= hops
    capable = [_msg_capable(lp) for lp in loops]
    for i, n in enumerate(sent):
        if not capable[i] or sum(capable) < 2:
            assert n == 0, f"loop {i} sent {n} ring messages"
    if all(capable):
        # the targets sleep between hops often enough that some wake is due
        assert sum(sent) > 0, "no ring message between io_uring loops"
    return counts


def _msg_capable(loop: asyncio.AbstractEventLoop) -> bool:
    return "msg_ring" in getattr(loop, "backend_features", ())


def _msg_ring_sent(loop: asyncio.AbstractEventLoop) -> int:
    stats = getattr(loop, "stats", None)
    return int(stats().get("msg_ring_sent", 0)) if stats else 0


def test_pingpong(kind: str) -> None:
    factory = make_factory(kind)
    counts = _pingpong([factory, factory], HOPS)
    # the ball alternates: each loop ran half of the hops (+-1)
    assert abs(counts[0] - counts[1]) <= 1


def test_many_balls(kind: str) -> None:
    factory = make_factory(kind)
    counts = _pingpong([factory] * 3, HOPS * 2, balls=6)
    assert all(c > 0 for c in counts)


@pytest.mark.parametrize("kinds", [("epoll", "uring"), ("uring", "epoll"),
                                   ("asyncio", "uring")])
def test_mixed_loops(kinds: tuple[str, str]) -> None:
    """Between unlike loops every wake takes the target's ordinary path."""
    if "uring" in kinds and _URING_SKIP:
        pytest.skip(_URING_SKIP)
    counts = _pingpong([make_factory(k) for k in kinds], HOPS)
    assert abs(counts[0] - counts[1]) <= 1


def _kernel_at_least(major: int, minor: int) -> bool:
    try:
        parts = platform.release().split(".")
        return (int(parts[0]), int(parts[1].split("-")[0])) >= (major, minor)
    except (ValueError, IndexError):
        return False


def test_msg_ring_reported(backend: str) -> None:
    """msg_ring is a feature word of io_uring loops on Linux 6.3+ unless
    RINGLOOP_DISABLE names it, never of epoll loops."""
    loop = ringloop.new_event_loop(backend)
    try:
        features = loop.backend_features  # type: ignore[attr-defined]
    finally:
        loop.close()
    words = os.environ.get("RINGLOOP_DISABLE", "").split(",")
    off = "msg_ring" in words or "all" in words
    if backend == "epoll" or off:
        assert "msg_ring" not in features
    elif _kernel_at_least(6, 3):
        assert "msg_ring" in features
