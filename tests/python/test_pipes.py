"""Pipe transports (loop.connect_read_pipe / connect_write_pipe) on pipes,
FIFOs, character devices, PTYs and sockets: data verified byte for byte,
EOF, close and abort, the reader or writer vanishing, flow control and bad
input, on stock asyncio and on both ringloop backends."""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import random
import socket
import sys
import tempfile
import warnings
from typing import Any

import pytest

TIMEOUT = 30


def _pattern(n: int, seed: int = 0) -> bytes:
    """n reproducible pseudo-random bytes."""
    return random.Random(seed).randbytes(n)


class Reader(asyncio.Protocol):
    """Keeps what a read pipe transport delivers."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport: Any = None
        self.data = bytearray()
        self.events: list[str] = []
        self.lost_exc: Any = "not called"
        self.lost = loop.create_future()
        self.waiter: asyncio.Future[None] | None = None
        self.want = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        assert isinstance(data, bytes) and data
        assert self.events == ["made"]
        self.data += data
        if self.waiter and not self.waiter.done() and \
                len(self.data) >= self.want:
            self.waiter.set_result(None)

    async def until(self, n: int) -> None:
        """Wait until n bytes in all have arrived."""
        if len(self.data) < n:
            self.want = n
            self.waiter = asyncio.get_running_loop().create_future()
            await asyncio.wait_for(self.waiter, TIMEOUT)

    def eof_received(self) -> None:
        self.events.append("eof")

    def connection_lost(self, exc: Any) -> None:
        self.events.append("lost")
        self.lost_exc = exc
        self.lost.set_result(None)


class Writer(asyncio.BaseProtocol):
    """Records what a write pipe transport tells its protocol."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.events: list[str] = []
        self.lost_exc: Any = "not called"
        self.lost = asyncio.get_running_loop().create_future()
        self.resumed: asyncio.Event = asyncio.Event()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")

    def pause_writing(self) -> None:
        self.events.append("pause")
        self.resumed.clear()

    def resume_writing(self) -> None:
        self.events.append("resume")
        self.resumed.set()

    def connection_lost(self, exc: Any) -> None:
        self.events.append("lost")
        self.lost_exc = exc
        self.lost.set_result(None)


async def _read_end(proto: Any = None) -> tuple[Any, Any, int]:
    """A read pipe transport on a new pipe: (transport, protocol, write
    end's fd)."""
    r, w = os.pipe()
    t, p = await asyncio.get_running_loop().connect_read_pipe(
        proto or Reader, open(r, "rb", 0))
    return t, p, w


async def _write_end() -> tuple[Any, Any, int]:
    """A write pipe transport on a new pipe: (transport, protocol, read
    end's fd, non-blocking)."""
    r, w = os.pipe()
    os.set_blocking(r, False)
    t, p = await asyncio.get_running_loop().connect_write_pipe(
        Writer, open(w, "wb", 0))
    return t, p, r


def _reading(t: Any) -> bool:
    """transport.is_reading(); asyncio's read pipes lack it before 3.11."""
    try:
        return bool(t.is_reading())
    except NotImplementedError:
        assert sys.version_info < (3, 11)
        return not t.is_closing() and not getattr(t, "_paused", False)


async def _drain_fd(fd: int, n: int) -> bytes:
    """Read n bytes from a non-blocking fd without the loop's pipe code."""
    loop = asyncio.get_running_loop()
    got = bytearray()
    ready = asyncio.Event()
    loop.add_reader(fd, ready.set)
    try:
        while len(got) < n:
            await asyncio.wait_for(ready.wait(), TIMEOUT)
            ready.clear()
            try:
                chunk = os.read(fd, n - len(got))
            except BlockingIOError:
                continue
            if not chunk:
                break
            got += chunk
    finally:
        loop.remove_reader(fd)
    return bytes(got)


# ---- read pipes ------------------------------------------------------------

def test_read_pipe_data_eof(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        pipe = open(r, "rb", buffering=0)
        t, p = await loop.connect_read_pipe(Reader, pipe)
        assert p.transport is t and p.events == ["made"]
        assert t.get_extra_info("pipe") is pipe
        assert _reading(t) and not t.is_closing()
        assert not os.get_blocking(r)  # as asyncio sets it
        os.write(w, b"1")
        await p.until(1)
        os.write(w, b"2345")
        await p.until(5)
        os.close(w)
        await asyncio.wait_for(p.lost, TIMEOUT)
        assert bytes(p.data) == b"12345"
        assert p.events == ["made", "eof", "lost"]
        assert p.lost_exc is None
        assert t.is_closing() and pipe.closed
        t.close()  # idempotent

    run(main())


def test_read_pipe_close(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        pipe = open(r, "rb", buffering=0)
        t, p = await loop.connect_read_pipe(Reader, pipe)
        t.close()
        assert t.is_closing() and not _reading(t)
        await asyncio.wait_for(p.lost, TIMEOUT)
        assert p.events == ["made", "lost"] and p.lost_exc is None
        assert pipe.closed
        os.close(w)

    run(main())


def test_read_pipe_pause_resume(run: Any) -> None:
    async def main() -> None:
        t, p, w = await _read_end()
        os.write(w, b"before")
        await p.until(6)
        t.pause_reading()
        t.pause_reading()  # idempotent
        assert not _reading(t)
        os.write(w, b"while paused")
        for _ in range(20):
            await asyncio.sleep(0)
        assert bytes(p.data) == b"before"
        t.resume_reading()
        assert _reading(t)
        await p.until(18)
        assert bytes(p.data) == b"beforewhile paused"
        os.close(w)
        await asyncio.wait_for(p.lost, TIMEOUT)

    run(main())


def test_read_pipe_large(run: Any) -> None:
    """4 MiB written by a thread into a pipe arrive intact."""
    payload = _pattern(4 << 20, 1)

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        t, p, w = await _read_end()

        def feed() -> None:
            with open(w, "wb", buffering=0) as f:
                f.write(payload)

        await asyncio.gather(loop.run_in_executor(None, feed),
                             asyncio.wait_for(p.lost, TIMEOUT))
        assert p.events == ["made", "eof", "lost"]
        return bytes(p.data)

    assert run(main()) == payload


def test_read_pty(run: Any) -> None:
    """A PTY master: data, then EIO once the slave side is closed."""
    async def main() -> tuple[bytes, Any]:
        loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        os.set_blocking(slave, False)
        import tty
        tty.setraw(slave)
        t, p = await loop.connect_read_pipe(Reader, open(master, "rb", 0))
        os.write(slave, b"hello pty")
        await p.until(9)
        os.close(slave)
        await asyncio.wait_for(p.lost, TIMEOUT)
        return bytes(p.data), p.lost_exc

    data, exc = run(main())
    assert data == b"hello pty"
    # Linux: reading a master whose slave is closed fails with EIO, which
    # asyncio hands to connection_lost().
    assert isinstance(exc, OSError) and exc.errno == errno.EIO


def test_read_pipe_socket_and_fifo(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        t, p = await loop.connect_read_pipe(Reader, a)
        b.sendall(b"over a socket")
        b.close()
        await asyncio.wait_for(p.lost, TIMEOUT)
        assert bytes(p.data) == b"over a socket" and p.lost_exc is None
        assert a.fileno() == -1  # the transport closed it

        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "fifo")
            os.mkfifo(path)
            rfd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            wfd = os.open(path, os.O_WRONLY)
            t, p = await loop.connect_read_pipe(Reader, open(rfd, "rb", 0))
            os.write(wfd, b"through a fifo")
            os.close(wfd)
            await asyncio.wait_for(p.lost, TIMEOUT)
            assert bytes(p.data) == b"through a fifo"
            assert p.events == ["made", "eof", "lost"]

    run(main())


def test_read_pipe_protocol_error(run: Any) -> None:
    """data_received() raising: asyncio's pipe transport calls it from a loop
    callback, so the error goes to the exception handler and reading goes
    on (its socket transports would close instead)."""
    class Boom(Reader):
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            raise ZeroDivisionError("boom")

    async def main() -> tuple[list[Any], Any, bytes]:
        loop = asyncio.get_running_loop()
        seen: list[Any] = []
        loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))
        t, p, w = await _read_end(Boom)
        os.write(w, b"x")
        await p.until(1)
        os.write(w, b"y")
        await p.until(2)
        os.close(w)
        await asyncio.wait_for(p.lost, TIMEOUT)
        return seen, p.lost_exc, bytes(p.data)

    seen, exc, data = run(main())
    assert data == b"xy" and exc is None
    assert [type(c.get("exception")) for c in seen] == [ZeroDivisionError] * 2


# ---- write pipes -----------------------------------------------------------

def test_write_pipe_data_close(run: Any) -> None:
    payload = _pattern(200_000, 2)  # more than a pipe holds: some is queued

    async def main() -> None:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        os.set_blocking(r, False)
        pipe = open(w, "wb", buffering=0)
        t, p = await loop.connect_write_pipe(Writer, pipe)
        assert p.events == ["made"] and t.get_extra_info("pipe") is pipe
        assert t.can_write_eof() and not t.is_closing()
        t.write(b"")  # nothing to do
        t.write(payload[:1000])
        t.writelines([payload[1000:5000], memoryview(payload)[5000:]])
        assert t.get_write_buffer_size() > 0
        t.close()
        assert t.is_closing()
        t.write(b"dropped: the transport is closing")
        got = await _drain_fd(r, len(payload) + 100)
        await asyncio.wait_for(p.lost, TIMEOUT)
        assert got == payload
        assert p.lost_exc is None and pipe.closed
        assert t.get_write_buffer_size() == 0
        os.close(r)

    run(main())


def test_write_pipe_write_eof(run: Any) -> None:
    async def main() -> None:
        t, p, r = await _write_end()
        t.write(b"last words")
        t.write_eof()  # a pipe's write_eof() closes it
        assert t.is_closing()
        await asyncio.wait_for(p.lost, TIMEOUT)
        assert await _drain_fd(r, 100) == b"last words"  # then EOF
        os.close(r)

    run(main())


def test_write_pipe_abort_drops_queue(run: Any) -> None:
    async def main() -> None:
        t, p, r = await _write_end()
        t.write(b"x" * (1 << 20))
        assert t.get_write_buffer_size() > 0
        t.abort()
        await asyncio.wait_for(p.lost, TIMEOUT)
        assert p.lost_exc is None and t.get_write_buffer_size() == 0
        os.close(r)

    run(main())


def test_write_pipe_reader_vanished_idle(run: Any) -> None:
    """Nothing queued when the read end closes: connection_lost(None)."""
    async def main() -> Any:
        t, p, r = await _write_end()
        t.write(b"small")
        os.close(r)
        await asyncio.wait_for(p.lost, TIMEOUT)
        assert t.is_closing()
        t.write(b"after the reader went: dropped, no exception")
        return p.lost_exc

    assert run(main()) is None


def test_write_pipe_reader_vanished_with_queue(run: Any) -> None:
    """Data queued when the read end closes: BrokenPipeError."""
    async def main() -> Any:
        t, p, r = await _write_end()
        t.write(b"y" * (1 << 20))
        assert t.get_write_buffer_size() > 0
        os.close(r)
        await asyncio.wait_for(p.lost, TIMEOUT)
        assert t.get_write_buffer_size() == 0
        return p.lost_exc

    assert isinstance(run(main()), BrokenPipeError)


def test_write_pipe_socket_peer_closed(run: Any) -> None:
    async def main() -> Any:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        t, p = await loop.connect_write_pipe(Writer, a)
        t.write(b"1")
        assert b.recv(10) == b"1"
        b.close()
        await asyncio.wait_for(p.lost, TIMEOUT)
        return p.lost_exc

    assert run(main()) is None


def test_write_pipe_flow_control(run: Any) -> None:
    """pause_writing() past the high-water mark, resume_writing() once the
    queue drains below the low one; every byte arrives."""
    payload = _pattern(1 << 20, 3)

    async def main() -> tuple[list[str], bytes]:
        t, p, r = await _write_end()
        t.set_write_buffer_limits(high=1024, low=256)
        assert t.get_write_buffer_limits() == (256, 1024)
        with pytest.raises(ValueError):
            t.set_write_buffer_limits(high=1, low=2)
        for i in range(0, len(payload), 4096):
            t.write(payload[i:i + 4096])
        assert "pause" in p.events
        assert t.get_write_buffer_size() > 1024
        got = await _drain_fd(r, len(payload))
        await asyncio.wait_for(p.resumed.wait(), TIMEOUT)
        assert t.get_write_buffer_size() == 0
        t.close()
        await asyncio.wait_for(p.lost, TIMEOUT)
        os.close(r)
        return p.events, got

    events, got = run(main())
    assert events[:3] == ["made", "pause", "resume"]
    assert events[-1] == "lost"
    assert got == payload


def test_write_pty(run: Any) -> None:
    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        import tty
        tty.setraw(slave)
        os.set_blocking(master, False)
        t, p = await loop.connect_write_pipe(Writer, open(slave, "wb", 0))
        t.write(b"to the pty")
        got = await _drain_fd(master, 10)
        t.close()
        await asyncio.wait_for(p.lost, TIMEOUT)
        os.close(master)
        assert p.lost_exc is None
        return got

    assert run(main()) == b"to the pty"


def test_write_char_device(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        t, p = await loop.connect_write_pipe(Writer, open(os.devnull, "wb"))
        t.write(b"z" * (1 << 20))
        assert t.get_write_buffer_size() == 0  # /dev/null takes it all
        t.close()
        await asyncio.wait_for(p.lost, TIMEOUT)

    run(main())


def test_pipe_to_pipe(run: Any) -> None:
    """A write pipe transport feeding a read pipe transport on one loop."""
    payload = _pattern(8 << 20, 4)

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        rt, rp = await loop.connect_read_pipe(Reader, open(r, "rb", 0))
        wt, wp = await loop.connect_write_pipe(Writer, open(w, "wb", 0))
        view = memoryview(payload)
        for i in range(0, len(payload), 1 << 20):
            wt.write(view[i:i + (1 << 20)])
        wt.close()
        await asyncio.wait_for(asyncio.gather(wp.lost, rp.lost), TIMEOUT)
        assert wp.lost_exc is None and rp.lost_exc is None
        return bytes(rp.data)

    assert run(main()) == payload


# ---- bad input and misuse ------------------------------------------------------

# asyncio's own pipe transports fail in __del__ after refusing a file.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_pipe_rejects_files_and_closed(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with tempfile.TemporaryFile() as f:
            with pytest.raises(ValueError, match="pipes"):
                await loop.connect_read_pipe(Reader, f)
            with pytest.raises(ValueError, match="pipes"):
                await loop.connect_write_pipe(Writer, f)
        r, w = os.pipe()
        rp, wp = open(r, "rb", 0), open(w, "wb", 0)
        rp.close()
        wp.close()
        with pytest.raises(ValueError):
            await loop.connect_read_pipe(Reader, rp)
        with pytest.raises(ValueError):
            await loop.connect_write_pipe(Writer, wp)
        with pytest.raises((AttributeError, TypeError, ValueError)):
            await loop.connect_read_pipe(Reader, object())

    run(main())


def test_pipe_wrong_direction(run: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        t, p, w = await _read_end()
        with pytest.raises((AttributeError, NotImplementedError)):
            t.write(b"a read pipe cannot write")
        t.close()
        await asyncio.wait_for(p.lost, TIMEOUT)
        wt, wp = await loop.connect_write_pipe(Writer, open(w, "wb", 0))
        with pytest.raises((TypeError, AssertionError)):
            wt.write("text, not bytes")
        wt.close()
        await asyncio.wait_for(wp.lost, TIMEOUT)

    run(main())


def test_pipe_closed_behind_transport(run: Any) -> None:
    """The pipe object closed under a reading transport: close() still ends
    in connection_lost(), and the fd number works for the next pipe."""
    async def main() -> tuple[list[str], bytes]:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        pipe = open(r, "rb", 0)
        t, p = await loop.connect_read_pipe(Reader, pipe)
        await asyncio.sleep(0)  # reading
        pipe.close()
        t.close()
        await asyncio.wait_for(p.lost, TIMEOUT)
        os.close(w)
        t2, p2, w2 = await _read_end()
        os.write(w2, b"next pipe")
        await p2.until(9)
        os.close(w2)
        await asyncio.wait_for(p2.lost, TIMEOUT)
        return p.events, bytes(p2.data)

    assert run(main()) == (["made", "lost"], b"next pipe")


def test_write_pipe_write_error(run: Any) -> None:
    """A write the kernel refuses (EIO from a PTY whose master is closed)
    ends in connection_lost(OSError); later writes are dropped."""
    async def main() -> Any:
        loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        t, p = await loop.connect_write_pipe(Writer, open(slave, "wb", 0))
        os.close(master)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t.write(b"nobody reads this")
            await asyncio.wait_for(p.lost, TIMEOUT)
            t.write(b"dropped")
        return p.lost_exc

    exc = run(main())
    assert isinstance(exc, OSError) and exc.errno == errno.EIO


def test_unclosed_pipe_transport_warns(loop_factory: Any) -> None:
    loop = loop_factory()
    try:
        r, w = os.pipe()
        rpipe, wpipe = open(r, "rb", 0), open(w, "wb", 0)

        async def connect() -> tuple[Any, Any]:
            rt, _ = await loop.connect_read_pipe(asyncio.Protocol, rpipe)
            wt, _ = await loop.connect_write_pipe(asyncio.BaseProtocol,
                                                  wpipe)
            return rt, wt

        rt, wt = loop.run_until_complete(connect())
    finally:
        loop.close()
    assert "open" in repr(rt) and "open" in repr(wt)
    with pytest.warns(ResourceWarning, match="unclosed transport"):
        del rt, wt
        gc.collect()
    assert rpipe.closed and wpipe.closed


def test_pipe_after_loop_closed(loop_factory: Any) -> None:
    loop = loop_factory()
    loop.close()
    r, w = os.pipe()
    with open(r, "rb", 0) as rpipe, open(w, "wb", 0):
        coro = loop.connect_read_pipe(Reader, rpipe)
        try:
            with pytest.raises(RuntimeError, match="closed"):
                loop.run_until_complete(coro)
        finally:
            coro.close()


def test_read_pipe_buffered_protocol(backend: str) -> None:
    """ringloop also reads a pipe into a BufferedProtocol (asyncio's pipe
    transport only knows data_received())."""
    import ringloop

    class Buf(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buf = bytearray(1000)
            self.got = bytearray()
            self.lost = asyncio.get_running_loop().create_future()

        def get_buffer(self, sizehint: int) -> Any:
            return self.buf

        def buffer_updated(self, nbytes: int) -> None:
            self.got += self.buf[:nbytes]

        def connection_lost(self, exc: Any) -> None:
            self.lost.set_result(exc)

    payload = _pattern(300_000, 5)

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        t, p, w = await _read_end(Buf)
        wt, wp = await loop.connect_write_pipe(Writer, open(w, "wb", 0))
        wt.write(payload)
        wt.close()
        assert await asyncio.wait_for(p.lost, TIMEOUT) is None
        return bytes(p.got)

    assert ringloop.run(main(), backend=backend) == payload


@pytest.mark.skipif(sys.platform != "linux", reason="Linux fd semantics")
def test_pipes_leak_no_fds(run: Any) -> None:
    def nfds() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(20):
            r, w = os.pipe()
            rt, rp = await loop.connect_read_pipe(Reader, open(r, "rb", 0))
            wt, wp = await loop.connect_write_pipe(Writer, open(w, "wb", 0))
            wt.write(b"ping")
            wt.close()
            await asyncio.wait_for(asyncio.gather(rp.lost, wp.lost), TIMEOUT)
            assert bytes(rp.data) == b"ping"

    run(main())  # warm up (executor, loop internals)
    before = nfds()
    run(main())
    assert nfds() == before

