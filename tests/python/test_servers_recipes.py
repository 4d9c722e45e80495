"""The README's server recipes, run as a user would: uvicorn (command line
with --workers, and uvicorn.run), gunicorn with ringloop.workers'
UvicornWorker and AiohttpWorker (max-requests, reload, graceful shutdown),
aiohttp's web.run_app and hypercorn's serve, each a real process from the
real packages (scripts/test_python.sh installs them into the test venv).

Every answer says which loop served it (its class and backend) and the
serving process, so a server that quietly ran on asyncio's own loop fails.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import ringloop

httpx = pytest.importorskip(
    "httpx", reason="needs httpx (scripts/test_python.sh installs it)")
ws_client = pytest.importorskip(
    "websockets.sync.client",
    reason="needs websockets (scripts/test_python.sh installs it)")

BIN = Path(sys.executable).parent
RINGLOOP_LOOP = "ringloop._loop.Loop"
DEADLINE = 60.0  # a hang guard for each wait, not a timing check

# The ASGI app of the uvicorn, gunicorn and hypercorn recipes: JSON that
# says who served the request; /ws echoes; /slow answers once the test
# creates the file $RECIPE_DIR/release (a request in flight at shutdown).
ASGI_APP = '''
import asyncio, json, os

VERSION = 1


def facts(path):
    loop = asyncio.get_running_loop()
    return {"loop": f"{type(loop).__module__}.{type(loop).__qualname__}",
            "backend": getattr(loop, "backend", None), "pid": os.getpid(),
            "path": path, "version": VERSION}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    elif scope["type"] == "http":
        while (await receive()).get("more_body"):
            pass
        if scope["path"] == "/slow":
            mark = os.path.join(os.environ["RECIPE_DIR"], "slow")
            open(mark, "w").close()
            release = os.path.join(os.environ["RECIPE_DIR"], "release")
            while not os.path.exists(release):
                await asyncio.sleep(0.02)
        body = json.dumps(facts(scope["path"])).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            answer = {**facts(scope["path"]), "echo": message.get("text")}
            await send({"type": "websocket.send", "text": json.dumps(answer)})
'''

AIOHTTP_APP = '''
import asyncio, json, os
from aiohttp import web


def facts(path):
    loop = asyncio.get_running_loop()
    return {"loop": f"{type(loop).__module__}.{type(loop).__qualname__}",
            "backend": getattr(loop, "backend", None), "pid": os.getpid(),
            "path": path}


async def index(request):
    return web.json_response(facts(request.path))


async def ws(request):
    sock = web.WebSocketResponse()
    await sock.prepare(request)
    async for message in sock:
        await sock.send_str(json.dumps({**facts(request.path),
                                        "echo": message.data}))
    return sock


def make_app():
    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/ws", ws)
    return app


app = make_app()
'''


def _need(*modules: str) -> None:
    for name in modules:
        pytest.importorskip(
            name, reason=f"needs {name} (scripts/test_python.sh installs it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _default_backend() -> str:
    loop = ringloop.new_event_loop()
    try:
        return loop.backend
    finally:
        loop.close()


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _wait_for(what: str, check: Callable[[], Any], server: "Server") -> Any:
    end = time.monotonic() + DEADLINE
    while True:
        got = check()
        if got:
            return got
        if server.proc.poll() is not None:
            pytest.fail(f"server exited ({server.proc.returncode}) while "
                        f"waiting for {what}:\n{server.log()}")
        if time.monotonic() > end:
            pytest.fail(f"no {what} after {DEADLINE} s:\n{server.log()}")
        time.sleep(0.05)


class Server:
    """A server process started from a directory, on 127.0.0.1:port."""

    def __init__(self, argv: list[str], cwd: Path, port: int,
                 env: dict[str, str]) -> None:
        self.cwd, self.port = cwd, port
        self.logfile = cwd / "server.log"
        with open(self.logfile, "wb") as out:
            # Its own session: the test ends a leftover group by its id.
            self.proc = subprocess.Popen(
                argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "RECIPE_DIR": str(cwd), **env})
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}",
                                 timeout=DEADLINE)
        _wait_for("first answer", self._answers, self)

    def _answers(self) -> bool:
        try:
            return self.get("/")["path"] == "/"
        except httpx.TransportError:
            return False

    def log(self) -> str:
        return self.logfile.read_text(errors="replace")

    def get(self, path: str, **kw: Any) -> dict[str, Any]:
        # A new connection per request (no keep-alive): each one may go
        # to another worker.
        r = self.http.get(path, headers={"connection": "close"}, **kw)
        assert r.status_code == 200, r.text
        return r.json()

    def ws(self, path: str, text: str) -> dict[str, Any]:
        with ws_client.connect(f"ws://127.0.0.1:{self.port}{path}",
                               open_timeout=DEADLINE) as conn:
            conn.send(text)
            answer = json.loads(conn.recv(timeout=DEADLINE))
        assert answer["echo"] == text
        return answer

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            pytest.fail(f"server ignored {signal.Signals(sig).name}:\n"
                        f"{self.log()}")

    def close(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """serve(argv, files={name: source}, env={}) -> a running Server; the
    placeholder {port} in argv is a free port."""
    started: list[Server] = []

    def start(argv: list[str], files: dict[str, str],
              env: dict[str, str] | None = None) -> Server:
        for name, source in files.items():
            (tmp_path / name).write_text(textwrap.dedent(source))
        port = _free_port()
        argv = [a.replace("{port}", str(port)) for a in argv]
        server = Server(argv, tmp_path, port, env or {})
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def _check(answer: dict[str, Any], backend: str) -> None:
    assert answer["loop"] == RINGLOOP_LOOP, answer
    assert answer["backend"] == backend, answer


def _slow_request_through(server: Server, shutdown: Callable[[], None],
                          shutting_down: str, count: int = 1) -> None:
    """A request in flight when the server is told to stop still gets its
    answer: start /slow, stop the server, wait until the log says
    shutting_down (count times), then let /slow finish."""
    result: dict[str, Any] = {}

    def request() -> None:
        try:
            result["answer"] = server.get("/slow")
        except Exception as exc:  # reported below
            result["error"] = exc

    client = threading.Thread(target=request)
    client.start()
    _wait_for("/slow to start", (server.cwd / "slow").exists, server)
    shutdown()
    _wait_for(f"{shutting_down!r} in the log",
              lambda: server.log().count(shutting_down) >= count, server)
    (server.cwd / "release").touch()
    client.join(DEADLINE)
    assert "error" not in result, (result, server.log())
    assert result["answer"]["path"] == "/slow"


# ---- uvicorn ----------------------------------------------------------------

@pytest.mark.parametrize("sig, backend", [(signal.SIGTERM, None),
                                          (signal.SIGINT, "epoll")])
def test_uvicorn_cli_workers(serve: Callable[..., Server], sig: int,
                             backend: str | None) -> None:
    _need("uvicorn", "websockets")
    env = {"RINGLOOP_BACKEND": backend} if backend else {}
    server = serve([str(BIN / "uvicorn"), "app:app", "--port", "{port}",
                    "--loop", "ringloop:new_event_loop", "--workers", "2"],
                   {"app.py": ASGI_APP}, env)
    want = backend or _default_backend()
    for _ in range(4):
        answer = server.get("/")
        _check(answer, want)
        # Served by a worker that the uvicorn process started.
        assert _ppid(answer["pid"]) == server.proc.pid
    _check(server.ws("/ws", "hello"), want)
    _slow_request_through(server, lambda: server.proc.send_signal(sig),
                          "Shutting down", count=2)
    assert server.proc.wait(DEADLINE) == 0, server.log()
    assert server.log().count("Finished server process") == 2, server.log()


def test_uvicorn_run(serve: Callable[..., Server]) -> None:
    _need("uvicorn", "websockets")
    script = '''
        import sys
        import uvicorn

        uvicorn.run("app:app", host="127.0.0.1", port=int(sys.argv[1]),
                    loop="ringloop:new_event_loop")
    '''
    server = serve([sys.executable, "main.py", "{port}"],
                   {"app.py": ASGI_APP, "main.py": script},
                   {"RINGLOOP_BACKEND": "epoll"})
    answer = server.get("/")
    _check(answer, "epoll")
    assert answer["pid"] == server.proc.pid
    _check(server.ws("/ws", "hi"), "epoll")
    assert server.stop(signal.SIGINT) == 0, server.log()


# ---- gunicorn ---------------------------------------------------------------

def _gunicorn(worker: str, app: str, *args: str) -> list[str]:
    import gunicorn

    argv = [str(BIN / "gunicorn"), "-k", f"ringloop.workers.{worker}",
            "-b", "127.0.0.1:{port}", *args]
    # gunicorn 25+ opens a control socket under ~/.gunicorn by default:
    # tests in parallel would share it.
    if int(gunicorn.__version__.split(".")[0]) >= 25:
        argv.append("--no-control-socket")
    return [*argv, app]


def _until_restarted(server: Server, backend: str) -> set[int]:
    """GET / until two worker pids have answered (the first worker reached
    --max-requests and the arbiter started another); every answer from
    ringloop. Bounded by the hang guard's deadline.

    A connection that the old worker accepted just as it stopped may be
    closed unanswered: uvicorn and aiohttp close connections with no request
    under way when they shut down, on asyncio's loop as well (aiohttp's own
    worker dropped 1 of 600 such requests here). Such a request is sent
    again; every answer must come from ringloop."""
    pids: set[int] = set()

    def another() -> bool:
        try:
            answer = server.get("/")
        except httpx.TransportError:
            return False
        _check(answer, backend)
        assert _ppid(answer["pid"]) == server.proc.pid
        pids.add(answer["pid"])
        return len(pids) >= 2

    _wait_for("a worker restarted by --max-requests", another, server)
    return pids


@pytest.mark.parametrize("worker", ["UvicornWorker", "UvicornEpollWorker"])
def test_gunicorn_uvicorn_worker(serve: Callable[..., Server],
                                 worker: str) -> None:
    _need("gunicorn", "uvicorn_worker", "websockets")
    server = serve(_gunicorn(worker, "app:app", "--max-requests", "3"),
                   {"app.py": ASGI_APP})
    want = "epoll" if "Epoll" in worker else _default_backend()
    _check(server.ws("/ws", "hello"), want)
    _until_restarted(server, want)
    assert "Maximum request limit" in server.log() or \
        "max requests" in server.log().lower(), server.log()
    _slow_request_through(server, server.proc.terminate, "Shutting down")
    assert server.proc.wait(DEADLINE) == 0, server.log()


def test_gunicorn_uvicorn_reload(serve: Callable[..., Server]) -> None:
    _need("gunicorn", "uvicorn_worker")
    server = serve(_gunicorn("UvicornWorker", "app:app", "--reload"),
                   {"app.py": ASGI_APP})
    first = server.get("/")
    assert first["version"] == 1
    source = server.cwd / "app.py"
    source.write_text(source.read_text().replace("VERSION = 1",
                                                 "VERSION = 2"))

    touched = [time.monotonic()]

    def reloaded() -> Any:
        # gunicorn's reloader thread takes each file's first mtime as its
        # baseline on its first scan, which may come after the edit above
        # (a busy machine): then that edit is never seen. Touch the file
        # again every 2 s (the reloader scans every second) until a worker
        # answers with the new version.
        if time.monotonic() - touched[0] > 2.0:
            os.utime(source)
            touched[0] = time.monotonic()
        # As across a --max-requests restart (_until_restarted): the old
        # worker may close a connection it accepted as it stopped, unanswered.
        try:
            answer = server.get("/")
        except httpx.TransportError:
            return None
        return answer if answer["version"] == 2 else None

    second = _wait_for("the reloaded app", reloaded, server)
    assert second["pid"] != first["pid"]
    _check(second, _default_backend())
    assert server.stop() == 0, server.log()


@pytest.mark.parametrize("worker", ["AiohttpWorker", "AiohttpEpollWorker"])
def test_gunicorn_aiohttp_worker(serve: Callable[..., Server],
                                 worker: str) -> None:
    _need("gunicorn", "aiohttp")
    server = serve(_gunicorn(worker, "app:app", "--max-requests", "3"),
                   {"app.py": AIOHTTP_APP})
    want = "epoll" if "Epoll" in worker else _default_backend()
    _check(server.ws("/ws", "hello"), want)
    _until_restarted(server, want)
    assert server.stop() == 0, server.log()


def test_gunicorn_graceful_timeout(serve: Callable[..., Server]) -> None:
    """--graceful-timeout bounds the wait for a request that never ends:
    the arbiter kills the worker and exits."""
    _need("gunicorn", "uvicorn_worker")
    server = serve(_gunicorn("UvicornWorker", "app:app",
                             "--graceful-timeout", "1"),
                   {"app.py": ASGI_APP})
    result: dict[str, Any] = {}

    def request() -> None:
        try:
            result["answer"] = server.get("/slow")
        except httpx.TransportError as exc:
            result["error"] = exc

    client = threading.Thread(target=request)
    client.start()
    _wait_for("/slow to start", (server.cwd / "slow").exists, server)
    server.stop()
    client.join(DEADLINE)
    assert "error" in result, result  # never released: cut off


def test_workers_import_errors(tmp_path: Path) -> None:
    """A worker class whose package is missing says which package."""
    code = textwrap.dedent('''
        import sys
        sys.modules["aiohttp"] = None      # as if not installed
        sys.modules["uvicorn_worker"] = None
        import ringloop.workers as w
        for name in ("AiohttpWorker", "UvicornEpollWorker"):
            try:
                getattr(w, name)
            except ImportError as exc:
                print(name, exc)
        try:
            w.NoSuchWorker
        except AttributeError as exc:
            print("AttributeError", exc)
    ''')
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert "AiohttpWorker needs the aiohttp package (pip install aiohttp)" \
        in out
    assert "UvicornEpollWorker needs the uvicorn-worker package " \
        "(pip install uvicorn-worker)" in out
    assert "AttributeError" in out and "NoSuchWorker" in out
    # aiohttp there, gunicorn not: gunicorn is the one named.
    code = ('import sys; sys.modules["gunicorn"] = None\n'
            'import ringloop.workers as w\n'
            'try:\n    w.AiohttpWorker\n'
            'except ImportError as exc:\n    print(exc)')
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert "AiohttpWorker needs the gunicorn package" in out, out


# ---- aiohttp and hypercorn, programmatic -----------------------------------

def test_aiohttp_run_app(serve: Callable[..., Server]) -> None:
    _need("aiohttp")
    script = '''
        import sys
        from aiohttp import web
        import ringloop
        from app import make_app

        web.run_app(make_app(), host="127.0.0.1", port=int(sys.argv[1]),
                    loop=ringloop.new_event_loop())
    '''
    server = serve([sys.executable, "main.py", "{port}"],
                   {"app.py": AIOHTTP_APP, "main.py": script})
    answer = server.get("/")
    _check(answer, _default_backend())
    assert answer["pid"] == server.proc.pid
    _check(server.ws("/ws", "hi"), _default_backend())
    assert server.stop() == 0, server.log()


def test_hypercorn_serve(serve: Callable[..., Server]) -> None:
    _need("hypercorn")
    script = '''
        import asyncio, signal, sys
        from hypercorn.asyncio import serve
        from hypercorn.config import Config
        import ringloop
        from app import app


        async def main():
            config = Config()
            config.bind = [f"127.0.0.1:{sys.argv[1]}"]
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await serve(app, config, shutdown_trigger=stop.wait)


        if sys.version_info >= (3, 11):
            with asyncio.Runner(loop_factory=ringloop.new_event_loop) as r:
                r.run(main())
        else:
            ringloop.run(main())
    '''
    server = serve([sys.executable, "main.py", "{port}"],
                   {"app.py": ASGI_APP, "main.py": script},
                   {"RINGLOOP_BACKEND": "epoll"})
    answer = server.get("/")
    _check(answer, "epoll")
    assert answer["pid"] == server.proc.pid
    _check(server.ws("/ws", "hi"), "epoll")
    assert server.stop() == 0, server.log()


# ---- what the pre-fork recipes rely on ---------------------------------------

def test_given_listener_survives_close(run: Callable[..., Any]) -> None:
    """Closing a server made on a given socket (create_server(sock=)) stops
    this loop's accepting, not the listening socket that other processes
    may share (a gunicorn or uvicorn --workers listener): a connection made
    afterwards waits in the backlog for another accepter, here a dup."""
    import asyncio

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    other = listener.dup()  # another process's file, as after fork
    port = listener.getsockname()[1]

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(
            asyncio.Protocol, sock=listener)
        server.close()
        await server.wait_closed()

    try:
        run(main())
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE):
            conn, _ = other.accept()
            conn.close()
    finally:
        other.close()
