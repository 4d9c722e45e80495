"""Cancelling a sock_* call or a StreamReader read loses nothing.

The loop's rule, as asyncio's: a call whose future was cancelled while it
waited has read, accepted or sent nothing; what the kernel has stays in the
socket for the next call. The sequences below show each method once; the
races cancel at random points under traffic, thousands of times, and check
that the application sees exactly the byte stream (or the connections) that
was sent. Every test runs on asyncio's loop, ringloop-epoll and
ringloop-uring.

RINGLOOP_STRESS=long makes the races ten times longer.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import sys
from typing import Any

import pytest

LONG = os.environ.get("RINGLOOP_STRESS") == "long"
ROUNDS = 20000 if LONG else 2000
TIMEOUT = 60

py311 = pytest.mark.skipif(sys.version_info < (3, 11),
                           reason="sock_recvfrom* are new in 3.11")


def _nb(sock: socket.socket) -> socket.socket:
    sock.setblocking(False)
    return sock


def _pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    return _nb(a), _nb(b)


async def _settle() -> None:
    """Let the loop run a few iterations (a pending call reaches its wait)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def _cancel_once_ready(task: asyncio.Future[Any],
                             deliver: Any) -> None:
    """Let task wait, deliver() its data, let the loop see the socket ready,
    then cancel task: it must end cancelled."""
    await _settle()
    deliver()
    await asyncio.sleep(0)  # the readiness reaches the loop
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def _cancel_if_waiting(task: asyncio.Task[Any]) -> bool:
    """Cancel task only while the future it awaits is still pending.

    A task whose future already has its result, but that has not resumed
    yet, loses that result when cancelled: that is asyncio's Task, on every
    loop, not the loop's doing. The loop's rule is about a future cancelled
    while it waits, so that is what these races cancel."""
    waiter = getattr(task, "_fut_waiter", None)
    if waiter is None or waiter.done():
        return False
    return task.cancel()


# ---- each method once ---------------------------------------------------

def test_recv_cancelled_after_data_arrived(run: Any) -> None:
    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        a, b = _pair()
        with a, b:
            task = asyncio.ensure_future(loop.sock_recv(a, 1))
            await _cancel_once_ready(task, lambda: b.send(b"1"))
            return await asyncio.wait_for(loop.sock_recv(a, 1), TIMEOUT)

    assert run(main()) == b"1"


def test_recv_into_cancelled_after_data_arrived(run: Any) -> None:
    async def main() -> tuple[bytes, bytes]:
        loop = asyncio.get_running_loop()
        a, b = _pair()
        with a, b:
            first = bytearray(b"-")
            task = asyncio.ensure_future(loop.sock_recv_into(a, first))
            await _cancel_once_ready(task, lambda: b.send(b"1"))
            buf = bytearray(1)
            n = await asyncio.wait_for(loop.sock_recv_into(a, buf), TIMEOUT)
            # the cancelled call's buffer was never written
            return bytes(first), bytes(buf[:n])

    assert run(main()) == (b"-", b"1")


@py311
def test_recvfrom_cancelled_after_datagram_arrived(run: Any) -> None:
    async def main() -> tuple[bytes, bytes]:
        loop = asyncio.get_running_loop()
        a = _nb(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        b = _nb(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        with a, b:
            a.bind(("127.0.0.1", 0))
            task = asyncio.ensure_future(loop.sock_recvfrom(a, 100))
            await _cancel_once_ready(
                task, lambda: b.sendto(b"one", a.getsockname()))
            data, _ = await asyncio.wait_for(loop.sock_recvfrom(a, 100),
                                             TIMEOUT)
            task = asyncio.ensure_future(
                loop.sock_recvfrom_into(a, bytearray(100)))
            await _cancel_once_ready(
                task, lambda: b.sendto(b"two", a.getsockname()))
            buf = bytearray(100)
            n, _ = await asyncio.wait_for(loop.sock_recvfrom_into(a, buf),
                                          TIMEOUT)
            return data, bytes(buf[:n])

    assert run(main()) == (b"one", b"two")


def test_accept_cancelled_after_connection_arrived(run: Any) -> None:
    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        lsock = _nb(socket.socket())
        with lsock:
            lsock.bind(("127.0.0.1", 0))
            lsock.listen()
            task = asyncio.ensure_future(loop.sock_accept(lsock))
            await _settle()
            client = socket.create_connection(lsock.getsockname())
            with client:
                # Cancel before the loop saw the connection: asyncio's
                # _sock_accept (3.10 to 3.13) does not check whether its
                # future is done, so one step later asyncio itself would
                # accept into the cancelled future and lose the connection.
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                conn, _ = await asyncio.wait_for(loop.sock_accept(lsock),
                                                 TIMEOUT)
                with conn:
                    # the connection is the client's, and it is alive
                    client.sendall(b"ping")
                    return await asyncio.wait_for(loop.sock_recv(conn, 4),
                                                  TIMEOUT)

    assert run(main()) == b"ping"


def test_sendall_cancelled_sends_nothing_more(run: Any) -> None:
    """A cancelled sock_sendall stops where it was: what the peer reads is a
    prefix of it, then what the next call sent."""
    payload = bytes(range(256)) * (16 << 10)  # 4 MiB: more than fits

    async def main() -> tuple[bytes, int]:
        loop = asyncio.get_running_loop()
        a, b = _pair()
        with a, b:
            task = asyncio.ensure_future(loop.sock_sendall(a, payload))
            await _settle()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await _settle()

            async def read_all() -> bytes:
                got = bytearray()
                while True:
                    data = await loop.sock_recv(b, 1 << 20)
                    if not data:
                        return bytes(got)
                    got += data

            reader = asyncio.ensure_future(read_all())
            await asyncio.wait_for(loop.sock_sendall(a, b"END"), TIMEOUT)
            a.shutdown(socket.SHUT_WR)
            got = await asyncio.wait_for(reader, TIMEOUT)
            return got, len(got) - 3

    got, sent = run(main())
    assert 0 < sent < len(payload)
    assert got == payload[:sent] + b"END"


def test_socket_closed_while_a_call_waits(run: Any) -> None:
    """Closing a socket while sock_recv waits on it: the call stays pending
    (asyncio's selector forgets the fd) and never reads from the socket
    that gets the same fd number next."""
    async def main() -> tuple[bool, bytes]:
        loop = asyncio.get_running_loop()
        a1, b1 = _pair()
        task = asyncio.ensure_future(loop.sock_recv(a1, 100))
        await _settle()
        a1.close()
        a2, b2 = _pair()
        with a2, b1, b2:
            b2.send(b"for a2 only")
            try:  # asyncio and epoll: a1 is gone; io_uring's poll kept it
                b1.send(b"x")
            except BrokenPipeError:
                pass
            await _settle()
            pending = not task.done()
            task.cancel()
            data = await asyncio.wait_for(loop.sock_recv(a2, 100), TIMEOUT)
        return pending, data

    assert run(main()) == (True, b"for a2 only")


@py311
def test_recvfrom_into_nbytes_counts_bytes(run: Any) -> None:
    async def main() -> int:
        import array
        loop = asyncio.get_running_loop()
        a = _nb(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        b = _nb(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        with a, b:
            a.bind(("127.0.0.1", 0))
            b.sendto(b"0123456789abcdef", a.getsockname())
            buf = array.array("i", [0] * 4)
            n, _ = await asyncio.wait_for(
                loop.sock_recvfrom_into(a, buf, 8), TIMEOUT)
            return n

    assert run(main()) == 8


def test_recv_zero_returns_at_once(run: Any) -> None:
    async def main() -> tuple[bytes, int]:
        loop = asyncio.get_running_loop()
        a, b = _pair()
        with a, b:
            data = await asyncio.wait_for(loop.sock_recv(a, 0), TIMEOUT)
            n = await asyncio.wait_for(loop.sock_recv_into(a, bytearray()),
                                       TIMEOUT)
            return data, n

    assert run(main()) == (b"", 0)


def test_results_that_come_at_once(run: Any) -> None:
    """The calls that answer without waiting give what asyncio gives."""
    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        a, b = _pair()
        with a, b:
            b.send(b"abc")
            await asyncio.sleep(0)
            out: list[Any] = [await loop.sock_recv(a, 1)]
            buf = bytearray(8)
            out.append(await loop.sock_recv_into(a, buf))
            out.append(bytes(buf[:2]))
            out.append(await loop.sock_sendall(a, b"xyz"))
            out.append(await loop.sock_recv(b, 10))
            return out

    assert run(main()) == [b"a", 2, b"bc", None, b"xyz"]


# ---- races ----------------------------------------------------------------

def _same_stream(got: bytes, sent: bytes) -> None:
    """got is sent, byte for byte (the message says where it differs)."""
    if got != sent:
        at = next((i for i, (x, y) in enumerate(zip(got, sent)) if x != y),
                  min(len(got), len(sent)))
        pytest.fail(f"got {len(got)} bytes of {len(sent)}; "
                    f"they differ from offset {at}")


def _stream(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _chunks(data: bytes, rng: random.Random) -> list[bytes]:
    """data cut at random points, in pieces of 1 byte to 4 KiB."""
    out, pos = [], 0
    while pos < len(data):
        n = rng.choice((1, 7, 100, 1000, 4096))
        out.append(data[pos:pos + n])
        pos += n
    return out


async def _pause(rng: random.Random) -> None:
    """A writer's pause: more iterations than the reader's, so that the
    reader often waits (and is cancelled while it waits)."""
    for _ in range(rng.randrange(1, 8)):
        await asyncio.sleep(0)


async def _feed(loop: Any, sock: socket.socket, data: bytes,
                rng: random.Random) -> None:
    for chunk in _chunks(data, rng):
        await loop.sock_sendall(sock, chunk)
        await _pause(rng)
    sock.shutdown(socket.SHUT_WR)


@pytest.mark.parametrize("method", ["sock_recv", "sock_recv_into"])
def test_recv_race(run: Any, method: str) -> None:
    """Random cancellations under traffic: the bytes the application gets
    are exactly the bytes sent."""
    data = _stream(ROUNDS * 2500, 1)

    async def main() -> tuple[bytes, int]:
        loop = asyncio.get_running_loop()
        rng = random.Random(2)
        a, b = _pair()
        got = bytearray()
        cancelled = 0
        with a, b:
            feeder = asyncio.ensure_future(_feed(loop, b, data, rng))
            while True:
                size = rng.choice((1, 1000, 65536, 65536))
                if method == "sock_recv":
                    task = asyncio.ensure_future(loop.sock_recv(a, size))
                else:
                    buf = bytearray(size)
                    task = asyncio.ensure_future(loop.sock_recv_into(a, buf))
                for _ in range(rng.randrange(3)):
                    await asyncio.sleep(0)
                if _cancel_if_waiting(task):
                    cancelled += 1
                try:
                    r = await asyncio.wait_for(asyncio.shield(task), TIMEOUT)
                except asyncio.CancelledError:
                    if not task.cancelled():
                        raise
                    continue
                chunk = r if method == "sock_recv" else buf[:r]
                if not chunk:
                    break
                got += chunk
            await asyncio.wait_for(feeder, TIMEOUT)
        return bytes(got), cancelled

    got, cancelled = run(main())
    assert cancelled > 0
    _same_stream(got, data)


def test_accept_race(run: Any, kind: str) -> None:
    """Random cancellations of sock_accept while clients connect: every
    connection is accepted exactly once, and no descriptor is left open."""
    if kind == "asyncio":
        pytest.skip("asyncio's _sock_accept (3.10 to 3.13) accepts for a "
                    "future cancelled after the socket's readiness was "
                    "queued: InvalidStateError, and the connection is lost")
    nconn = ROUNDS

    async def main() -> tuple[list[int], int]:
        loop = asyncio.get_running_loop()
        rng = random.Random(3)
        lsock = _nb(socket.socket())
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(nconn)
        addr = lsock.getsockname()
        seen: list[int] = []
        readers: list[asyncio.Future[None]] = []
        cancelled = accepted = 0

        async def read_id(conn: socket.socket) -> None:
            with conn:
                ident = b""
                while len(ident) < 4:
                    part = await loop.sock_recv(conn, 4 - len(ident))
                    assert part, "a connection closed before its id"
                    ident += part
                seen.append(int.from_bytes(ident, "big"))

        async def clients() -> None:
            for i in range(nconn):
                c = _nb(socket.socket())
                await loop.sock_connect(c, addr)
                await loop.sock_sendall(c, i.to_bytes(4, "big"))
                c.close()
                await _pause(rng)

        with lsock:
            feeder = asyncio.ensure_future(clients())
            while accepted < nconn:
                task = asyncio.ensure_future(loop.sock_accept(lsock))
                for _ in range(rng.randrange(3)):
                    await asyncio.sleep(0)
                if _cancel_if_waiting(task):
                    cancelled += 1
                try:
                    conn, _ = await asyncio.wait_for(asyncio.shield(task),
                                                     TIMEOUT)
                except asyncio.CancelledError:
                    if not task.cancelled():
                        raise
                    continue
                readers.append(asyncio.ensure_future(read_id(conn)))
                accepted += 1
            await asyncio.wait_for(feeder, TIMEOUT)
            await asyncio.wait_for(asyncio.gather(*readers), TIMEOUT)
        return seen, cancelled

    fds = len(os.listdir("/proc/self/fd"))
    seen, cancelled = run(main())
    assert cancelled > 0
    assert sorted(seen) == list(range(nconn))
    assert len(os.listdir("/proc/self/fd")) <= fds


def test_stream_read_race(run: Any) -> None:
    """Tasks awaiting StreamReader.read() cancelled at random points under
    load: the bytes the application gets are exactly the bytes sent."""
    data = _stream(ROUNDS * 2500, 4)

    async def main() -> tuple[bytes, int]:
        rng = random.Random(5)
        done = asyncio.get_running_loop().create_future()

        async def serve(reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
            for chunk in _chunks(data, rng):
                writer.write(chunk)
                await writer.drain()
                await _pause(rng)
            writer.close()
            done.set_result(None)

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        async with server:
            reader, writer = await asyncio.open_connection(
                *server.sockets[0].getsockname())
            got = bytearray()
            cancelled = 0
            while True:
                task = asyncio.ensure_future(
                    reader.read(rng.choice((1, 1000, 65536, 65536))))
                for _ in range(rng.randrange(3)):
                    await asyncio.sleep(0)
                if _cancel_if_waiting(task):
                    cancelled += 1
                try:
                    chunk = await asyncio.wait_for(asyncio.shield(task),
                                                   TIMEOUT)
                except asyncio.CancelledError:
                    if not task.cancelled():
                        raise
                    continue
                if not chunk:
                    break
                got += chunk
            writer.close()
            await done
        return bytes(got), cancelled

    got, cancelled = run(main())
    assert cancelled > 0
    _same_stream(got, data)
