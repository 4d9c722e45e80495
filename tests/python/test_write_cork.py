"""Writes made while a protocol takes received data.

ringloop holds what data_received() / buffer_updated() writes to stream
transports and sends it in one sendmsg per transport when the callback
returns (many replies to pipelined requests leave as one segment). To the
protocol and to the peer this must look exactly like asyncio, whose write()
sends at once: the same bytes in the same order, get_write_buffer_size()
as asyncio reports it, and nothing lost to a close(), abort(), write_eof()
or an exception right after the write. Every test runs on asyncio too.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any, Callable

import pytest


async def _serve(make_protocol: Callable[[], asyncio.BaseProtocol],
                 request: bytes, *, shut_wr: bool = False) -> bytes:
    """Serve one connection with make_protocol; send request from a plain
    socket and read everything until EOF (or a reset)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(make_protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sock = socket.socket()
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, request)
        if shut_wr:
            sock.shutdown(socket.SHUT_WR)
        got = bytearray()
        while True:
            try:
                chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), 10)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        return bytes(got)
    finally:
        sock.close()
        server.close()
        await server.wait_closed()


class Replies(asyncio.Protocol):
    """Answers each line with many small writes, then does `then` to the
    transport; records what the transport reported meanwhile."""

    def __init__(self, then: str = "", exc_seen: list[Any] | None = None
                 ) -> None:
        self.then = then
        self.sizes: list[int] = []
        self.exc_seen = exc_seen

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        for line in data.splitlines(keepends=True):
            for i in range(8):
                self.transport.write(b"%d:" % i + line)
        self.sizes.append(self.transport.get_write_buffer_size())
        if self.then == "close":
            self.transport.close()
        elif self.then == "abort":
            self.transport.abort()
        elif self.then == "write_eof":
            self.transport.write_eof()
        elif self.then == "raise":
            raise RuntimeError("data_received failed after writing")


def _expected(request: bytes) -> bytes:
    return b"".join(b"%d:" % i + line
                    for line in request.splitlines(keepends=True)
                    for i in range(8))


REQUEST = b"".join(b"request %d\n" % i for i in range(16))


@pytest.mark.parametrize("then", ["close", "abort", "write_eof"])
def test_writes_then_end(run: Any, then: str) -> None:
    protos: list[Replies] = []

    def make() -> Replies:
        protos.append(Replies(then))
        return protos[-1]

    got = run(_serve(make, REQUEST))
    assert got == _expected(REQUEST)
    # asyncio sent every small write at once: nothing was left buffered.
    assert protos[0].sizes == [0]


def test_writes_then_raise(run: Any) -> None:
    errors: list[dict[str, Any]] = []

    async def main() -> bytes:
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, ctx: errors.append(ctx))
        return await _serve(lambda: Replies("raise"), REQUEST)

    got = run(main())
    # What was written before the exception reached the peer, as it does
    # with asyncio (its write() had sent it); then the transport closed.
    assert got == _expected(REQUEST)
    assert len(errors) == 1
    assert isinstance(errors[0]["exception"], RuntimeError)


def test_pipelined_replies_keep_order(run: Any) -> None:
    """Many requests per read, many writes per request, the connection kept
    open: every reply arrives, in order (the peer half-closes at the end)."""

    class KeepOpen(Replies):
        def eof_received(self) -> bool:
            self.transport.write(b"bye\n")
            return False

    request = b"".join(b"req %04d\n" % i for i in range(500))
    got = run(_serve(KeepOpen, request, shut_wr=True))
    assert got == _expected(request) + b"bye\n"


def test_mutable_buffer_written_then_changed(run: Any) -> None:
    """write(bytearray) then changing the bytearray: asyncio sent the old
    contents, so the peer must see them."""

    class Mutator(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            buf = bytearray(b"before\n")
            self.transport.write(buf)
            buf[:] = b"AFTER!\n"
            self.transport.write(memoryview(b"view\n"))
            self.transport.close()

    assert run(_serve(Mutator, b"go")) == b"before\nview\n"


def test_write_to_other_transport(run: Any) -> None:
    """A relay: what one connection's data_received writes to another
    connection's transport arrives there, in order."""

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        sink_got: asyncio.Future[bytes] = loop.create_future()

        class Sink(asyncio.Protocol):
            def __init__(self) -> None:
                self.buf = bytearray()

            def data_received(self, data: bytes) -> None:
                self.buf += data

            def eof_received(self) -> None:
                sink_got.set_result(bytes(self.buf))

        sink_server = await loop.create_server(Sink, "127.0.0.1", 0)
        sink_port = sink_server.sockets[0].getsockname()[1]
        out, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1",
                                              sink_port)

        class Relay(asyncio.Protocol):
            def data_received(self, data: bytes) -> None:
                for line in data.splitlines(keepends=True):
                    out.write(b"relayed " + line)
                    out.write(b"again " + line)

            def eof_received(self) -> None:
                out.write_eof()

        await _serve(Relay, REQUEST, shut_wr=True)
        got = await asyncio.wait_for(sink_got, 10)
        out.close()
        sink_server.close()
        await sink_server.wait_closed()
        return got

    want = b"".join(b"relayed " + line + b"again " + line
                    for line in REQUEST.splitlines(keepends=True))
    assert run(main()) == want


def test_buffered_protocol_writes(run: Any) -> None:
    class BufferedReplies(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buf = bytearray(65536)
            self.sizes: list[int] = []

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def get_buffer(self, sizehint: int) -> bytearray:
            return self.buf

        def buffer_updated(self, nbytes: int) -> None:
            data = bytes(self.buf[:nbytes])
            for line in data.splitlines(keepends=True):
                for i in range(8):
                    self.transport.write(b"%d:" % i + line)
            self.sizes.append(self.transport.get_write_buffer_size())

        def eof_received(self) -> bool:
            return False

    protos: list[BufferedReplies] = []

    def make() -> BufferedReplies:
        protos.append(BufferedReplies())
        return protos[-1]

    got = run(_serve(make, REQUEST, shut_wr=True))
    assert got == _expected(REQUEST)
    assert set(protos[0].sizes) == {0}


def test_large_writes_pause_as_asyncio(run: Any) -> None:
    """Writes past the high-water mark while the peer does not read: the
    protocol is paused as with asyncio, and every byte arrives once the
    peer reads."""

    async def main() -> tuple[int, bool]:
        loop = asyncio.get_running_loop()
        paused = loop.create_future()
        chunk = b"x" * 65536
        total = 64 * len(chunk)

        class Flood(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport
                transport.set_write_buffer_limits(high=65536)

            def data_received(self, data: bytes) -> None:
                for _ in range(64):
                    self.transport.write(chunk)
                self.transport.close()

            def pause_writing(self) -> None:
                if not paused.done():
                    paused.set_result(True)

        server = await loop.create_server(Flood, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, b"go")
        was_paused = await asyncio.wait_for(paused, 10)
        n = 0
        while True:
            data = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 10)
            if not data:
                break
            n += len(data)
        sock.close()
        server.close()
        await server.wait_closed()
        assert n == total
        return n, was_paused

    n, was_paused = run(main())
    assert was_paused


@pytest.mark.parametrize("uncork", ["get_write_buffer_size", "past_high"])
def test_early_uncork_keeps_other_transports(run: Any, uncork: str) -> None:
    """data_received writes to another transport B, then twice to its own
    with something that sends at once in between: B's bytes, and what is
    written to B later, must still arrive."""

    async def main() -> tuple[bytes, bytes]:
        loop = asyncio.get_running_loop()
        a1, a2 = socket.socketpair()
        b1, b2 = socket.socketpair()
        for s in (a1, a2, b1, b2):
            s.setblocking(False)

        class P(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def data_received(self, data: bytes) -> None:
                tb.write(b"to-b ")
                self.transport.write(b"1")
                if uncork == "get_write_buffer_size":
                    assert self.transport.get_write_buffer_size() == 0
                else:
                    self.transport.write(b"x" * 70000)
                self.transport.write(b"2")

        ta, _ = await loop.create_connection(P, sock=a1)
        tb, _ = await loop.create_connection(asyncio.Protocol, sock=b1)
        await loop.sock_sendall(a2, b"go")
        got_b = await asyncio.wait_for(loop.sock_recv(b2, 100), 10)
        tb.write(b"later")
        while not got_b.endswith(b"later"):
            got_b += await asyncio.wait_for(loop.sock_recv(b2, 100), 10)
        want_a = 2 + (70000 if uncork == "past_high" else 0)
        got_a = b""
        while len(got_a) < want_a:
            got_a += await asyncio.wait_for(loop.sock_recv(a2, 1 << 20), 10)
        ta.close()
        tb.close()
        for s in (a2, b2):
            s.close()
        return got_a, got_b

    got_a, got_b = run(main())
    assert got_b == b"to-b later"
    assert got_a[:1] == b"1" and got_a[-1:] == b"2"


@pytest.mark.parametrize("then", ["write_eof", "close"])
def test_end_after_write_to_reset_peer(run: Any, then: str) -> None:
    """The peer reset the connection before data_received writes and ends
    the transport: the failed send closes it, and write_eof()/close() then
    return None (as with asyncio) instead of raising."""

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen()
        c = socket.socket()
        c.connect(ls.getsockname())
        a, _ = ls.accept()
        a.setblocking(False)
        ls.close()
        res: dict[str, Any] = {}
        done = loop.create_future()

        class P(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def data_received(self, data: bytes) -> None:
                self.transport.write(b"reply")
                res["call"] = getattr(self.transport, then)()

            def connection_lost(self, exc: Exception | None) -> None:
                res["lost"] = res.get("lost", 0) + 1
                if not done.done():
                    done.set_result(None)

        loop.set_exception_handler(lambda loop, ctx: None)
        c.send(b"go")
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
        c.close()  # a reset: the data stays readable, sends fail
        await asyncio.sleep(0.05)
        await loop.connect_accepted_socket(P, a)
        await asyncio.wait_for(done, 10)
        await asyncio.sleep(0.01)
        return res

    res = run(main())
    assert res == {"call": None, "lost": 1}
