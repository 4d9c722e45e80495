"""The contextvars context of every protocol callback, on stock asyncio and
both ringloop backends (issue 12).

asyncio runs a server's callbacks in copies of the context of the task
that started serving: its accept reader copies that context, each accepted
connection is set up in a task (another copy) where the protocol factory
runs, and the transport's callbacks copy the task's context in turn. A
transport's reads are delivered in one context (its reader callback's),
so what data_received sets is seen by the next data_received and by
eof_received, but connection_made runs in a copy of its own;
connection_lost runs in a copy of the context that closed the transport;
resume_writing and a connection_lost that waited for the write queue run
in the writer callback's context, copied by the write that queued first.

Each callback here records the value of a ContextVar it finds, then sets
it to its own name, so the records say where every context came from.
The expected records are asyncio's own (the test passes on it too). The
loop runs in a copy of the test's context, which must come back untouched:
a callback that ran in the loop's own context would leak into it.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import socket
import subprocess
import sys
import tempfile
from typing import Any, List, Tuple

import pytest

from conftest import Certs

TIMEOUT = 30  # a hang guard, never a measurement
_PY312 = sys.version_info >= (3, 12)

var: contextvars.ContextVar[str] = contextvars.ContextVar(
    "server_context_var", default="unset")

Seen = List[Tuple[str, str]]


class Log:
    """Records (callback, value it found) and marks its context."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, name: str) -> None:
        self.seen.append((name, var.get()))
        var.set(name)


def run_isolated(run: Any, main: Any) -> Any:
    """run(main) in a copy of this context, which must stay as it was."""
    ctx = contextvars.copy_context()
    result = ctx.run(run, main)
    assert var not in ctx, f"the loop's own context got {ctx[var]!r}"
    return result


class Logged:
    """A protocol that logs its callbacks; done when connection_lost."""

    def __init__(self, log: Log, done: asyncio.Future[None]) -> None:
        self.log = log
        self.done = done

    def connection_lost(self, exc: Any) -> None:
        self.log("connection_lost")
        if not self.done.done():
            self.done.set_result(None)


class EchoLog(Logged, asyncio.Protocol):
    """Echoes, logging every callback. Without abort_after, EOF closes it
    (eof_received returns None); with it, it aborts after echoing that."""

    def __init__(self, log: Log, done: asyncio.Future[None],
                 abort_after: bytes | None = None) -> None:
        super().__init__(log, done)
        self.abort_after = abort_after

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.log("connection_made")

    def data_received(self, data: bytes) -> None:
        self.log("data_received " + data.decode())
        self.transport.write(data)
        if data == self.abort_after:
            self.transport.abort()

    def eof_received(self) -> None:
        self.log("eof_received")


def echo_client(addr: Any, family: int, sslctx: Any = None,
                msgs: bytes = b"ab") -> None:
    """Blocking: send each byte, wait for its echo (so that each arrives in
    a data_received of its own), half-close (TLS: wait for the abort)."""
    with socket.socket(family, socket.SOCK_STREAM) as raw:
        raw.settimeout(TIMEOUT)
        raw.connect(addr)
        s = raw
        if sslctx is not None:
            s = sslctx.wrap_socket(raw, server_hostname="localhost")
        for m in msgs:
            s.sendall(bytes([m]))
            assert s.recv(1) == bytes([m])
        try:
            if sslctx is None:
                s.shutdown(socket.SHUT_WR)
            while s.recv(100):
                pass
        except OSError:  # TLS: the server aborted, with no close_notify
            pass


def server_expected(tls: bool) -> Seen:
    """The records of a connection that EchoLog got from echo_client."""
    seen = [("factory", "task"),
            ("connection_made", "factory"),
            # TLS: connection_made runs when the handshake completes, in
            # the raw transport's reader context
            ("data_received a", "connection_made" if tls else "factory"),
            ("data_received b", "data_received a")]
    if tls:
        return seen + [("connection_lost", "data_received b")]
    return seen + [("eof_received", "data_received b"),
                   ("connection_lost", "eof_received")]


@pytest.mark.parametrize("variant", ["tcp", "unix", "tls", "tls_unix"])
def test_server_callbacks(run: Any, certs: Certs, variant: str) -> None:
    tls = variant.startswith("tls")

    async def main() -> Seen:
        loop = asyncio.get_running_loop()
        log = Log()
        done = loop.create_future()

        def factory() -> EchoLog:
            log("factory")
            return EchoLog(log, done, b"b" if tls else None)

        sslctx = certs.server if tls else None
        with tempfile.TemporaryDirectory() as tmp:
            var.set("task")
            if variant.endswith("unix"):
                addr: Any = os.path.join(tmp, "sock")
                family = socket.AF_UNIX
                server = await loop.create_unix_server(factory, addr,
                                                       ssl=sslctx)
            else:
                server = await loop.create_server(factory, "127.0.0.1", 0,
                                                  ssl=sslctx)
                addr = server.sockets[0].getsockname()
                family = socket.AF_INET
            # asyncio copied the context when the server started serving
            var.set("after create_server")
            async with server:
                await loop.run_in_executor(
                    None, echo_client, addr, family,
                    certs.client if tls else None)
                await asyncio.wait_for(done, TIMEOUT)
        return log.seen

    assert run_isolated(run, main()) == server_expected(tls)


def test_connections_start_from_the_servers_context(run: Any) -> None:
    """What one connection's callbacks set, the next one does not see."""
    async def main() -> Seen:
        loop = asyncio.get_running_loop()
        log = Log()
        dones: list[asyncio.Future[None]] = []

        def factory() -> EchoLog:
            log("factory")
            dones.append(loop.create_future())
            return EchoLog(log, dones[-1])

        var.set("task")
        server = await loop.create_server(factory, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        async with server:
            for _ in range(2):
                await loop.run_in_executor(None, echo_client, addr,
                                           socket.AF_INET)
                await asyncio.wait_for(dones[-1], TIMEOUT)
        return log.seen

    assert run_isolated(run, main()) == 2 * server_expected(False)


@pytest.mark.parametrize("how", ["start_serving", "serve_forever"])
def test_server_started_later(run: Any, how: str) -> None:
    """The context is the one of whoever starts serving, when it does."""
    async def main() -> Seen:
        loop = asyncio.get_running_loop()
        log = Log()
        done = loop.create_future()

        def factory() -> EchoLog:
            log("factory")
            return EchoLog(log, done)

        var.set("creator")
        server = await loop.create_server(factory, "127.0.0.1", 0,
                                          start_serving=False)
        addr = server.sockets[0].getsockname()

        async def starter() -> None:
            var.set("task")
            if how == "start_serving":
                await server.start_serving()
            else:
                await server.serve_forever()

        var.set("after create_server")
        task = asyncio.ensure_future(starter())
        await asyncio.sleep(0)
        var.set("after start")
        async with server:
            await loop.run_in_executor(None, echo_client, addr,
                                       socket.AF_INET)
            await asyncio.wait_for(done, TIMEOUT)
        if how == "serve_forever":
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        return log.seen

    assert run_isolated(run, main()) == server_expected(False)


@pytest.mark.parametrize("variant", ["tcp", "unix"])
def test_start_server_client_callback(run: Any, variant: str) -> None:
    async def main() -> Seen:
        loop = asyncio.get_running_loop()
        log = Log()
        done = loop.create_future()

        async def handler(reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
            log("client_connected_cb")
            while True:
                b = await reader.read(1)
                if not b:
                    break
                log("read " + b.decode())
                writer.write(b)
            writer.close()
            await writer.wait_closed()
            done.set_result(None)

        with tempfile.TemporaryDirectory() as tmp:
            var.set("task")
            if variant == "unix":
                addr: Any = os.path.join(tmp, "sock")
                family = socket.AF_UNIX
                server = await asyncio.start_unix_server(handler, addr)
            else:
                server = await asyncio.start_server(handler, "127.0.0.1", 0)
                addr = server.sockets[0].getsockname()
                family = socket.AF_INET
            var.set("after start_server")
            async with server:
                await loop.run_in_executor(None, echo_client, addr, family)
                await asyncio.wait_for(done, TIMEOUT)
        return log.seen

    assert run_isolated(run, main()) == [
        ("client_connected_cb", "task"), ("read a", "client_connected_cb"),
        ("read b", "read a")]


class ClientLog(Logged, asyncio.Protocol):
    """A client that logs every callback and queues what it receives."""

    def __init__(self, log: Log, done: asyncio.Future[None]) -> None:
        super().__init__(log, done)
        self.got: asyncio.Queue[bytes] = asyncio.Queue()

    def connection_made(self, transport: Any) -> None:
        self.log("connection_made")

    def data_received(self, data: bytes) -> None:
        self.log("data_received " + data.decode())
        self.got.put_nowait(data)

    def eof_received(self) -> None:
        self.log("eof_received")


def echo_server(lsock: socket.socket, sslctx: Any) -> None:
    """Blocking: accept one connection and echo it until it ends."""
    conn, _ = lsock.accept()
    with conn:
        conn.settimeout(TIMEOUT)
        s = conn
        try:
            if sslctx is not None:
                s = sslctx.wrap_socket(conn, server_side=True)
            while True:
                b = s.recv(1)
                if not b:
                    break
                s.sendall(b)
        except OSError:  # TLS: the client aborted
            pass


@pytest.mark.parametrize("variant", ["tcp", "unix", "tls"])
def test_client_callbacks(run: Any, certs: Certs, variant: str) -> None:
    tls = variant == "tls"

    async def main() -> tuple[str, Seen]:
        loop = asyncio.get_running_loop()
        log = Log()
        done = loop.create_future()

        def factory() -> ClientLog:
            log("factory")
            return ClientLog(log, done)

        with tempfile.TemporaryDirectory() as tmp:
            if variant == "unix":
                lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                lsock.bind(os.path.join(tmp, "sock"))
            else:
                lsock = socket.socket()
                lsock.bind(("127.0.0.1", 0))
            with lsock:
                lsock.listen()
                lsock.settimeout(TIMEOUT)
                serving = loop.run_in_executor(
                    None, echo_server, lsock, certs.server if tls else None)
                var.set("task")
                if variant == "unix":
                    tr, proto = await loop.create_unix_connection(
                        factory, lsock.getsockname())
                else:
                    tr, proto = await loop.create_connection(
                        factory, *lsock.getsockname(),
                        ssl=certs.client if tls else None,
                        server_hostname="localhost" if tls else None)
                # the factory ran in this task, not in a copy
                after = var.get()
                var.set("writer")
                for m in (b"x", b"y"):
                    tr.write(m)
                    assert await asyncio.wait_for(proto.got.get(),
                                                  TIMEOUT) == m
                var.set("closer")
                if tls:
                    tr.abort()  # no TLS shutdown: the same on 3.10
                else:
                    tr.close()
                await asyncio.wait_for(done, TIMEOUT)
                await serving
        return after, log.seen

    assert run_isolated(run, main()) == ("factory", [
        ("factory", "task"),
        ("connection_made", "factory"),
        ("data_received x", "connection_made" if tls else "factory"),
        ("data_received y", "data_received x"),
        ("connection_lost", "closer")])


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_connect_accepted_socket(run: Any, certs: Certs, tls: bool) -> None:
    async def main() -> tuple[str, Seen]:
        loop = asyncio.get_running_loop()
        log = Log()
        done = loop.create_future()

        def factory() -> EchoLog:
            log("factory")
            return EchoLog(log, done, b"b" if tls else None)

        with socket.socket() as lsock:
            lsock.bind(("127.0.0.1", 0))
            lsock.listen()
            lsock.setblocking(False)
            client = loop.run_in_executor(
                None, echo_client, lsock.getsockname(), socket.AF_INET,
                certs.client if tls else None)
            conn, _ = await asyncio.wait_for(loop.sock_accept(lsock),
                                             TIMEOUT)
            var.set("task")
            await loop.connect_accepted_socket(
                factory, conn, ssl=certs.server if tls else None)
            after = var.get()
            var.set("after connect_accepted_socket")
            await client
            await asyncio.wait_for(done, TIMEOUT)
        return after, log.seen

    assert run_isolated(run, main()) == ("factory", server_expected(tls))


class DatagramLog(Logged, asyncio.DatagramProtocol):
    def __init__(self, log: Log, done: asyncio.Future[None]) -> None:
        super().__init__(log, done)
        self.got: asyncio.Queue[Any] = asyncio.Queue()

    def connection_made(self, transport: Any) -> None:
        self.log("connection_made")

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.log("datagram_received " + data.decode())
        self.got.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        self.log("error_received")
        self.got.put_nowait(exc)

    def pause_writing(self) -> None:
        self.log("pause_writing")

    def resume_writing(self) -> None:
        self.log("resume_writing")


def test_datagram_callbacks(run: Any) -> None:
    async def main() -> tuple[str, Seen]:
        loop = asyncio.get_running_loop()
        log = Log()
        done = loop.create_future()

        def factory() -> DatagramLog:
            log("factory")
            return DatagramLog(log, done)

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind(("127.0.0.1", 0))
            var.set("task")
            tr, proto = await loop.create_datagram_endpoint(
                factory, local_addr=("127.0.0.1", 0))
            after = var.get()
            var.set("after create_datagram_endpoint")
            for m in (b"a", b"b"):
                peer.sendto(m, tr.get_extra_info("sockname"))
                assert await asyncio.wait_for(proto.got.get(), TIMEOUT) == m
            var.set("closer")
            tr.close()
            await asyncio.wait_for(done, TIMEOUT)
        return after, log.seen

    assert run_isolated(run, main()) == ("factory", [
        ("factory", "task"),
        ("connection_made", "factory"),
        ("datagram_received a", "factory"),
        ("datagram_received b", "datagram_received a"),
        ("connection_lost", "closer")])


def test_datagram_error_received(run: Any) -> None:
    """A read error reaches error_received in the reader context."""
    async def main() -> Seen:
        loop = asyncio.get_running_loop()
        log = Log()
        done = loop.create_future()

        def factory() -> DatagramLog:
            log("factory")
            return DatagramLog(log, done)

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gone:
            gone.bind(("127.0.0.1", 0))
            addr = gone.getsockname()
        var.set("task")
        tr, proto = await loop.create_datagram_endpoint(factory,
                                                        remote_addr=addr)
        var.set("sender")
        tr.sendto(b"x")  # refused: the error comes with the next read
        got = await asyncio.wait_for(proto.got.get(), TIMEOUT)
        assert isinstance(got, ConnectionRefusedError)
        var.set("closer")
        tr.close()
        await asyncio.wait_for(done, TIMEOUT)
        return log.seen

    assert run_isolated(run, main()) == [
        ("factory", "task"),
        ("connection_made", "factory"),
        ("error_received", "factory"),
        ("connection_lost", "closer")]


def test_datagram_writer_context(run: Any) -> None:
    """resume_writing, and a connection_lost that waited for the queue, run
    in the context of the sendto() that queued first."""
    async def main() -> Seen:
        loop = asyncio.get_running_loop()
        log = Log()
        done = loop.create_future()
        with tempfile.TemporaryDirectory() as tmp:
            me = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            peer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            with me, peer:
                me.bind(os.path.join(tmp, "me"))
                peer.bind(os.path.join(tmp, "peer"))
                me.connect(peer.getsockname())
                me.setblocking(False)
                var.set("task")
                tr, proto = await loop.create_datagram_endpoint(
                    lambda: DatagramLog(log, done), sock=me)
                tr.set_write_buffer_limits(high=4096)
                sent = 0
                var.set("writer")
                while not tr.get_write_buffer_size():  # the peer is full
                    tr.sendto(b"w" * 1000)
                    sent += 1
                var.set("more")
                while ("pause_writing", "more") not in log.seen:
                    tr.sendto(b"w" * 1000)
                    sent += 1
                var.set("closer")
                tr.close()

                def drain() -> None:
                    peer.settimeout(TIMEOUT)
                    for _ in range(sent):
                        peer.recv(2000)

                await loop.run_in_executor(None, drain)
                await asyncio.wait_for(done, TIMEOUT)
        return log.seen

    assert run_isolated(run, main()) == [
        ("connection_made", "task"),
        ("pause_writing", "more"),
        ("resume_writing", "writer"),
        ("connection_lost", "resume_writing")]


def test_stream_writer_context(run: Any) -> None:
    """resume_writing, and a connection_lost that waited for the queue, run
    in the context of the write() that queued first."""
    class FlowLog(ClientLog):
        def pause_writing(self) -> None:
            self.log("pause_writing")

        def resume_writing(self) -> None:
            self.log("resume_writing")

    async def main() -> Seen:
        loop = asyncio.get_running_loop()
        log = Log()
        done = loop.create_future()
        a, b = socket.socketpair()
        with a, b:
            var.set("task")
            tr, _ = await loop.create_connection(lambda: FlowLog(log, done),
                                                 sock=a)
            var.set("writer")
            big = 8 << 20  # more than the socket buffers take
            tr.write(b"x" * big)
            var.set("closer")
            tr.close()
            var.set("after close")

            def drain() -> None:
                b.settimeout(TIMEOUT)
                n = 0
                while n < big:
                    n += len(b.recv(1 << 20))

            await loop.run_in_executor(None, drain)
            await asyncio.wait_for(done, TIMEOUT)
        return log.seen

    assert run_isolated(run, main()) == [
        ("connection_made", "task"),
        ("pause_writing", "writer"),
        ("resume_writing", "writer"),
        ("connection_lost", "resume_writing")]


def test_resume_reading_context(run: Any) -> None:
    """resume_reading() starts a new reader: a copy of its caller's
    context."""
    async def main() -> Seen:
        loop = asyncio.get_running_loop()
        log = Log()
        done = loop.create_future()
        paused = loop.create_future()

        class Pausing(ClientLog):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport
                super().connection_made(transport)

            def data_received(self, data: bytes) -> None:
                super().data_received(data)
                if data == b"a":
                    self.transport.pause_reading()
                    paused.set_result(None)

        a, b = socket.socketpair()
        with a, b:
            var.set("task")
            tr, _ = await loop.create_connection(lambda: Pausing(log, done),
                                                 sock=a)
            b.sendall(b"a")
            await asyncio.wait_for(paused, TIMEOUT)
            b.sendall(b"b")
            var.set("resumer")
            tr.resume_reading()
            var.set("after resume_reading")
            b.shutdown(socket.SHUT_WR)
            await asyncio.wait_for(done, TIMEOUT)
        return log.seen

    assert run_isolated(run, main()) == [
        ("connection_made", "task"),
        ("data_received a", "task"),
        ("data_received b", "resumer"),
        ("eof_received", "data_received b"),
        ("connection_lost", "eof_received")]


def test_resume_reading_in_data_received(run: Any) -> None:
    """Paused and resumed within data_received: the new reader context is
    a copy of the one the transport read in, and reading goes on."""
    async def main() -> Seen:
        loop = asyncio.get_running_loop()
        log = Log()
        done = loop.create_future()

        class Bouncing(EchoLog):
            def data_received(self, data: bytes) -> None:
                super().data_received(data)
                self.transport.pause_reading()
                var.set("resumer " + data.decode())
                self.transport.resume_reading()

        a, b = socket.socketpair()
        with a, b:
            var.set("task")
            await loop.create_connection(lambda: Bouncing(log, done), sock=a)
            b.setblocking(False)
            for m in (b"a", b"b"):
                await loop.sock_sendall(b, m)
                assert await loop.sock_recv(b, 1) == m
            b.shutdown(socket.SHUT_WR)
            await asyncio.wait_for(done, TIMEOUT)
        return log.seen

    assert run_isolated(run, main()) == [
        ("connection_made", "task"),
        ("data_received a", "task"),
        ("data_received b", "resumer a"),
        ("eof_received", "resumer b"),
        ("connection_lost", "eof_received")]


def test_read_pipe_callbacks(run: Any) -> None:
    async def main() -> tuple[str, Seen]:
        loop = asyncio.get_running_loop()
        log = Log()
        done = loop.create_future()

        def factory() -> ClientLog:
            log("factory")
            return ClientLog(log, done)

        r, w = os.pipe()
        try:
            var.set("task")
            _, proto = await loop.connect_read_pipe(factory,
                                                    os.fdopen(r, "rb", 0))
            after = var.get()
            var.set("after connect_read_pipe")
            for m in (b"a", b"b"):
                os.write(w, m)
                assert await asyncio.wait_for(proto.got.get(), TIMEOUT) == m
        finally:
            os.close(w)
        await asyncio.wait_for(done, TIMEOUT)
        return after, log.seen

    assert run_isolated(run, main()) == ("factory", [
        ("factory", "task"),
        ("connection_made", "factory"),
        ("data_received a", "factory"),
        ("data_received b", "data_received a"),
        # a pipe's EOF schedules eof_received and connection_lost: each
        # runs in a copy of the reader context of its own
        ("eof_received", "data_received b"),
        ("connection_lost", "data_received b")])


def test_write_pipe_callbacks(run: Any) -> None:
    async def main() -> tuple[str, Seen]:
        loop = asyncio.get_running_loop()
        log = Log()
        done = loop.create_future()

        def factory() -> ClientLog:
            log("factory")
            return ClientLog(log, done)

        r, w = os.pipe()
        try:
            var.set("task")
            tr, _ = await loop.connect_write_pipe(factory,
                                                  os.fdopen(w, "wb", 0))
            after = var.get()
            var.set("writer")
            tr.write(b"x")
        finally:
            var.set("closer")
            os.close(r)  # the reader goes: the transport's watch sees it
        await asyncio.wait_for(done, TIMEOUT)
        return after, log.seen

    assert run_isolated(run, main()) == ("factory", [
        ("factory", "task"),
        ("connection_made", "factory"),
        ("connection_lost", "factory")])


# Writes "a", closes its stdout, then waits for its stdin to close.
CHILD = ("import os, sys; os.write(1, b'a'); os.close(1); "
         "sys.stdin.buffer.read()")


def test_subprocess_callbacks(run: Any) -> None:
    async def main() -> tuple[str, Seen]:
        loop = asyncio.get_running_loop()
        log = Log()
        stdout_lost = loop.create_future()
        exited = loop.create_future()
        done = loop.create_future()

        class SubprocessLog(Logged, asyncio.SubprocessProtocol):
            def connection_made(self, transport: Any) -> None:
                log("connection_made")

            def pipe_data_received(self, fd: int, data: bytes) -> None:
                log(f"pipe_data_received {fd} {data.decode()}")

            def pipe_connection_lost(self, fd: int, exc: Any) -> None:
                log(f"pipe_connection_lost {fd}")
                if fd == 1:
                    stdout_lost.set_result(None)

            def process_exited(self) -> None:
                log("process_exited")
                exited.set_result(None)

        def factory() -> SubprocessLog:
            log("factory")
            return SubprocessLog(log, done)

        var.set("task")
        tr, _ = await loop.subprocess_exec(
            factory, sys.executable, "-c", CHILD, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        after = var.get()
        var.set("after subprocess_exec")
        try:
            await asyncio.wait_for(stdout_lost, TIMEOUT)
            var.set("closer")
            tr.get_pipe_transport(0).close()
            await asyncio.wait_for(exited, TIMEOUT)
            await asyncio.wait_for(done, TIMEOUT)
        finally:
            tr.close()
        return after, log.seen

    # The exit: asyncio 3.12+ watches a pidfd with a reader added when the
    # child started; before, its ThreadedChildWatcher reports the exit
    # from a thread, whose context is empty.
    exit_ctx = "factory" if _PY312 else "unset"
    assert run_isolated(run, main()) == ("factory", [
        ("factory", "task"),
        ("connection_made", "factory"),
        ("pipe_data_received 1 a", "factory"),
        ("pipe_connection_lost 1", "factory"),
        ("pipe_connection_lost 0", "closer"),
        ("process_exited", exit_ctx),
        ("connection_lost", exit_ctx)])
