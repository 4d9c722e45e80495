"""Stream transports (TCP and Unix): echo verified byte for byte, flow
control, EOF, close, abort, peer reset, and the Transport API, on stock
asyncio and on both ringloop backends."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
import socket
import struct
import tempfile
from typing import Any

import pytest

from conftest import raise_nofile

TIMEOUT = 30


def _pattern(n: int, seed: int = 0) -> bytes:
    """n deterministic, non-repeating-looking bytes."""
    out = bytearray()
    i = seed
    while len(out) < n:
        out += hashlib.sha256(i.to_bytes(8, "little")).digest()
        i += 1
    return bytes(out[:n])


async def _echo_handler(reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(256 * 1024)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.write_eof()
    finally:
        writer.close()


async def _echo_roundtrip(host: str, port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)

    async def send() -> None:
        view = memoryview(payload)
        for i in range(0, len(payload), 1 << 20):
            writer.write(view[i:i + (1 << 20)])
            await writer.drain()
        writer.write_eof()

    sender = asyncio.ensure_future(send())
    got = await reader.read()  # until EOF
    await sender
    writer.close()
    await writer.wait_closed()
    return got


@pytest.mark.parametrize("size", [1, 1000, 65537, 1 << 20, 16 << 20])
def test_echo_payload_sizes(run: Any, size: int) -> None:
    payload = _pattern(size, size)

    async def main() -> bytes:
        server = await asyncio.start_server(_echo_handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await asyncio.wait_for(
                _echo_roundtrip("127.0.0.1", port, payload), TIMEOUT)

    got = run(main())
    assert len(got) == len(payload)
    assert got == payload


@pytest.mark.parametrize("nconn", [1, 50, 1000])
def test_echo_many_connections(run: Any, nconn: int) -> None:
    need = 4 * nconn + 256
    if raise_nofile(need) is None:
        pytest.fail(f"RLIMIT_NOFILE's hard limit is below {need}")

    async def main() -> list[bool]:
        server = await asyncio.start_server(_echo_handler, "127.0.0.1", 0,
                                           backlog=nconn)
        port = server.sockets[0].getsockname()[1]
        payloads = [_pattern(1 + (i * 7919) % 20000, i) for i in range(nconn)]
        async with server:
            results = await asyncio.wait_for(asyncio.gather(
                *(_echo_roundtrip("127.0.0.1", port, p) for p in payloads)),
                TIMEOUT)
        return [r == p for r, p in zip(results, payloads)]

    assert all(run(main()))


def test_unix_echo(run: Any) -> None:
    payload = _pattern(3 << 20, 3)

    async def main() -> bytes:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "sock")
            server = await asyncio.start_unix_server(_echo_handler, path)
            async with server:
                reader, writer = await asyncio.open_unix_connection(path)
                writer.write(payload)
                writer.write_eof()
                got = await asyncio.wait_for(reader.read(), TIMEOUT)
                writer.close()
                await writer.wait_closed()
                return got

    assert run(main()) == payload


class Recorder(asyncio.Protocol):
    """A protocol that keeps everything it is told."""

    def __init__(self, keep_open: bool = False) -> None:
        self.transport: Any = None
        self.data = bytearray()
        self.events: list[str] = []
        self.lost_exc: Any = "not called"
        self.keep_open = keep_open
        self.lost = asyncio.get_running_loop().create_future()
        self.eof = asyncio.get_running_loop().create_future()
        self.made = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")
        self.made.set_result(None)

    def data_received(self, data: bytes) -> None:
        assert isinstance(data, bytes)
        self.data += data

    def eof_received(self) -> bool:
        self.events.append("eof")
        if not self.eof.done():
            self.eof.set_result(None)
        return self.keep_open

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, exc: Any) -> None:
        self.events.append("lost")
        self.lost_exc = exc
        if not self.lost.done():
            self.lost.set_result(None)


async def _pair(factory: Any, client_factory: Any = None,
                **server_kw: Any) -> tuple[Any, Any, Any]:
    """A server protocol, a client protocol and the server object."""
    loop = asyncio.get_running_loop()
    made: asyncio.Future[Any] = loop.create_future()

    def server_factory() -> Any:
        p = factory()
        made.set_result(p)
        return p

    server = await loop.create_server(server_factory, "127.0.0.1", 0,
                                      **server_kw)
    port = server.sockets[0].getsockname()[1]
    _, client = await loop.create_connection(client_factory or Recorder,
                                             "127.0.0.1", port)
    sproto = await asyncio.wait_for(made, TIMEOUT)
    await asyncio.wait_for(sproto.made, TIMEOUT)
    return sproto, client, server


def test_close_with_pending_writes(run: Any) -> None:
    payload = _pattern(8 << 20, 8)

    async def main() -> tuple[bytes, list[str], Any]:
        sproto, client, server = await _pair(Recorder)
        sproto.transport.write(payload)
        assert sproto.transport.get_write_buffer_size() > 0
        sproto.transport.close()
        assert sproto.transport.is_closing()
        sproto.transport.close()  # idempotent
        await asyncio.wait_for(client.eof, TIMEOUT)
        await asyncio.wait_for(sproto.lost, TIMEOUT)
        client.transport.close()
        await asyncio.wait_for(client.lost, TIMEOUT)
        server.close()
        await server.wait_closed()
        return bytes(client.data), sproto.events, sproto.lost_exc

    data, events, exc = run(main())
    assert data == payload
    assert events.count("lost") == 1
    assert exc is None


def test_abort_drops_queue(run: Any) -> None:
    async def main() -> tuple[int, list[str], Any]:
        sproto, client, server = await _pair(Recorder)
        sproto.transport.write(_pattern(8 << 20))
        sproto.transport.abort()
        sproto.transport.abort()
        assert sproto.transport.is_closing()
        await asyncio.wait_for(sproto.lost, TIMEOUT)
        await asyncio.wait_for(client.lost, TIMEOUT)
        server.close()
        await server.wait_closed()
        return len(client.data), sproto.events, sproto.lost_exc

    n, events, exc = run(main())
    assert n < 8 << 20
    assert events.count("lost") == 1
    assert exc is None


def test_eof_both_ways(run: Any) -> None:
    async def main() -> tuple[Any, ...]:
        sproto, client, server = await _pair(lambda: Recorder(keep_open=True))
        assert client.transport.can_write_eof()
        client.transport.write(b"question")
        client.transport.write_eof()
        with pytest.raises(RuntimeError):
            client.transport.write(b"more")
        await asyncio.wait_for(sproto.eof, TIMEOUT)
        # half-closed: the server can still answer
        sproto.transport.write(b"answer")
        sproto.transport.write_eof()
        await asyncio.wait_for(client.eof, TIMEOUT)
        await asyncio.wait_for(client.lost, TIMEOUT)
        sproto.transport.close()
        await asyncio.wait_for(sproto.lost, TIMEOUT)
        server.close()
        await server.wait_closed()
        return (bytes(sproto.data), bytes(client.data), sproto.events,
                client.events)

    sdata, cdata, sev, cev = run(main())
    assert sdata == b"question"
    assert cdata == b"answer"
    assert sev == ["made", "eof", "lost"]
    assert cev == ["made", "eof", "lost"]


def test_flow_control_slow_reader(run: Any) -> None:
    total = 16 << 20

    async def main() -> tuple[bool, list[str], bool]:
        sproto, client, server = await _pair(Recorder)
        client.transport.pause_reading()
        assert not client.transport.is_reading()
        st = sproto.transport
        st.set_write_buffer_limits(high=64 * 1024, low=16 * 1024)
        assert st.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        chunk = _pattern(1 << 20, 5)
        sent = 0
        while "pause" not in sproto.events and sent < total:
            st.write(chunk)
            sent += len(chunk)
        paused = "pause" in sproto.events
        while sent < total:  # keep writing: nothing may be lost
            st.write(chunk)
            sent += len(chunk)
        for _ in range(5):
            await asyncio.sleep(0)
        client.transport.resume_reading()
        assert client.transport.is_reading()
        while len(client.data) < total:
            await asyncio.wait_for(asyncio.sleep(0.01), TIMEOUT)
            if client.lost.done():
                break
        st.close()
        await asyncio.wait_for(client.lost, TIMEOUT)
        server.close()
        await server.wait_closed()
        ok = bytes(client.data) == chunk * (total // len(chunk))
        return paused, sproto.events, ok

    paused, events, ok = run(main())
    assert paused
    assert ok
    assert events.index("pause") < events.index("resume")


def test_write_buffer_limits_validation(run: Any) -> None:
    async def main() -> None:
        sproto, client, server = await _pair(Recorder)
        t = client.transport
        with pytest.raises(ValueError):
            t.set_write_buffer_limits(high=1, low=2)
        with pytest.raises(ValueError):
            t.set_write_buffer_limits(high=-1)
        t.set_write_buffer_limits(low=1000)
        assert t.get_write_buffer_limits() == (1000, 4000)
        t.set_write_buffer_limits(high=1000)
        assert t.get_write_buffer_limits() == (250, 1000)
        t.set_write_buffer_limits()
        assert t.get_write_buffer_limits() == (16384, 65536)
        assert t.get_write_buffer_size() == 0
        with pytest.raises(TypeError):
            t.write("str")
        t.write(b"")
        t.write(bytearray(b"ab"))
        t.write(memoryview(b"cd"))
        t.writelines([b"e", bytearray(b"f"), memoryview(b"g")])
        t.close()
        await asyncio.wait_for(sproto.eof, TIMEOUT)
        await asyncio.wait_for(sproto.lost, TIMEOUT)
        assert bytes(sproto.data) == b"abcdefg"
        server.close()
        await server.wait_closed()

    run(main())


def test_extra_info(run: Any) -> None:
    async def main() -> None:
        sproto, client, server = await _pair(Recorder)
        t = client.transport
        sock = t.get_extra_info("socket")
        assert sock.family == socket.AF_INET
        assert t.get_extra_info("sockname") == sock.getsockname()
        assert t.get_extra_info("peername") == server.sockets[0].getsockname()
        assert sproto.transport.get_extra_info("peername") == \
            t.get_extra_info("sockname")
        assert t.get_extra_info("nope", 42) == 42
        assert t.get_protocol() is client
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        t.close()
        await asyncio.wait_for(sproto.lost, TIMEOUT)
        server.close()
        await server.wait_closed()

    run(main())


def test_pause_resume_reading(run: Any) -> None:
    async def main() -> bytes:
        sproto, client, server = await _pair(Recorder)
        t = sproto.transport
        assert t.is_reading()
        t.pause_reading()
        t.pause_reading()
        assert not t.is_reading()
        client.transport.write(b"x" * 1000)
        for _ in range(20):
            await asyncio.sleep(0)
        assert sproto.data == b""
        t.resume_reading()
        t.resume_reading()
        assert t.is_reading()
        while len(sproto.data) < 1000:
            await asyncio.wait_for(asyncio.sleep(0.001), TIMEOUT)
        client.transport.close()
        await asyncio.wait_for(sproto.lost, TIMEOUT)
        assert not t.is_reading()
        server.close()
        await server.wait_closed()
        return bytes(sproto.data)

    assert run(main()) == b"x" * 1000


def test_peer_reset_mid_write(run: Any) -> None:
    async def main() -> tuple[list[str], Any]:
        sproto, client, server = await _pair(Recorder)
        client.transport.pause_reading()
        sock = client.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
        chunk = _pattern(1 << 20)
        for _ in range(4):
            sproto.transport.write(chunk)
        client.transport.abort()  # RST: SO_LINGER 0
        await asyncio.wait_for(client.lost, TIMEOUT)
        while not sproto.lost.done():
            sproto.transport.write(chunk)
            await asyncio.wait_for(asyncio.sleep(0.001), TIMEOUT)
        for _ in range(10):  # writes after the loss are ignored
            sproto.transport.write(chunk)
        server.close()
        await server.wait_closed()
        return sproto.events, sproto.lost_exc

    events, exc = run(main())
    assert events.count("lost") == 1
    assert isinstance(exc, (ConnectionResetError, BrokenPipeError))


class Buffered(asyncio.BufferedProtocol):
    def __init__(self) -> None:
        self.buf = bytearray(1000)
        self.data = bytearray()
        self.lost = asyncio.get_running_loop().create_future()
        self.transport: Any = None
        self.sizes: list[int] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> Any:
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        self.sizes.append(nbytes)
        self.data += self.buf[:nbytes]

    def eof_received(self) -> None:
        return None

    def connection_lost(self, exc: Any) -> None:
        self.lost.set_result(exc)


def test_buffered_protocol(run: Any) -> None:
    payload = _pattern(1 << 20, 11)

    async def main() -> tuple[bytes, int]:
        loop = asyncio.get_running_loop()
        server = await asyncio.start_server(_echo_handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, proto = await loop.create_connection(
            Buffered, "127.0.0.1", port)
        transport.write(payload)
        transport.write_eof()
        exc = await asyncio.wait_for(proto.lost, TIMEOUT)
        assert exc is None
        server.close()
        await server.wait_closed()
        return bytes(proto.data), max(proto.sizes)

    data, biggest = run(main())
    assert data == payload
    assert biggest <= 1000


def test_data_received_error_reaches_handler(run: Any) -> None:
    class Bad(Recorder):
        def data_received(self, data: bytes) -> None:
            raise ZeroDivisionError("boom")

    async def main() -> tuple[list[dict[str, Any]], Any]:
        loop = asyncio.get_running_loop()
        seen: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))
        sproto, client, server = await _pair(Bad)
        client.transport.write(b"hi")
        await asyncio.wait_for(sproto.lost, TIMEOUT)
        await asyncio.wait_for(client.lost, TIMEOUT)
        server.close()
        await server.wait_closed()
        return seen, sproto.lost_exc

    seen, exc = run(main())
    assert isinstance(exc, ZeroDivisionError)
    assert len(seen) == 1
    assert seen[0]["message"] == \
        "Fatal error: protocol.data_received() call failed."
    assert isinstance(seen[0]["exception"], ZeroDivisionError)


def test_eof_received_false_closes(run: Any) -> None:
    async def main() -> list[str]:
        sproto, client, server = await _pair(Recorder)
        client.transport.write_eof()
        await asyncio.wait_for(sproto.lost, TIMEOUT)
        await asyncio.wait_for(client.lost, TIMEOUT)
        server.close()
        await server.wait_closed()
        return sproto.events

    assert run(main()) == ["made", "eof", "lost"]


def test_unclosed_transport_closed_by_gc(run: Any) -> None:
    async def main() -> bytes:
        sproto, client, server = await _pair(Recorder)
        client.transport.pause_reading()
        for _ in range(5):
            await asyncio.sleep(0)
        with pytest.warns(ResourceWarning, match="unclosed transport"):
            client.transport = None
            gc.collect()
        await asyncio.wait_for(sproto.lost, TIMEOUT)
        server.close()
        await server.wait_closed()
        # the fd numbers come back: new connections work
        server = await asyncio.start_server(_echo_handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await asyncio.wait_for(
                _echo_roundtrip("127.0.0.1", port, b"again"), TIMEOUT)

    assert run(main()) == b"again"


def test_fd_of_transport_refused_by_add_reader(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        sproto, client, server = await _pair(Recorder)
        fd = client.transport.get_extra_info("socket").fileno()
        with pytest.raises(RuntimeError, match="is used by transport"):
            loop.add_reader(fd, lambda: None)
        with pytest.raises(RuntimeError, match="is used by transport"):
            loop.add_writer(fd, lambda: None)
        with pytest.raises(RuntimeError, match="is used by transport"):
            loop.remove_reader(fd)
        client.transport.close()
        await asyncio.wait_for(client.lost, TIMEOUT)
        await asyncio.wait_for(sproto.lost, TIMEOUT)
        server.close()
        await server.wait_closed()

    run(main())


def test_writes_from_resume_writing(run: Any) -> None:
    # resume_writing() runs while the transport handles a send completion;
    # what it writes must go out once, in order (TLS writes this way).
    total = 8 << 20
    chunk = _pattern(48 * 1024, 21)

    class Producer(Recorder):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            transport.set_write_buffer_limits(high=256 * 1024,
                                              low=64 * 1024)
            self.sent = 0
            self.produce()

        def produce(self) -> None:
            while self.sent < total and "pause" not in self.events[-1:]:
                self.transport.write(chunk)
                self.sent += len(chunk)
            if self.sent >= total and not self.transport.is_closing():
                self.transport.close()

        def resume_writing(self) -> None:
            super().resume_writing()
            self.produce()

    async def main() -> tuple[bytes, int]:
        sproto, client, server = await _pair(Producer)
        await asyncio.wait_for(client.lost, TIMEOUT)
        server.close()
        await server.wait_closed()
        return bytes(client.data), sproto.sent

    data, sent = run(main())
    assert len(data) == sent
    assert data == chunk * (sent // len(chunk))


def test_close_reaches_peer_before_loop_runs_again(loop: Any) -> None:
    """A transport closed just before run_until_complete() returns has
    closed its socket when that returns: connection_lost runs in the same
    last iteration as the loop's stop, and the peer sees EOF at once, with
    no further run of the loop (as in asyncio's loop)."""
    a, b = socket.socketpair()
    b.setblocking(False)
    lost: list[Any] = []

    class Proto(asyncio.Protocol):
        def connection_lost(self, exc: Any) -> None:
            lost.append(exc)

    async def main() -> None:
        transport, _ = await loop.create_connection(Proto, sock=a)
        transport.write(b"last words")
        transport.close()

    loop.run_until_complete(main())
    assert lost == [None]
    data = b""
    for _ in range(2):  # the data, then EOF: no waiting, no loop run
        chunk = b.recv(4096)
        if not chunk:
            break
        data += chunk
    else:
        pytest.fail("no EOF on the peer after run_until_complete()")
    assert data == b"last words"
    b.close()


