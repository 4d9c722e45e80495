"""The loop's sock_* methods and address resolution, on stock asyncio and
on both ringloop backends."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
from typing import Any

import pytest

TIMEOUT = 30


def _nb(sock: socket.socket) -> socket.socket:
    sock.setblocking(False)
    return sock


def test_sock_echo(run: Any) -> None:
    payload = os.urandom(4 << 20)

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        lsock = _nb(socket.socket())
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()

        async def serve() -> None:
            conn, addr = await loop.sock_accept(lsock)
            assert conn.gettimeout() == 0
            assert addr == conn.getpeername()
            with conn:
                buf = bytearray(65536)
                while True:
                    n = await loop.sock_recv_into(conn, buf)
                    if not n:
                        break
                    await loop.sock_sendall(conn, memoryview(buf)[:n])

        server = asyncio.ensure_future(serve())
        csock = _nb(socket.socket())
        await asyncio.wait_for(
            loop.sock_connect(csock, lsock.getsockname()), TIMEOUT)

        async def reader() -> bytes:
            got = bytearray()
            while len(got) < len(payload):
                data = await loop.sock_recv(csock, 1 << 20)
                if not data:
                    break
                got += data
            return bytes(got)

        rtask = asyncio.ensure_future(reader())
        await loop.sock_sendall(csock, b"")
        await asyncio.wait_for(loop.sock_sendall(csock, payload), TIMEOUT)
        got = await asyncio.wait_for(rtask, TIMEOUT)
        csock.shutdown(socket.SHUT_WR)
        await asyncio.wait_for(server, TIMEOUT)
        assert await loop.sock_recv(csock, 10) == b""
        csock.close()
        lsock.close()
        return got

    assert run(main()) == payload


@pytest.mark.skipif(sys.version_info < (3, 11),
                    reason="sock_sendto/sock_recvfrom are new in 3.11")
def test_sock_udp(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a = _nb(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        b = _nb(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        with a, b:
            n = await loop.sock_sendto(a, b"one", b.getsockname())
            assert n == 3
            data, addr = await asyncio.wait_for(loop.sock_recvfrom(b, 100),
                                                TIMEOUT)
            assert (data, addr) == (b"one", a.getsockname())
            await loop.sock_sendto(b, b"two-long", addr)
            buf = bytearray(100)
            n, addr2 = await asyncio.wait_for(
                loop.sock_recvfrom_into(a, buf), TIMEOUT)
            assert (bytes(buf[:n]), addr2) == (b"two-long", b.getsockname())
            await loop.sock_sendto(b, b"three", addr)
            n, _ = await asyncio.wait_for(
                loop.sock_recvfrom_into(a, buf, 2), TIMEOUT)
            assert bytes(buf[:n]) == b"th"
            # a name, resolved first
            await loop.sock_sendto(a, b"four", ("localhost",
                                                b.getsockname()[1]))
            data, _ = await asyncio.wait_for(loop.sock_recvfrom(b, 100),
                                             TIMEOUT)
            assert data == b"four"

    run(main())


def test_sock_unix(run: Any) -> None:
    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "s")
            lsock = _nb(socket.socket(socket.AF_UNIX))
            lsock.bind(path)
            lsock.listen()
            csock = _nb(socket.socket(socket.AF_UNIX))
            await asyncio.wait_for(loop.sock_connect(csock, path), TIMEOUT)
            conn, _ = await asyncio.wait_for(loop.sock_accept(lsock), TIMEOUT)
            await loop.sock_sendall(csock, b"unix!")
            data = await asyncio.wait_for(loop.sock_recv(conn, 100), TIMEOUT)
            for s in (conn, csock, lsock):
                s.close()
            return data

    assert run(main()) == b"unix!"


def test_sock_errors(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        s = _nb(socket.socket())
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(loop.sock_connect(s, ("127.0.0.1", port)),
                                   TIMEOUT)
        s.close()
        a, b = socket.socketpair()
        _nb(a)
        b.close()
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for _ in range(100):
                await asyncio.wait_for(loop.sock_sendall(a, b"x" * 65536),
                                       TIMEOUT)
        a.close()
        with pytest.raises(OSError):
            await loop.sock_recv(a, 10)

    run(main())


def test_sock_recv_cancel(run: Any) -> None:
    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        _nb(a)
        _nb(b)
        task = asyncio.ensure_future(loop.sock_recv(a, 100))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.01)
        b.send(b"after")
        data = await asyncio.wait_for(loop.sock_recv(a, 100), TIMEOUT)
        a.close()
        b.close()
        return data

    assert run(main()) == b"after"


def test_sock_fd_reuse_after_close(run: Any) -> None:
    # Sockets closed behind the loop's back and their fd numbers reused.
    async def main() -> int:
        loop = asyncio.get_running_loop()
        ok = 0
        for i in range(50):
            a, b = socket.socketpair()
            _nb(a)
            _nb(b)
            task = asyncio.ensure_future(loop.sock_recv(a, 10))
            await asyncio.sleep(0)
            b.send(b"%d" % i)
            if await asyncio.wait_for(task, TIMEOUT) == b"%d" % i:
                ok += 1
            a.close()
            b.close()
        return ok

    assert run(main()) == 50


def test_getaddrinfo_getnameinfo(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        for host in ("127.0.0.1", "localhost", "::1", None):
            got = await asyncio.wait_for(loop.getaddrinfo(
                host, 80, type=socket.SOCK_STREAM), TIMEOUT)
            assert got == socket.getaddrinfo(host, 80,
                                             type=socket.SOCK_STREAM)
        got = await loop.getaddrinfo("127.0.0.1", "http")
        assert got == socket.getaddrinfo("127.0.0.1", "http")
        with pytest.raises(socket.gaierror):
            await asyncio.wait_for(loop.getaddrinfo(
                "no-such-host.invalid", 80), TIMEOUT)
        name = await asyncio.wait_for(
            loop.getnameinfo(("127.0.0.1", 80),
                             socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
            TIMEOUT)
        assert name == ("127.0.0.1", "80")

    run(main())


@pytest.mark.parametrize("method", [
    "sock_recv", "sock_recv_into", "sock_recvfrom", "sock_recvfrom_into",
    "sock_sendall", "sock_sendto", "sock_connect", "sock_accept"])
def test_sock_methods_refuse_ssl_socket(run: Any, method: str) -> None:
    """An ssl.SSLSocket's bytes must not bypass TLS: TypeError, as asyncio."""
    import ssl

    args = {"sock_recv": (10,), "sock_recv_into": (bytearray(10),),
            "sock_recvfrom": (10,), "sock_recvfrom_into": (bytearray(10),),
            "sock_sendall": (b"plaintext",),
            "sock_sendto": (b"plaintext", ("127.0.0.1", 9)),
            "sock_connect": (("127.0.0.1", 9),), "sock_accept": ()}[method]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        if not hasattr(loop, method):
            pytest.skip(f"{method} is new in Python 3.11's asyncio")
        ctx = ssl.create_default_context()
        with socket.socket() as raw:
            raw.setblocking(False)
            with ctx.wrap_socket(raw, server_hostname="localhost",
                                 do_handshake_on_connect=False) as s:
                with pytest.raises(TypeError, match="SSLSocket"):
                    await getattr(loop, method)(s, *args)

    run(main())


def test_sock_methods_refuse_a_transports_socket(run: Any) -> None:
    """A sock_* call that has to wait on a socket a transport uses raises
    RuntimeError, as asyncio's _ensure_fd_no_transport(); one that answers
    at once goes through."""
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        with b:
            tr, _ = await loop.create_connection(asyncio.Protocol, sock=a)
            out = []
            for call in (lambda: loop.sock_recv(a, 10),
                         lambda: loop.sock_recv_into(a, bytearray(10))):
                try:
                    await asyncio.wait_for(call(), TIMEOUT)
                except RuntimeError as exc:
                    out.append(type(exc).__name__)
            tr.close()
            await asyncio.sleep(0)
            return out

    assert run(main()) == ["RuntimeError", "RuntimeError"]
