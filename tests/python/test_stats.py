"""loop.stats(): the counters against workloads with a known count, on
ringloop-epoll and ringloop-uring. asyncio's loop has no stats() (checked
below: the API is absent there)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
import time
from typing import Any

import pytest

import ringloop

COMMON = {
    "backend", "iterations", "busy_seconds", "wait_seconds", "utilization",
    "callbacks", "completions", "ops_submitted", "threadsafe_calls",
    "timers_started", "timers_fired", "timers_armed", "bytes_received",
    "bytes_sent", "pending", "inflight", "syscalls", "syscalls_total",
    "slow_callbacks", "slowest_callback", "slowest_callback_seconds",
    "pool_ops", "nowait_hits",
}
URING_ONLY = {
    "sqes_submitted", "cqes_reaped", "cq_overflows", "cq_dropped",
    "recv_enobufs", "multishot_rearms", "msg_ring_sent",
    "recv_to_readiness", "recv_to_ring",
}
OPCODES = {
    "nop", "accept", "connect", "recv", "send", "recvmsg", "sendmsg", "read",
    "write", "close", "shutdown", "poll", "openat", "fsync", "fallocate",
    "ftruncate", "statx", "rename", "unlink", "mkdir",
}


@pytest.fixture
def rl(backend: str) -> Any:
    loop = ringloop.new_event_loop(backend)
    yield loop
    if not loop.is_closed():
        loop.close()


def test_absent_on_asyncio() -> None:
    loop = asyncio.SelectorEventLoop()
    try:
        assert not hasattr(loop, "stats")
    finally:
        loop.close()


def test_keys(rl: Any, backend: str) -> None:
    st = rl.stats()
    want = COMMON | (URING_ONLY if backend == "uring" else set())
    assert set(st) == want
    assert st["backend"] == backend
    assert set(st["inflight"]) == OPCODES
    sys_keys = {"recv", "send", "other"} | (
        {"io_uring_enter"} if backend == "uring"
        else {"epoll_wait", "epoll_ctl"})
    assert set(st["syscalls"]) == sys_keys
    assert st["syscalls_total"] == sum(st["syscalls"].values())
    assert st["slow_callbacks"] == 0
    assert st["slowest_callback"] is None
    with pytest.raises(TypeError):
        rl.stats(True)  # reset is keyword-only


def test_timers(rl: Any) -> None:
    n = 7
    fired: list[int] = []

    async def main() -> dict[str, Any]:
        rl.stats(reset=True)
        for i in range(n):
            rl.call_later(0.001 * (i + 1), fired.append, i)
        await asyncio.sleep(0.05)  # one more timer
        return rl.stats()

    st = rl.run_until_complete(main())
    assert fired == list(range(n))
    assert st["timers_started"] == n + 1
    assert st["timers_fired"] == n + 1
    assert st["timers_armed"] == 0
    assert st["callbacks"] >= n + 1
    # the loop slept most of those 50 ms
    assert st["wait_seconds"] >= 0.02
    assert 0 <= st["utilization"] < 0.9
    assert st["iterations"] >= 2


class Sink(asyncio.Protocol):
    def __init__(self) -> None:
        self.got = 0
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got += len(data)


def test_sends_and_receives(rl: Any, backend: str) -> None:
    n, size = 20, 100
    a, b = socket.socketpair()
    b.setblocking(True)

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        tr, proto = await rl.connect_accepted_socket(Sink, a)
        await asyncio.sleep(0.01)
        rl.stats(reset=True)
        for _ in range(n):
            tr.write(b"x" * size)
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        sent = rl.stats(reset=True)
        got = 0
        while got < n * size:
            got += len(await rl.run_in_executor(None, b.recv, 65536))
        b.sendall(b"y" * (n * size))
        while proto.got < n * size:
            await asyncio.sleep(0.001)
        recv = rl.stats()
        tr.close()
        await asyncio.sleep(0.01)
        return sent, recv

    try:
        sent, recv = rl.run_until_complete(main())
    finally:
        b.close()
    # every write is counted, whether sent at once or by a send op
    assert sent["bytes_sent"] == n * size
    assert sent["bytes_received"] == 0
    assert sent["syscalls"]["send"] + sent["inflight"]["sendmsg"] >= 1
    assert recv["bytes_received"] == n * size
    assert recv["completions"] >= 1
    assert recv["syscalls_total"] >= 1
    if backend == "uring":
        assert recv["cqes_reaped"] >= 1
        assert recv["syscalls"]["io_uring_enter"] >= 1
    else:
        assert recv["syscalls"]["recv"] >= 1
        assert recv["syscalls"]["epoll_wait"] >= 1


def test_sock_methods_and_datagrams(rl: Any) -> None:
    """The calls sock_*() and a datagram transport's sendto() make at once
    are counted like a stream transport's: per call, with their bytes."""
    n, size = 10, 50
    a, b = socket.socketpair()
    u1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s_ in (a, b, u1, u2):
        s_.setblocking(False)
    u1.bind(("127.0.0.1", 0))
    u2.bind(("127.0.0.1", 0))

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        rl.stats(reset=True)
        for _ in range(n):
            await rl.sock_sendall(a, b"x" * size)
        got = 0
        while got < n * size:
            got += len(await rl.sock_recv(b, 65536))
        socks = rl.stats(reset=True)
        tr, _ = await rl.create_datagram_endpoint(
            asyncio.DatagramProtocol, sock=u1)
        await asyncio.sleep(0)
        rl.stats(reset=True)
        for _ in range(n):
            tr.sendto(b"d" * size, u2.getsockname())
        dgram = rl.stats()
        tr.close()
        await asyncio.sleep(0.01)
        return socks, dgram

    try:
        socks, dgram = rl.run_until_complete(main())
    finally:
        for s_ in (a, b, u2):
            s_.close()
    assert socks["bytes_sent"] == n * size
    assert socks["syscalls"]["send"] == n
    assert socks["bytes_received"] == n * size
    assert socks["syscalls"]["recv"] >= 1
    assert dgram["bytes_sent"] == n * size
    assert dgram["syscalls"]["send"] == n


def test_threadsafe_calls(rl: Any) -> None:
    n = 25
    done: list[int] = []

    async def main() -> dict[str, Any]:
        rl.stats(reset=True)

        def worker() -> None:
            for i in range(n):
                rl.call_soon_threadsafe(done.append, i)

        t = threading.Thread(target=worker)
        t.start()
        while len(done) < n:
            await asyncio.sleep(0.001)
        t.join()
        return rl.stats()

    st = rl.run_until_complete(main())
    assert st["threadsafe_calls"] == n


def test_in_flight_then_closed(rl: Any) -> None:
    """A connection reading when the loop stops: its read is in flight; the
    loop closed mid-flight has no stats any more."""
    a, b = socket.socketpair()

    async def main() -> Any:
        tr, _ = await rl.connect_accepted_socket(Sink, a)
        await asyncio.sleep(0.01)
        return tr

    tr = rl.run_until_complete(main())
    st = rl.stats()
    assert st["pending"] >= 1
    assert sum(st["inflight"].values()) == st["pending"]
    assert st["inflight"]["recv"] + st["inflight"]["poll"] >= 1
    tr.abort()
    rl.run_until_complete(asyncio.sleep(0.01))
    st = rl.stats()
    assert st["pending"] == 0
    assert sum(st["inflight"].values()) == 0
    # closed with a reader in flight
    a2, b2 = socket.socketpair()
    rl.run_until_complete(rl.connect_accepted_socket(Sink, a2))
    assert rl.stats()["pending"] >= 1
    rl.close()
    with pytest.raises(RuntimeError, match="closed"):
        rl.stats()
    for s in (b, b2):
        s.close()


def test_slow_callbacks_debug_only(rl: Any) -> None:
    def slow() -> None:
        time.sleep(0.03)

    async def run_two() -> None:
        rl.call_soon(slow)
        rl.call_soon(time.sleep, 0.015)
        await asyncio.sleep(0.05)

    rl.run_until_complete(run_two())
    assert rl.stats()["slow_callbacks"] == 0  # not counted outside debug

    rl.set_debug(True)
    rl.slow_callback_duration = 0.01
    rl.run_until_complete(run_two())
    st = rl.stats(reset=True)
    assert st["slow_callbacks"] == 2
    assert st["slowest_callback_seconds"] >= 0.03
    assert "slow" in st["slowest_callback"]
    st = rl.stats()
    assert st["slow_callbacks"] == 0
    assert st["slowest_callback"] is None


def test_timing_starts_on_first_read(rl: Any) -> None:
    rl.run_until_complete(asyncio.sleep(0.01))
    st = rl.stats()  # nobody asked before: no time measured
    assert st["iterations"] >= 1
    assert st["wait_seconds"] == st["busy_seconds"] == 0.0
    assert st["utilization"] == 0.0
    rl.run_until_complete(asyncio.sleep(0.01))
    st = rl.stats()
    assert st["wait_seconds"] > 0.001
    assert st["busy_seconds"] > 0


def test_reset(rl: Any) -> None:
    rl.run_until_complete(asyncio.sleep(0.01))
    before = rl.stats(reset=True)
    assert before["iterations"] >= 1
    after = rl.stats()
    assert after["iterations"] == 0
    assert after["timers_started"] == 0
    assert after["wait_seconds"] == 0.0
    assert after["syscalls_total"] == 0


# ---- the stats socket and `python -m ringloop.stats` -----------------------

APP = '''
async def app(scope, receive, send):
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(pred: Any, what: str, proc: Any = None,
              timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"server exited ({proc.returncode}) before {what}:"
                        f"\n{out}")
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def sockdir() -> Any:
    # a directory others may enter, so that only the socket's own mode
    # keeps them out (pytest's tmp_path is 0700)
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="rlstats-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_socket_mode_and_fetch(backend: str, sockdir: str) -> None:
    from ringloop import stats as rs

    path = os.path.join(sockdir, "s-{pid}.sock")
    real = path.replace("{pid}", str(os.getpid()))
    loop = ringloop.new_event_loop(backend)
    old = os.environ.get(rs.ENV)
    os.environ[rs.ENV] = path
    try:
        async def main() -> dict[str, Any]:
            return await loop.run_in_executor(None, rs.fetch, real)

        sample = loop.run_until_complete(main())
    finally:
        if old is None:
            del os.environ[rs.ENV]
        else:
            os.environ[rs.ENV] = old
    assert (os.stat(real).st_mode & 0o777) == 0o600
    assert sample["pid"] == os.getpid()
    assert sample["stats"]["backend"] == backend
    # a second loop of the process does not take the path while the first
    # is open; once it is closed, it does
    other = ringloop.new_event_loop(backend)
    assert rs.serve(other, path) is False
    loop.close()
    assert rs.serve(other, path) is True
    other.close()
    rs._cleanup()
    assert not os.path.exists(real)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_other_users_cannot_connect(sockdir: str) -> None:
    import warnings

    from ringloop import stats as rs

    path = os.path.join(sockdir, "s.sock")
    loop = ringloop.new_event_loop()
    try:
        assert rs.serve(loop, path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # threads
            pid = os.fork()
        if pid == 0:  # child: become nobody and try
            code = 1
            try:
                os.setgid(65534)
                os.setuid(65534)
                s = socket.socket(socket.AF_UNIX)
                try:
                    s.connect(path)
                    code = 0
                except PermissionError:
                    code = 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 3
    finally:
        loop.close()
        rs._cleanup()


def test_table_display() -> None:
    import io

    from ringloop import stats as rs

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    loop = ringloop.new_event_loop()
    try:
        loop.run_until_complete(asyncio.sleep(0.01))
        s1 = {"pid": 1, "time": 0.0, "stats": loop.stats()}
        loop.run_until_complete(asyncio.sleep(0.01))
        s2 = {"pid": 1, "time": 1.0, "stats": loop.stats()}
    finally:
        loop.close()
    lines = rs.table("p", s2, s1, 1.0)
    assert lines[0].startswith("ringloop stats  p  pid 1")
    assert any(ln.startswith("iterations") for ln in lines)
    assert "utilization" in lines[1]
    assert "util=" in rs.line(s2, s1, 1.0)
    with pytest.raises(SystemExit):
        rs.main([], out=Tty())  # no path, none in the environment


def test_live_display_against_uvicorn(backend: str, sockdir: str,
                                      tmp_path: Any) -> None:
    """uvicorn --loop ringloop:new_event_loop with RINGLOOP_STATS_SOCKET:
    `python -m ringloop.stats` shows its requests."""
    import http.client
    import subprocess

    pytest.importorskip("uvicorn")
    (tmp_path / "app.py").write_text(APP)
    path = os.path.join(sockdir, "uv.sock")
    port = _free_port()
    env = dict(os.environ, RINGLOOP_STATS_SOCKET=path,
               RINGLOOP_BACKEND=backend)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--loop",
         "ringloop:new_event_loop", "--host", "127.0.0.1", "--port",
         str(port), "--lifespan", "off", "--app-dir", str(tmp_path),
         "--no-access-log"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(lambda: os.path.exists(path), "the stats socket", proc)

        def up() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                return True
            except OSError:
                return False

        _wait_for(up, "uvicorn to listen", proc)
        from ringloop import stats as rs
        before = rs.fetch(path)["stats"]
        n = 30
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(n):
            conn.request("GET", "/")
            assert conn.getresponse().read() == b"hello"
        conn.close()
        after = rs.fetch(path)["stats"]
        assert after["backend"] == backend
        assert after["bytes_sent"] - before["bytes_sent"] >= n * 5
        assert after["bytes_received"] - before["bytes_received"] >= n * 16
        assert after["completions"] > before["completions"]
        assert after["syscalls_total"] > before["syscalls_total"]
        # the command, stdout a pipe: plain lines
        r = subprocess.run(
            [sys.executable, "-m", "ringloop.stats", path, "--count", "2",
             "--interval", "0.2"],
            capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert len(lines) == 2
        assert all(f"backend={backend}" in ln for ln in lines)
        assert "iter/s=" in lines[1]
        # and the live table, drawn for a terminal
        import io
        from ringloop import stats as rs2

        class Tty(io.StringIO):
            def isatty(self) -> bool:
                return True

        out = Tty()
        assert rs2.main([path, "-n", "2", "-i", "0.1"], out=out) == 0
        text = out.getvalue()
        assert "\x1b[" in text and "utilization" in text
        assert "bytes sent" in text
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
