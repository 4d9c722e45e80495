"""Many connections at once, and many one after another.

The soak holds 1000 connections open together, each echoing its own
random bytes, and checks every byte. The churn opens and closes
connections one after another (50 at a time) and checks that descriptors
and memory stay bounded. Both run on asyncio's loop, ringloop-epoll and
ringloop-uring, in a short mode; RINGLOOP_STRESS=long runs them longer.
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
from typing import Any

import pytest

from conftest import raise_nofile

LONG = os.environ.get("RINGLOOP_STRESS") == "long"
SOAK_CONNS = 1000
SOAK_BYTES = (256 << 10) if LONG else (16 << 10)
CHURN_CONNS = 100_000 if LONG else 20_000
CHURN_PARALLEL = 50
TIMEOUT = 600


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture(autouse=True)
def _enough_fds() -> Any:
    need = 4 * SOAK_CONNS + 256
    limits = raise_nofile(need)
    if limits is None:
        pytest.skip(f"RLIMIT_NOFILE's hard limit is below {need}")
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, limits)


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> None:
        self.transport.close()


def test_soak_1000_connections(run: Any) -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Echo, "127.0.0.1", 0,
                                          backlog=SOAK_CONNS)
        host, port = server.sockets[0].getsockname()[:2]
        gate = asyncio.Event()
        opened = 0

        async def client(i: int) -> int:
            nonlocal opened
            rng = random.Random(i)
            payload = rng.randbytes(SOAK_BYTES)
            reader, writer = await asyncio.open_connection(host, port)
            opened += 1
            if opened == SOAK_CONNS:
                gate.set()
            await gate.wait()  # all of them open at once
            pos = 0
            got = bytearray()
            while pos < len(payload):
                n = rng.choice((1, 100, 1000, 4096, 65536))
                writer.write(payload[pos:pos + n])
                pos += n
                await writer.drain()
                if rng.random() < 0.5:
                    got += await reader.read(65536)
            writer.write_eof()
            got += await reader.read()
            writer.close()
            await writer.wait_closed()
            assert len(got) == len(payload), (i, len(got))
            assert got == payload, i
            return len(got)

        async with server:
            sizes = await asyncio.wait_for(
                asyncio.gather(*(client(i) for i in range(SOAK_CONNS))),
                TIMEOUT)
        return sum(sizes)

    assert run(main()) == SOAK_CONNS * SOAK_BYTES


def test_churn(run: Any) -> None:
    async def main() -> tuple[int, int, int]:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Echo, "127.0.0.1", 0,
                                          backlog=1024)
        host, port = server.sockets[0].getsockname()[:2]
        todo = iter(range(CHURN_CONNS))
        rss: list[int] = []
        fds: list[int] = []

        async def worker() -> int:
            n = 0
            for i in todo:
                msg = i.to_bytes(8, "big") * 8
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(msg)
                assert await reader.readexactly(len(msg)) == msg
                writer.close()
                await writer.wait_closed()
                n += 1
                if i == 2000:
                    # after a warm-up: the allocator and free lists are full
                    rss.append(_rss())
                    fds.append(_fds())
            return n

        async with server:
            done = await asyncio.wait_for(
                asyncio.gather(*(worker() for _ in range(CHURN_PARALLEL))),
                TIMEOUT)
        # the server's side of the last connections may still be closing
        for _ in range(100):
            await asyncio.sleep(0)
        return sum(done), _rss() - rss[0], _fds() - fds[0]

    fds_before = _fds()
    count, grew, fds_grew = run(main())
    assert count == CHURN_CONNS
    # Bounded: nothing per connection is kept (16 MiB is 800 bytes for each
    # of 20k connections, far less than a socket object and a transport).
    assert grew < (16 << 20), f"RSS grew by {grew} bytes"
    assert fds_grew <= CHURN_PARALLEL
    assert _fds() <= fds_before
