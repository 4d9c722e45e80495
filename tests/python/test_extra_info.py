"""A transport's extra info (socket, sockname, peername), as asyncio gives it.

ringloop takes a plain socket's two addresses from the kernel when the
transport is made and builds the Python objects the first time the extra
info is used. These tests ask for it only after the connection ended (the
peer gone, the socket closed), from every kind of stream socket, and check
that the answers are asyncio's: the addresses as they were, the same
TransportSocket each time, _extra's keys in asyncio's order (a server's
transports have the peer's address first), and a socket subclass's own
getpeername() honoured.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from typing import Any

import pytest

TIMEOUT = 10.0
KEYS = ["socket", "sockname", "peername"]
# A server's transports: asyncio passes the address accept() gave first.
ACCEPTED = ["peername", "socket", "sockname"]


class Quiet(asyncio.Protocol):
    """Records nothing but the transport and when the connection ended."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)


async def _served(family: int, address: Any) -> tuple[Any, Any, Any]:
    """(the server side's transport after its connection ended, the
    client's sockname, the server's address), the server side untouched
    until then."""
    loop = asyncio.get_running_loop()
    made: asyncio.Future[Quiet] = loop.create_future()

    def factory() -> Quiet:
        p = Quiet()
        made.set_result(p)
        return p

    if family == socket.AF_UNIX:
        server = await loop.create_unix_server(factory, address)
    else:
        server = await loop.create_server(factory, address, 0, family=family)
    where = server.sockets[0].getsockname()
    client = socket.socket(family, socket.SOCK_STREAM)
    client.setblocking(False)
    await loop.sock_connect(client, where)
    mine = client.getsockname()
    proto = await asyncio.wait_for(made, TIMEOUT)
    client.close()
    await asyncio.wait_for(proto.lost, TIMEOUT)
    server.close()
    await server.wait_closed()
    return proto.transport, mine, where


def _check(t: Any, sockname: Any, peername: Any, family: int) -> None:
    assert t.get_extra_info("sockname") == sockname
    assert t.get_extra_info("peername") == peername
    ts = t.get_extra_info("socket")
    assert ts is t.get_extra_info("socket")
    assert ts.family == family
    assert ts.fileno() == -1  # closed with the transport
    assert list(t._extra) == ACCEPTED
    assert t._extra["peername"] == peername
    assert t.get_extra_info("nope", 42) == 42


def test_tcp_v4_after_close(run: Any) -> None:
    async def main() -> None:
        t, mine, where = await _served(socket.AF_INET, "127.0.0.1")
        _check(t, where, mine, socket.AF_INET)

    run(main())


def test_tcp_v6_after_close(run: Any) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        socket.socket(socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6")

    async def main() -> None:
        try:
            t, mine, where = await _served(socket.AF_INET6, "::1")
        except OSError as exc:
            pytest.skip(f"no ::1 here: {exc}")
        assert len(where) == 4 and len(mine) == 4
        _check(t, where, mine, socket.AF_INET6)

    run(main())


def test_unix_path_after_close(run: Any) -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "s")
            t, mine, where = await _served(socket.AF_UNIX, path)
        assert where == path and mine == ""  # the client is unnamed
        _check(t, path, "", socket.AF_UNIX)

    run(main())


def test_unix_abstract_after_close(run: Any) -> None:
    async def main() -> None:
        name = b"\0ringloop-extra-%d" % os.getpid()
        t, mine, where = await _served(socket.AF_UNIX, name)
        assert where == name and isinstance(where, bytes)
        _check(t, name, "", socket.AF_UNIX)

    run(main())


class NamedSocket(socket.socket):
    """A socket subclass with its own idea of the peer's name."""

    def getpeername(self) -> Any:
        return ("peer.example", 4242)


def test_socket_subclass_names_asked(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        sock = NamedSocket(a.family, a.type, a.proto, a.detach())
        t, proto = await loop.connect_accepted_socket(Quiet, sock)
        assert t.get_extra_info("peername") == ("peer.example", 4242)
        assert t.get_extra_info("sockname") == ""
        b.close()
        await asyncio.wait_for(proto.lost, TIMEOUT)
        assert t.get_extra_info("peername") == ("peer.example", 4242)
        assert list(t._extra) == KEYS

    run(main())


def test_extra_given_kept_first(run: Any) -> None:
    """What a caller passes in extra comes before the socket's entries
    (asyncio's _make_socket_transport(extra=...)), and a peername given
    there is not asked of the socket."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        a.setblocking(False)
        proto = Quiet()
        waiter = loop.create_future()
        t = loop._make_socket_transport(
            a, proto, waiter, extra={"peername": "given", "x": 1})
        await asyncio.wait_for(waiter, TIMEOUT)
        b.close()
        await asyncio.wait_for(proto.lost, TIMEOUT)
        assert list(t._extra) == ["peername", "x", "socket", "sockname"]
        assert t.get_extra_info("peername") == "given"
        assert t.get_extra_info("x") == 1

    run(main())


def test_socketpair_names(run: Any) -> None:
    """Unnamed Unix sockets: both names are '' (the socket module's)."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        t, proto = await loop.connect_accepted_socket(Quiet, a)
        b.close()
        await asyncio.wait_for(proto.lost, TIMEOUT)
        _check_unaccepted(t, "", "", socket.AF_UNIX)

    run(main())


def _check_unaccepted(t: Any, sockname: Any, peername: Any,
                      family: int) -> None:
    assert t.get_extra_info("sockname") == sockname
    assert t.get_extra_info("peername") == peername
    assert t.get_extra_info("socket").family == family
    assert list(t._extra) == KEYS
