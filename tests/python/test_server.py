"""create_server / create_connection and the Server object, on stock
asyncio and on both ringloop backends."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys
import tempfile
from typing import Any

import pytest

TIMEOUT = 30


class Echo(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class Client(asyncio.Protocol):
    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.data = bytearray()
        self.lost = loop.create_future()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc: Any) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


async def _wait_for_data(proto: Client, n: int) -> None:
    async def wait() -> None:
        while len(proto.data) < n:
            await asyncio.sleep(0.001)
    await asyncio.wait_for(wait(), TIMEOUT)


def test_server_api(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0,
                                          start_serving=False)
        assert server.get_loop() is loop
        assert not server.is_serving()
        assert len(server.sockets) == 1
        port = server.sockets[0].getsockname()[1]
        await server.start_serving()
        assert server.is_serving()
        _, proto = await loop.create_connection(Client, "127.0.0.1", port)
        proto.transport.write(b"ping")
        await _wait_for_data(proto, 4)
        assert proto.data == b"ping"
        proto.transport.close()
        await asyncio.wait_for(proto.lost, TIMEOUT)
        server.close()
        assert not server.is_serving()
        assert server.sockets == ()
        server.close()
        await asyncio.wait_for(server.wait_closed(), TIMEOUT)

    run(main())


def test_async_with_and_serve_forever(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            task = asyncio.ensure_future(server.serve_forever())
            await asyncio.sleep(0)
            with pytest.raises(RuntimeError):
                await server.serve_forever()
            _, proto = await loop.create_connection(Client, "127.0.0.1",
                                                    port)
            proto.transport.write(b"x")
            await _wait_for_data(proto, 1)
            proto.transport.close()
            await asyncio.wait_for(proto.lost, TIMEOUT)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, TIMEOUT)
            assert not server.is_serving()
        assert server.sockets == ()

    run(main())


def test_server_close_with_clients_connected(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        clients = []
        for _ in range(5):
            _, proto = await loop.create_connection(Client, "127.0.0.1", port)
            clients.append(proto)
        server.close()
        # closing the server does not close its connections
        for i, proto in enumerate(clients):
            proto.transport.write(b"%d" % i)
            await _wait_for_data(proto, 1)
            assert proto.data == b"%d" % i
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(
                loop.create_connection(Client, "127.0.0.1", port), TIMEOUT)
        for proto in clients:
            proto.transport.close()
            await asyncio.wait_for(proto.lost, TIMEOUT)
        await asyncio.wait_for(server.wait_closed(), TIMEOUT)

    run(main())


def test_many_short_lived_connections(run: Any) -> None:
    n = 10000

    async def main() -> int:
        async def handle(reader: Any, writer: Any) -> None:
            data = await reader.read(100)
            writer.write(data)
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ok = 0
        async with server:
            async def one(i: int) -> None:
                nonlocal ok
                reader, writer = await asyncio.open_connection("127.0.0.1",
                                                               port)
                writer.write(b"%d" % i)
                if await reader.read() == b"%d" % i:
                    ok += 1
                writer.close()
                await writer.wait_closed()

            for start in range(0, n, 100):
                await asyncio.wait_for(asyncio.gather(
                    *(one(i) for i in range(start, start + 100))), TIMEOUT)
        return ok

    assert run(main()) == n


def test_server_sock_and_reuse_port(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        s1 = await loop.create_server(Echo, "127.0.0.1", 0, reuse_port=True)
        port = s1.sockets[0].getsockname()[1]
        s2 = await loop.create_server(Echo, "127.0.0.1", port,
                                      reuse_port=True)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        s3 = await loop.create_server(Echo, sock=sock, backlog=10)
        assert s3.sockets[0].getsockname() == sock.getsockname()
        with pytest.raises(ValueError):
            await loop.create_server(Echo, "127.0.0.1", 0, sock=sock)
        with pytest.raises(ValueError):
            await loop.create_server(Echo)
        for srv in (s1, s2, s3):
            srv.close()
            await asyncio.wait_for(srv.wait_closed(), TIMEOUT)

    run(main())


def test_bind_in_use(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        s1 = await loop.create_server(Echo, "127.0.0.1", 0,
                                      reuse_address=False)
        port = s1.sockets[0].getsockname()[1]
        with pytest.raises(OSError) as info:
            await loop.create_server(Echo, "127.0.0.1", port,
                                     reuse_address=False)
        assert info.value.errno == errno.EADDRINUSE
        s1.close()
        await s1.wait_closed()

    run(main())


def test_connection_refused(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(
                loop.create_connection(Client, "127.0.0.1", port), TIMEOUT)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), TIMEOUT)
        if sys.version_info >= (3, 12):
            with pytest.raises(ExceptionGroup):  # noqa: F821
                await asyncio.wait_for(loop.create_connection(
                    Client, "127.0.0.1", port, all_errors=True), TIMEOUT)
        with pytest.raises(ValueError):
            await loop.create_connection(Client, "127.0.0.1", port,
                                         sock=socket.socket())
        with pytest.raises(ValueError):
            await loop.create_connection(Client)

    run(main())


def test_create_connection_options(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        # local_addr
        t, proto = await loop.create_connection(
            Client, "127.0.0.1", port, local_addr=("127.0.0.1", 0))
        assert t.get_extra_info("sockname")[0] == "127.0.0.1"
        t.close()
        await asyncio.wait_for(proto.lost, TIMEOUT)
        # a resolved name with happy eyeballs
        t, proto = await asyncio.wait_for(loop.create_connection(
            Client, "localhost", port, family=socket.AF_INET,
            happy_eyeballs_delay=0.25), TIMEOUT)
        t.write(b"he")
        await _wait_for_data(proto, 2)
        t.close()
        await asyncio.wait_for(proto.lost, TIMEOUT)
        # sock=
        sock = socket.create_connection(("127.0.0.1", port))
        t, proto = await loop.create_connection(Client, sock=sock)
        t.write(b"sock")
        await _wait_for_data(proto, 4)
        t.close()
        await asyncio.wait_for(proto.lost, TIMEOUT)
        server.close()
        await server.wait_closed()

    run(main())


def test_connect_accepted_socket(run: Any) -> None:
    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()
        csock = socket.create_connection(lsock.getsockname())
        conn, _ = lsock.accept()
        t, proto = await loop.connect_accepted_socket(Client, conn)
        csock.sendall(b"hello")
        await _wait_for_data(proto, 5)
        t.write(b"back")
        t.close()
        await asyncio.wait_for(proto.lost, TIMEOUT)
        got = b""
        csock.settimeout(TIMEOUT)
        while True:
            d = csock.recv(100)
            if not d:
                break
            got += d
        csock.close()
        lsock.close()
        assert proto.data == b"hello"
        return got

    assert run(main()) == b"back"


def test_unix_server(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "s")
            server = await loop.create_unix_server(Echo, path)
            assert server.sockets[0].getsockname() == path
            t, proto = await loop.create_unix_connection(Client, path)
            t.write(b"unix")
            await _wait_for_data(proto, 4)
            assert t.get_extra_info("peername") == path
            t.close()
            await asyncio.wait_for(proto.lost, TIMEOUT)
            server.close()
            await server.wait_closed()
            # a stale socket file is replaced
            server = await loop.create_unix_server(Echo, path)
            server.close()
            await server.wait_closed()
            with pytest.raises(ValueError):
                await loop.create_unix_server(Echo)
            with pytest.raises(FileNotFoundError):
                await loop.create_unix_connection(
                    Client, os.path.join(d, "missing"))

    run(main())
