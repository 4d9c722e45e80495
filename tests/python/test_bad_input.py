"""Bad input to every public loop method: ringloop raises what asyncio raises.

Each case is one call with a wrong argument (or on a wrong object, or in a
wrong state). It runs on a fresh stock asyncio loop and, for the ringloop
params, again on a fresh ringloop loop in the same test; the outcome is the
exception type raised (or None), and ringloop's must equal asyncio's. The
expected type is never written down here, so the table stays right on every
Python version; a case whose method or keyword is newer than the running
Python is skipped.

A case with ``running=True`` is a call made from a coroutine on the loop
(awaited if it returns an awaitable); the others are made with the loop
stopped. Whatever a case creates (sockets, files, pipes, servers,
transports, handles, coroutines) is closed after it, whichever loop ran it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import decimal
import fractions
import gc
import inspect
import os
import signal
import socket
import ssl
import sys
import tempfile
import threading
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from conftest import LOOPS, make_factory

#: A case that takes this long hangs: the test fails (no timing asserted;
#: every case here takes well under a second on asyncio and ringloop).
HANG_GUARD = 10.0

P = asyncio.Protocol
DP = asyncio.DatagramProtocol
LOCAL = "127.0.0.1"


def _f(*args: Any) -> None:
    pass


async def _corofn() -> None:
    pass


class _NotAnExecutor:
    """Not an Executor, but one that shuts down (3.10 only warns)."""

    def shutdown(self, wait: bool = True, **kw: Any) -> None:
        pass


class _FileNo:
    """An object whose fileno() returns (or raises) what it is given."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def fileno(self) -> Any:
        if isinstance(self.value, BaseException):
            raise self.value
        return self.value

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<_FileNo {self.value!r}>"


# ---- resources a case makes, closed after it ------------------------------

class Res:
    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self._closers: list[Callable[[], Any]] = []
        self._kept: list[Any] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def _close_later(self, fn: Callable[[], Any]) -> None:
        self._closers.append(fn)

    def tmpdir(self) -> str:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="rl-badinput-")
        return self._tmp.name

    def sock(self, family: int = socket.AF_INET,
             type: int = socket.SOCK_STREAM,
             blocking: bool = False) -> socket.socket:
        s = socket.socket(family, type)
        s.setblocking(blocking)
        self._close_later(s.close)
        return s

    def closed_sock(self, type: int = socket.SOCK_STREAM) -> socket.socket:
        s = socket.socket(socket.AF_INET, type)
        s.close()
        return s

    def udp(self, blocking: bool = False) -> socket.socket:
        s = self.sock(type=socket.SOCK_DGRAM, blocking=blocking)
        s.bind((LOCAL, 0))
        return s

    def pair(self, blocking: bool = False) -> tuple[socket.socket,
                                                    socket.socket]:
        a, b = socket.socketpair()
        for s in (a, b):
            s.setblocking(blocking)
            self._close_later(s.close)
        return a, b

    def listener(self, blocking: bool = False) -> socket.socket:
        s = self.sock(blocking=blocking)
        s.bind((LOCAL, 0))
        s.listen()
        return s

    def refused_port(self) -> int:
        """A local TCP port nobody listens on (bound, never listened)."""
        s = self.sock()
        s.bind((LOCAL, 0))
        return s.getsockname()[1]

    def file(self, data: bytes = b"data", mode: str = "rb") -> Any:
        path = os.path.join(self.tmpdir(), f"f{len(self._closers)}")
        with open(path, "wb") as f:
            f.write(data)
        f = open(path, mode)
        self._close_later(f.close)
        return f

    def closed_file(self) -> Any:
        f = self.file()
        f.close()
        return f

    def pipe(self) -> tuple[int, int]:
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        for fd in (r, w):
            self._close_later(functools_partial(_close_fd, fd))
        return r, w

    def closed_fd(self) -> int:
        r, w = os.pipe()
        os.close(r)
        os.close(w)
        return r

    def unix_path(self) -> str:
        return os.path.join(self.tmpdir(), f"s{len(self._closers)}")

    def process_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        """A process pool; no process starts before a submit()."""
        pool = concurrent.futures.ProcessPoolExecutor(1)
        self._close_later(pool.shutdown)
        return pool

    def coro(self) -> Any:
        c = _corofn()
        self._close_later(c.close)
        return c

    async def transport(self) -> Any:
        """A stream transport (on one end of a socketpair)."""
        a, _b = self.pair()
        tr, _ = await self.loop.connect_accepted_socket(P, a)
        self.keep(tr)
        return tr

    def keep(self, obj: Any) -> Any:
        """Close obj (a case's result, whatever it is) after the case."""
        if isinstance(obj, (tuple, list)):
            for o in obj:
                self.keep(o)
        elif obj is not None:
            self._kept.append(obj)
        return obj

    async def aclose(self) -> None:
        """Close what needs the loop: transports, servers, futures."""
        for obj in reversed(self._kept):
            if isinstance(obj, asyncio.AbstractServer):
                obj.close()
                await obj.wait_closed()
            elif isinstance(obj, asyncio.SubprocessTransport):
                obj.close()
                if obj.get_returncode() is None:
                    await asyncio.sleep(0.05)
            elif isinstance(obj, asyncio.BaseTransport):
                obj.close()
            elif asyncio.isfuture(obj):
                if obj.done():
                    if not obj.cancelled():
                        res = obj.exception() or obj.result()
                        if inspect.iscoroutine(res):
                            res.close()
                else:
                    obj.cancel()
            elif isinstance(obj, asyncio.Handle):
                obj.cancel()
            elif inspect.iscoroutine(obj):
                obj.close()
        for _ in range(3):
            await asyncio.sleep(0)

    def cancel_handles(self) -> None:
        for obj in self._kept:
            if isinstance(obj, asyncio.Handle):
                obj.cancel()

    def close(self) -> None:
        self.cancel_handles()
        for obj in self._kept:
            if inspect.iscoroutine(obj):
                obj.close()
        for fn in reversed(self._closers):
            with contextlib.suppress(OSError):
                fn()
        if self._tmp is not None:
            self._tmp.cleanup()


def _close_fd(fd: int) -> None:
    os.close(fd)


def functools_partial(fn: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    return lambda: fn(*args)


# ---- the table --------------------------------------------------------------

@dataclass
class Case:
    id: str
    fn: Callable[[Any, Res], Any]
    running: bool
    debug: bool
    since: tuple[int, int] | None
    xfail: str | None


CASES: dict[str, Case] = {}


def case(id: str, fn: Callable[[Any, Res], Any], *, running: bool = False,
         debug: bool = False, since: tuple[int, int] | None = None,
         xfail: str | None = None) -> None:
    assert id not in CASES, id
    CASES[id] = Case(id, fn, running, debug, since, xfail)


def acase(id: str, fn: Callable[[Any, Res], Any], **kw: Any) -> None:
    """A case run from a coroutine on the loop."""
    case(id, fn, running=True, **kw)


def _then_run(loop: Any, res: Res, obj: Any) -> None:
    """Keep obj (a timer handle), then run the loop through a wait with
    that timer the earliest: asyncio takes some bad deadlines and fails
    only when it computes its timeout from them."""
    res.keep(obj)
    a, b = res.pair()
    b.send(b"x")
    fut = loop.create_future()
    loop.add_reader(a, lambda: fut.done() or fut.set_result(None))
    try:
        loop.run_until_complete(fut)
    finally:
        loop.remove_reader(a)


# -- call_soon, call_later, call_at, call_soon_threadsafe --

case("call_soon(None)", lambda L, r: r.keep(L.call_soon(None)))
case("call_soon('x')", lambda L, r: r.keep(L.call_soon("x")))
case("call_soon(None) debug", lambda L, r: r.keep(L.call_soon(None)),
     debug=True)
case("call_soon(42) debug", lambda L, r: r.keep(L.call_soon(42)), debug=True)
case("call_soon(coroutine) debug",
     lambda L, r: r.keep(L.call_soon(r.coro())), debug=True)
case("call_soon(coroutine function) debug",
     lambda L, r: r.keep(L.call_soon(_corofn)), debug=True)
case("call_soon()", lambda L, r: L.call_soon())
case("call_soon(f, bogus=1)", lambda L, r: r.keep(L.call_soon(_f, bogus=1)))
case("call_soon(f, context='x')",
     lambda L, r: r.keep(L.call_soon(_f, context="x")))
case("call_soon on a closed loop",
     lambda L, r: (L.close(), r.keep(L.call_soon(_f))))
case("call_soon_threadsafe(None)",
     lambda L, r: r.keep(L.call_soon_threadsafe(None)))
case("call_soon_threadsafe(None) debug",
     lambda L, r: r.keep(L.call_soon_threadsafe(None)), debug=True)
case("call_soon_threadsafe()", lambda L, r: L.call_soon_threadsafe())
case("call_soon_threadsafe on a closed loop",
     lambda L, r: (L.close(), r.keep(L.call_soon_threadsafe(_f))))
case("call_later(None, f)", lambda L, r: r.keep(L.call_later(None, _f)))
case("call_later('x', f)", lambda L, r: r.keep(L.call_later("x", _f)))
case("call_later(1j, f), run",
     lambda L, r: _then_run(L, r, L.call_later(1j, _f)))
case("call_later(Decimal(1), f)",
     lambda L, r: r.keep(L.call_later(decimal.Decimal(1), _f)))
case("call_later(True, f)", lambda L, r: r.keep(L.call_later(True, _f)))
case("call_later(Fraction(1, 2), f)",
     lambda L, r: r.keep(L.call_later(fractions.Fraction(1, 2), _f)))
case("call_later(nan, f)",
     lambda L, r: r.keep(L.call_later(float("nan"), _f)))
case("call_later(inf, f)",
     lambda L, r: r.keep(L.call_later(float("inf"), _f)))
case("call_later(-1e300, f)", lambda L, r: r.keep(L.call_later(-1e300, _f)))
case("call_later(2**1100, f)", lambda L, r: r.keep(L.call_later(2**1100, _f)))
case("call_later(1, None)", lambda L, r: r.keep(L.call_later(1, None)))
case("call_later(1, None) debug",
     lambda L, r: r.keep(L.call_later(1, None)), debug=True)
case("call_later(1)", lambda L, r: L.call_later(1))
case("call_later on a closed loop",
     lambda L, r: (L.close(), r.keep(L.call_later(1, _f))))
case("call_at(None, f)", lambda L, r: r.keep(L.call_at(None, _f)))
case("call_at(None, f) on a closed loop",
     lambda L, r: (L.close(), r.keep(L.call_at(None, _f))))
case("call_at('x', f), run", lambda L, r: _then_run(L, r, L.call_at("x", _f)))
case("call_at(2**1100, f), run",
     lambda L, r: _then_run(L, r, L.call_at(2**1100, _f)))
case("call_at(nan, f)", lambda L, r: r.keep(L.call_at(float("nan"), _f)))
case("call_at(1, 42) debug", lambda L, r: r.keep(L.call_at(1, 42)),
     debug=True)
case("call_at(1, f, context=None, x=1)",
     lambda L, r: r.keep(L.call_at(1, _f, context=None, x=1)))

# -- running, stopping, closing --


async def _nested_run_until_complete(L: Any, r: Res) -> None:
    L.run_until_complete(r.coro())


async def _nested_run_forever(L: Any, r: Res) -> None:
    L.run_forever()


async def _close_running(L: Any, r: Res) -> None:
    L.close()


def _future_of_other_loop(L: Any, r: Res) -> None:
    other = asyncio.new_event_loop()
    try:
        L.run_until_complete(other.create_future())
    finally:
        other.close()


case("run_until_complete(42)", lambda L, r: L.run_until_complete(42))
case("run_until_complete(None)", lambda L, r: L.run_until_complete(None))
case("run_until_complete(coroutine function)",
     lambda L, r: L.run_until_complete(_corofn))
case("run_until_complete(future of another loop)", _future_of_other_loop)
case("run_until_complete on a closed loop",
     lambda L, r: (L.close(), L.run_until_complete(r.coro())))
acase("run_until_complete while running", _nested_run_until_complete)
acase("run_forever while running", _nested_run_forever)
acase("close while running", _close_running)
case("run_forever on a closed loop", lambda L, r: (L.close(), L.run_forever()))

# -- tasks, futures, handlers, executors --

case("create_task(42)", lambda L, r: L.create_task(42))
case("create_task(None)", lambda L, r: L.create_task(None))
case("create_task(coroutine function)", lambda L, r: L.create_task(_corofn))
case("create_task(future)", lambda L, r: L.create_task(L.create_future()))
case("create_task(coro, name=42)",
     lambda L, r: r.keep(L.create_task(r.coro(), name=42)))
case("create_task on a closed loop",
     lambda L, r: (L.close(), L.create_task(r.coro())))
case("set_task_factory('x')", lambda L, r: L.set_task_factory("x"))
case("set_exception_handler(42)", lambda L, r: L.set_exception_handler(42))
case("set_exception_handler('x')", lambda L, r: L.set_exception_handler("x"))
case("call_exception_handler('x')",
     lambda L, r: L.call_exception_handler("x"))
case("default_exception_handler(42)",
     lambda L, r: L.default_exception_handler(42))
case("set_default_executor(not an Executor)",
     lambda L, r: L.set_default_executor(_NotAnExecutor()))
case("set_default_executor(ProcessPoolExecutor())",
     lambda L, r: L.set_default_executor(r.process_pool()))
case("set_default_executor(Executor())",
     lambda L, r: L.set_default_executor(concurrent.futures.Executor()))
case("run_in_executor(None, 42) debug",
     lambda L, r: r.keep(L.run_in_executor(None, 42)), debug=True)
case("run_in_executor(None, coroutine function) debug",
     lambda L, r: r.keep(L.run_in_executor(None, _corofn)), debug=True)
acase("run_in_executor(None, 42)", lambda L, r: L.run_in_executor(None, 42))
acase("run_in_executor('x', f)", lambda L, r: L.run_in_executor("x", _f))
case("run_in_executor on a closed loop",
     lambda L, r: (L.close(), L.run_in_executor(None, _f)))


async def _executor_after_shutdown(L: Any, r: Res) -> None:
    await L.shutdown_default_executor()
    r.keep(L.run_in_executor(None, _f))


async def _shutdown_executor_twice(L: Any, r: Res) -> None:
    await L.run_in_executor(None, _f)
    await L.shutdown_default_executor()
    await L.shutdown_default_executor()


acase("run_in_executor after shutdown_default_executor",
      _executor_after_shutdown)
acase("shutdown_default_executor twice", _shutdown_executor_twice)
acase("shutdown_default_executor(timeout='x')",
      lambda L, r: L.shutdown_default_executor(timeout="x"), since=(3, 12))


async def _shutdown_executor_bad_timeout(L: Any, r: Res) -> None:
    await L.run_in_executor(None, _f)
    await L.shutdown_default_executor(timeout="x")


acase("shutdown_default_executor(timeout='x') with an executor",
      _shutdown_executor_bad_timeout, since=(3, 12))

# -- add_reader, add_writer, remove_reader, remove_writer --

def _watch_then_close(L: Any, r: Res, method: str, *args: Any) -> Any:
    a, _ = r.pair()
    L.add_reader(a, _f)
    a.close()
    return getattr(L, method)(a, *args)


def _watch_file_then_close(L: Any, r: Res) -> Any:
    f = os.fdopen(os.dup(r.pipe()[0]), "rb", buffering=0)
    L.add_reader(f, _f)
    f.close()
    return L.remove_reader(f)


case("add_reader(-1, f)", lambda L, r: L.add_reader(-1, _f))
case("add_writer(-1, f)", lambda L, r: L.add_writer(-1, _f))
case("add_reader(2**40, f)", lambda L, r: L.add_reader(2**40, _f))
case("add_writer(2**40, f)", lambda L, r: L.add_writer(2**40, _f))
case("add_reader(2**31, f)", lambda L, r: L.add_reader(2**31, _f))
case("add_writer(2**100, f)", lambda L, r: L.add_writer(2**100, _f))
case("add_reader('x', f)", lambda L, r: L.add_reader("x", _f))
case("add_reader(None, f)", lambda L, r: L.add_reader(None, _f))
case("add_reader(3.0, f)", lambda L, r: L.add_reader(3.0, _f))
case("add_reader(fileno() raising OSError, f)",
     lambda L, r: L.add_reader(_FileNo(OSError(9, "bad")), _f))
case("add_reader(fileno() -> 'x', f)",
     lambda L, r: L.add_reader(_FileNo("x"), _f))
case("add_reader(fileno() -> None, f)",
     lambda L, r: L.add_reader(_FileNo(None), _f))
case("add_writer(fileno() -> -1, f)",
     lambda L, r: L.add_writer(_FileNo(-1), _f))
case("add_writer(fileno() -> 2**40, f)",
     lambda L, r: L.add_writer(_FileNo(2**40), _f))
case("add_reader(closed fd, f)", lambda L, r: L.add_reader(r.closed_fd(), _f))
case("add_writer(closed socket, f)",
     lambda L, r: L.add_writer(r.closed_sock(), _f))
case("add_reader(regular file, f)", lambda L, r: L.add_reader(r.file(), _f))
case("add_reader(fd, None)",
     lambda L, r: (L.add_reader(r.pipe()[0], None)))
case("add_reader(fd, coroutine function) debug",
     lambda L, r: L.add_reader(r.pipe()[0], _corofn), debug=True)
case("add_reader(fd)", lambda L, r: L.add_reader(r.pipe()[0]))
case("add_reader on a closed loop",
     lambda L, r: (L.close(), L.add_reader(r.pipe()[0], _f)))
case("add_reader('x', f) on a closed loop",
     lambda L, r: (L.close(), L.add_reader("x", _f)))
case("add_writer(-1, f) on a closed loop",
     lambda L, r: (L.close(), L.add_writer(-1, _f)))
case("remove_reader(-1)", lambda L, r: L.remove_reader(-1))
case("remove_writer(-1)", lambda L, r: L.remove_writer(-1))
case("remove_reader(2**40)", lambda L, r: L.remove_reader(2**40))
case("remove_writer(2**100)", lambda L, r: L.remove_writer(2**100))
case("remove_reader('x')", lambda L, r: L.remove_reader("x"))
case("remove_writer(None)", lambda L, r: L.remove_writer(None))
case("remove_reader(closed fd)", lambda L, r: L.remove_reader(r.closed_fd()))
case("remove_reader(socket closed while watched)",
     lambda L, r: _watch_then_close(L, r, "remove_reader"))
case("remove_writer(socket closed while read-watched)",
     lambda L, r: _watch_then_close(L, r, "remove_writer"))
case("add_reader(socket closed while watched, f)",
     lambda L, r: _watch_then_close(L, r, "add_reader", _f))
case("add_writer(socket closed while read-watched, f)",
     lambda L, r: _watch_then_close(L, r, "add_writer", _f))
case("remove_reader(file object closed while watched)",
     _watch_file_then_close)
case("remove_reader('x') on a closed loop",
     lambda L, r: (L.close(), L.remove_reader("x")))
case("remove_writer(-1) on a closed loop",
     lambda L, r: (L.close(), L.remove_writer(-1)))


async def _reader_on_transport_fd(L: Any, r: Res) -> None:
    tr = await r.transport()
    L.add_reader(tr.get_extra_info("socket").fileno(), _f)


async def _remove_writer_on_transport_fd(L: Any, r: Res) -> None:
    tr = await r.transport()
    L.remove_writer(tr.get_extra_info("socket").fileno())


acase("add_reader(fd of a transport, f)", _reader_on_transport_fd)
acase("remove_writer(fd of a transport)", _remove_writer_on_transport_fd)

# -- signals --

USR1 = signal.SIGUSR1


def _signal_in_thread(L: Any, r: Res) -> None:
    err: list[BaseException] = []

    def target() -> None:
        try:
            L.add_signal_handler(USR1, _f)
        except BaseException as exc:
            err.append(exc)

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if err:
        raise err[0]


case("add_signal_handler(0, f)", lambda L, r: L.add_signal_handler(0, _f))
case("add_signal_handler(SIGKILL, f)",
     lambda L, r: L.add_signal_handler(signal.SIGKILL, _f))
case("add_signal_handler(SIGSTOP, f)",
     lambda L, r: L.add_signal_handler(signal.SIGSTOP, _f))
case("add_signal_handler(1000, f)",
     lambda L, r: L.add_signal_handler(1000, _f))
case("add_signal_handler(-1, f)", lambda L, r: L.add_signal_handler(-1, _f))
case("add_signal_handler('x', f)",
     lambda L, r: L.add_signal_handler("x", _f))
case("add_signal_handler(10.0, f)",
     lambda L, r: L.add_signal_handler(10.0, _f))
case("add_signal_handler(SIGUSR1, coroutine function)",
     lambda L, r: L.add_signal_handler(USR1, _corofn))
case("add_signal_handler(SIGUSR1, coroutine)",
     lambda L, r: L.add_signal_handler(USR1, r.coro()))
case("add_signal_handler(SIGUSR1, 42)",
     lambda L, r: L.add_signal_handler(USR1, 42))
case("add_signal_handler on a closed loop",
     lambda L, r: (L.close(), L.add_signal_handler(USR1, _f)))
case("add_signal_handler from another thread", _signal_in_thread)
case("remove_signal_handler(0)", lambda L, r: L.remove_signal_handler(0))
case("remove_signal_handler('x')", lambda L, r: L.remove_signal_handler("x"))
case("remove_signal_handler(1000)",
     lambda L, r: L.remove_signal_handler(1000))
case("remove_signal_handler(SIGKILL)",
     lambda L, r: L.remove_signal_handler(signal.SIGKILL))

# -- sock_* --

acase("sock_recv(closed socket, 10)",
      lambda L, r: L.sock_recv(r.closed_sock(), 10))
acase("sock_recv(s, -1)", lambda L, r: L.sock_recv(r.pair()[0], -1))
acase("sock_recv(s, 'x')", lambda L, r: L.sock_recv(r.pair()[0], "x"))
acase("sock_recv(s, 2**70)", lambda L, r: L.sock_recv(r.pair()[0], 2**70))
acase("sock_recv('x', 10)", lambda L, r: L.sock_recv("x", 10))
acase("sock_recv(None, 10)", lambda L, r: L.sock_recv(None, 10))
acase("sock_recv(listening socket, 10)",
      lambda L, r: L.sock_recv(r.listener(), 10))
acase("sock_recv_into(s, b'immutable')",
      lambda L, r: L.sock_recv_into(r.pair()[0], b"immutable"))
acase("sock_recv_into(s, 'str')",
      lambda L, r: L.sock_recv_into(r.pair()[0], "str"))
acase("sock_recv_into(s, None)",
      lambda L, r: L.sock_recv_into(r.pair()[0], None))
acase("sock_recv_into(s, non-contiguous memoryview)",
      lambda L, r: L.sock_recv_into(r.pair()[0],
                                    memoryview(bytearray(10))[::2]))
acase("sock_recv_into(s, read-only memoryview)",
      lambda L, r: L.sock_recv_into(r.pair()[0], memoryview(b"abc")))
acase("sock_recv_into(closed socket, bytearray)",
      lambda L, r: L.sock_recv_into(r.closed_sock(), bytearray(10)))
acase("sock_recvfrom(udp, -1)", lambda L, r: L.sock_recvfrom(r.udp(), -1),
      since=(3, 11))
acase("sock_recvfrom(udp, 'x')", lambda L, r: L.sock_recvfrom(r.udp(), "x"),
      since=(3, 11))
acase("sock_recvfrom(closed socket, 10)",
      lambda L, r: L.sock_recvfrom(r.closed_sock(socket.SOCK_DGRAM), 10),
      since=(3, 11))
acase("sock_recvfrom_into(udp, b'immutable')",
      lambda L, r: L.sock_recvfrom_into(r.udp(), b"immutable"),
      since=(3, 11))
acase("sock_recvfrom_into(udp, buf, nbytes=-1)",
      lambda L, r: L.sock_recvfrom_into(r.udp(), bytearray(10), -1),
      since=(3, 11))
acase("sock_recvfrom_into(udp, buf, nbytes > len(buf))",
      lambda L, r: L.sock_recvfrom_into(r.udp(), bytearray(10), 20),
      since=(3, 11))
acase("sock_recvfrom_into(udp, buf, nbytes='x')",
      lambda L, r: L.sock_recvfrom_into(r.udp(), bytearray(10), "x"),
      since=(3, 11))
acase("sock_sendall(s, 'str')",
      lambda L, r: L.sock_sendall(r.pair()[0], "str"))
acase("sock_sendall(s, 42)", lambda L, r: L.sock_sendall(r.pair()[0], 42))
acase("sock_sendall(s, None)",
      lambda L, r: L.sock_sendall(r.pair()[0], None))
acase("sock_sendall(s, b'')", lambda L, r: L.sock_sendall(r.pair()[0], b""))
acase("sock_sendall(s, non-contiguous memoryview)",
      lambda L, r: L.sock_sendall(r.pair()[0], memoryview(b"abcdef")[::2]))
acase("sock_sendall(closed socket, b'x')",
      lambda L, r: L.sock_sendall(r.closed_sock(), b"x"))
acase("sock_sendall(unconnected socket, b'x')",
      lambda L, r: L.sock_sendall(r.sock(), b"x"))
acase("sock_sendto(udp, b'x', port 70000)",
      lambda L, r: L.sock_sendto(r.udp(), b"x", (LOCAL, 70000)),
      since=(3, 11))
acase("sock_sendto(udp, b'x', port -1)",
      lambda L, r: L.sock_sendto(r.udp(), b"x", (LOCAL, -1)), since=(3, 11))
acase("sock_sendto(udp, 'str', addr)",
      lambda L, r: L.sock_sendto(r.udp(), "str", (LOCAL, 9)), since=(3, 11))
acase("sock_sendto(udp, b'x', 'notatuple')",
      lambda L, r: L.sock_sendto(r.udp(), b"x", "notatuple"), since=(3, 11))
acase("sock_sendto(udp, b'x', (host,))",
      lambda L, r: L.sock_sendto(r.udp(), b"x", (LOCAL,)), since=(3, 11))
acase("sock_sendto(udp, b'x', (42, 9))",
      lambda L, r: L.sock_sendto(r.udp(), b"x", (42, 9)), since=(3, 11))
acase("sock_sendto(udp, b'x', (host, '9'))",
      lambda L, r: L.sock_sendto(r.udp(), b"x", (LOCAL, "9")), since=(3, 11))
acase("sock_sendto(udp, b'x', (host, 9.0))",
      lambda L, r: L.sock_sendto(r.udp(), b"x", (LOCAL, 9.0)), since=(3, 11))
acase("sock_sendto(udp6, b'x', (host, 9, 2**20))",
      lambda L, r: L.sock_sendto(
          r.sock(socket.AF_INET6, socket.SOCK_DGRAM), b"x",
          ("::1", 9, 1 << 20)), since=(3, 11))
acase("sock_sendto(closed socket, b'x', addr)",
      lambda L, r: L.sock_sendto(r.closed_sock(socket.SOCK_DGRAM), b"x",
                                 (LOCAL, 9)), since=(3, 11))
acase("sock_connect(s, port 70000)",
      lambda L, r: L.sock_connect(r.sock(), (LOCAL, 70000)))
acase("sock_connect(s, port -1)",
      lambda L, r: L.sock_connect(r.sock(), (LOCAL, -1)))
acase("sock_connect(s, port 'x')",
      lambda L, r: L.sock_connect(r.sock(), (LOCAL, "x")))
acase("sock_connect(s, (host,))",
      lambda L, r: L.sock_connect(r.sock(), (LOCAL,)))
acase("sock_connect(s, (host, port, 0, 0))",
      lambda L, r: L.sock_connect(r.sock(), (LOCAL, 9, 0, 0)))
acase("sock_connect(s, 'x')", lambda L, r: L.sock_connect(r.sock(), "x"))
acase("sock_connect(s, None)", lambda L, r: L.sock_connect(r.sock(), None))
acase("sock_connect(s, 42)", lambda L, r: L.sock_connect(r.sock(), 42))
acase("sock_connect(s, (42, 80))",
      lambda L, r: L.sock_connect(r.sock(), (42, 80)))
acase("sock_connect(s, (bad host, 80))",
      lambda L, r: L.sock_connect(r.sock(), ("x..y", 80)))
acase("sock_connect(s, refused port)",
      lambda L, r: L.sock_connect(r.sock(), (LOCAL, r.refused_port())))
acase("sock_connect(closed socket, addr)",
      lambda L, r: L.sock_connect(r.closed_sock(), (LOCAL, 9)))
acase("sock_connect(unix socket, 42)",
      lambda L, r: L.sock_connect(r.sock(socket.AF_UNIX), 42))
acase("sock_connect(unix socket, missing abstract name)",
      lambda L, r: L.sock_connect(r.sock(socket.AF_UNIX),
                                  b"\0ringloop-none-" + os.urandom(8).hex()
                                  .encode()))
acase("sock_connect(unix socket, path of 108 bytes)",
      lambda L, r: L.sock_connect(r.sock(socket.AF_UNIX), "x" * 108))
acase("sock_connect(unix socket, missing path)",
      lambda L, r: L.sock_connect(r.sock(socket.AF_UNIX), r.unix_path()))
acase("sock_accept(closed socket)",
      lambda L, r: L.sock_accept(r.closed_sock()))
acase("sock_accept(unlistened socket)", lambda L, r: L.sock_accept(r.sock()))
acase("sock_accept(udp socket)", lambda L, r: L.sock_accept(r.udp()))
acase("sock_accept('x')", lambda L, r: L.sock_accept("x"))

# debug mode refuses blocking sockets
acase("sock_recv(blocking socket) debug",
      lambda L, r: L.sock_recv(r.pair(blocking=True)[0], 10), debug=True)
acase("sock_recv_into(blocking socket) debug",
      lambda L, r: L.sock_recv_into(r.pair(blocking=True)[0], bytearray(1)),
      debug=True)
acase("sock_recvfrom(blocking socket) debug",
      lambda L, r: L.sock_recvfrom(r.udp(blocking=True), 10), debug=True,
      since=(3, 11))
acase("sock_recvfrom_into(blocking socket) debug",
      lambda L, r: L.sock_recvfrom_into(r.udp(blocking=True), bytearray(1)),
      debug=True, since=(3, 11))
acase("sock_sendall(blocking socket) debug",
      lambda L, r: L.sock_sendall(r.pair(blocking=True)[0], b"x"),
      debug=True)
acase("sock_sendto(blocking socket) debug",
      lambda L, r: L.sock_sendto(r.udp(blocking=True), b"x", (LOCAL, 9)),
      debug=True, since=(3, 11))
acase("sock_connect(blocking socket) debug",
      lambda L, r: L.sock_connect(r.sock(blocking=True), (LOCAL, 9)),
      debug=True)
acase("sock_accept(blocking socket) debug",
      lambda L, r: L.sock_accept(r.listener(blocking=True)), debug=True)

# -- sendfile, sock_sendfile --

acase("sock_sendfile(s, text file)",
      lambda L, r: L.sock_sendfile(r.pair()[0], r.file(mode="r")))
acase("sock_sendfile(udp, file)",
      lambda L, r: L.sock_sendfile(r.udp(), r.file()))
acase("sock_sendfile(s, file, offset=-1)",
      lambda L, r: L.sock_sendfile(r.pair()[0], r.file(), -1))
acase("sock_sendfile(s, file, offset='x')",
      lambda L, r: L.sock_sendfile(r.pair()[0], r.file(), "x"))
acase("sock_sendfile(s, file, count=0)",
      lambda L, r: L.sock_sendfile(r.pair()[0], r.file(), 0, 0))
acase("sock_sendfile(s, file, count=-1)",
      lambda L, r: L.sock_sendfile(r.pair()[0], r.file(), 0, -1))
acase("sock_sendfile(s, file, count='x')",
      lambda L, r: L.sock_sendfile(r.pair()[0], r.file(), 0, "x"))
acase("sock_sendfile(s, 'notafile')",
      lambda L, r: L.sock_sendfile(r.pair()[0], "notafile"))
acase("sock_sendfile(s, closed file)",
      lambda L, r: L.sock_sendfile(r.pair()[0], r.closed_file()))
acase("sock_sendfile(closed socket, file)",
      lambda L, r: L.sock_sendfile(r.closed_sock(), r.file()))
acase("sock_sendfile(blocking socket, file) debug",
      lambda L, r: L.sock_sendfile(r.pair(blocking=True)[0], r.file()),
      debug=True)


async def _sendfile(L: Any, r: Res, *args: Any, **kw: Any) -> Any:
    return await L.sendfile(await r.transport(), *args, **kw)


async def _sendfile_closing(L: Any, r: Res) -> Any:
    tr = await r.transport()
    tr.close()
    return await L.sendfile(tr, r.file())


async def _sendfile_datagram(L: Any, r: Res) -> Any:
    tr, _ = await L.create_datagram_endpoint(DP, sock=r.udp())
    r.keep(tr)
    return await L.sendfile(tr, r.file())


acase("sendfile(tr, text file)",
      lambda L, r: _sendfile(L, r, r.file(mode="r")))
acase("sendfile(tr, file, offset=-1)",
      lambda L, r: _sendfile(L, r, r.file(), -1))
acase("sendfile(tr, file, offset='x')",
      lambda L, r: _sendfile(L, r, r.file(), "x"))
acase("sendfile(tr, file, count=0)",
      lambda L, r: _sendfile(L, r, r.file(), 0, 0))
acase("sendfile(tr, file, count='x')",
      lambda L, r: _sendfile(L, r, r.file(), 0, "x"))
acase("sendfile(tr, 'notafile')", lambda L, r: _sendfile(L, r, "notafile"))
acase("sendfile(closing transport, file)", _sendfile_closing)
acase("sendfile(datagram transport, file)", _sendfile_datagram)
acase("sendfile('x', file)", lambda L, r: L.sendfile("x", r.file()))

# -- getaddrinfo, getnameinfo --

acase("getaddrinfo(42, 80)", lambda L, r: L.getaddrinfo(42, 80))
acase("getaddrinfo(host, 80.5)", lambda L, r: L.getaddrinfo(LOCAL, 80.5))
acase("getaddrinfo(host, -1)", lambda L, r: L.getaddrinfo(LOCAL, -1))
acase("getaddrinfo(host, 'nosuchservice')",
      lambda L, r: L.getaddrinfo(LOCAL, "nosuchservice"))
acase("getaddrinfo('x..y', 80)", lambda L, r: L.getaddrinfo("x..y", 80))
acase("getaddrinfo(host, 80, family='x')",
      lambda L, r: L.getaddrinfo(LOCAL, 80, family="x"))
acase("getaddrinfo(host, 80, family=AF_INET6)",
      lambda L, r: L.getaddrinfo(LOCAL, 80, family=socket.AF_INET6))
acase("getaddrinfo(host, 80, flags=2**40)",
      lambda L, r: L.getaddrinfo(LOCAL, 80, flags=2**40))
acase("getnameinfo('x')", lambda L, r: L.getnameinfo("x"))
acase("getnameinfo((host,))", lambda L, r: L.getnameinfo((LOCAL,)))
acase("getnameinfo((host, 70000))",
      lambda L, r: L.getnameinfo((LOCAL, 70000)))
acase("getnameinfo((host, 80), 'x')",
      lambda L, r: L.getnameinfo((LOCAL, 80), "x"))

# -- create_connection --


async def _connected_sock(r: Res) -> socket.socket:
    lsn = r.listener()
    s = r.sock(blocking=True)
    s.connect(lsn.getsockname())
    s.setblocking(False)
    return s


async def _create_connection_sock(L: Any, r: Res, *args: Any,
                                  **kw: Any) -> Any:
    return r.keep(await L.create_connection(
        *args, sock=await _connected_sock(r), **kw))


def _ssl_ctx() -> ssl.SSLContext:
    return ssl.create_default_context()


acase("create_connection(P, host, 70000)",
      lambda L, r: L.create_connection(P, LOCAL, 70000))
acase("create_connection(P, host, -1)",
      lambda L, r: L.create_connection(P, LOCAL, -1))
acase("create_connection(P, host, 'x')",
      lambda L, r: L.create_connection(P, LOCAL, "x"))
acase("create_connection(P, 'x..y', 80)",
      lambda L, r: L.create_connection(P, "x..y", 80))
acase("create_connection(P)", lambda L, r: L.create_connection(P))
acase("create_connection(P, host, port, sock=s)",
      lambda L, r: L.create_connection(P, LOCAL, 9, sock=r.sock()))
acase("create_connection(P, refused port)",
      lambda L, r: L.create_connection(P, LOCAL, r.refused_port()))
acase("create_connection(P, refused port, all_errors=True)",
      lambda L, r: L.create_connection(P, LOCAL, r.refused_port(),
                                       all_errors=True), since=(3, 12))
acase("create_connection(P, sock=udp)",
      lambda L, r: L.create_connection(P, sock=r.udp()))
acase("create_connection(P, sock='x')",
      lambda L, r: L.create_connection(P, sock="x"))
acase("create_connection(P, sock=closed socket)",
      lambda L, r: L.create_connection(P, sock=r.closed_sock()))
acase("create_connection(42, sock=s)",
      lambda L, r: _create_connection_sock(L, r, 42))
acase("create_connection(P, sock=s, server_hostname='x')",
      lambda L, r: _create_connection_sock(L, r, P, server_hostname="x"))
acase("create_connection(P, sock=s, ssl_handshake_timeout=1)",
      lambda L, r: _create_connection_sock(L, r, P, ssl_handshake_timeout=1))
acase("create_connection(P, sock=s, ssl_shutdown_timeout=1)",
      lambda L, r: _create_connection_sock(L, r, P, ssl_shutdown_timeout=1),
      since=(3, 11))
acase("create_connection(P, sock=s, ssl=ctx) without server_hostname",
      lambda L, r: _create_connection_sock(L, r, P, ssl=_ssl_ctx()))
acase("create_connection(P, sock=s, ssl='x')",
      lambda L, r: _create_connection_sock(L, r, P, ssl="x",
                                           server_hostname="h"))
acase("create_connection(P, host, port, family='x')",
      lambda L, r: L.create_connection(P, LOCAL, 9, family="x"))
acase("create_connection(P, host, port, local_addr=(host, 70000))",
      lambda L, r: L.create_connection(P, LOCAL, r.refused_port(),
                                       local_addr=(LOCAL, 70000)))
acase("create_connection(P, host, port, local_addr='x')",
      lambda L, r: L.create_connection(P, LOCAL, r.refused_port(),
                                       local_addr="x"))
acase("create_connection(P, host, port, happy_eyeballs_delay='x')",
      lambda L, r: L.create_connection(P, LOCAL, r.refused_port(),
                                       happy_eyeballs_delay="x"))

# -- create_server --

acase("create_server(P, host, 70000)",
      lambda L, r: r.keep(L.create_server(P, LOCAL, 70000)))
acase("create_server(P, host, -1)",
      lambda L, r: L.create_server(P, LOCAL, -1))
acase("create_server(P, host, 'x')",
      lambda L, r: L.create_server(P, LOCAL, "x"))
acase("create_server(P)", lambda L, r: L.create_server(P))
acase("create_server(P, host, 0, sock=s)",
      lambda L, r: L.create_server(P, LOCAL, 0, sock=r.sock()))
acase("create_server(P, sock=udp)",
      lambda L, r: L.create_server(P, sock=r.udp()))
acase("create_server(P, sock='x')",
      lambda L, r: L.create_server(P, sock="x"))
acase("create_server(P, host, 0, ssl=True)",
      lambda L, r: L.create_server(P, LOCAL, 0, ssl=True))
acase("create_server(P, host, 0, ssl_handshake_timeout=1)",
      lambda L, r: L.create_server(P, LOCAL, 0, ssl_handshake_timeout=1))
acase("create_server(P, host, 0, ssl_shutdown_timeout=1)",
      lambda L, r: L.create_server(P, LOCAL, 0, ssl_shutdown_timeout=1),
      since=(3, 11))
acase("create_server(P, host, 0, family='x')",
      lambda L, r: L.create_server(P, LOCAL, 0, family="x"))
acase("create_server(P, host, 0, backlog='x')",
      lambda L, r: L.create_server(P, LOCAL, 0, backlog="x"))
acase("create_server(P, [host, 42], 0)",
      lambda L, r: L.create_server(P, [LOCAL, 42], 0))
acase("create_server(P, 'x..y', 0)",
      lambda L, r: L.create_server(P, "x..y", 0))


async def _create_server_in_use(L: Any, r: Res) -> Any:
    port = r.listener().getsockname()[1]
    return r.keep(await L.create_server(P, LOCAL, port))


acase("create_server(P, host, port in use)", _create_server_in_use)

# -- create_unix_connection, create_unix_server --

acase("create_unix_connection(P)", lambda L, r: L.create_unix_connection(P))
acase("create_unix_connection(P, path, sock=s)",
      lambda L, r: L.create_unix_connection(
          P, r.unix_path(), sock=r.sock(socket.AF_UNIX)))
acase("create_unix_connection(P, sock=tcp socket)",
      lambda L, r: L.create_unix_connection(P, sock=r.sock()))
acase("create_unix_connection(P, missing path)",
      lambda L, r: L.create_unix_connection(P, r.unix_path()))
acase("create_unix_connection(P, 42)",
      lambda L, r: L.create_unix_connection(P, 42))
acase("create_unix_connection(P, path, server_hostname='x')",
      lambda L, r: L.create_unix_connection(P, r.unix_path(),
                                            server_hostname="x"))
acase("create_unix_connection(P, path, ssl_handshake_timeout=1)",
      lambda L, r: L.create_unix_connection(P, r.unix_path(),
                                            ssl_handshake_timeout=1))
acase("create_unix_connection(P, path, ssl=ctx) without server_hostname",
      lambda L, r: L.create_unix_connection(P, r.unix_path(),
                                            ssl=_ssl_ctx()))
acase("create_unix_server(P)", lambda L, r: L.create_unix_server(P))
acase("create_unix_server(P, path, sock=s)",
      lambda L, r: L.create_unix_server(P, r.unix_path(),
                                        sock=r.sock(socket.AF_UNIX)))
acase("create_unix_server(P, sock=tcp socket)",
      lambda L, r: L.create_unix_server(P, sock=r.sock()))
acase("create_unix_server(P, 42)", lambda L, r: L.create_unix_server(P, 42))
acase("create_unix_server(P, path in a missing directory)",
      lambda L, r: L.create_unix_server(
          P, os.path.join(r.unix_path(), "missing", "s")))
acase("create_unix_server(P, path, ssl_handshake_timeout=1)",
      lambda L, r: L.create_unix_server(P, r.unix_path(),
                                        ssl_handshake_timeout=1))
acase("create_unix_server(P, path, ssl=True)",
      lambda L, r: L.create_unix_server(P, r.unix_path(), ssl=True))

# -- create_datagram_endpoint --

acase("create_datagram_endpoint(DP)",
      lambda L, r: L.create_datagram_endpoint(DP))
acase("create_datagram_endpoint(DP, sock=s, local_addr=addr)",
      lambda L, r: L.create_datagram_endpoint(DP, sock=r.udp(),
                                              local_addr=(LOCAL, 0)))
acase("create_datagram_endpoint(DP, sock=tcp socket)",
      lambda L, r: L.create_datagram_endpoint(DP, sock=r.sock()))
acase("create_datagram_endpoint(DP, sock='x')",
      lambda L, r: L.create_datagram_endpoint(DP, sock="x"))
acase("create_datagram_endpoint(DP, local_addr=(host, 70000))",
      lambda L, r: L.create_datagram_endpoint(DP, local_addr=(LOCAL, 70000)))
acase("create_datagram_endpoint(DP, remote_addr=(host, 70000))",
      lambda L, r: L.create_datagram_endpoint(DP,
                                              remote_addr=(LOCAL, 70000)))
acase("create_datagram_endpoint(DP, local_addr=(host, -1))",
      lambda L, r: L.create_datagram_endpoint(DP, local_addr=(LOCAL, -1)))
acase("create_datagram_endpoint(DP, local_addr='x')",
      lambda L, r: L.create_datagram_endpoint(DP, local_addr="x"))
acase("create_datagram_endpoint(DP, local_addr=(host,))",
      lambda L, r: L.create_datagram_endpoint(DP, local_addr=(LOCAL,)))
acase("create_datagram_endpoint(DP, local_addr=addr, reuse_address=True)",
      lambda L, r: L.create_datagram_endpoint(DP, local_addr=(LOCAL, 0),
                                              reuse_address=True))
acase("create_datagram_endpoint(DP, AF_UNIX, local_addr=42)",
      lambda L, r: L.create_datagram_endpoint(DP, local_addr=42,
                                              family=socket.AF_UNIX))
acase("create_datagram_endpoint(DP, AF_UNIX, remote_addr=42)",
      lambda L, r: L.create_datagram_endpoint(DP, remote_addr=42,
                                              family=socket.AF_UNIX))
acase("create_datagram_endpoint(DP, local_addr=addr, family=AF_INET6)",
      lambda L, r: L.create_datagram_endpoint(DP, local_addr=(LOCAL, 0),
                                              family=socket.AF_INET6))
acase("create_datagram_endpoint(DP, local_addr=('x..y', 0))",
      lambda L, r: L.create_datagram_endpoint(DP, local_addr=("x..y", 0)))
acase("create_datagram_endpoint(42, local_addr=addr)",
      lambda L, r: L.create_datagram_endpoint(42, local_addr=(LOCAL, 0)))

# -- connect_accepted_socket --

acase("connect_accepted_socket(P, udp)",
      lambda L, r: L.connect_accepted_socket(P, r.udp()))
acase("connect_accepted_socket(P, 'x')",
      lambda L, r: L.connect_accepted_socket(P, "x"))
acase("connect_accepted_socket(P, closed socket)",
      lambda L, r: L.connect_accepted_socket(P, r.closed_sock()))
acase("connect_accepted_socket(P, s, ssl_handshake_timeout=1)",
      lambda L, r: L.connect_accepted_socket(P, r.pair()[0],
                                             ssl_handshake_timeout=1))
acase("connect_accepted_socket(P, s, ssl_shutdown_timeout=1)",
      lambda L, r: L.connect_accepted_socket(P, r.pair()[0],
                                             ssl_shutdown_timeout=1),
      since=(3, 11))
acase("connect_accepted_socket(42, s)",
      lambda L, r: L.connect_accepted_socket(42, r.pair()[0]))

# -- subprocess_exec, subprocess_shell --

acase("subprocess_shell(P, ['true'])",
      lambda L, r: L.subprocess_shell(P, ["true"]))
acase("subprocess_shell(P, 42)", lambda L, r: L.subprocess_shell(P, 42))
for _kw, _val in [("universal_newlines", True), ("shell", False),
                  ("bufsize", 1), ("text", True), ("encoding", "utf-8"),
                  ("errors", "strict")]:
    acase(f"subprocess_shell(P, 'true', {_kw}={_val!r})",
          lambda L, r, k=_kw, v=_val: L.subprocess_shell(P, "true",
                                                         **{k: v}))
    acase(f"subprocess_exec(P, 'true', {_kw}={_val!r})",
          lambda L, r, k=(_kw if _kw != "shell" else "shell"),
          v=(_val if _kw != "shell" else True):
          L.subprocess_exec(P, "true", **{k: v}))
acase("subprocess_exec(P)", lambda L, r: L.subprocess_exec(P))
acase("subprocess_exec(P, missing program)",
      lambda L, r: L.subprocess_exec(P, "/nonexistent/ringloop-prog"))
acase("subprocess_exec(P, 42)", lambda L, r: L.subprocess_exec(P, 42))
acase("subprocess_exec(P, 'true', cwd=missing)",
      lambda L, r: L.subprocess_exec(P, "true", cwd="/nonexistent/dir"))
acase("subprocess_exec(P, 'true', stdin='x')",
      lambda L, r: L.subprocess_exec(P, "true", stdin="x"))
acase("subprocess_exec(42, 'true')", lambda L, r: L.subprocess_exec(42, "true"))

# -- connect_read_pipe, connect_write_pipe --

acase("connect_read_pipe(P, 'x')", lambda L, r: L.connect_read_pipe(P, "x"))
acase("connect_write_pipe(P, 42)", lambda L, r: L.connect_write_pipe(P, 42))
acase("connect_read_pipe(P, regular file)",
      lambda L, r: L.connect_read_pipe(P, r.file()))
acase("connect_write_pipe(P, regular file)",
      lambda L, r: L.connect_write_pipe(P, r.file(mode="wb")))
acase("connect_read_pipe(P, closed file)",
      lambda L, r: L.connect_read_pipe(P, r.closed_file()))
acase("connect_write_pipe(P, fileno() -> 2**40)",
      lambda L, r: L.connect_write_pipe(P, _FileNo(2**40)))
acase("connect_read_pipe(42, pipe)",
      lambda L, r: L.connect_read_pipe(42, os.fdopen(os.dup(r.pipe()[0]),
                                                      "rb", buffering=0)))

# -- start_tls --


async def _start_tls(L: Any, r: Res, ctx: Any, **kw: Any) -> Any:
    tr = await r.transport()
    return await L.start_tls(tr, tr.get_protocol(), ctx, **kw)


async def _start_tls_closing(L: Any, r: Res) -> Any:
    tr = await r.transport()
    tr.close()
    return await L.start_tls(tr, tr.get_protocol(), _ssl_ctx())


async def _start_tls_datagram(L: Any, r: Res) -> Any:
    tr, pr = await L.create_datagram_endpoint(DP, sock=r.udp())
    r.keep(tr)
    return await L.start_tls(tr, pr, _ssl_ctx())


acase("start_tls(tr, pr, 'notactx')",
      lambda L, r: _start_tls(L, r, "notactx"))
acase("start_tls(tr, pr, None)", lambda L, r: _start_tls(L, r, None))
acase("start_tls('x', pr, ctx)",
      lambda L, r: L.start_tls("x", P(), _ssl_ctx()))
acase("start_tls(closing tr, pr, ctx)", _start_tls_closing)
acase("start_tls(datagram tr, pr, ctx)", _start_tls_datagram)
acase("start_tls(tr, pr, ctx, ssl_handshake_timeout=-1)",
      lambda L, r: _start_tls(L, r, _ssl_ctx(), server_side=True,
                              ssl_handshake_timeout=-1))
acase("start_tls(tr, pr, ctx, ssl_shutdown_timeout=-1)",
      lambda L, r: _start_tls(L, r, _ssl_ctx(), server_side=True,
                              ssl_shutdown_timeout=-1), since=(3, 11))


# -- known mismatches, to be fixed where the mark says --

XFAIL: dict[str, str] = {}
for _id, _reason in XFAIL.items():
    CASES[_id].xfail = _reason


# ---- running a case -----------------------------------------------------------

def _finish(loop: Any, res: Res) -> None:
    try:
        res.cancel_handles()
        if not loop.is_closed():
            loop.run_until_complete(res.aclose())
            tasks = asyncio.all_tasks(loop)
            for t in tasks:
                t.cancel()
            if tasks:
                loop.run_until_complete(
                    asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        res.close()
        loop.close()


@contextlib.contextmanager
def _quiet_asyncio_del() -> Any:
    """asyncio's pipe transports' __del__ fails on a transport whose
    __init__ failed (no _closing yet): asyncio's noise, not the case's."""
    old = sys.unraisablehook

    def hook(u: Any) -> None:
        if getattr(u.object, "__module__", None) != "asyncio.unix_events":
            old(u)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = old


def run_case(kind: str, c: Case) -> type[BaseException] | None:
    """Run c on a fresh loop of kind; return the type it raised, or None."""
    loop = make_factory(kind)()
    res = Res(loop)
    outcome: type[BaseException] | None = None
    try:
        loop.set_debug(c.debug)
        if not c.running:
            try:
                c.fn(loop, res)
            except Exception as exc:
                outcome = type(exc)
        else:
            async def capture() -> type[BaseException] | None:
                try:
                    result = c.fn(loop, res)
                    if inspect.isawaitable(result):
                        result = await result
                    res.keep(result)
                except Exception as exc:
                    return type(exc)
                return None

            async def guarded() -> type[BaseException] | None:
                # capture() returns every exception of the case itself, so
                # a TimeoutError here is the guard's: the case hung.
                try:
                    return await asyncio.wait_for(capture(), HANG_GUARD)
                except asyncio.TimeoutError:
                    pytest.fail(f"{c.id} hung on {kind}")

            outcome = loop.run_until_complete(guarded())
    finally:
        _finish(loop, res)
        gc.collect()
    return outcome


def _params() -> list[Any]:
    out = []
    for c in CASES.values():
        for kind in LOOPS:
            marks = []
            if c.xfail and kind != "asyncio":
                marks.append(pytest.mark.xfail(strict=True, reason=c.xfail))
            out.append(pytest.param(c.id, kind, marks=marks,
                                    id=f"{kind}-{c.id}"))
    return out


def _name(t: type[BaseException] | None) -> str:
    return "no exception" if t is None else t.__name__


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("case_id, kind", _params(), indirect=["kind"])
def test_bad_input(case_id: str, kind: str) -> None:
    c = CASES[case_id]
    if c.since and sys.version_info < c.since:
        pytest.skip(f"asyncio has this only from Python "
                    f"{c.since[0]}.{c.since[1]}")
    with _quiet_asyncio_del():
        expected = run_case("asyncio", c)
    if kind == "asyncio":
        return
    got = run_case(kind, c)
    assert got is expected, (
        f"{c.id}: ringloop-{kind} gave {_name(got)}, "
        f"asyncio gave {_name(expected)}")


def test_enough_cases() -> None:
    assert len(CASES) >= 120


def test_every_public_method_has_a_case() -> None:
    """Each public AbstractEventLoop method is called by some case, except
    those that take no input worth getting wrong."""
    no_input = {"close", "create_future", "get_debug", "get_exception_handler",
                "get_task_factory", "is_closed", "is_running", "stop", "time",
                "set_debug", "shutdown_asyncgens"}
    covered = {c.id.split("(")[0].split(" ")[0] for c in CASES.values()}
    public = {n for n in dir(asyncio.AbstractEventLoop)
              if not n.startswith("_")}
    assert public - covered - no_input == set()
