"""Writes made from callbacks and tasks (not from data_received()).

ringloop holds what one callback (a task step, a call_soon callback)
writes to a stream transport and sends it in one sendmsg when the callback
returns: a server writing a response's head and body makes one system
call. Nothing of it may be observable: the peer gets the same bytes in the
same order, get_write_buffer_size() and pause_writing() behave as asyncio's
immediate sends, and a close(), abort(), write_eof() or exception right
after the writes loses nothing. Every test runs on asyncio too."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest


async def _connected() -> tuple[Any, Any, socket.socket]:
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    proto = asyncio.Protocol()
    transport, _ = await loop.connect_accepted_socket(lambda: proto, a)
    return transport, proto, b


async def _read_all(b: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    got = bytearray()
    while True:
        try:
            chunk = await asyncio.wait_for(loop.sock_recv(b, 65536), 10)
        except ConnectionResetError:
            break
        if not chunk:
            break
        got += chunk
    return bytes(got)


PIECES = [b"HTTP/1.1 200 OK\r\n", b"content-length: 5\r\n\r\n", b"hello"]


@pytest.mark.parametrize("then", ["close", "abort", "write_eof", "raise",
                                  "nothing"])
def test_task_writes_then(run: Any, then: str) -> None:
    async def main() -> tuple[bytes, list[int], list[Any]]:
        loop = asyncio.get_running_loop()
        errors: list[Any] = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        transport, _, b = await _connected()
        sizes: list[int] = []

        def step() -> None:
            for piece in PIECES:
                transport.write(piece)
            sizes.append(transport.get_write_buffer_size())
            if then == "close":
                transport.close()
            elif then == "abort":
                transport.abort()
            elif then == "write_eof":
                transport.write_eof()
            elif then == "raise":
                raise RuntimeError("callback failed after writing")

        loop.call_soon(step)
        await asyncio.sleep(0.05)
        if then in ("raise", "nothing"):
            transport.close()
        try:
            got = await _read_all(b)
        finally:
            b.close()
        return got, sizes, errors

    got, sizes, errors = run(main())
    assert got == b"".join(PIECES)
    assert sizes == [0]
    assert len(errors) == (1 if then == "raise" else 0)


def test_writes_across_tasks_keep_order(run: Any) -> None:
    async def main() -> bytes:
        transport, _, b = await _connected()

        async def writer(i: int) -> None:
            for j in range(20):
                transport.write(b"%d.%d;" % (i, j))
                await asyncio.sleep(0)

        await asyncio.gather(*[writer(i) for i in range(5)])
        transport.close()
        try:
            return await _read_all(b)
        finally:
            b.close()

    got = run(main())
    expected = b"".join(b"%d.%d;" % (i, j) for j in range(20)
                        for i in range(5))
    assert got == expected


def test_stream_writer_drain_pauses_as_asyncio(run: Any) -> None:
    """StreamWriter.write() of more than the high-water mark to a peer that
    does not read, then drain(): paused at once (drain() waits), as with
    asyncio, and every byte arrives once the peer reads."""
    async def main() -> tuple[bool, int]:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=a)
        writer.transport.set_write_buffer_limits(high=16384)
        chunk = b"y" * 65536
        total = 32 * len(chunk)
        for _ in range(32):
            writer.write(chunk)
        paused = writer.transport.get_write_buffer_size() > 16384
        drain = asyncio.ensure_future(writer.drain())
        await asyncio.sleep(0.05)
        drain_waited = not drain.done()
        n = 0
        while n < total:
            data = await asyncio.wait_for(loop.sock_recv(b, 1 << 20), 10)
            if not data:
                break
            n += len(data)
        await drain
        writer.close()
        b.close()
        assert paused
        return drain_waited, n

    drain_waited, n = run(main())
    assert drain_waited
    assert n == 32 * 65536
