"""Live statistics of a running ringloop loop.

A process whose environment has ``RINGLOOP_STATS_SOCKET=PATH`` serves the
``loop.stats()`` of its running loop on a Unix socket at PATH (``{pid}`` in
PATH is replaced by the process id, for servers with several workers).
Then::

    python -m ringloop.stats PATH

prints them every second: a table redrawn in place on a terminal, one plain
line per sample otherwise (``--json`` for one JSON object per sample).

Security: the socket is created with mode 0600 (under a umask of 0177, so
there is no moment when it is more open), and a connecting process whose
user is neither the server's nor root is turned away (SO_PEERCRED). Only the
owner can read the stats. Put it in a directory only the owner can enter
(e.g. $XDG_RUNTIME_DIR) to keep others from even seeing it.

Protocol: connect, read one JSON object up to EOF: ``{"pid": ..., "time":
..., "stats": {...}}``; the server closes. Each request runs on the loop
thread, between callbacks, and costs it one accept and one send.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import socket
import struct
import sys
import time
import warnings
import weakref
from typing import Any, TextIO

__all__ = ["serve", "fetch", "main"]

ENV = "RINGLOOP_STATS_SOCKET"

# path -> (weak loop, listening socket): one serving loop per path
_served: dict[str, tuple[Any, socket.socket]] = {}


def _expand(path: str) -> str:
    return path.replace("{pid}", str(os.getpid()))


def _stale(path: str) -> bool:
    """True if path is a socket nobody listens on any more (safe to
    remove); False if it is missing. Raises if it is something else or a
    live server."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    import stat

    if not stat.S_ISSOCK(st.st_mode):
        raise FileExistsError(f"{path} exists and is not a socket")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return True
    finally:
        s.close()
    raise FileExistsError(f"{path}: another process serves stats there")


def _listen(path: str) -> socket.socket:
    if _stale(path):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # the socket is born 0600
    try:
        sock.bind(path)
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(16)
    sock.setblocking(False)
    return sock


def _allowed(conn: socket.socket) -> bool:
    fmt = "3i"  # struct ucred: pid, uid, gid
    try:
        _, uid, _ = struct.unpack(
            fmt, conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                 struct.calcsize(fmt)))
    except OSError:
        return False
    return uid in (os.getuid(), 0)


def _on_request(loop_ref: Any, sock: socket.socket) -> None:
    loop = loop_ref()
    while True:
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        try:
            if loop is None or not _allowed(conn):
                continue
            body = json.dumps({"pid": os.getpid(), "time": time.time(),
                               "stats": loop.stats()}).encode() + b"\n"
            conn.setblocking(False)
            try:
                conn.sendall(body)  # a few KiB: fits the socket buffer
            except (BlockingIOError, OSError):
                pass
        finally:
            conn.close()


def serve(loop: Any, path: str) -> bool:
    """Serve loop.stats() on a Unix socket at path (mode 0600, owner only)
    while loop is open. Returns False if another open loop of this process
    already serves there. Raises OSError if the socket cannot be made."""
    path = _expand(path)
    old = _served.get(path)
    if old is not None:
        old_loop = old[0]()
        if old_loop is loop:
            return True
        if old_loop is not None and not old_loop.is_closed():
            return False
        old[1].close()  # its loop is gone: take the path over
        del _served[path]
        try:
            os.unlink(path)
        except OSError:
            pass
    sock = _listen(path)
    loop.stats()  # the loop times itself from its first stats() on
    ref = weakref.ref(loop)
    try:
        loop.add_reader(sock.fileno(), _on_request, ref, sock)
    except BaseException:
        sock.close()
        os.unlink(path)
        raise
    _served[path] = (ref, sock)
    return True


def _serve(loop: Any, path: str) -> None:
    """Called by the loop when RINGLOOP_STATS_SOCKET is set (once per
    run_forever); warns instead of failing the loop."""
    try:
        serve(loop, path)
    except OSError as exc:
        warnings.warn(f"ringloop.stats: cannot serve on {path}: {exc}",
                      RuntimeWarning, stacklevel=2)


@atexit.register
def _cleanup() -> None:
    for path, (_, sock) in list(_served.items()):
        sock.close()
        try:
            os.unlink(path)
        except OSError:
            pass
    _served.clear()


def fetch(path: str, timeout: float = 5.0) -> dict[str, Any]:
    """One sample from a server: {"pid", "time", "stats"}."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    data = b"".join(chunks)
    if not data:
        raise ConnectionError(f"{path}: the server sent nothing "
                              "(another user's socket?)")
    return json.loads(data)


# ---- the display ----------------------------------------------------------

# (label, key or (dict, key)): counters shown with their rate
_COUNTERS: list[tuple[str, Any]] = [
    ("iterations", "iterations"),
    ("callbacks", "callbacks"),
    ("completions", "completions"),
    ("ops submitted", "ops_submitted"),
    ("syscalls", "syscalls_total"),
    ("  io_uring_enter", ("syscalls", "io_uring_enter")),
    ("  epoll_wait", ("syscalls", "epoll_wait")),
    ("  epoll_ctl", ("syscalls", "epoll_ctl")),
    ("  recv", ("syscalls", "recv")),
    ("  send", ("syscalls", "send")),
    ("  other", ("syscalls", "other")),
    ("SQEs submitted", "sqes_submitted"),
    ("CQEs reaped", "cqes_reaped"),
    ("CQ overflows", "cq_overflows"),
    ("CQEs dropped", "cq_dropped"),
    ("recv ENOBUFS", "recv_enobufs"),
    ("multishot re-arms", "multishot_rearms"),
    ("recv to readiness", "recv_to_readiness"),
    ("recv back to ring", "recv_to_ring"),
    ("pool ops", "pool_ops"),
    ("RWF_NOWAIT hits", "nowait_hits"),
    ("bytes received", "bytes_received"),
    ("bytes sent", "bytes_sent"),
    ("timers fired", "timers_fired"),
    ("threadsafe calls", "threadsafe_calls"),
    ("slow callbacks", "slow_callbacks"),
]


def _get(st: dict[str, Any], key: Any) -> Any:
    if isinstance(key, tuple):
        return st.get(key[0], {}).get(key[1])
    return st.get(key)


def _human(v: float) -> str:
    for unit in ("", "k", "M", "G", "T"):
        if abs(v) < 1000:
            return f"{v:.0f}{unit}" if unit == "" else f"{v:.1f}{unit}"
        v /= 1000
    return f"{v:.1f}P"


def _interval_util(prev: dict[str, Any] | None, st: dict[str, Any]) -> float:
    if prev is None:
        return float(st["utilization"])
    busy = st["busy_seconds"] - prev["busy_seconds"]
    wait = st["wait_seconds"] - prev["wait_seconds"]
    return busy / (busy + wait) if busy + wait > 0 else 0.0


def table(path: str, sample: dict[str, Any], prev: dict[str, Any] | None,
          dt: float) -> list[str]:
    """The lines of the live table for one sample (prev: the one before,
    dt seconds earlier, for the rates)."""
    st = sample["stats"]
    pst = prev["stats"] if prev else None
    util = _interval_util(pst, st)
    bar = "#" * round(util * 20)
    lines = [
        f"ringloop stats  {path}  pid {sample['pid']}  backend "
        f"{st['backend']}  {time.strftime('%H:%M:%S')}",
        f"utilization {util * 100:5.1f}% [{bar:<20}]  busy "
        f"{st['busy_seconds']:.3f} s  waiting {st['wait_seconds']:.3f} s",
        f"{'':20}{'total':>12}{'per s':>12}",
    ]
    for label, key in _COUNTERS:
        v = _get(st, key)
        if v is None:
            continue  # not on this backend
        rate = ""
        if pst is not None and dt > 0:
            pv = _get(pst, key) or 0
            rate = _human((v - pv) / dt)
        lines.append(f"{label:<20}{_human(v):>12}{rate:>12}")
    inflight = ", ".join(f"{k} {v}" for k, v in st["inflight"].items() if v)
    lines.append(f"in flight {st['pending']}: {inflight or '-'}; timers "
                 f"armed {st['timers_armed']}")
    if st.get("slowest_callback"):
        lines.append(f"slowest callback {st['slowest_callback_seconds']:.3f}"
                     f" s: {st['slowest_callback'][:120]}")
    return lines


def line(sample: dict[str, Any], prev: dict[str, Any] | None,
         dt: float) -> str:
    """One plain line per sample (stdout not a terminal)."""
    st = sample["stats"]
    pst = prev["stats"] if prev else None

    def rate(key: str) -> str:
        if pst is None or dt <= 0:
            return "-"
        return _human((st[key] - pst[key]) / dt)

    return (f"{time.strftime('%H:%M:%S')} pid={sample['pid']} "
            f"backend={st['backend']} "
            f"util={_interval_util(pst, st) * 100:.1f}% "
            f"iter/s={rate('iterations')} "
            f"completions/s={rate('completions')} "
            f"syscalls/s={rate('syscalls_total')} "
            f"rx/s={rate('bytes_received')} tx/s={rate('bytes_sent')} "
            f"pending={st['pending']} slow={st['slow_callbacks']}")


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ringloop.stats",
        description="Print the stats of a ringloop loop that serves them "
        f"({ENV}=PATH in its environment), every interval.")
    ap.add_argument("path", nargs="?", default=os.environ.get(ENV),
                    help=f"the server's socket (default: ${ENV})")
    ap.add_argument("-i", "--interval", type=float, default=1.0,
                    help="seconds between samples (default 1)")
    ap.add_argument("-n", "--count", type=int, default=0,
                    help="stop after this many samples (default: never)")
    ap.add_argument("--json", action="store_true",
                    help="one JSON object per sample")
    args = ap.parse_args(argv)
    out = out or sys.stdout
    if not args.path:
        ap.error(f"no socket: give PATH or set {ENV}")
    tty = out.isatty() and not args.json
    prev: dict[str, Any] | None = None
    prev_t = 0.0
    drawn = 0
    n = 0
    try:
        while True:
            try:
                sample = fetch(args.path)
            except (OSError, ValueError) as exc:
                print(f"ringloop.stats: {args.path}: {exc}", file=sys.stderr)
                return 1
            now = time.monotonic()
            dt = now - prev_t if prev else 0.0
            if args.json:
                out.write(json.dumps(sample) + "\n")
            elif tty:
                lines = table(args.path, sample, prev, dt)
                # redraw in place: up over the last table, clear each line
                if drawn:
                    out.write(f"\x1b[{drawn}F")
                out.write("".join(f"\x1b[2K{s}\n" for s in lines))
                if drawn > len(lines):
                    out.write("\x1b[J")
                drawn = len(lines)
            else:
                out.write(line(sample, prev, dt) + "\n")
            out.flush()
            prev, prev_t = sample, now
            n += 1
            if args.count and n >= args.count:
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
