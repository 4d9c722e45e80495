"""Subprocesses (loop.subprocess_exec / subprocess_shell and asyncio's
create_subprocess_* on top): data through the child's pipes verified byte
for byte, exit codes and signals, many children at once, pass_fds, cwd,
env, loops in other threads, and misuse, on stock asyncio and on both
ringloop backends. ringloop's own child watching (a pidfd, a thread where
pidfd_open is refused) is tested on the ringloop backends."""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import warnings
from typing import Any

import pytest

import ringloop

TIMEOUT = 60
PIPE = asyncio.subprocess.PIPE
PY = sys.executable

# A child that says it is ready (its signal dispositions are its own by
# then), then waits until killed or its stdin closes.
WAIT_SCRIPT = ("import sys; print('ready', flush=True); "
               "sys.stdin.buffer.read()")


def _pattern(n: int, seed: int = 0) -> bytes:
    """n reproducible pseudo-random bytes."""
    return random.Random(seed).randbytes(n)


async def _ready_child(**kw: Any) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        PY, "-c", WAIT_SCRIPT, stdin=PIPE, stdout=PIPE, **kw)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
    assert line == b"ready\n"
    return proc


# ---- data through the pipes --------------------------------------------------

def test_cat_16mib_communicate(run: Any) -> None:
    payload = _pattern(16 << 20, 1)

    async def main() -> tuple[bytes, Any, int | None]:
        proc = await asyncio.create_subprocess_exec(
            "cat", stdin=PIPE, stdout=PIPE)
        out, err = await asyncio.wait_for(proc.communicate(payload), TIMEOUT)
        return out, err, proc.returncode

    out, err, rc = run(main())
    assert rc == 0 and err is None
    assert len(out) == len(payload)
    assert out == payload


def test_cat_streaming(run: Any) -> None:
    """Write in chunks with drain() while reading concurrently."""
    payload = _pattern(4 << 20, 2)

    async def main() -> tuple[bytes, int]:
        proc = await asyncio.create_subprocess_exec(
            "cat", stdin=PIPE, stdout=PIPE)
        assert proc.stdin is not None and proc.stdout is not None

        async def feed() -> None:
            assert proc.stdin is not None
            view = memoryview(payload)
            for i in range(0, len(payload), 300_000):
                proc.stdin.write(view[i:i + 300_000])
                await proc.stdin.drain()
            proc.stdin.close()
            await proc.stdin.wait_closed()

        out = bytearray()

        async def drain() -> None:
            assert proc.stdout is not None
            while chunk := await proc.stdout.read(1 << 16):
                out.extend(chunk)

        await asyncio.wait_for(asyncio.gather(feed(), drain()), TIMEOUT)
        return bytes(out), await asyncio.wait_for(proc.wait(), TIMEOUT)

    out, rc = run(main())
    assert rc == 0
    assert out == payload


def test_stderr_and_redirects(run: Any) -> None:
    code = ("import sys; sys.stdout.write('out'); sys.stdout.flush(); "
            "sys.stderr.write('err'); sys.stderr.flush()")

    async def main() -> list[Any]:
        res = []
        p = await asyncio.create_subprocess_exec(
            PY, "-c", code, stdout=PIPE, stderr=PIPE)
        res.append(await p.communicate())
        p = await asyncio.create_subprocess_exec(
            PY, "-c", code, stdout=PIPE, stderr=subprocess.STDOUT)
        res.append(await p.communicate())
        p = await asyncio.create_subprocess_exec(
            PY, "-c", code, stdout=subprocess.DEVNULL, stderr=PIPE)
        res.append(await p.communicate())
        # stdin from a file descriptor, output to another one
        with tempfile.TemporaryFile() as src, tempfile.TemporaryFile() as dst:
            src.write(b"from a file")
            src.seek(0)
            p = await asyncio.create_subprocess_exec(
                "cat", stdin=src.fileno(), stdout=dst)
            res.append(await p.wait())
            dst.seek(0)
            res.append(dst.read())
        return res

    assert run(main()) == [(b"out", b"err"), (b"outerr", None),
                           (None, b"err"), 0, b"from a file"]


def test_shell(run: Any) -> None:
    async def main() -> list[Any]:
        p = await asyncio.create_subprocess_shell(
            "echo $((6 * 7)); exit 3", stdout=PIPE)
        out, _ = await p.communicate()
        p2 = await asyncio.create_subprocess_shell(b"exit 5")
        return [out, p.returncode, await p2.wait()]

    assert run(main()) == [b"42\n", 3, 5]


def test_low_level_protocol(run: Any) -> None:
    """loop.subprocess_exec with a SubprocessProtocol: callbacks and the
    transport's API."""
    class Proto(asyncio.SubprocessProtocol):
        def __init__(self) -> None:
            loop = asyncio.get_running_loop()
            self.events: list[Any] = []
            self.data: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
            self.exited = loop.create_future()
            self.lost = loop.create_future()

        def connection_made(self, transport: Any) -> None:
            self.events.append("made")

        def pipe_data_received(self, fd: int, data: bytes) -> None:
            self.data[fd] += data

        def pipe_connection_lost(self, fd: int, exc: Any) -> None:
            self.events.append(("pipe_lost", fd, exc))

        def process_exited(self) -> None:
            self.events.append("exited")
            self.exited.set_result(None)

        def connection_lost(self, exc: Any) -> None:
            self.events.append(("lost", exc))
            self.lost.set_result(None)

    async def main() -> tuple[Any, ...]:
        loop = asyncio.get_running_loop()
        t, p = await loop.subprocess_exec(
            Proto, PY, "-c",
            "import sys; d = sys.stdin.read(); print(d.upper()); "
            "sys.stderr.write('e'); sys.exit(4)")
        assert t.get_pid() > 0 and t.get_returncode() is None
        assert isinstance(t.get_extra_info("subprocess"), subprocess.Popen)
        t.get_pipe_transport(0).write(b"shout")
        t.get_pipe_transport(0).close()
        await asyncio.wait_for(p.lost, TIMEOUT)
        rc = t.get_returncode()
        t.close()
        return p.events, bytes(p.data[1]), bytes(p.data[2]), rc

    events, out, err, rc = run(main())
    assert (out, err, rc) == (b"SHOUT\n", b"e", 4)
    assert events[0] == "made" and events[-1] == ("lost", None)
    assert set(events[1:-1]) == {("pipe_lost", 0, None),
                                 ("pipe_lost", 1, None),
                                 ("pipe_lost", 2, None), "exited"}


def test_pipes_to_and_from_child(run: Any) -> None:
    """Our own pipes as the child's stdin and stdout, driven through
    connect_write_pipe / connect_read_pipe."""
    payload = _pattern(3 << 20, 3)

    class Sink(asyncio.Protocol):
        def __init__(self) -> None:
            self.data = bytearray()
            self.lost = asyncio.get_running_loop().create_future()

        def data_received(self, data: bytes) -> None:
            self.data += data

        def connection_lost(self, exc: Any) -> None:
            self.lost.set_result(exc)

    async def main() -> tuple[bytes, int]:
        loop = asyncio.get_running_loop()
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        proc = await asyncio.create_subprocess_exec(
            "cat", stdin=in_r, stdout=out_w)
        os.close(in_r)
        os.close(out_w)
        wt, _ = await loop.connect_write_pipe(asyncio.BaseProtocol,
                                              open(in_w, "wb", 0))
        _, sink = await loop.connect_read_pipe(Sink, open(out_r, "rb", 0))
        wt.write(payload)
        wt.close()
        assert await asyncio.wait_for(sink.lost, TIMEOUT) is None
        return bytes(sink.data), await asyncio.wait_for(proc.wait(), TIMEOUT)

    data, rc = run(main())
    assert rc == 0 and data == payload


def test_read_stdout_after_exit(run: Any) -> None:
    """Output the child left in the pipe is read after it exited."""
    async def main() -> tuple[int, bytes]:
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys; sys.stdout.write('x' * 30000)",
            stdout=PIPE)
        rc = await asyncio.wait_for(proc.wait(), TIMEOUT)
        assert proc.stdout is not None
        return rc, await asyncio.wait_for(proc.stdout.read(), TIMEOUT)

    assert run(main()) == (0, b"x" * 30000)


# ---- children that go away early ---------------------------------------------

def test_child_closes_stdout_early(run: Any) -> None:
    """The child closes its stdout at once but goes on reading stdin: we
    see EOF on stdout while we still write, and every byte is consumed."""
    code = ("import os, sys; os.close(1); n = 0\n"
            "while chunk := sys.stdin.buffer.read(65536): n += len(chunk)\n"
            "sys.stderr.write(str(n))")
    payload = _pattern(4 << 20, 4)

    async def main() -> tuple[bytes, bytes, int]:
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", code, stdin=PIPE, stdout=PIPE, stderr=PIPE)
        assert proc.stdin and proc.stdout and proc.stderr
        out = await asyncio.wait_for(proc.stdout.read(), TIMEOUT)
        assert proc.returncode is None  # still running, still reading
        view = memoryview(payload)
        for i in range(0, len(payload), 1 << 20):
            proc.stdin.write(view[i:i + (1 << 20)])
            await asyncio.wait_for(proc.stdin.drain(), TIMEOUT)
        proc.stdin.close()
        err = await asyncio.wait_for(proc.stderr.read(), TIMEOUT)
        return out, err, await asyncio.wait_for(proc.wait(), TIMEOUT)

    assert run(main()) == (b"", str(4 << 20).encode(), 0)


def test_child_exits_while_we_write(run: Any) -> None:
    """The child exits without reading: drain() raises BrokenPipeError (or
    ConnectionResetError), and communicate() ignores it."""
    big = b"x" * (4 << 20)

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda lp, ctx: None)
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys; sys.stdin.buffer.read(10)", stdin=PIPE)
        assert proc.stdin is not None
        proc.stdin.write(big)
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            await asyncio.wait_for(proc.stdin.drain(), TIMEOUT)
        res: list[Any] = [await asyncio.wait_for(proc.wait(), TIMEOUT)]
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "pass", stdin=PIPE)
        res.append(await asyncio.wait_for(proc.communicate(big), TIMEOUT))
        res.append(proc.returncode)
        return res

    assert run(main()) == [0, (None, None), 0]


# ---- exit codes and signals ---------------------------------------------------

def test_exit_codes(run: Any) -> None:
    async def main() -> list[int]:
        codes = []
        for code in (0, 1, 7, 255):
            p = await asyncio.create_subprocess_exec(
                PY, "-c", f"raise SystemExit({code})")
            codes.append(await asyncio.wait_for(p.wait(), TIMEOUT))
        return codes

    assert run(main()) == [0, 1, 7, 255]


def test_kill_terminate_send_signal(run: Any) -> None:
    async def main() -> list[Any]:
        res: list[Any] = []
        for how in ("kill", "terminate", signal.SIGUSR1, signal.SIGHUP):
            proc = await _ready_child()
            assert proc.returncode is None
            if isinstance(how, str):
                getattr(proc, how)()
            else:
                proc.send_signal(how)
            res.append(await asyncio.wait_for(proc.wait(), TIMEOUT))
            assert proc.returncode == res[-1]
            assert await proc.wait() == res[-1]  # again: the same answer
        return res

    old = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        assert run(main()) == [-signal.SIGKILL, -signal.SIGTERM,
                               -signal.SIGUSR1, -signal.SIGHUP]
    finally:
        signal.signal(signal.SIGHUP, old)


def test_signal_after_exit(run: Any) -> None:
    """Once the transport is done with the child, signals raise
    ProcessLookupError (never reach a recycled pid)."""
    async def main() -> int:
        proc = await asyncio.create_subprocess_exec(PY, "-c", "pass")
        rc = await asyncio.wait_for(proc.wait(), TIMEOUT)
        for _ in range(5):  # let the transport finish
            await asyncio.sleep(0)
        for send in (proc.kill, proc.terminate,
                     lambda: proc.send_signal(signal.SIGTERM)):
            with pytest.raises(ProcessLookupError):
                send()
        return rc

    assert run(main()) == 0


def test_many_concurrent(run: Any) -> None:
    n = 50

    async def one(i: int) -> tuple[int, bytes]:
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", f"cat; exit {i % 7}", stdin=PIPE, stdout=PIPE)
        out, _ = await proc.communicate(f"child {i}".encode() * (i + 1))
        assert proc.returncode is not None
        return proc.returncode, out

    async def main() -> list[tuple[int, bytes]]:
        return await asyncio.wait_for(
            asyncio.gather(*(one(i) for i in range(n))), TIMEOUT)

    assert run(main()) == [(i % 7, f"child {i}".encode() * (i + 1))
                           for i in range(n)]


def test_cancel_wait_then_kill(run: Any) -> None:
    async def main() -> int:
        proc = await _ready_child()
        task = asyncio.ensure_future(proc.wait())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        proc.kill()
        return await asyncio.wait_for(proc.wait(), TIMEOUT)

    assert run(main()) == -signal.SIGKILL


# ---- Popen options -------------------------------------------------------------

def test_pass_fds_cwd_env(run: Any) -> None:
    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        # the child writes into our pipe through the fd it was passed
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", f"import os; os.write({w}, b'through fd {w}')",
            pass_fds=(w,))
        os.close(w)
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), open(r, "rb", 0))
        res: list[Any] = [await asyncio.wait_for(reader.read(), TIMEOUT)]
        res.append(await asyncio.wait_for(proc.wait(), TIMEOUT))
        # without pass_fds the fd is closed in the child
        r2, w2 = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                PY, "-c", f"import os; os.write({w2}, b'x')",
                stderr=subprocess.DEVNULL)
            res.append(await asyncio.wait_for(proc.wait(), TIMEOUT))
        finally:
            os.close(r2)
            os.close(w2)
        with tempfile.TemporaryDirectory() as d:
            proc = await asyncio.create_subprocess_exec(
                PY, "-c",
                "import os; print(os.getcwd(), os.environ['RINGLOOP_T'], "
                "'HOME' in os.environ)",
                cwd=d, env={"RINGLOOP_T": "env ok"}, stdout=PIPE)
            out, _ = await proc.communicate()
            res.append(out.decode().split())
            res.append(os.path.realpath(d))
        return res

    through, rc, rc_closed, (cwd, v1, v2, home), d = run(main())
    assert through.startswith(b"through fd ") and rc == 0
    assert rc_closed == 1  # OSError: bad file descriptor
    assert [os.path.realpath(cwd), v1, v2, home] == [d, "env", "ok", "False"]


def test_start_new_session_and_program_path(run: Any) -> None:
    import pathlib

    async def main() -> list[Any]:
        proc = await asyncio.create_subprocess_exec(
            pathlib.Path(PY), "-c", "import os; print(os.getsid(0))",
            stdout=PIPE, start_new_session=True)
        out, _ = await proc.communicate()
        return [int(out) == proc.pid, proc.returncode]

    assert run(main()) == [True, 0]


# ---- misuse and faults -----------------------------------------------------------

@pytest.mark.parametrize("kw", [
    {"universal_newlines": True}, {"text": True}, {"encoding": "utf-8"},
    {"errors": "strict"}, {"bufsize": 1}, {"bufsize": -1}])
def test_text_mode_and_buffering_refused(run: Any, kw: dict[str, Any]) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(ValueError):
            await asyncio.create_subprocess_exec(PY, "-c", "pass", **kw)
        with pytest.raises(ValueError):
            await asyncio.create_subprocess_shell("true", **kw)
        with pytest.raises(ValueError):
            await loop.subprocess_exec(asyncio.SubprocessProtocol, PY, **kw)

    run(main())


def test_shell_and_cmd_checks(run: Any) -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        proto = asyncio.SubprocessProtocol
        msgs = []
        for coro in (loop.subprocess_exec(proto, PY, shell=True),
                     loop.subprocess_shell(proto, "true", shell=False),
                     loop.subprocess_shell(proto, ["true"]),
                     loop.subprocess_shell(proto, 42)):
            with pytest.raises(ValueError) as info:
                await coro
            msgs.append(str(info.value))
        return msgs

    assert run(main()) == ["shell must be False", "shell must be True",
                           "cmd must be a string", "cmd must be a string"]


def test_bad_program_and_cwd(run: Any) -> None:
    async def main() -> None:
        with pytest.raises(FileNotFoundError):
            await asyncio.create_subprocess_exec(
                "/nonexistent/ringloop-no-such-program", stdin=PIPE,
                stdout=PIPE, stderr=PIPE)
        with pytest.raises(FileNotFoundError):
            await asyncio.create_subprocess_exec(
                PY, "-c", "pass", cwd="/nonexistent/ringloop-dir")
        with pytest.raises(PermissionError):
            await asyncio.create_subprocess_exec("/dev/null")
        with pytest.raises(TypeError):
            await asyncio.create_subprocess_exec(PY, "-c", "pass",
                                                 no_such_popen_argument=1)

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        run(main())
        gc.collect()


def _nfds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_no_fd_leak(run: Any) -> None:
    async def main() -> None:
        procs = [await asyncio.create_subprocess_exec(
            "cat", stdin=PIPE, stdout=PIPE, stderr=PIPE) for _ in range(10)]
        for p in procs:
            await asyncio.wait_for(p.communicate(b"hi"), TIMEOUT)

    run(main())  # warm up (executor, watchers)
    before = _nfds()
    run(main())
    assert _nfds() == before


def test_transport_close_kills_child(run: Any) -> None:
    async def main() -> tuple[Any, int | None]:
        loop = asyncio.get_running_loop()
        t, _ = await loop.subprocess_exec(
            asyncio.SubprocessProtocol, PY, "-c", "import time; "
            "time.sleep(3600)", stdin=None, stdout=None, stderr=None)
        before = t.get_returncode()
        t.close()
        await asyncio.wait_for(t._wait(), TIMEOUT)
        return before, t.get_returncode()

    assert run(main()) == (None, -signal.SIGKILL)


# ---- threads and several loops ----------------------------------------------------

def _in_thread(factory: Any, n: int) -> list[Any]:
    results: list[Any] = []

    async def main(i: int) -> tuple[bytes, int | None]:
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", f"print({i}); raise SystemExit({i})", stdout=PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(), TIMEOUT)
        return out, proc.returncode

    def target(i: int) -> None:
        from conftest import run_with
        try:
            results.append(run_with(factory, main(i)))
        except BaseException as exc:  # reported by the caller
            results.append(exc)

    threads = [threading.Thread(target=target, args=(i + 1,))
               for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    return results


def test_loop_in_other_thread(loop_factory: Any) -> None:
    assert _in_thread(loop_factory, 1) == [(b"1\n", 1)]


def test_loops_in_several_threads(loop_factory: Any) -> None:
    """Each loop sees its own children exit, side by side."""
    got = _in_thread(loop_factory, 4)
    assert sorted(got) == [(f"{i}\n".encode(), i) for i in range(1, 5)]


# ---- ringloop's child watching ------------------------------------------------------

def test_no_sigchld_handler(backend: str) -> None:
    """ringloop watches children through pidfds: SIGCHLD stays untouched."""
    before = signal.getsignal(signal.SIGCHLD)

    async def main() -> int:
        proc = await asyncio.create_subprocess_exec(PY, "-c", "pass")
        assert signal.getsignal(signal.SIGCHLD) == before
        return await asyncio.wait_for(proc.wait(), TIMEOUT)

    assert ringloop.run(main(), backend=backend) == 0
    assert signal.getsignal(signal.SIGCHLD) == before


@pytest.mark.parametrize("err", [errno.ENOSYS, errno.EPERM, errno.EMFILE])
def test_pidfd_refused_falls_back_to_thread(backend: str, err: int,
                                            monkeypatch: Any) -> None:
    """pidfd_open refused (no pidfds, seccomp, no fds left): a thread waits
    for the child instead; exit codes and signals are unchanged."""
    def refuse(pid: int, flags: int = 0) -> int:
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(os, "pidfd_open", refuse)

    async def main() -> list[Any]:
        proc = await _ready_child()
        waiter = f"ringloop-waitpid-{proc.pid}"
        res: list[Any] = [any(t.name == waiter for t in threading.enumerate())]
        proc.kill()
        res.append(await asyncio.wait_for(proc.wait(), TIMEOUT))
        p = await asyncio.create_subprocess_exec("cat", stdin=PIPE,
                                                 stdout=PIPE)
        res.append(await asyncio.wait_for(p.communicate(b"echo"), TIMEOUT))
        res.append(p.returncode)
        return res

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = ringloop.run(main(), backend=backend)
    assert got == [True, -signal.SIGKILL, (b"echo", None), 0]


# Run in a child interpreter: a seccomp filter (no privilege needed after
# PR_SET_NO_NEW_PRIVS) makes pidfd_open(2) fail with ERR, the way a sandbox
# refuses syscalls it does not know; then a subprocess runs on BACKEND.
SECCOMP_CHILD = """
import asyncio, ctypes, errno, os, signal, sys
import ringloop

ERR, BACKEND = getattr(errno, sys.argv[1]), sys.argv[2]
NR_PIDFD_OPEN = 434  # the same on every Linux architecture

class Filter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte),
                ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

insns = (Filter * 4)(
    Filter(0x20, 0, 0, 0),                   # A = seccomp_data.nr
    Filter(0x15, 0, 1, NR_PIDFD_OPEN),       # A == pidfd_open ?
    Filter(0x06, 0, 0, 0x00050000 | ERR),    # SECCOMP_RET_ERRNO | ERR
    Filter(0x06, 0, 0, 0x7fff0000))          # SECCOMP_RET_ALLOW
libc = ctypes.CDLL(None, use_errno=True)
if (libc.prctl(38, 1, 0, 0, 0) != 0 or       # PR_SET_NO_NEW_PRIVS
        libc.prctl(22, 2, ctypes.byref(Prog(4, insns))) != 0):
    sys.exit(77)                             # PR_SET_SECCOMP, FILTER
try:
    os.pidfd_open(os.getpid())
    sys.exit("the filter did not refuse pidfd_open")
except OSError as exc:
    assert exc.errno == ERR, exc

async def main():
    p = await asyncio.create_subprocess_exec(
        "sh", "-c", "cat; exit 3", stdin=-1, stdout=-1)
    out, _ = await p.communicate(b"sandboxed")
    k = await asyncio.create_subprocess_exec("sleep", "3600")
    k.kill()
    return out, p.returncode, await k.wait()

print(ringloop.run(main(), backend=BACKEND))
"""


@pytest.mark.parametrize("err", ["ENOSYS", "EPERM"])
def test_pidfd_refused_by_seccomp(backend: str, err: str) -> None:
    r = subprocess.run([PY, "-c", SECCOMP_CHILD, err, backend],
                       capture_output=True, text=True, timeout=TIMEOUT)
    if r.returncode == 77:
        pytest.skip("no seccomp filters here")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "(b'sandboxed', 3, -9)"


def test_pidfd_used(backend: str) -> None:
    """Normally no thread waits: the loop polls the child's pidfd."""
    async def main() -> bool:
        proc = await _ready_child()
        waiter = f"ringloop-waitpid-{proc.pid}"
        threaded = any(t.name == waiter for t in threading.enumerate())
        proc.kill()
        await asyncio.wait_for(proc.wait(), TIMEOUT)
        return threaded

    assert ringloop.run(main(), backend=backend) is False


def test_child_reaped_elsewhere(backend: str) -> None:
    """Popen.wait() reaps the child behind the loop's back: the loop still
    reports the exit status Popen read (asyncio's watchers say 255)."""
    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        t, _ = await loop.subprocess_exec(
            asyncio.SubprocessProtocol, PY, "-c", "raise SystemExit(9)",
            stdin=None, stdout=None, stderr=None)
        popen = t.get_extra_info("subprocess")
        rc = popen.wait()
        await asyncio.wait_for(t._wait(), TIMEOUT)
        t.close()
        return rc, t.get_returncode()

    assert ringloop.run(main(), backend=backend) == (9, 9)


def test_loop_closed_with_child_running(backend: str) -> None:
    """Closing the loop while a child runs leaks no pidfd."""
    before = _nfds()
    loop = ringloop.new_event_loop(backend)
    try:
        transport, _ = loop.run_until_complete(loop.subprocess_exec(
            asyncio.SubprocessProtocol, PY, "-c", "import time; "
            "time.sleep(3600)", stdin=None, stdout=None, stderr=None))
        popen = transport.get_extra_info("subprocess")
    finally:
        loop.close()
    assert _nfds() == before
    popen.kill()
    popen.wait()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        del transport
        gc.collect()
