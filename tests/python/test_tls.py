"""TLS (asyncio.sslproto over the loop's stream transports): servers and
clients in the protocol and streams APIs, Unix sockets, accepted sockets,
start_tls on both sides, sendfile, handshake and shutdown timeouts, failed
verification, a client that vanishes mid-handshake, and argument errors, on
stock asyncio and both ringloop backends. The certificates come from
trustme (a throwaway CA) at test time."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import os
import re
import socket
import ssl
import sys
import tempfile
import threading
import time
import warnings
from typing import Any, Awaitable, Callable

import pytest

from conftest import Certs, run_with

TIMEOUT = 30  # a hang guard, never a measurement
HANDSHAKE_TIMEOUT = 0.2  # for handshakes that are never going to finish
_PY311 = sys.version_info >= (3, 11)


@pytest.fixture(scope="module")
def big() -> bytes:
    return os.urandom(16 << 20)


@pytest.fixture
def no_leaks() -> Any:
    """Fails the test if a transport or socket was left unclosed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    leaks = [str(w.message) for w in caught
             if issubclass(w.category, ResourceWarning)]
    assert not leaks


async def _echo(reader: Any, writer: Any) -> None:
    while True:
        data = await reader.read(65536)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()


class _EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def connection_lost(self, exc: Any) -> None:
        # A no-op on 3.11+; on 3.10 a TLS transport that the peer closed
        # still warns as unclosed unless closed here.
        self.transport.close()


class _Collector(asyncio.BufferedProtocol):
    """Collects what it receives until `want` bytes have come."""

    def __init__(self, want: int = 0) -> None:
        loop = asyncio.get_running_loop()
        self.want = want
        self.got = bytearray()
        self.buf = bytearray(65536)
        self.full: asyncio.Future[bytes] = loop.create_future()
        self.lost: asyncio.Future[Any] = loop.create_future()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> Any:
        # A view: sslproto reads into slices of it.
        return memoryview(self.buf)

    def buffer_updated(self, nbytes: int) -> None:
        self.got += self.buf[:nbytes]
        if len(self.got) >= self.want and not self.full.done():
            self.full.set_result(bytes(self.got))

    def eof_received(self) -> None:
        pass

    def connection_lost(self, exc: Any) -> None:
        if not self.full.done():
            self.full.set_exception(ConnectionError("lost early"))
        self.lost.set_result(exc)

    async def until(self, want: int) -> bytes:
        self.want = want
        if len(self.got) >= want:
            return bytes(self.got)
        loop = asyncio.get_running_loop()
        self.full = loop.create_future()
        return await asyncio.wait_for(self.full, TIMEOUT)


def _port(server: Any) -> int:
    return server.sockets[0].getsockname()[1]


# ---- echo ----------------------------------------------------------------

def test_echo_protocols_16mib(run: Any, certs: Certs, big: bytes,
                              no_leaks: Any) -> None:
    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_EchoProtocol, "127.0.0.1", 0,
                                          ssl=certs.server)
        async with server:
            tr, proto = await asyncio.wait_for(loop.create_connection(
                _Collector, "127.0.0.1", _port(server), ssl=certs.client,
                server_hostname="localhost"), TIMEOUT)
            assert tr.get_extra_info("peercert") is not None
            assert isinstance(tr.get_extra_info("ssl_object"), ssl.SSLObject)
            tr.write(big)
            got = await proto.until(len(big))
            tr.close()
            await asyncio.wait_for(proto.lost, TIMEOUT)
            return got

    assert run(main()) == big


def test_echo_streams_16mib(run: Any, certs: Certs, big: bytes,
                            no_leaks: Any) -> None:
    async def main() -> bytes:
        server = await asyncio.start_server(_echo, "127.0.0.1", 0,
                                            ssl=certs.server)
        async with server:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                "127.0.0.1", _port(server), ssl=certs.client,
                server_hostname="localhost"), TIMEOUT)

            async def send() -> None:
                writer.write(big)
                await writer.drain()

            sender = asyncio.ensure_future(send())
            got = await asyncio.wait_for(reader.readexactly(len(big)),
                                         TIMEOUT)
            await sender
            writer.close()
            await writer.wait_closed()
            return got

    assert run(main()) == big


def test_echo_unix(run: Any, certs: Certs, no_leaks: Any) -> None:
    payload = os.urandom(1 << 20)

    async def main() -> bytes:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "sock")
            server = await asyncio.start_unix_server(_echo, path,
                                                     ssl=certs.server)
            async with server:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_unix_connection(
                        path, ssl=certs.client, server_hostname="localhost"),
                    TIMEOUT)
                assert writer.get_extra_info("peercert") is not None
                writer.write(payload)
                got = await asyncio.wait_for(
                    reader.readexactly(len(payload)), TIMEOUT)
                writer.close()
                await writer.wait_closed()
                return got

    assert run(main()) == payload


def test_connect_accepted_socket(run: Any, certs: Certs,
                                 no_leaks: Any) -> None:
    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        server = loop.create_task(loop.connect_accepted_socket(
            _EchoProtocol, a, ssl=certs.server,
            ssl_handshake_timeout=TIMEOUT))
        tr, proto = await asyncio.wait_for(loop.create_connection(
            _Collector, sock=b, ssl=certs.client,
            server_hostname="localhost"), TIMEOUT)
        str_, _ = await asyncio.wait_for(server, TIMEOUT)
        assert str_.get_extra_info("ssl_object").server_side
        tr.write(b"ping" * 1000)
        got = await proto.until(4000)
        tr.close()
        await asyncio.wait_for(proto.lost, TIMEOUT)
        return got

    assert run(main()) == b"ping" * 1000


def test_sendfile(run: Any, certs: Certs, no_leaks: Any) -> None:
    data = os.urandom(300000)

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bytes] = loop.create_future()

        async def handle(reader: Any, writer: Any) -> None:
            done.set_result(await reader.read())
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0,
                                            ssl=certs.server)
        async with server:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", _port(server), ssl=certs.client,
                server_hostname="localhost")
            n = await asyncio.wait_for(
                loop.sendfile(writer.transport, io.BytesIO(data)), TIMEOUT)
            assert n == len(data)
            writer.close()
            got = await asyncio.wait_for(done, TIMEOUT)
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass
            return got

    assert run(main()) == data


# ---- start_tls -----------------------------------------------------------

def test_set_protocol_while_reading(run: Any, no_leaks: Any) -> None:
    """What start_tls does to a transport: pause_reading, set_protocol,
    resume_reading, here between two BufferedProtocols while bytes are
    arriving. They go to the new protocol, whatever the old one's read
    held when the pause came."""
    async def main() -> tuple[bytes, bytes]:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        with b:
            old = _Collector()
            tr, _ = await loop.connect_accepted_socket(lambda: old, a)
            await asyncio.sleep(0)  # reading: a recv is in flight on uring
            b.sendall(b"hello")
            time.sleep(0.05)  # let the bytes in (no loop iteration)
            tr.pause_reading()
            new = _Collector()
            tr.set_protocol(new)
            tr.resume_reading()
            got = await new.until(5)
            tr.close()
            await asyncio.wait_for(new.lost, TIMEOUT)
            return bytes(old.got), got

    assert run(main()) == (b"", b"hello")


class _StartTLSServer(asyncio.Protocol):
    """Plain text until "STARTTLS\\n", then TLS: echoes in upper case."""

    def __init__(self, sslcontext: Any) -> None:
        self.sslcontext = sslcontext
        self.buf = b""
        self.transport: Any = None
        self.tls: Any = None  # the TLS transport, once start_tls returned

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.tls is not None:
            self.tls.write(self.buf.upper())
            self.buf = b""
        elif self.buf == b"STARTTLS\n":
            self.buf = b""
            # No more plain reads: the next bytes are the ClientHello.
            self.transport.pause_reading()
            self.transport.write(b"OK\n")
            asyncio.ensure_future(self.upgrade())

    async def upgrade(self) -> None:
        # Data may come between the handshake and start_tls() returning.
        loop = asyncio.get_running_loop()
        self.tls = await loop.start_tls(
            self.transport, self, self.sslcontext, server_side=True)
        self.data_received(b"")

    def connection_lost(self, exc: Any) -> None:
        if self.tls is not None:
            self.tls.close()  # as _EchoProtocol.connection_lost


@contextlib.asynccontextmanager
async def _starttls_client(certs: Certs) -> Any:
    """A _StartTLSServer, and a plain client that asked it for STARTTLS and
    read "OK": (transport, protocol). The client is a BufferedProtocol, so
    start_tls swaps it for SSLProtocol (a BufferedProtocol itself on 3.11+)
    under it."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _StartTLSServer(certs.server), "127.0.0.1", 0)
    async with server:
        tr, proto = await loop.create_connection(
            _Collector, "127.0.0.1", _port(server))
        tr.write(b"STARTTLS\n")
        assert await proto.until(3) == b"OK\n"
        yield tr, proto


def test_start_tls_protocols(run: Any, certs: Certs, no_leaks: Any) -> None:
    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        async with _starttls_client(certs) as (tr, proto):
            tls = await asyncio.wait_for(loop.start_tls(
                tr, proto, certs.client, server_hostname="localhost"),
                TIMEOUT)
            assert tls.get_protocol() is proto
            assert tr.get_protocol() is not proto
            assert tls.get_extra_info("peercert") is not None
            tls.write(b"hello over tls")
            got = await proto.until(3 + 14)
            tls.close()
            await asyncio.wait_for(proto.lost, TIMEOUT)
            return got

    assert run(main()) == b"OK\nHELLO OVER TLS"


@pytest.mark.skipif(not _PY311, reason="StreamWriter.start_tls is 3.11+")
def test_start_tls_streams(run: Any, certs: Certs, no_leaks: Any) -> None:
    async def handle(reader: Any, writer: Any) -> None:
        assert await reader.readline() == b"STARTTLS\n"
        writer.write(b"OK\n")
        await writer.start_tls(certs.server)
        line = await reader.readline()
        writer.write(line.upper())
        await writer.drain()
        writer.close()

    async def main() -> bytes:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with server:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", _port(server))
            writer.write(b"STARTTLS\n")
            assert await reader.readline() == b"OK\n"
            await asyncio.wait_for(writer.start_tls(
                certs.client, server_hostname="localhost"), TIMEOUT)
            assert writer.get_extra_info("peercert") is not None
            writer.write(b"secret\n")
            got = await asyncio.wait_for(reader.read(), TIMEOUT)
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass
            return got

    assert run(main()) == b"SECRET\n"


def test_start_tls_failed_handshake_closes(run: Any, certs: Certs,
                                           no_leaks: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with _starttls_client(certs) as (tr, proto):
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.wait_for(loop.start_tls(
                    tr, proto, certs.untrusted, server_hostname="localhost"),
                    TIMEOUT)
            assert tr.is_closing()

    run(main())


# ---- faults --------------------------------------------------------------

@pytest.mark.parametrize("why", ["untrusted", "hostname"])
def test_verification_fails(run: Any, certs: Certs, why: str,
                            no_leaks: Any) -> None:
    ctx, name = ((certs.untrusted, "localhost") if why == "untrusted"
                 else (certs.client, "wrong.example"))

    async def main() -> None:
        handled: list[Any] = []
        server = await asyncio.start_server(
            lambda r, w: handled.append(w), "127.0.0.1", 0,
            ssl=certs.server)
        async with server:
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.wait_for(asyncio.open_connection(
                    "127.0.0.1", _port(server), ssl=ctx,
                    server_hostname=name), TIMEOUT)
        assert handled == []

    run(main())


def _client_hello(certs: Certs) -> bytes:
    obj = certs.client.wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(),
                                server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def test_client_vanishes_mid_handshake(run: Any, certs: Certs,
                                       no_leaks: Any) -> None:
    hello = _client_hello(certs)

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        loop.set_debug(True)  # asyncio reports the failure in debug mode
        failed: asyncio.Future[Any] = loop.create_future()

        def handler(lp: Any, context: dict[str, Any]) -> None:
            if not failed.done():
                failed.set_result(context)

        loop.set_exception_handler(handler)
        protocols: list[_Collector] = []
        server = await loop.create_server(
            lambda: protocols.append(_Collector()) or protocols[-1],
            "127.0.0.1", 0, ssl=certs.server)
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", _port(server)))
        await loop.sock_sendall(sock, hello[:len(hello) // 2])
        sock.close()
        context = await asyncio.wait_for(failed, TIMEOUT)
        server.close()
        await asyncio.wait_for(server.wait_closed(), TIMEOUT)
        assert [p.transport for p in protocols] == [None]
        return context

    context = run(main())
    assert context["message"] == ("Error on transport creation for "
                                  "incoming connection")
    assert isinstance(context["exception"], ConnectionError)


def test_handshake_timeout_client(run: Any, certs: Certs,
                                  no_leaks: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with socket.socket() as silent:  # never accepts, never answers
            silent.bind(("127.0.0.1", 0))
            silent.listen(1)
            with pytest.raises(ConnectionAbortedError):
                await asyncio.wait_for(loop.create_connection(
                    asyncio.Protocol, *silent.getsockname(),
                    ssl=certs.client, server_hostname="localhost",
                    ssl_handshake_timeout=HANDSHAKE_TIMEOUT), TIMEOUT)

    run(main())


def test_handshake_timeout_server(run: Any, certs: Certs,
                                  no_leaks: Any) -> None:
    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        handled: list[Any] = []
        server = await asyncio.start_server(
            lambda r, w: handled.append(w), "127.0.0.1", 0,
            ssl=certs.server, ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
        async with server:
            with socket.socket() as sock:  # connects, then says nothing
                sock.setblocking(False)
                await loop.sock_connect(sock, ("127.0.0.1", _port(server)))
                try:
                    got = await asyncio.wait_for(loop.sock_recv(sock, 1),
                                                 TIMEOUT)
                except ConnectionResetError:
                    got = b""
        assert handled == []
        return got

    assert run(main()) == b""  # the server gave up and closed


@pytest.mark.skipif(not _PY311, reason="ssl_shutdown_timeout is 3.11+")
def test_shutdown_timeout(run: Any, certs: Certs, no_leaks: Any) -> None:
    stop = threading.Event()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(TIMEOUT)

    def peer() -> None:
        # Completes the handshake, then never answers the close_notify.
        conn, _ = listener.accept()
        with certs.server.wrap_socket(conn, server_side=True):
            stop.wait(TIMEOUT)

    thread = threading.Thread(target=peer)
    thread.start()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        tr, proto = await asyncio.wait_for(loop.create_connection(
            _Collector, *listener.getsockname(), ssl=certs.client,
            server_hostname="localhost",
            ssl_shutdown_timeout=HANDSHAKE_TIMEOUT), TIMEOUT)
        tr.close()
        # The default shutdown timeout (30 s) would outlast this wait.
        await asyncio.wait_for(proto.lost, TIMEOUT - 10)

    try:
        run(main())
    finally:
        stop.set()
        thread.join()
        listener.close()


# ---- argument errors, compared with asyncio's own ------------------------

class _Env:
    """What the argument-error cases need: the certificates, a TCP port and
    a Unix path that accept connections (and are never answered)."""

    def __init__(self, certs: Certs, tmp: str) -> None:
        self.certs = certs
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(8)
        self.addr = self.tcp.getsockname()
        self.path = os.path.join(tmp, "listener")
        self.unix = socket.socket(socket.AF_UNIX)
        self.unix.bind(self.path)
        self.unix.listen(8)

    def close(self) -> None:
        self.tcp.close()
        self.unix.close()


async def _tls_transport(loop: Any, env: _Env) -> Any:
    a, b = socket.socketpair()
    server = loop.create_task(loop.connect_accepted_socket(
        asyncio.Protocol, a, ssl=env.certs.server))
    tr, _ = await loop.create_connection(
        asyncio.Protocol, sock=b, ssl=env.certs.client,
        server_hostname="localhost")
    (await server)[0].close()
    return tr


def _cases() -> dict[str, Callable[[Any, _Env], Awaitable[Any]]]:
    P = asyncio.Protocol

    async def start_tls_not_a_context(loop: Any, env: _Env) -> Any:
        tr, _ = await loop.create_connection(P, *env.addr)
        try:
            await loop.start_tls(tr, P(), "not a context")
        finally:
            tr.close()

    async def start_tls_over_tls(loop: Any, env: _Env) -> Any:
        tr = await _tls_transport(loop, env)
        try:
            await loop.start_tls(tr, P(), env.certs.client)
        finally:
            tr.close()

    async def ssl_socket(loop: Any, env: _Env) -> Any:
        with env.certs.client.wrap_socket(
                socket.socket(), server_hostname="localhost",
                do_handshake_on_connect=False) as s:
            await loop.create_connection(P, sock=s, ssl=env.certs.client,
                                         server_hostname="localhost")

    async def no_server_hostname(loop: Any, env: _Env) -> Any:
        with socket.socket() as s:
            await loop.create_connection(P, sock=s, ssl=env.certs.client)

    return {
        "server_hostname without ssl": lambda loop, env:
            loop.create_connection(P, *env.addr, server_hostname="x"),
        "handshake timeout without ssl": lambda loop, env:
            loop.create_connection(P, *env.addr, ssl_handshake_timeout=1),
        "shutdown timeout without ssl": lambda loop, env:
            loop.create_connection(P, *env.addr, ssl_shutdown_timeout=1),
        "shutdown timeout with ssl": lambda loop, env:
            loop.create_connection(P, *env.addr, ssl=env.certs.client,
                                   ssl_shutdown_timeout=-1),
        "negative handshake timeout": lambda loop, env:
            loop.create_connection(P, *env.addr, ssl=env.certs.client,
                                   ssl_handshake_timeout=-1),
        "ssl=True on a server": lambda loop, env:
            loop.create_server(P, "127.0.0.1", 0, ssl=True),
        "server handshake timeout without ssl": lambda loop, env:
            loop.create_server(P, "127.0.0.1", 0, ssl_handshake_timeout=1),
        "server shutdown timeout without ssl": lambda loop, env:
            loop.create_server(P, "127.0.0.1", 0, ssl_shutdown_timeout=1),
        "unix without server_hostname": lambda loop, env:
            loop.create_unix_connection(P, env.path, ssl=env.certs.client),
        "unix server_hostname without ssl": lambda loop, env:
            loop.create_unix_connection(P, env.path, server_hostname="x"),
        "unix handshake timeout without ssl": lambda loop, env:
            loop.create_unix_connection(P, env.path,
                                        ssl_handshake_timeout=1),
        "unix server ssl=True": lambda loop, env:
            loop.create_unix_server(P, env.path + "2", ssl=True),
        "accepted handshake timeout without ssl": lambda loop, env:
            loop.connect_accepted_socket(P, env.tcp,
                                         ssl_handshake_timeout=1),
        "streams server_hostname without ssl": lambda loop, env:
            asyncio.open_connection(*env.addr, server_hostname="x"),
        "no server_hostname": no_server_hostname,
        "start_tls with a str": start_tls_not_a_context,
        "start_tls over tls": start_tls_over_tls,
        "SSLSocket": ssl_socket,
    }


def _outcome(factory: Any, case: Any, certs: Certs) -> tuple[str, str]:
    """(exception type, message without object reprs) of the case."""
    async def main() -> tuple[str, str]:
        loop = asyncio.get_running_loop()
        with tempfile.TemporaryDirectory() as tmp:
            env = _Env(certs, tmp)
            try:
                await asyncio.wait_for(case(loop, env), TIMEOUT)
            except Exception as exc:
                # Object reprs differ, and so do class names on 3.10:
                # "BaseEventLoop.create_connection() got an unexpected ..."
                msg = re.sub(r"<[^<>]*>", "<...>", str(exc))
                return type(exc).__name__, re.sub(r"^\w+\.", "", msg)
            finally:
                env.close()
        return ("no error", "")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        return run_with(factory, main())


@pytest.mark.parametrize("case", sorted(_cases()))
def test_argument_errors_as_asyncio(loop_factory: Any, certs: Certs,
                                    case: str) -> None:
    fn = _cases()[case]
    expected = _outcome(asyncio.SelectorEventLoop, fn, certs)
    assert expected[0] != "no error"
    assert _outcome(loop_factory, fn, certs) == expected
