"""create_datagram_endpoint and DatagramTransport (UDP and Unix datagram),
on stock asyncio and on both ringloop backends."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import os
import socket
import sys
import tempfile
import warnings
import weakref
from typing import Any, Callable, Iterator

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


# ---- a datagram whose delivery is queued -----------------------------------
#
# A datagram that arrives while the loop runs is delivered from the ready
# phase of the next iteration, after the callbacks queued before it: on
# asyncio the selector queues the transport's reader handle, on ringloop the
# recvmsg completion schedules a delivery handle. A callback chained from
# the iteration that sent the datagram therefore runs just before the
# delivery, with the delivery queued: what it does to the transport, to the
# loop or to the garbage collector then must not lose the transport's
# footing, and each loop must show the same.

def _on_ticks(loop: asyncio.AbstractEventLoop,
              steps: list[Callable[[], None]]) -> None:
    """Run steps[k] in the k-th loop iteration from now, each as one
    callback queued by the previous step."""
    def tick(k: int) -> None:
        if k + 1 < len(steps):
            loop.call_soon(tick, k + 1)
        steps[k]()

    loop.call_soon(tick, 0)


class Recorder(asyncio.DatagramProtocol):
    """Writes what happens to a list it does not own, so that it can be
    dropped with its transport."""

    def __init__(self, log: list[Any]) -> None:
        self.log = log

    def connection_made(self, transport: Any) -> None:
        self.log.append("made")

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.log.append(("data", data, VAR.get()))

    def error_received(self, exc: Exception) -> None:
        self.log.append(("error", type(exc).__name__))

    def connection_lost(self, exc: Any) -> None:
        self.log.append(("lost", exc))


VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR",
                                                          default="-")


def _endpoint(loop: asyncio.AbstractEventLoop,
              log: list[Any]) -> tuple[Any, Any, socket.socket]:
    """A transport on loop, its sockname, and a socket to send to it."""
    t, _ = loop.run_until_complete(loop.create_datagram_endpoint(
        lambda: Recorder(log), local_addr=("127.0.0.1", 0)))
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    return t, t.get_extra_info("sockname"), peer


@contextlib.contextmanager
def _resource_warnings() -> Iterator[list[str]]:
    """The ResourceWarnings of the block and of a gc.collect() after it,
    without keeping their sources alive."""
    found: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield found
        gc.collect()
    found += [str(w.message).split(" <")[0] for w in caught
              if issubclass(w.category, ResourceWarning)]
    del caught
    gc.collect()


def _settle(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_until_complete(asyncio.sleep(0.05))



@pytest.mark.parametrize("how", ["close", "abort"])
def test_close_while_a_delivery_is_queued(loop: Any, how: str) -> None:
    """The queued datagram is not delivered; connection_lost(None)
    follows, and nothing arrives after it."""
    log: list[Any] = []
    t, addr, peer = _endpoint(loop, log)
    with peer:
        _on_ticks(loop, [lambda: peer.sendto(b"a", addr),
                         lambda: (log.append(len(log)), getattr(t, how)())])
        _settle(loop)
        peer.sendto(b"late", addr)
        _settle(loop)
    assert log == ["made", 1, ("lost", None)]
    assert t.is_closing()
    assert t.get_extra_info("socket").fileno() == -1


def _skip_unless_pausable(kind: str) -> None:
    if kind == "asyncio" and sys.version_info < (3, 11):
        pytest.skip("asyncio's datagram transports pause from 3.11 on")


def test_pause_resume_while_a_delivery_is_queued(loop: Any,
                                                 kind: str) -> None:
    """Paused and resumed before the queued datagram came out: it is
    delivered, in the context resume_reading() was called in (asyncio's
    new reader handle's), and so are the next ones."""
    _skip_unless_pausable(kind)
    log: list[Any] = []
    t, addr, peer = _endpoint(loop, log)

    def pause_resume() -> None:
        log.append(len(log))
        t.pause_reading()
        assert not t.is_reading()
        VAR.set("resumed")
        t.resume_reading()

    with peer:
        _on_ticks(loop, [lambda: peer.sendto(b"a", addr),
                         lambda: contextvars.copy_context().run(pause_resume),
                         lambda: VAR.set("caller")])
        _settle(loop)
        peer.sendto(b"b", addr)
        _settle(loop)
        t.close()
        _settle(loop)
    assert log == ["made", 1, ("data", b"a", "resumed"),
                   ("data", b"b", "resumed"), ("lost", None)]


def test_paused_while_a_delivery_is_queued(loop: Any, kind: str) -> None:
    """Paused before the queued datagram came out, resumed an iteration
    later: it is delivered after resume_reading(), in its context."""
    _skip_unless_pausable(kind)
    log: list[Any] = []
    t, addr, peer = _endpoint(loop, log)

    def resume() -> None:
        log.append("resume")
        VAR.set("resumed")
        t.resume_reading()

    with peer:
        _on_ticks(loop, [lambda: peer.sendto(b"a", addr),
                         lambda: (log.append(len(log)), t.pause_reading()),
                         lambda: log.append("paused"),
                         lambda: contextvars.copy_context().run(resume)])
        _settle(loop)
        t.close()
        _settle(loop)
    assert log == ["made", 1, "paused", "resume", ("data", b"a", "resumed"),
                   ("lost", None)]


@pytest.mark.parametrize("closing", [False, True])
def test_loop_closed_while_a_delivery_is_queued(loop: Any, kind: str,
                                                closing: bool) -> None:
    """run_forever() leaves on SystemExit with the delivery queued, and the
    loop is closed: the datagram is never delivered, connection_lost() is
    never called (a close() had only scheduled it), and the transport, once
    dropped, goes away and closes its socket; unclosed, it says so with a
    ResourceWarning."""
    log: list[Any] = []
    t, addr, peer = _endpoint(loop, log)
    sock = t.get_extra_info("socket")
    fd = sock.fileno()

    def leave() -> None:
        log.append(len(log))
        if closing:
            t.close()
        raise SystemExit

    with peer:
        _on_ticks(loop, [lambda: peer.sendto(b"a", addr), leave])
        with pytest.raises(SystemExit):
            loop.run_forever()
        loop.close()
    assert log == ["made", 1]
    ref = weakref.ref(t)
    with _resource_warnings() as found:
        del t
    # asyncio's __del__ also warns for a transport closed too late for its
    # connection_lost() to run; ringloop's only for one never closed.
    warned = not closing or kind == "asyncio"
    assert found == (["unclosed transport"] if warned else [])
    assert ref() is None
    assert log == ["made", 1]
    assert sock.fileno() == -1 or not closing
    if not closing:
        with pytest.raises(OSError):
            os.fstat(fd)


@pytest.mark.parametrize("untracked", [False, True])
def test_gc_of_a_dropped_transport_with_a_delivery_queued(
        loop: Any, untracked: bool) -> None:
    """A transport nobody refers to but the loop, collected while its
    delivery is queued: it lives on, delivers, keeps reading, and goes
    away with the loop (with the ResourceWarning of an unclosed one)."""
    if "sqpoll" in getattr(loop, "backend_features", ()):
        # The test needs the datagram sent at one tick to be queued for
        # delivery at the next; with SQPOLL the kernel thread posts the
        # completion an iteration or two later (docs/kernel-testers.md).
        pytest.skip("sqpoll: completions come an iteration later")
    log: list[Any] = []
    t, addr, peer = _endpoint(loop, log)
    ref = weakref.ref(t)
    del t

    def collect() -> None:
        log.append(len(log))
        if untracked:
            # Another callback scheduled after the delivery: ringloop
            # stops tracking a handle only the loop holds then.
            loop.call_soon(log.append, "after")
        gc.collect()
        assert ref() is not None

    with peer:
        _on_ticks(loop, [lambda: peer.sendto(b"a", addr), collect])
        _settle(loop)
        gc.collect()
        peer.sendto(b"b", addr)
        _settle(loop)
    expect: list[Any] = ["made", 1, ("data", b"a", "-")]
    if untracked:
        expect.append("after")
    assert log == expect + [("data", b"b", "-")]
    assert ref() is not None
    with _resource_warnings() as found:
        loop.close()
    assert found == ["unclosed transport"]
    assert ref() is None


def test_ipv4_addresses_as_the_socket_module_writes_them(run: Any) -> None:
    """Senders on addresses whose bytes have one, two and three digits
    (all of 127/8 is loopback): datagram_received() and sock_recvfrom()
    give the address getsockname() gives."""
    hosts = ["127.0.0.1", "127.9.10.99", "127.100.255.0", "127.0.200.254",
             "127.255.1.10", "127.25.205.5"]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        t, p = await loop.create_datagram_endpoint(
            Dgram, local_addr=("127.0.0.1", 0))
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        raw.bind(("127.0.0.1", 0))
        raw.setblocking(False)
        for host in hosts:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((host, 0))
                s.sendto(b"t", t.get_extra_info("sockname"))
                assert await _recv(p) == (b"t", s.getsockname())
                if not hasattr(loop, "sock_recvfrom"):
                    continue  # asyncio before 3.11
                s.sendto(b"s", raw.getsockname())
                assert await asyncio.wait_for(
                    loop.sock_recvfrom(raw, 10), TIMEOUT) == (
                        b"s", s.getsockname())
        raw.close()
        t.close()
        await asyncio.wait_for(p.lost, TIMEOUT)

    run(main())
