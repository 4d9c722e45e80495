"""The accept path: ringloop sets up a plain server's connections in C,
with no Python frame of its own per connection, and keeps what asyncio
does there: the socket object, extra info, the error paths (a protocol
factory that raises, EMFILE) and a loop type with its own
_make_socket_transport."""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import resource
import socket
import sys
import threading
import warnings
from asyncio import trsock
from typing import Any, Callable

import pytest

import ringloop
from conftest import make_factory, raise_nofile, run_with

N = 200
PKG_DIR = os.path.dirname(os.path.abspath(ringloop.__file__)) + os.sep


def _attached(server: Any) -> int:
    """The server's count of attached transports (asyncio 3.13 counts its
    _clients instead)."""
    count = getattr(server, "_active_count", None)
    return len(server._clients) if count is None else count


def _connect_many(port: int, n: int, socks: list[socket.socket],
                  errors: list[BaseException]) -> None:
    try:
        for _ in range(n):
            socks.append(socket.create_connection(("127.0.0.1", port)))
    except BaseException as exc:  # reported by the test
        errors.append(exc)


def test_no_python_frame_per_connection(kind: str) -> None:
    limits = raise_nofile(4 * N + 256)
    if limits is None:
        pytest.skip(f"RLIMIT_NOFILE's hard limit is below {4 * N + 256}")
    ours: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        code = frame.f_code
        if event == "call" and code.co_filename.startswith(PKG_DIR):
            ours.append(f"{code.co_filename}:{code.co_name}")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        made: list[Any] = []
        all_made = loop.create_future()

        class Proto(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                made.append(transport)
                if len(made) == N:
                    all_made.set_result(None)

        server = await loop.create_server(Proto, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        socks: list[socket.socket] = []
        errors: list[BaseException] = []
        client = threading.Thread(target=_connect_many,
                                  args=(port, N, socks, errors))
        # Earlier tests' garbage (loops, transports) has __del__ methods
        # of ours: collect it before, not during.
        gc.collect()
        gc.disable()
        # Profiles this thread only: the loop's, not the client's.
        sys.setprofile(profile)
        try:
            client.start()
            await asyncio.wait_for(all_made, 30)
        finally:
            sys.setprofile(None)
            gc.enable()
            client.join()
        assert not errors
        assert len(made) == N
        assert _attached(server) == N
        for s in socks:
            s.close()
        for t in made:
            t.close()
        server.close()
        for _ in range(1000):  # connection_lost detaches each one
            if _attached(server) == 0:
                break
            await asyncio.sleep(0.01)
        assert _attached(server) == 0
        await server.wait_closed()

    try:
        run_with(make_factory(kind), main())
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)
    if kind != "asyncio":
        assert ours == []


def test_accepted_socket(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        made = loop.create_future()
        lost = loop.create_future()

        class Proto(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                made.set_result(transport)

            def connection_lost(self, exc: Any) -> None:
                lost.set_result(exc)

        server = await loop.create_server(Proto, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        reader, writer = await asyncio.open_connection(*addr)
        transport = await made
        client_addr = writer.get_extra_info("sockname")

        tsock = transport.get_extra_info("socket")
        assert isinstance(tsock, trsock.TransportSocket)
        assert tsock.getsockname() == addr
        assert tsock.getpeername() == client_addr
        assert transport.get_extra_info("sockname") == addr
        assert transport.get_extra_info("peername") == client_addr
        assert tsock.family == socket.AF_INET
        assert tsock.type == socket.SOCK_STREAM
        assert tsock.fileno() >= 0
        assert tsock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert "fd=" in repr(tsock) and "laddr=" in repr(tsock)

        raw = tsock._sock
        assert type(raw) is socket.socket
        assert raw.fileno() == tsock.fileno()
        assert raw.gettimeout() == 0.0 and not raw.getblocking()
        assert raw.family == socket.AF_INET and raw.type == socket.SOCK_STREAM
        assert raw.proto == server.sockets[0].proto
        assert raw._io_refs == 0 and raw._closed is False
        r = repr(raw)
        assert r.startswith("<socket.socket fd=") and "raddr=" in r
        # makefile() counts its files in _io_refs; closing one gives it back.
        f = raw.makefile("rb")
        assert raw._io_refs == 1
        f.close()
        assert raw._io_refs == 0 and raw.fileno() >= 0

        writer.write(b"x")
        await writer.drain()
        transport.close()
        await lost
        assert raw.fileno() == -1
        assert "[closed]" in repr(raw)
        raw.close()  # a second close is a no-op
        writer.close()
        server.close()
        await server.wait_closed()

    run(main())


async def _until(cond: Callable[[], Any], timeout: float = 10) -> None:
    for _ in range(int(timeout * 100)):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def _handler_into(seen: list[dict[str, Any]]) -> Callable[..., None]:
    def handler(loop: Any, context: dict[str, Any]) -> None:
        seen.append(context)
    return handler


async def _echo_once(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"ping")
        return await asyncio.wait_for(reader.read(100), 10)
    finally:
        writer.close()


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)
        self.transport.close()


def test_protocol_factory_raises(kind: str, run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        seen: list[dict[str, Any]] = []
        loop.set_exception_handler(_handler_into(seen))
        calls = 0

        def factory() -> Any:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise ValueError("no protocol")
            return _Echo()

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            await _until(lambda: seen)
        assert len(seen) == 1
        ctx = seen[0]
        assert ctx["message"] == ("Error on transport creation for "
                                  "incoming connection")
        assert isinstance(ctx["exception"], ValueError)
        assert "protocol" not in ctx
        # Serving goes on.
        assert await _echo_once(port) == b"ping"
        server.close()
        await server.wait_closed()

    # asyncio reports these in debug mode only (ringloop always does; its
    # debug mode sets connections up in Python).
    run(main(), debug=kind == "asyncio")


def test_protocol_without_connection_made(kind: str, run: Any) -> None:
    """A transport that cannot be made: reported with the protocol."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        seen: list[dict[str, Any]] = []
        loop.set_exception_handler(_handler_into(seen))
        protos: list[Any] = []

        def factory() -> Any:
            if not protos:
                protos.append(object())
                return protos[0]
            return _Echo()

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            await _until(lambda: seen)
        assert len(seen) == 1
        ctx = seen[0]
        assert ctx["message"] == ("Error on transport creation for "
                                  "incoming connection")
        assert isinstance(ctx["exception"], AttributeError)
        assert ctx["protocol"] is protos[0]
        assert await _echo_once(port) == b"ping"
        server.close()  # the broken transport stays attached, as in asyncio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        run(main(), debug=kind == "asyncio")
        gc.collect()


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt])
def test_protocol_factory_exit_propagates(kind: str, exc_type: type) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()

        def factory() -> Any:
            raise exc_type()

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            await asyncio.sleep(5)
        pytest.fail("the exit did not stop the loop")

    loop = make_factory(kind)()
    try:
        with pytest.raises(exc_type):
            loop.run_until_complete(main())
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        try:
            loop.run_until_complete(asyncio.sleep(0))
        except BaseException:
            pass
        loop.close()


def _lowest_free_fd() -> int:
    fd = os.dup(0)
    os.close(fd)
    return fd


def test_emfile_pauses_and_resumes(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        seen: list[dict[str, Any]] = []
        loop.set_exception_handler(_handler_into(seen))
        made = loop.create_future()

        class Proto(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                made.set_result(transport)

        # A connection waits in the backlog before serving starts, so that
        # the first accept runs with no fd left (an accept armed earlier
        # may have its file from before the limit was lowered).
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(8)
        client = socket.create_connection(lsock.getsockname())
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        # No garbage's fd may be closed meanwhile, leaving one free.
        gc.collect()
        gc.disable()
        resource.setrlimit(resource.RLIMIT_NOFILE, (_lowest_free_fd(), hard))
        try:
            server = await loop.create_server(Proto, sock=lsock)
            await _until(lambda: seen or made.done(), 5)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
            gc.enable()
        assert seen, "no accept error reported"
        # asyncio tries the whole backlog's worth of accepts: one report
        # each; ringloop stops at the first.
        for ctx in seen:
            assert ctx["message"] == "socket.accept() out of system resource"
            assert isinstance(ctx["exception"], OSError)
            assert ctx["exception"].errno == errno.EMFILE
            assert isinstance(ctx["socket"], trsock.TransportSocket)
            assert ctx["socket"].fileno() == server.sockets[0].fileno()
        assert not made.done()
        n = len(seen)
        # Serving resumes after asyncio's ACCEPT_RETRY_DELAY (1 s).
        t0 = loop.time()
        transport = await asyncio.wait_for(made, 10)
        assert loop.time() - t0 > 0.5
        assert transport.get_extra_info("peername") == client.getsockname()
        assert len(seen) == n
        transport.close()
        client.close()
        server.close()
        await server.wait_closed()

    run(main())


def test_loop_subclass_make_socket_transport(kind: str) -> None:
    calls: list[Any] = []
    if kind == "asyncio":
        base_cls: Any = asyncio.SelectorEventLoop
    else:
        base_cls = ringloop.Loop

    class Loop(base_cls):  # type: ignore[misc, valid-type]
        def _make_socket_transport(self, sock: Any, protocol: Any,
                                   *args: Any, **kw: Any) -> Any:
            if kw.get("server") is not None:
                calls.append(sock)
            return super()._make_socket_transport(sock, protocol, *args,
                                                  **kw)

    def factory() -> Any:
        if kind == "asyncio":
            return Loop()
        return Loop(backend=kind)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        for _ in range(3):
            assert await _echo_once(port) == b"ping"
        server.close()
        await server.wait_closed()

    run_with(factory, main())
    assert len(calls) == 3
    assert all(type(s) is socket.socket for s in calls)


def test_server_attach_detach(run: Any) -> None:
    """_attach/_detach keep the count and the client set, as asyncio's."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        made: list[Any] = []
        gone = asyncio.Event()

        class Proto(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                made.append(transport)

            def connection_lost(self, exc: Any) -> None:
                gone.set()

        server = await loop.create_server(Proto, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            while not made:
                await asyncio.sleep(0.01)
            assert _attached(server) == 1
            if hasattr(server, "_clients"):
                assert set(server._clients) == {made[0]}
            made[0].close()
            await gone.wait()
        assert _attached(server) == 0
        if hasattr(server, "_clients"):
            assert len(server._clients) == 0
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10)

    run(main())


def test_make_socket_transport_set_on_the_loop(run: Any) -> None:
    """One set on the loop object is called too (asyncio looks it up on
    the loop per connection); so is the loop's own in debug mode."""
    calls: list[Any] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        own = loop._make_socket_transport  # type: ignore[attr-defined]

        def make(sock: Any, protocol: Any, *args: Any, **kw: Any) -> Any:
            if kw.get("server") is not None:
                calls.append(sock)
            return own(sock, protocol, *args, **kw)

        loop._make_socket_transport = make  # type: ignore[attr-defined]
        try:
            server = await loop.create_server(_Echo, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            assert await _echo_once(port) == b"ping"
            server.close()
            await server.wait_closed()
        finally:
            del loop._make_socket_transport  # type: ignore[attr-defined]
        server = await loop.create_server(_Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        assert await _echo_once(port) == b"ping"
        server.close()
        await server.wait_closed()

    run(main(), debug=True)
    assert len(calls) == 1
