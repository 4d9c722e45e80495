"""Large messages, then small ones, then large again, on one connection.

On io_uring ringloop reads large data by readiness (a read of 32 KiB or
more moves a Protocol's multishot recv off the buffer ring to POLL_ADD +
recv(2), a BufferedProtocol's reads to RL_F_AT_READY) and small data from
the ring again after a run of short reads. To the protocol and the peer
none of that may show: every byte once and in order, then EOF, as asyncio
delivers them. Writes of buffers other than bytes leave at once (they are
not corked): their order among corked bytes must hold too.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from test_write_cork import _serve

LARGE = 64 * 1024
SMALL = 100


def _pattern(n: int, seed: int) -> bytes:
    return bytes((seed + i * 7) & 0xFF for i in range(256)) * (n // 256) + \
        bytes((seed + i * 7) & 0xFF for i in range(n % 256))


# Each phase: (size of one message, messages); the peer waits for each echo
# before it sends the next, so that reads see one message (or a piece) each.
PHASES = [(LARGE, 4), (SMALL, 8), (LARGE, 3), (SMALL, 8), (LARGE, 2)]


class Echo(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class BufferedEcho(asyncio.BufferedProtocol):
    def __init__(self) -> None:
        self.buf = bytearray(256 * 1024)

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        # A bytearray (a copy: asyncio 3.12+ would queue a view as it is):
        # 16 KiB or more leave at once, uncorked.
        self.transport.write(self.buf[:nbytes])


async def _exchange(port: int) -> list[bool]:
    """Send each phase's messages one at a time and check each echo."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    ok: list[bool] = []
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        seed = 0
        for size, count in PHASES:
            for _ in range(count):
                seed += 1
                msg = _pattern(size, seed)
                await loop.sock_sendall(sock, msg)
                got = bytearray()
                while len(got) < size:
                    chunk = await asyncio.wait_for(
                        loop.sock_recv(sock, 1 << 20), 10)
                    if not chunk:
                        break
                    got += chunk
                ok.append(bytes(got) == msg)
        sock.shutdown(socket.SHUT_WR)
        rest = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 10)
        ok.append(rest == b"")
    finally:
        sock.close()
    return ok


async def _streams_echo(reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1 << 20):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.mark.parametrize("style", ["protocol", "buffered", "streams"])
def test_large_small_large(run: Any, kind: str, style: str) -> None:
    async def main() -> tuple[list[bool], dict[str, Any], frozenset[str]]:
        loop = asyncio.get_running_loop()
        if style == "streams":
            server = await asyncio.start_server(_streams_echo, "127.0.0.1", 0)
        else:
            factory = Echo if style == "protocol" else BufferedEcho
            server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            ok = await _exchange(port)
        finally:
            server.close()
            await server.wait_closed()
        stats = loop.stats() if kind != "asyncio" else {}
        feats = getattr(loop, "backend_features", frozenset())
        return ok, stats, feats

    ok, stats, feats = run(main())
    assert ok == [True] * (sum(c for _, c in PHASES) + 1)
    if kind == "uring" and style != "buffered" and "bufring" in feats:
        # The Protocol's multishot recv went to readiness and came back.
        assert stats["recv_to_readiness"] >= 1
        assert stats["recv_to_ring"] >= 1


def test_uncorked_write_keeps_order(run: Any) -> None:
    """Inside data_received: bytes (corked), then a 20 KiB bytearray (sent
    at once, after what was corked) changed right after, a small
    memoryview (copied and corked), then bytes again."""
    big = _pattern(20 * 1024, 4)

    class Mixed(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(b"one ")
            buf = bytearray(big)
            self.transport.write(buf)
            buf[:] = b"X" * len(buf)
            self.transport.write(memoryview(bytearray(b" three ")))
            self.transport.write(b"four")
            self.transport.close()

    assert run(_serve(Mixed, b"go")) == b"one " + big + b" three four"


def test_uncorked_write_after_partial_send(run: Any) -> None:
    """Corked bytes the socket does not take at once, then a large
    bytearray and more bytes: the peer, reading only later, gets all of it
    in order (the bytearray is queued behind what is left)."""
    head = _pattern(1 << 20, 5)
    middle = bytearray(_pattern(LARGE, 6))
    tail = b"tail"

    class Big(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

        def data_received(self, data: bytes) -> None:
            self.transport.write(head)
            self.transport.write(middle)
            self.transport.write(tail)
            self.transport.close()

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Big, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
            await loop.sock_sendall(sock, b"go")
            await asyncio.sleep(0.05)  # the server fills the socket first
            got = bytearray()
            while chunk := await asyncio.wait_for(
                    loop.sock_recv(sock, 1 << 16), 10):
                got += chunk
            return bytes(got)
        finally:
            sock.close()
            server.close()
            await server.wait_closed()

    assert run(main()) == head + bytes(middle) + tail
