"""loop.sock_sendfile and loop.sendfile, native and fallback, on stock
asyncio and on both ringloop backends."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import tempfile
from typing import Any

import pytest

TIMEOUT = 30
DATA = os.urandom(3 << 20)


@pytest.fixture
def datafile() -> Any:
    with tempfile.TemporaryFile() as f:
        f.write(DATA)
        f.flush()
        f.seek(0)
        yield f


async def _drain_sock(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    got = bytearray()
    while True:
        data = await loop.sock_recv(sock, 1 << 20)
        if not data:
            return bytes(got)
        got += data


@pytest.mark.parametrize("offset,count", [(0, None), (1000, 100000),
                                          (5, 1 << 30)])
def test_sock_sendfile(run: Any, datafile: Any, offset: int,
                       count: Any) -> None:
    async def main() -> tuple[int, bytes, int]:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        reader = asyncio.ensure_future(_drain_sock(b))
        n = await asyncio.wait_for(
            loop.sock_sendfile(a, datafile, offset, count), TIMEOUT)
        a.close()
        got = await asyncio.wait_for(reader, TIMEOUT)
        b.close()
        return n, got, datafile.tell()

    n, got, pos = run(main())
    end = len(DATA) if count is None else min(len(DATA), offset + count)
    assert got == DATA[offset:end]
    assert n == len(got)
    assert pos == end


def test_sock_sendfile_fallback(run: Any) -> None:
    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        with pytest.raises(asyncio.SendfileNotAvailableError):
            await loop.sock_sendfile(a, io.BytesIO(b"x"), fallback=False)
        reader = asyncio.ensure_future(_drain_sock(b))
        n = await asyncio.wait_for(
            loop.sock_sendfile(a, io.BytesIO(DATA), 10), TIMEOUT)
        assert n == len(DATA) - 10
        a.close()
        got = await asyncio.wait_for(reader, TIMEOUT)
        b.close()
        return got

    assert run(main()) == DATA[10:]


def test_sock_sendfile_bad_args(run: Any, datafile: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        a.setblocking(False)
        with pytest.raises(ValueError):
            await loop.sock_sendfile(a, datafile, -1)
        with pytest.raises(ValueError):
            await loop.sock_sendfile(a, datafile, 0, 0)
        with pytest.raises(TypeError):
            await loop.sock_sendfile(a, datafile, 0, "1")
        with tempfile.TemporaryFile("w") as text:
            with pytest.raises(ValueError):
                await loop.sock_sendfile(a, text)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with pytest.raises(ValueError):
            await loop.sock_sendfile(u, datafile)
        for s in (a, b, u):
            s.close()

    run(main())


def test_transport_sendfile(run: Any, datafile: Any) -> None:
    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bytes] = loop.create_future()

        async def handle(reader: Any, writer: Any) -> None:
            done.set_result(await reader.read())
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # a small send buffer: sendfile has to wait for writability
        writer.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        writer.write(b"head:")
        n = await asyncio.wait_for(
            loop.sendfile(writer.transport, datafile), TIMEOUT)
        assert n == len(DATA)
        n = await asyncio.wait_for(
            loop.sendfile(writer.transport, io.BytesIO(b"tail")), TIMEOUT)
        assert n == 4
        writer.write(b":end")
        writer.write_eof()
        got = await asyncio.wait_for(done, TIMEOUT)
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return got

    assert run(main()) == b"head:" + DATA + b"tail:end"
