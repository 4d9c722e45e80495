"""Application servers for _server.py: uvicorn (httptools) with a bare ASGI
hello world, uvicorn with FastAPI returning a small JSON object, and
aiohttp.web's hello world.

Each runs inside the _server.py process on the loop that process made, the
way its users run it with that loop: uvicorn as `uvicorn.run(app,
loop=..., http="httptools", workers=1, access_log=False)` would (uvicorn's
own "asyncio" and "uvloop" loop factories make the same loops as
_loops.make_loop; for ringloop a loop factory), aiohttp through
web.AppRunner and web.TCPSite with access_log=None. Only the loop and the
listening socket (port 0, so that the port can be reported) are ours.

Every request goes through Counters.fault_now() (the request count, and
--fault); uvicorn's connections are counted (aiohttp's are not: it has no
connection-per-request scenario); anything the framework logs at ERROR
level (an exception in the application) counts as an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any, Awaitable, Callable, Iterator

APPS = ("uvicorn", "fastapi", "aiohttp")
# Module each app needs, for the runner's "not installed" note.
NEEDS = {"uvicorn": ("uvicorn", "httptools"),
         "fastapi": ("uvicorn", "httptools", "fastapi"),
         "aiohttp": ("aiohttp",)}

HELLO = b"Hello, World!"
JSON_BODY = b'{"message":"Hello, World!"}'
# The body each app answers GET / with (the runner's check).
BODIES = {"uvicorn": HELLO, "fastapi": JSON_BODY, "aiohttp": HELLO}

Stopper = Callable[[], Awaitable[None]]


class _ErrorCounter(logging.Handler):
    def __init__(self, counters: Any) -> None:
        super().__init__(logging.ERROR)
        self.counters = counters

    def emit(self, record: logging.LogRecord) -> None:
        self.counters.error(f"{record.name}: {record.getMessage()}",
                            record.exc_info[1] if record.exc_info else None)


def _count_errors(counters: Any, *loggers: str) -> None:
    for name in loggers:
        log = logging.getLogger(name)
        log.addHandler(_ErrorCounter(counters))
        log.setLevel(logging.WARNING)
        log.propagate = False


def _listen(port: int, backlog: int) -> socket.socket:
    # IPPROTO_TCP, as getaddrinfo gives it to uvicorn.run and create_server:
    # asyncio (and ringloop like it) set TCP_NODELAY on the accepted
    # sockets of a listener whose proto is IPPROTO_TCP only; with proto 0
    # uvicorn's two writes per response meet Nagle and the peer's delayed
    # ACK (40 ms a request). uvloop sets it whatever the proto.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM,
                         socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


# ---- uvicorn: bare ASGI and FastAPI ----------------------------------------

def asgi_hello(counters: Any) -> Any:
    start = {"type": "http.response.start", "status": 200,
             "headers": [(b"content-type", b"text/plain"),
                         (b"content-length", b"%d" % len(HELLO))]}
    body = {"type": "http.response.body", "body": HELLO}
    failed = {"type": "http.response.start", "status": 500,
              "headers": [(b"content-length", b"0")]}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        fault = counters.fault_now()
        if fault == "raise":
            raise RuntimeError("fault injected by --fault raise")
        if fault:
            await send(failed)
            await send({"type": "http.response.body", "body": b""})
            return
        await send(start)
        await send(body)

    return app


def fastapi_json(counters: Any) -> Any:
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI()

    @app.get("/", response_model=None)
    async def root() -> Any:
        fault = counters.fault_now()
        if fault == "raise":
            raise RuntimeError("fault injected by --fault raise")
        if fault:
            return JSONResponse({}, status_code=500)
        return {"message": "Hello, World!"}

    return app


async def start_uvicorn(app_name: str, port: int, backlog: int,
                        counters: Any) -> tuple[socket.socket, Stopper]:
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class CountingProtocol(HttpToolsProtocol):
        # uvicorn's httptools protocol; only counts the connections.
        def connection_made(self, transport: Any) -> None:  # type: ignore
            counters.connections += 1
            super().connection_made(transport)

    app = (asgi_hello if app_name == "uvicorn" else fastapi_json)(counters)
    config = uvicorn.Config(app, http=CountingProtocol, loop="none",
                            lifespan="off", workers=1, access_log=False,
                            log_config=None, log_level="warning",
                            backlog=backlog, host="127.0.0.1", port=port)
    _count_errors(counters, "uvicorn.error", "uvicorn")

    class Server(uvicorn.Server):
        # The signals are _server.py's: it sets should_exit on SIGTERM.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    sock = _listen(port, backlog)
    server = Server(config)
    task = asyncio.get_running_loop().create_task(server.serve([sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)

    async def stop() -> None:
        server.should_exit = True
        await task

    return sock, stop


# ---- aiohttp.web ----------------------------------------------------------

async def start_aiohttp(port: int, backlog: int,
                        counters: Any) -> tuple[socket.socket, Stopper]:
    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        fault = counters.fault_now()
        if fault == "raise":
            raise RuntimeError("fault injected by --fault raise")
        if fault:
            return web.Response(status=500)
        return web.Response(text=HELLO.decode())

    _count_errors(counters, "aiohttp.server", "aiohttp.web")
    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    sock = _listen(port, backlog)
    site = web.SockSite(runner, sock, backlog=backlog)
    await site.start()

    async def stop() -> None:
        await runner.cleanup()

    return sock, stop


async def start(app_name: str, port: int, backlog: int,
                counters: Any) -> tuple[socket.socket, Stopper]:
    if app_name == "aiohttp":
        return await start_aiohttp(port, backlog, counters)
    return await start_uvicorn(app_name, port, backlog, counters)
