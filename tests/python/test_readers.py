"""add_reader / add_writer on pipes and sockets: level-triggered like
asyncio's selector loop."""

from __future__ import annotations

import errno
import os
import socket
import tempfile
from typing import Any

import pytest


@pytest.fixture
def pipe() -> Any:
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


@pytest.fixture
def sockpair() -> Any:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def test_reader_on_pipe(loop: Any, pipe: Any) -> None:
    r, w = pipe
    got: list[bytes] = []

    def on_read() -> None:
        data = os.read(r, 1024)
        got.append(data)
        if b"end" in data:
            loop.remove_reader(r)
            loop.stop()

    loop.add_reader(r, on_read)
    loop.call_soon(os.write, w, b"hello ")
    loop.call_later(0.01, os.write, w, b"world end")
    loop.run_forever()
    assert b"".join(got) == b"hello world end"


def test_reader_is_level_triggered(loop: Any, sockpair: Any) -> None:
    a, b = sockpair
    calls: list[bytes] = []

    def on_read() -> None:
        calls.append(a.recv(1))  # read one byte per call
        if len(calls) == 5:
            loop.remove_reader(a)
            loop.stop()

    b.send(b"abcde")
    loop.add_reader(a, on_read)
    loop.run_forever()
    assert calls == [b"a", b"b", b"c", b"d", b"e"]


def test_reader_once_per_iteration(loop: Any, sockpair: Any) -> None:
    a, b = sockpair
    order: list[str] = []

    def on_read() -> None:
        order.append("read")

    def tick(n: int) -> None:
        order.append("tick")
        if n:
            loop.call_soon(tick, n - 1)
        else:
            loop.remove_reader(a)
            loop.stop()

    b.send(b"x")
    loop.add_reader(a, on_read)
    loop.call_soon(tick, 3)
    loop.run_forever()
    # never more than one reader call between two ticks
    assert "read,read" not in ",".join(order)
    assert order.count("read") >= 2


def test_remove_reader_return_value(loop: Any, sockpair: Any) -> None:
    a, _ = sockpair
    assert loop.remove_reader(a) is False
    loop.add_reader(a, print)
    assert loop.remove_reader(a.fileno()) is True
    assert loop.remove_reader(a) is False
    assert loop.remove_writer(a) is False


def test_reader_not_called_after_remove(loop: Any, sockpair: Any) -> None:
    a, b = sockpair
    calls: list[int] = []
    loop.add_reader(a, calls.append, 1)
    b.send(b"x")
    loop.remove_reader(a)
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    assert calls == []


def test_replace_reader(loop: Any, sockpair: Any) -> None:
    a, b = sockpair
    calls: list[str] = []

    def second() -> None:
        calls.append("second")
        a.recv(10)
        loop.remove_reader(a)
        loop.stop()

    loop.add_reader(a, calls.append, "first")
    loop.add_reader(a, second)
    b.send(b"x")
    loop.run_forever()
    assert calls == ["second"]


def test_writer_on_socket(loop: Any, sockpair: Any) -> None:
    a, b = sockpair
    sent: list[int] = []

    def on_write() -> None:
        sent.append(a.send(b"data"))
        loop.remove_writer(a)
        loop.stop()

    loop.add_writer(a, on_write)
    loop.run_forever()
    assert sent == [4]
    assert b.recv(10) == b"data"


def test_writer_until_buffer_full(loop: Any, sockpair: Any) -> None:
    a, b = sockpair
    total = 0

    def on_write() -> None:
        nonlocal total
        try:
            while True:
                total += a.send(b"x" * 65536)
        except BlockingIOError:
            pass
        # full now: the writer must not run again until the peer reads
        loop.remove_writer(a)
        loop.add_reader(b, drain)

    def drain() -> None:
        nonlocal total
        while total:
            try:
                total -= len(b.recv(1 << 20))
            except BlockingIOError:
                break
        if not total:
            loop.remove_reader(b)
            loop.stop()

    loop.add_writer(a, on_write)
    loop.run_forever()
    assert total == 0


def test_reader_and_writer_same_fd(loop: Any, sockpair: Any) -> None:
    a, b = sockpair
    events: set[str] = set()

    def check() -> None:
        if events == {"r", "w"}:
            loop.remove_reader(a)
            loop.remove_writer(a)
            loop.stop()

    def on_read() -> None:
        a.recv(10)
        events.add("r")
        check()

    def on_write() -> None:
        events.add("w")
        loop.remove_writer(a)
        check()

    loop.add_reader(a, on_read)
    loop.add_writer(a, on_write)
    b.send(b"ping")
    loop.call_later(5, loop.stop)
    loop.run_forever()
    assert events == {"r", "w"}


def test_reader_eof(loop: Any, sockpair: Any) -> None:
    a, b = sockpair
    got: list[bytes] = []

    def on_read() -> None:
        data = a.recv(10)
        got.append(data)
        if not data:
            loop.remove_reader(a)
            loop.stop()

    loop.add_reader(a, on_read)
    b.send(b"last")
    loop.call_later(0.01, b.shutdown, socket.SHUT_WR)
    loop.run_forever()
    assert got[-1] == b"" and b"".join(got) == b"last"


def test_fileno_object(loop: Any, sockpair: Any) -> None:
    a, b = sockpair

    class Wrapper:
        def fileno(self) -> int:
            return a.fileno()

    seen: list[bool] = []

    def on_read() -> None:
        seen.append(True)
        a.recv(1)
        loop.remove_reader(Wrapper())
        loop.stop()

    loop.add_reader(Wrapper(), on_read)
    b.send(b"x")
    loop.run_forever()
    assert seen == [True]


def test_bad_fds(loop: Any) -> None:
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop.add_reader(-1, print)
    with pytest.raises(ValueError, match="Invalid file object"):
        loop.add_reader(object(), print)
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError) as info:
        loop.add_reader(r, print)
    assert info.value.errno == errno.EBADF


def test_regular_file_refused(loop: Any) -> None:
    with tempfile.TemporaryFile() as f:
        with pytest.raises(PermissionError):
            loop.add_reader(f.fileno(), print)


def test_fd_reuse_after_remove_and_close(loop: Any) -> None:
    # remove, close, and a new socket gets the same fd number: it must work
    for round_ in range(5):
        a, b = socket.socketpair()
        a.setblocking(False)
        got: list[bytes] = []

        def on_read(a: socket.socket = a, got: list[bytes] = got) -> None:
            got.append(a.recv(10))
            loop.remove_reader(a)
            loop.stop()

        loop.add_reader(a, on_read)
        loop.call_soon(b.send, b"r%d" % round_)
        loop.run_forever()
        assert got == [b"r%d" % round_]
        a.close()
        b.close()


def test_reader_exception_goes_to_handler(loop: Any, sockpair: Any) -> None:
    a, b = sockpair
    errors: list[BaseException] = []

    def on_read() -> None:
        a.recv(10)
        loop.remove_reader(a)
        loop.call_soon(loop.stop)
        raise OSError("reader failed")

    loop.set_exception_handler(lambda lp, c: errors.append(c["exception"]))
    loop.add_reader(a, on_read)
    b.send(b"x")
    loop.run_forever()
    assert [str(e) for e in errors] == ["reader failed"]


def test_close_with_readers(loop_factory: Any, sockpair: Any) -> None:
    a, b = sockpair
    loop = loop_factory()
    loop.add_reader(a, print)
    loop.add_writer(b, print)
    loop.close()
    assert loop.remove_reader(a) is False
