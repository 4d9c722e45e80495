"""loop.stats(): the counters against workloads with a known count, on
ringloop-epoll and ringloop-uring. asyncio's loop has no stats() (checked
below: the API is absent there)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import pytest

import ringloop

COMMON = {
    "backend", "iterations", "busy_seconds", "wait_seconds", "utilization",
    "callbacks", "completions", "ops_submitted", "threadsafe_calls",
    "timers_started", "timers_fired", "timers_armed", "bytes_received",
    "bytes_sent", "pending", "inflight", "syscalls", "syscalls_total",
    "slow_callbacks", "slowest_callback", "slowest_callback_seconds",
}
URING_ONLY = {
    "sqes_submitted", "cqes_reaped", "cq_overflows", "cq_dropped",
    "recv_enobufs", "multishot_rearms",
}
OPCODES = {
    "nop", "accept", "connect", "recv", "send", "recvmsg", "sendmsg", "read",
    "write", "close", "shutdown", "poll",
}


@pytest.fixture
def rl(backend: str) -> Any:
    loop = ringloop.new_event_loop(backend)
    yield loop
    if not loop.is_closed():
        loop.close()


def test_absent_on_asyncio() -> None:
    loop = asyncio.SelectorEventLoop()
    try:
        assert not hasattr(loop, "stats")
    finally:
        loop.close()


def test_keys(rl: Any, backend: str) -> None:
    st = rl.stats()
    want = COMMON | (URING_ONLY if backend == "uring" else set())
    assert set(st) == want
    assert st["backend"] == backend
    assert set(st["inflight"]) == OPCODES
    sys_keys = {"recv", "send", "other"} | (
        {"io_uring_enter"} if backend == "uring"
        else {"epoll_wait", "epoll_ctl"})
    assert set(st["syscalls"]) == sys_keys
    assert st["syscalls_total"] == sum(st["syscalls"].values())
    assert st["slow_callbacks"] == 0
    assert st["slowest_callback"] is None
    with pytest.raises(TypeError):
        rl.stats(True)  # reset is keyword-only


def test_timers(rl: Any) -> None:
    n = 7
    fired: list[int] = []

    async def main() -> dict[str, Any]:
        rl.stats(reset=True)
        for i in range(n):
            rl.call_later(0.001 * (i + 1), fired.append, i)
        await asyncio.sleep(0.05)  # one more timer
        return rl.stats()

    st = rl.run_until_complete(main())
    assert fired == list(range(n))
    assert st["timers_started"] == n + 1
    assert st["timers_fired"] == n + 1
    assert st["timers_armed"] == 0
    assert st["callbacks"] >= n + 1
    # the loop slept most of those 50 ms
    assert st["wait_seconds"] >= 0.02
    assert 0 <= st["utilization"] < 0.9
    assert st["iterations"] >= 2


class Sink(asyncio.Protocol):
    def __init__(self) -> None:
        self.got = 0
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got += len(data)


def test_sends_and_receives(rl: Any, backend: str) -> None:
    n, size = 20, 100
    a, b = socket.socketpair()
    b.setblocking(True)

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        tr, proto = await rl.connect_accepted_socket(Sink, a)
        await asyncio.sleep(0.01)
        rl.stats(reset=True)
        for _ in range(n):
            tr.write(b"x" * size)
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        sent = rl.stats(reset=True)
        got = 0
        while got < n * size:
            got += len(await rl.run_in_executor(None, b.recv, 65536))
        b.sendall(b"y" * (n * size))
        while proto.got < n * size:
            await asyncio.sleep(0.001)
        recv = rl.stats()
        tr.close()
        await asyncio.sleep(0.01)
        return sent, recv

    try:
        sent, recv = rl.run_until_complete(main())
    finally:
        b.close()
    # every write is counted, whether sent at once or by a send op
    assert sent["bytes_sent"] == n * size
    assert sent["bytes_received"] == 0
    assert sent["syscalls"]["send"] + sent["inflight"]["sendmsg"] >= 1
    assert recv["bytes_received"] == n * size
    assert recv["completions"] >= 1
    assert recv["syscalls_total"] >= 1
    if backend == "uring":
        assert recv["cqes_reaped"] >= 1
        assert recv["syscalls"]["io_uring_enter"] >= 1
    else:
        assert recv["syscalls"]["recv"] >= 1
        assert recv["syscalls"]["epoll_wait"] >= 1


def test_threadsafe_calls(rl: Any) -> None:
    n = 25
    done: list[int] = []

    async def main() -> dict[str, Any]:
        rl.stats(reset=True)

        def worker() -> None:
            for i in range(n):
                rl.call_soon_threadsafe(done.append, i)

        t = threading.Thread(target=worker)
        t.start()
        while len(done) < n:
            await asyncio.sleep(0.001)
        t.join()
        return rl.stats()

    st = rl.run_until_complete(main())
    assert st["threadsafe_calls"] == n


def test_in_flight_then_closed(rl: Any) -> None:
    """A connection reading when the loop stops: its read is in flight; the
    loop closed mid-flight has no stats any more."""
    a, b = socket.socketpair()

    async def main() -> Any:
        tr, _ = await rl.connect_accepted_socket(Sink, a)
        await asyncio.sleep(0.01)
        return tr

    tr = rl.run_until_complete(main())
    st = rl.stats()
    assert st["pending"] >= 1
    assert sum(st["inflight"].values()) == st["pending"]
    assert st["inflight"]["recv"] + st["inflight"]["poll"] >= 1
    tr.abort()
    rl.run_until_complete(asyncio.sleep(0.01))
    st = rl.stats()
    assert st["pending"] == 0
    assert sum(st["inflight"].values()) == 0
    # closed with a reader in flight
    a2, b2 = socket.socketpair()
    rl.run_until_complete(rl.connect_accepted_socket(Sink, a2))
    assert rl.stats()["pending"] >= 1
    rl.close()
    with pytest.raises(RuntimeError, match="closed"):
        rl.stats()
    for s in (b, b2):
        s.close()


def test_slow_callbacks_debug_only(rl: Any) -> None:
    def slow() -> None:
        time.sleep(0.03)

    async def run_two() -> None:
        rl.call_soon(slow)
        rl.call_soon(time.sleep, 0.015)
        await asyncio.sleep(0.05)

    rl.run_until_complete(run_two())
    assert rl.stats()["slow_callbacks"] == 0  # not counted outside debug

    rl.set_debug(True)
    rl.slow_callback_duration = 0.01
    rl.run_until_complete(run_two())
    st = rl.stats(reset=True)
    assert st["slow_callbacks"] == 2
    assert st["slowest_callback_seconds"] >= 0.03
    assert "slow" in st["slowest_callback"]
    st = rl.stats()
    assert st["slow_callbacks"] == 0
    assert st["slowest_callback"] is None


def test_reset(rl: Any) -> None:
    rl.run_until_complete(asyncio.sleep(0.01))
    before = rl.stats(reset=True)
    assert before["iterations"] >= 1
    after = rl.stats()
    assert after["iterations"] == 0
    assert after["timers_started"] == 0
    assert after["wait_seconds"] == 0.0
    assert after["syscalls_total"] == 0
