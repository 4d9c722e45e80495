"""transport.write() of mutable buffers: what was written is what arrives,
whatever the caller does to its bytearray or memoryview after write()
returns, also when the write is queued behind a full socket and leaves as a
zero-copy send (ringloop-uring with send_zc switched on for every size)."""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Any

import pytest

SIZE = 1024 * 1024  # far more than the socket buffers take at once


def pattern(seed: int, n: int) -> bytes:
    block = bytes((i * 131 + seed * 17 + (i >> 8)) & 0xFF for i in range(4096))
    return (block * (n // len(block) + 1))[:n]


class Sink(asyncio.Protocol):
    def __init__(self, done: asyncio.Future[bytes]) -> None:
        self.done = done
        self.data = bytearray()

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> None:
        if not self.done.done():
            self.done.set_result(bytes(self.data))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(bytes(self.data))


@pytest.mark.parametrize("zc", [False, True], ids=["default", "send_zc"])
def test_mutate_after_write(run: Any, kind: str,
                            monkeypatch: pytest.MonkeyPatch,
                            zc: bool) -> None:
    if kind == "asyncio" and sys.version_info >= (3, 12):
        # asyncio 3.12 queues the caller's object itself, uncopied: what a
        # caller changes after write() is what goes out (a cleared
        # bytearray sends nothing). ringloop copies, as asyncio did before.
        pytest.skip("asyncio 3.12+ does not copy a queued bytearray")
    if zc:
        # ringloop-uring: every queued send zero-copy (asyncio and
        # ringloop-epoll ignore these)
        monkeypatch.setenv("RINGLOOP_ENABLE", "send_zc")
        monkeypatch.setenv("RINGLOOP_ZC_MIN", "1")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bytes] = loop.create_future()
        server = await loop.create_server(lambda: Sink(done), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1",
                                             port)
        sock = tr.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
        expect = [pattern(1, SIZE), pattern(2, SIZE), pattern(3, 100_000),
                  pattern(4, SIZE)]
        ba = bytearray(expect[0])
        tr.write(ba)
        ba[:] = b"\xa5" * len(ba)  # same size, new content
        backing = bytearray(expect[1])
        tr.write(memoryview(backing))
        backing[:] = b"\x5a" * len(backing)
        small = bytearray(expect[2])
        tr.write(small)
        small.clear()  # a bytearray may even shrink afterwards
        tr.writelines([bytearray(expect[3])])
        assert tr.get_write_buffer_size() > 0  # some of it was queued
        tr.write_eof()
        got = await asyncio.wait_for(done, 60)
        tr.close()
        server.close()
        await server.wait_closed()
        assert len(got) == sum(map(len, expect))
        assert got == b"".join(expect)

    run(main())
