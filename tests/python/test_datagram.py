"""create_datagram_endpoint and DatagramTransport (UDP and Unix datagram),
on stock asyncio and on both ringloop backends."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
from typing import Any

import pytest

TIMEOUT = 30


class Dgram(asyncio.DatagramProtocol):
    def __init__(self, echo: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self.echo = echo
        self.transport: Any = None
        self.got: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue()
        self.errors: list[Exception] = []
        self.lost = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.echo:
            self.transport.sendto(data, addr)
        else:
            self.got.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)

    def connection_lost(self, exc: Any) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


async def _recv(proto: Dgram) -> tuple[bytes, Any]:
    return await asyncio.wait_for(proto.got.get(), TIMEOUT)


def test_udp_round_trips(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        st, sp = await loop.create_datagram_endpoint(
            lambda: Dgram(echo=True), local_addr=("127.0.0.1", 0))
        saddr = st.get_extra_info("sockname")
        ct, cp = await loop.create_datagram_endpoint(
            Dgram, remote_addr=saddr)
        assert ct.get_extra_info("peername") == saddr
        for size in (1, 100, 1400, 60000):
            payload = os.urandom(size)
            ct.sendto(payload)
            data, addr = await _recv(cp)
            assert data == payload
            assert addr == saddr
        with pytest.raises(ValueError):
            ct.sendto(b"x", ("127.0.0.1", 1))
        with pytest.raises(TypeError):
            ct.sendto("str")
        # many in a burst: UDP over loopback, small enough not to drop
        for i in range(200):
            ct.sendto(b"%d" % i)
        seen = set()
        for _ in range(200):
            data, _ = await _recv(cp)
            seen.add(data)
        assert seen == {b"%d" % i for i in range(200)}
        ct.close()
        assert ct.is_closing()
        assert await asyncio.wait_for(cp.lost, TIMEOUT) is None
        st.abort()
        assert await asyncio.wait_for(sp.lost, TIMEOUT) is None

    run(main())


def test_udp_unconnected_sendto(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        at, ap = await loop.create_datagram_endpoint(
            Dgram, local_addr=("127.0.0.1", 0))
        bt, bp = await loop.create_datagram_endpoint(
            Dgram, local_addr=("127.0.0.1", 0), reuse_port=True)
        baddr = bt.get_extra_info("sockname")
        at.sendto(b"hello", baddr)
        data, addr = await _recv(bp)
        assert (data, addr) == (b"hello", at.get_extra_info("sockname"))
        at.sendto(b"by name", ("localhost", baddr[1]))
        data, _ = await _recv(bp)
        assert data == b"by name"
        at.sendto(bytearray(b"ba"), baddr)
        at.sendto(memoryview(b"mv"), baddr)
        assert (await _recv(bp))[0] == b"ba"
        assert (await _recv(bp))[0] == b"mv"
        assert at.get_write_buffer_size() == 0
        at.close()
        bt.close()
        await asyncio.wait_for(ap.lost, TIMEOUT)
        await asyncio.wait_for(bp.lost, TIMEOUT)

    run(main())


def test_udp_error_received(run: Any) -> None:
    async def main() -> list[Exception]:
        loop = asyncio.get_running_loop()
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()
        probe.close()
        t, p = await loop.create_datagram_endpoint(Dgram, remote_addr=dead)
        # ICMP port unreachable comes back as ECONNREFUSED on a later call
        for _ in range(100):
            t.sendto(b"anyone?")
            await asyncio.sleep(0.005)
            if p.errors:
                break
        t.close()
        await asyncio.wait_for(p.lost, TIMEOUT)
        return p.errors

    errors = run(main())
    assert errors
    assert all(isinstance(e, ConnectionRefusedError) for e in errors)


def test_unix_datagram(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with tempfile.TemporaryDirectory() as d:
            spath = os.path.join(d, "srv")
            cpath = os.path.join(d, "cli")
            st, sp = await loop.create_datagram_endpoint(
                lambda: Dgram(echo=True), local_addr=spath,
                family=socket.AF_UNIX)
            ct, cp = await loop.create_datagram_endpoint(
                Dgram, local_addr=cpath, remote_addr=spath,
                family=socket.AF_UNIX)
            ct.sendto(b"unix dgram")
            data, addr = await _recv(cp)
            assert data == b"unix dgram"
            assert addr == spath
            ct.close()
            st.close()
            await asyncio.wait_for(cp.lost, TIMEOUT)
            await asyncio.wait_for(sp.lost, TIMEOUT)

    run(main())


def test_datagram_options(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        t, p = await loop.create_datagram_endpoint(Dgram, sock=sock)
        assert t.get_extra_info("socket").fileno() == sock.fileno()
        with pytest.raises(ValueError):
            await loop.create_datagram_endpoint(
                Dgram, sock=socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
                local_addr=("127.0.0.1", 0))
        with pytest.raises(ValueError):
            await loop.create_datagram_endpoint(Dgram)
        with pytest.raises(ValueError):
            await loop.create_datagram_endpoint(
                Dgram, sock=socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        # removed in 3.11, refused before
        with pytest.raises(TypeError if sys.version_info >= (3, 11)
                           else ValueError):
            await loop.create_datagram_endpoint(
                Dgram, local_addr=("127.0.0.1", 0), reuse_address=True)
        bt, bp = await loop.create_datagram_endpoint(
            Dgram, local_addr=("127.0.0.1", 0), allow_broadcast=True)
        bsock = bt.get_extra_info("socket")
        assert bsock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST)
        bt.close()
        t.close()
        await asyncio.wait_for(p.lost, TIMEOUT)
        await asyncio.wait_for(bp.lost, TIMEOUT)

    run(main())


@pytest.mark.parametrize("addr", [("127.0.0.1", 70000), ("127.0.0.1",),
                                  ("127.0.0.1", "9")])
def test_sendto_bad_address_is_a_fatal_error(run: Any, addr: Any) -> None:
    """What socket.sendto() refuses (not a name to resolve) is a fatal
    write error, as on asyncio's loop: the exception handler hears of it
    and connection_lost() gets it; sendto() itself raises nothing."""
    async def main() -> tuple[str, str]:
        loop = asyncio.get_running_loop()
        seen: list[Any] = []
        loop.set_exception_handler(lambda loop, ctx: seen.append(ctx))
        lost = loop.create_future()

        class P(asyncio.DatagramProtocol):
            def connection_lost(self, exc: Any) -> None:
                lost.set_result(exc)

        tr, _ = await loop.create_datagram_endpoint(
            P, local_addr=("127.0.0.1", 0))
        tr.sendto(b"x", addr)
        exc = await asyncio.wait_for(lost, 30)
        return type(exc).__name__, type(seen[0]["exception"]).__name__

    name, reported = run(main())
    assert name == reported
    assert name in ("OverflowError", "TypeError")
