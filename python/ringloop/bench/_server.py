"""The servers under load: `python -m ringloop.bench._server LOOP STYLE`.

One process runs one server on one event loop (see _loops.py):

  protocol   asyncio.Protocol echo: data_received writes the data back
  buffered   asyncio.BufferedProtocol echo into a buffer of its own
  streams    asyncio.start_server echo: reader.read, writer.write, drain
  sock       loop.sock_accept, loop.sock_recv, loop.sock_sendall echo
  http       HTTP/1.1 hello-world on httptools (keep-alive, pipelining;
             a request with "Connection: close" is answered with it and
             the connection closed)
  uvicorn    uvicorn (httptools) serving a bare ASGI hello world
  fastapi    uvicorn serving FastAPI, GET / returns a small JSON object
  aiohttp    aiohttp.web hello world
             (the last three: see _apps.py)

It listens on 127.0.0.1 (port 0 unless --port), prints one JSON line
{"port": ..., "loop": {...}} on stdout when it accepts connections, serves
until SIGTERM or SIGINT, then prints one JSON line with what it counted
({"connections": N, "requests": N, "errors": N}; requests are the reads
echoed, or the HTTP requests answered; on ringloop also "loop_stats", the
loop's stats() over the whole run) and exits with 0, or 1 when something
went wrong. Every error is also written to stderr.

A peer that resets or leaves mid-message is a normal end of a connection
(the load generator exits with echoes in flight). Any other exception, and
any call of the loop's exception handler, is an error.

--fault corrupt|raise makes the server misbehave on purpose at the 100th
read (echo) or request (HTTP): corrupt the echo or answer 500, or raise.
The test suite checks that the runner reports such a server as failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import sys
import traceback
from typing import Any, Iterator

from ._apps import APPS
from ._loops import describe, make_loop

STYLES = ("protocol", "buffered", "streams", "sock", "http") + APPS
READ_SIZE = 256 * 1024
BACKLOG = 4096
SHUTDOWN_TIMEOUT = 5.0

HTTP_BODY = b"Hello, World!"
HTTP_RESPONSE = (b"HTTP/1.1 200 OK\r\n"
                 b"Content-Type: text/plain\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(HTTP_BODY)) + HTTP_BODY
HTTP_RESPONSE_CLOSE = HTTP_RESPONSE.replace(
    b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
HTTP_500 = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"


class Counters:
    def __init__(self, fault: str | None) -> None:
        self.connections = 0
        self.requests = 0
        self.errors = 0
        self.fault = fault

    def error(self, what: str, exc: BaseException | None = None) -> None:
        self.errors += 1
        print(f"server error: {what}", file=sys.stderr)
        if exc is not None:
            traceback.print_exception(type(exc), exc, exc.__traceback__,
                                      file=sys.stderr)
        sys.stderr.flush()

    def fault_now(self) -> str | None:
        """The fault to inject into this request (--fault: the 100th)."""
        self.requests += 1
        return self.fault if self.requests == 100 else None

    def echo_data(self, data: bytes) -> bytes:
        """The bytes to send back for `data` (only --fault changes them)."""
        fault = self.fault_now()
        if fault == "corrupt":
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        elif fault == "raise":
            raise RuntimeError("fault injected by --fault raise")
        return data


# ---- echo: protocol and buffered protocol ---------------------------------

class EchoProtocol(asyncio.Protocol):
    def __init__(self, counters: Counters) -> None:
        self.counters = counters
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.counters.connections += 1
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(self.counters.echo_data(data))


class EchoBufferedProtocol(asyncio.BufferedProtocol):
    def __init__(self, counters: Counters) -> None:
        self.counters = counters
        self.transport: Any = None
        self.buffer = bytearray(READ_SIZE)

    def connection_made(self, transport: Any) -> None:
        self.counters.connections += 1
        self.transport = transport

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        # A copy: the transport may keep what it could not send yet, and the
        # next read reuses self.buffer.
        self.transport.write(self.counters.echo_data(self.buffer[:nbytes]))


# ---- echo: streams and sock_* ---------------------------------------------

@contextlib.contextmanager
def handler_errors(counters: Counters, what: str) -> Iterator[None]:
    """A connection handler's body: the peer leaving (ConnectionError) is a
    normal end, any other exception an error."""
    try:
        yield
    except ConnectionError:
        pass
    except Exception as exc:
        counters.error(what, exc)


async def streams_client(counters: Counters, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
    counters.connections += 1
    try:
        with handler_errors(counters, "streams handler"):
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    break
                writer.write(counters.echo_data(data))
                await writer.drain()
    finally:
        writer.close()


async def sock_client(counters: Counters, loop: asyncio.AbstractEventLoop,
                      conn: socket.socket) -> None:
    with conn, handler_errors(counters, "sock_* handler"):
        while True:
            data = await loop.sock_recv(conn, READ_SIZE)
            if not data:
                break
            await loop.sock_sendall(conn, counters.echo_data(data))


async def sock_server(counters: Counters, loop: asyncio.AbstractEventLoop,
                      lsock: socket.socket) -> None:
    tasks: set[asyncio.Task[None]] = set()
    while True:
        conn, _ = await loop.sock_accept(lsock)
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        counters.connections += 1
        task = loop.create_task(sock_client(counters, loop, conn))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


# ---- HTTP -----------------------------------------------------------------

class HttpProtocol(asyncio.Protocol):
    def __init__(self, counters: Counters) -> None:
        import httptools

        self.counters = counters
        self.parser = httptools.HttpRequestParser(self)
        self.parse_error = httptools.HttpParserError
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.counters.connections += 1
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except self.parse_error as exc:
            self.counters.error("bad HTTP request", exc)
            self.transport.close()

    def on_message_complete(self) -> None:
        fault = self.counters.fault_now()
        if fault == "raise":
            raise RuntimeError("fault injected by --fault raise")
        if fault:
            self.transport.write(HTTP_500)
        elif self.parser.should_keep_alive():
            self.transport.write(HTTP_RESPONSE)
        else:
            # Said so, the client knows the connection ends here (wrk then
            # reconnects rather than counting a read error).
            self.transport.write(HTTP_RESPONSE_CLOSE)
            self.transport.close()


# ---- main -----------------------------------------------------------------

async def serve(style: str, port: int, loop_info: dict[str, Any],
                counters: Counters) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(0))

    server: Any = None
    accept_task = None
    stop_app = None
    if style in APPS:
        from . import _apps

        lsock, stop_app = await _apps.start(style, port, BACKLOG, counters)
        sockets = [lsock]
    elif style == "streams":
        server = await asyncio.start_server(
            lambda r, w: streams_client(counters, r, w), "127.0.0.1", port,
            backlog=BACKLOG, limit=READ_SIZE)
        sockets = server.sockets
    elif style == "sock":
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", port))
        lsock.listen(BACKLOG)
        lsock.setblocking(False)
        accept_task = loop.create_task(sock_server(counters, loop, lsock))
        sockets = [lsock]
    else:
        proto = {"protocol": EchoProtocol, "buffered": EchoBufferedProtocol,
                 "http": HttpProtocol}[style]
        server = await loop.create_server(lambda: proto(counters),
                                          "127.0.0.1", port, backlog=BACKLOG)
        sockets = server.sockets
    print(json.dumps({"port": sockets[0].getsockname()[1], "loop": loop_info,
                      "style": style}), flush=True)

    await stop
    if stop_app is not None:
        await stop_app()
    if server is not None:
        server.close()
    if accept_task is not None:
        accept_task.cancel()
    # The load generator has gone: every connection handler sees EOF and
    # ends by itself. One still running after a while is an error.
    tasks = asyncio.all_tasks() - {asyncio.current_task(), accept_task}
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_TIMEOUT)
        if pending:
            counters.error(f"{len(pending)} connection handlers still "
                           f"running {SHUTDOWN_TIMEOUT} s after the stop")
    if accept_task is not None:
        await asyncio.gather(accept_task, return_exceptions=True)
        sockets[0].close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ringloop.bench._server")
    ap.add_argument("loop")
    ap.add_argument("style", choices=STYLES)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--fault", choices=("corrupt", "raise"))
    args = ap.parse_args(argv)

    counters = Counters(args.fault)
    loop = make_loop(args.loop)

    def on_error(loop: Any, context: dict[str, Any]) -> None:
        counters.error(f"exception handler: {context.get('message')}",
                       context.get("exception"))

    loop.set_exception_handler(on_error)
    asyncio.set_event_loop(loop)
    stats = None
    try:
        loop.run_until_complete(
            serve(args.style, args.port, describe(loop), counters))
    except Exception as exc:
        counters.error("server failed", exc)
    finally:
        # ringloop's counters, for syscalls and completions per request
        stats = loop.stats() if hasattr(loop, "stats") else None
        asyncio.set_event_loop(None)
        loop.close()
    summary: dict[str, Any] = {"connections": counters.connections,
                               "requests": counters.requests,
                               "errors": counters.errors}
    if stats is not None:
        summary["loop_stats"] = stats
    print(json.dumps(summary), flush=True)
    return 1 if counters.errors else 0


if __name__ == "__main__":
    sys.exit(main())
