"""BufferedProtocol reading large messages through small buffers.

ringloop reads straight into get_buffer()'s buffer and, when a read
filled it, reads again at once (more may be waiting) instead of waiting for
the next completion. To the protocol this must look as asyncio: every
byte once and in order, buffer_updated(n) with n within the buffer it got,
get_buffer() called before each read, pause_reading() from inside
buffer_updated() honoured at once, and EOF after the data."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class Collector(asyncio.BufferedProtocol):
    def __init__(self, sizes: list[int], pause_after: int | None = None
                 ) -> None:
        self.sizes = sizes
        self.calls = 0
        self.got = bytearray()
        self.buf = bytearray()
        self.bad: list[str] = []
        self.pause_after = pause_after
        self.paused_at: int | None = None
        self.updates_while_paused = 0
        self.is_paused = False
        self.transport: Any = None
        self.eof = asyncio.get_running_loop().create_future()
        self.paused = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> bytearray:
        if self.is_paused:
            self.bad.append("get_buffer while paused")
        self.buf = bytearray(self.sizes[self.calls % len(self.sizes)])
        self.calls += 1
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        if self.is_paused:
            self.updates_while_paused += 1
        if not 0 < nbytes <= len(self.buf):
            self.bad.append(f"nbytes {nbytes} for a {len(self.buf)} buffer")
        self.got += self.buf[:nbytes]
        if (self.pause_after is not None and self.paused_at is None and
                len(self.got) >= self.pause_after):
            self.transport.pause_reading()
            self.is_paused = True
            self.paused_at = len(self.got)
            if not self.paused.done():
                self.paused.set_result(None)

    def resume(self) -> None:
        self.is_paused = False
        self.transport.resume_reading()

    def eof_received(self) -> None:
        if not self.eof.done():
            self.eof.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.eof.done():
            self.eof.set_result(None)


async def _pair(proto: Collector) -> tuple[Any, socket.socket]:
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    transport, _ = await loop.connect_accepted_socket(lambda: proto, a)
    return transport, b


async def _send_all(b: socket.socket, data: bytes) -> None:
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(b, data)
    b.shutdown(socket.SHUT_WR)


@pytest.mark.parametrize("sizes", [[100], [4096], [65536],
                                   [1, 7, 4096, 65536, 33]])
def test_small_buffers_large_message(run: Any, sizes: list[int]) -> None:
    async def main() -> None:
        proto = Collector(sizes)
        transport, b = await _pair(proto)
        try:
            await _send_all(b, PAYLOAD)
            await asyncio.wait_for(proto.eof, 30)
            assert proto.bad == []
            assert bytes(proto.got) == PAYLOAD
        finally:
            transport.close()
            b.close()

    run(main())


def test_pause_inside_buffer_updated(run: Any) -> None:
    """pause_reading() from buffer_updated() while more data is ready: no
    get_buffer()/buffer_updated() until resume_reading(); then the rest."""
    async def main() -> None:
        proto = Collector([1000], pause_after=5000)
        transport, b = await _pair(proto)
        try:
            sender = asyncio.ensure_future(_send_all(b, PAYLOAD))
            await asyncio.wait_for(proto.paused, 30)
            for _ in range(5):
                await asyncio.sleep(0.01)
            assert proto.updates_while_paused == 0
            assert len(proto.got) == proto.paused_at
            proto.resume()
            await asyncio.wait_for(proto.eof, 30)
            await sender
            assert proto.bad == []
            assert bytes(proto.got) == PAYLOAD
        finally:
            transport.close()
            b.close()

    run(main())


def test_close_inside_buffer_updated(run: Any) -> None:
    """close() from buffer_updated() while more data is ready: nothing more
    is delivered."""
    class Closer(Collector):
        def buffer_updated(self, nbytes: int) -> None:
            super().buffer_updated(nbytes)
            if len(self.got) >= 3000:
                self.transport.close()

    async def main() -> None:
        proto = Closer([1000])
        transport, b = await _pair(proto)
        try:
            assert b.send(PAYLOAD[:20000]) == 20000
            await asyncio.wait_for(proto.eof, 30)
            assert bytes(proto.got) == PAYLOAD[:3000]
        finally:
            transport.close()
            b.close()

    run(main())
