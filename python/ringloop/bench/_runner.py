"""One measurement: a server process under load, or the microbenchmarks.

Every function here returns a record (a dict) that says what ran and either
the numbers or why there are none: a run is "ok" only when the server ran on
the loop its label names, the load generator saw every byte echoed back
(or wrk saw only 2xx answers), and the server ended cleanly having counted
no error. A failed run carries "error" and no numbers.
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from ._apps import BODIES
from ._loops import check_identity
from ._server import HTTP_RESPONSE

START_TIMEOUT = 20.0  # a server must listen within this many seconds
STOP_TIMEOUT = 15.0   # and exit within this many after SIGTERM

# wrk's request() for pipelining: that many requests in one write (wrk counts
# each response, and takes the latency of the batch).
WRK_PIPELINE = r"""
init = function(args)
  local r = {}
  for i = 1, %d do r[i] = wrk.format(nil, "/") end
  batch = table.concat(r)
end
request = function() return batch end
"""

# wrk's done() hook: print the summary as one JSON line.
WRK_SCRIPT = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, ' ..
    '"timeout": %d}, "latency_us": {"min": %d, "mean": %.2f, "p50": %d, ' ..
    '"p90": %d, "p99": %d, "max": %d}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read,
    e.write, e.status, e.timeout, latency.min, latency.mean,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
"""


@dataclass
class Settings:
    """How to measure: tools, CPUs, durations (seconds)."""

    loadgen: str | None
    wrk: str | None
    server_cpu: int | None = 0  # None: not pinned
    load_cpu: int | None = 1
    duration: float = 1.0
    warmup: float = 0.3
    micro_n: int = 100_000
    micro_reps: int = 3
    python: str = sys.executable
    env: dict[str, str] = field(default_factory=dict)


def pinning(server_cpu: int, load_cpu: int) -> tuple[int | None, int | None,
                                                     str | None]:
    """The CPUs to pin to, or (None, None, why not) when this process may
    not use both."""
    allowed = os.sched_getaffinity(0)
    if server_cpu == load_cpu:
        return server_cpu, load_cpu, None
    if {server_cpu, load_cpu} <= allowed:
        return server_cpu, load_cpu, None
    return None, None, (f"CPUs {server_cpu} and {load_cpu} are not both "
                        f"available (allowed: {sorted(allowed)}): server and "
                        f"load run unpinned and compete for CPU")


def _spawn(argv: Sequence[str], cpu: int | None, env: dict[str, str],
           **kw: Any) -> subprocess.Popen[str]:
    def pin() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    return subprocess.Popen(list(argv), preexec_fn=pin, text=True,
                            env={**os.environ, **env}, **kw)


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str | None:
    """The next line of proc's stdout, or None when it has none in time."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            line = proc.stdout.readline()
            return line or None


def _finish(p: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """stdout and stderr of p; p is killed after `timeout` seconds (the
    load generators stop by themselves: this is only a safety net)."""
    try:
        return p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return out, err + f"\nkilled after {timeout:.0f} s"


def _tail(text: str, lines: int = 3) -> str:
    """The gist of a program's stderr: its "server error:" lines (at most
    `lines`) and its last line."""
    all_lines = text.strip().splitlines()
    keep = [x for x in all_lines if x.startswith("server error:")][:lines]
    if all_lines and all_lines[-1] not in keep:
        keep.append(all_lines[-1].strip())
    return " | ".join(keep)


class Server:
    """A server process (_server.py) pinned to the server CPU."""

    def __init__(self, s: Settings, loop: str, style: str,
                 extra: Sequence[str] = ()) -> None:
        self.loop = loop
        self.stderr = tempfile.TemporaryFile("w+")
        self.proc = _spawn([s.python, "-m", "ringloop.bench._server", loop,
                            style, *extra], s.server_cpu, s.env,
                           stdout=subprocess.PIPE, stderr=self.stderr)
        self.info: dict[str, Any] = {}
        self.error: str | None = None
        line = _read_line(self.proc, START_TIMEOUT)
        if line is None:
            self.error = "the server did not start: " + self._stop_output()
            return
        self.info = json.loads(line)
        self.port: int = self.info["port"]
        self.error = check_identity(loop, self.info["loop"])

    def _stop_output(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.stderr.seek(0)
        return (_tail(self.stderr.read()) or
                f"exit status {self.proc.returncode}")

    def stop(self) -> tuple[dict[str, Any], str | None]:
        """SIGTERM, then what the server counted, and an error if any."""
        if self.proc.poll() is not None:
            return {}, "the server died: " + self._stop_output()
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            return {}, "the server did not exit after SIGTERM: " + \
                self._stop_output()
        self.stderr.seek(0)
        err = self.stderr.read()
        self.stderr.close()
        try:
            summary = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {}, f"no summary from the server: {_tail(err)}"
        if summary.get("errors") or self.proc.returncode:
            return summary, (f"the server counted {summary.get('errors')} "
                             f"error(s), exit status {self.proc.returncode}: "
                             f"{_tail(err)}")
        return summary, None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def proc_cpu_us(pid: int) -> float:
    """CPU time (user + system) of process pid so far, in microseconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) * 1e6 / os.sysconf(
        "SC_CLK_TCK")


def per_request(summary: dict[str, Any]) -> dict[str, float]:
    """Syscalls and completions per request, from the loop.stats() a
    ringloop server reports over its whole run (warm-up included) and the
    requests it counted over the same run; {} for other loops."""
    st = summary.get("loop_stats")
    req = summary.get("requests")
    if not st or not req:
        return {}
    out = {"syscalls_per_req": st["syscalls_total"] / req,
           "completions_per_req": st["completions"] / req}
    if "cqes_reaped" in st:
        out["cqes_per_req"] = st["cqes_reaped"] / req
    return out


def _record(scenario: str, loop: str, **kw: Any) -> dict[str, Any]:
    return {"scenario": scenario, "loop": loop, "ok": False, "error": None,
            **kw}


def _loadgen(s: Settings, port: int, pid: int, conns: int,
             size: int) -> tuple[dict[str, Any], list[str]]:
    """ringloop-loadgen against the server on `port` (process `pid`, whose
    CPU time it measures): its JSON result, and what went wrong."""
    assert s.loadgen is not None
    argv = [s.loadgen, "--port", str(port), "-c", str(conns),
            "-s", str(size), "-d", str(s.duration), "-w", str(s.warmup),
            "--server-pid", str(pid), "--json"]
    lg = _spawn(argv, s.load_cpu, {}, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE)
    out, err = _finish(lg, s.duration + s.warmup + 60)
    res: dict[str, Any] = {}
    try:
        res = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        pass
    problems = []
    if not res:
        problems.append(f"loadgen failed (status {lg.returncode}): "
                        f"{_tail(err)}")
    else:
        for key in ("errors", "mismatches", "stalled"):
            if res.get(key):
                problems.append(f"loadgen counted {res[key]} {key}")
        if res.get("alive") != conns:
            problems.append(f"{res.get('alive')} of {conns} connections "
                            f"alive at the end")
        if not res.get("requests"):
            problems.append("no request completed")
        if lg.returncode:
            problems.append(f"loadgen exit status {lg.returncode}")
    return res, problems


def _echo_numbers(res: dict[str, Any]) -> dict[str, Any]:
    return dict(rps=res["rps"], us_per_req=res.get("server_cpu_us_per_req"),
                server_util=res.get("server_cpu_util"),
                load_util=res.get("client_cpu_util"),
                p50_us=res["latency_us"]["p50"],
                p99_us=res["latency_us"]["p99"])


def run_echo(s: Settings, scenario: str, loop: str, style: str, conns: int,
             size: int, extra: Sequence[str] = ()) -> dict[str, Any]:
    """One echo measurement: loop's `style` server under ringloop-loadgen."""
    rec = _record(scenario, loop)
    if s.loadgen is None:
        rec["error"] = "ringloop-loadgen is not available"
        return rec
    server = Server(s, loop, style, extra)
    try:
        if server.error:
            rec["error"] = server.error
            return rec
        rec["server_loop"] = server.info["loop"]
        res, problems = _loadgen(s, server.port, server.proc.pid, conns,
                                 size)
        rec["loadgen"] = res
        summary, stop_error = server.stop()
        rec["server"] = summary
        if stop_error:
            problems.append(stop_error)
        elif summary.get("connections", 0) < conns:
            problems.append(f"the server accepted {summary.get('connections')}"
                            f" of {conns} connections")
        if problems:
            rec["error"] = "; ".join(problems)
            return rec
        rec.update(ok=True, **_echo_numbers(res), **per_request(summary))
        return rec
    finally:
        server.kill()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_raw_echo(s: Settings, scenario: str, loop: str, binary: str,
                 conns: int, size: int) -> dict[str, Any]:
    """One echo measurement of a raw C echo server (bench/echo_raw_*.c, which
    takes --port and prints nothing) under ringloop-loadgen: the floor the
    ringloop rows are compared with. It counts nothing, so its proof of
    correctness is the load generator's byte-for-byte check."""
    rec = _record(scenario, loop)
    if s.loadgen is None:
        rec["error"] = "ringloop-loadgen is not available"
        return rec
    port = _free_port()
    err = tempfile.TemporaryFile("w+")
    proc = _spawn([binary, "--port", str(port)], s.server_cpu, {},
                  stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err.seek(0)
                    rec["error"] = ("the raw server did not start: " +
                                    (_tail(err.read()) or
                                     f"exit status {proc.poll()}"))
                    return rec
                time.sleep(0.02)
        rec["server_loop"] = {"class": os.path.basename(binary)}
        res, problems = _loadgen(s, port, proc.pid, conns, size)
        rec["loadgen"] = res
        if proc.poll() is not None:
            err.seek(0)
            problems.append(f"the raw server died: {_tail(err.read())}")
        if problems:
            rec["error"] = "; ".join(problems)
            return rec
        rec.update(ok=True, **_echo_numbers(res))
        return rec
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        err.close()


def find_raw_server(path: str | None) -> tuple[str | None, str | None]:
    """The raw liburing echo server: `path`, else $RINGLOOP_ECHO_RAW_URING;
    (None, why) when there is none."""
    path = path or os.environ.get("RINGLOOP_ECHO_RAW_URING")
    if not path:
        return None, ("no raw liburing echo server (scripts/bench.sh builds "
                      "bench/echo_raw_uring.c; or --raw-server PATH)")
    if not os.access(path, os.X_OK):
        return None, f"the raw liburing echo server {path} is not executable"
    return path, None


def http_check(port: int, style: str = "http") -> str | None:
    """Two keep-alive GETs on one connection; None when both answers are
    the hello world: byte for byte from the httptools server, status 200
    and the app's body from an application server."""
    if style != "http":
        return _app_check(port, BODIES[style])
    req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            for _ in range(2):
                c.sendall(req)
                got = b""
                while len(got) < len(HTTP_RESPONSE):
                    chunk = c.recv(len(HTTP_RESPONSE) - len(got))
                    if not chunk:
                        break
                    got += chunk
                if got != HTTP_RESPONSE:
                    return f"unexpected HTTP response {got[:200]!r}"
    except OSError as exc:
        return f"HTTP check failed: {exc}"
    return None


def _app_check(port: int, body: bytes) -> str | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        for _ in range(2):
            conn.request("GET", "/")
            resp = conn.getresponse()
            got = resp.read()
            if resp.status != 200 or got != body:
                return (f"unexpected HTTP response {resp.status} "
                        f"{got[:200]!r}")
    except (OSError, http.client.HTTPException) as exc:
        return f"HTTP check failed: {exc!r}"
    finally:
        conn.close()
    return None


def _wrk(s: Settings, port: int, conns: int, seconds: int,
         script: str, close: bool = False) -> tuple[dict[str, Any],
                                                     str | None]:
    assert s.wrk is not None
    # With "Connection: close" the server answers with it and closes; wrk
    # then opens a new connection for the next request (run_http checks
    # that it did, from the connections the server counted).
    header = ["-H", "Connection: close"] if close else []
    argv = [s.wrk, "-t1", f"-c{conns}", f"-d{seconds}s", *header, "-s",
            script, f"http://127.0.0.1:{port}/"]
    # wrk's CPU time: what the children reaped meanwhile used (the server,
    # also a child, is reaped only after it stops).
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = _spawn(argv, s.load_cpu, {}, stdout=subprocess.PIPE,
               stderr=subprocess.PIPE)
    out, err = _finish(p, seconds + 60)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        res = json.loads(out.strip().splitlines()[-1])
        res["cpu_s"] = (ru1.ru_utime - ru0.ru_utime +
                        ru1.ru_stime - ru0.ru_stime)
        return res, None
    except (ValueError, IndexError):
        return {}, f"wrk failed (status {p.returncode}): {_tail(out + err)}"


def http_seconds(duration: float) -> int:
    """wrk takes whole seconds."""
    return max(1, round(duration))


def run_http(s: Settings, scenario: str, loop: str, conns: int,
             extra: Sequence[str] = (), pipeline: int = 1,
             style: str = "http", close: bool = False) -> dict[str, Any]:
    """One HTTP measurement: loop's `style` server (the httptools
    hello world, or an application server of _apps.py) under wrk, sending
    `pipeline` requests at a time on each connection, or with `close` one
    request per connection; the server's CPU time comes from /proc around
    the measured wrk run."""
    rec = _record(scenario, loop)
    if s.wrk is None:
        rec["error"] = "wrk is not installed"
        return rec
    server = Server(s, loop, style, extra)
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    try:
        if pipeline > 1:
            script.write(WRK_PIPELINE % pipeline)
        script.write(WRK_SCRIPT)
        script.close()
        if server.error:
            rec["error"] = server.error
            return rec
        rec["server_loop"] = server.info["loop"]
        problem = http_check(server.port, style)
        res: dict[str, Any] = {}
        cpu = 0.0
        if problem is None and s.warmup >= 0.5:
            _, problem = _wrk(s, server.port, conns, 1, script.name, close)
        if problem is None:
            cpu0 = proc_cpu_us(server.proc.pid)
            res, problem = _wrk(s, server.port, conns,
                                http_seconds(s.duration), script.name, close)
            cpu = proc_cpu_us(server.proc.pid) - cpu0
        rec["wrk"] = res
        summary, stop_error = server.stop()
        rec["server"] = summary
        problems = [p for p in (problem, stop_error) if p]
        if res:
            bad = {k: v for k, v in res["errors"].items() if v}
            if bad:
                problems.append(f"wrk counted errors {bad}")
            if not res["requests"]:
                problems.append("no request completed")
            elif summary.get("requests", 0) < res["requests"]:
                problems.append(f"wrk counted {res['requests']} responses, "
                                f"the server {summary.get('requests')}")
            elif close and summary.get("connections", 0) < res["requests"]:
                problems.append(f"not a connection per request: the server "
                                f"accepted {summary.get('connections')} "
                                f"connections for {res['requests']} "
                                f"requests")
        if problems:
            rec["error"] = "; ".join(problems)
            return rec
        seconds = res["duration_us"] / 1e6
        if close:
            rec["conns_per_req"] = (summary.get("connections", 0) /
                                    max(1, summary.get("requests", 0)))
        rec.update(ok=True, rps=res["requests"] / seconds,
                   us_per_req=cpu / res["requests"],
                   server_util=cpu / res["duration_us"],
                   load_util=res["cpu_s"] * 1e6 / res["duration_us"],
                   p50_us=float(res["latency_us"]["p50"]),
                   # wrk (4.2) reports a p99 of 0 for some pipelined
                   # runs: no number rather than a wrong one
                   p99_us=float(res["latency_us"]["p99"]) or None,
                   **per_request(summary))
        return rec
    finally:
        server.kill()
        os.unlink(script.name)


def run_micro(s: Settings, loop: str) -> dict[str, Any]:
    """The in-process microbenchmarks of _micro.py on `loop`, in a process
    of their own pinned to the server CPU."""
    rec = _record("micro", loop)
    p = _spawn([s.python, "-m", "ringloop.bench._micro", loop,
                "-n", str(s.micro_n), "--reps", str(s.micro_reps)],
               s.server_cpu, s.env, stdout=subprocess.PIPE,
               stderr=subprocess.PIPE)
    out, err = _finish(p, 300)
    try:
        res = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        rec["error"] = f"exit status {p.returncode}: {_tail(err)}"
        return rec
    rec["server_loop"] = res["loop"]
    rec["results"] = res["results"]
    problems = [check_identity(loop, res["loop"]), *res.get("errors", ())]
    rec["error"] = "; ".join(p for p in problems if p) or None
    rec["ok"] = rec["error"] is None
    return rec


def find_wrk() -> str | None:
    return shutil.which("wrk")


def run_files(s: Settings, scenario: str, impl: str, data: str,
              directory: str, duration: float, warmup: float, count: int,
              seed: int = 1) -> dict[str, Any]:
    """One measurement of the files group (_files.py): implementation `impl`
    on `scenario` ("files/<name>") in a process of its own pinned to the
    server CPU; ops/s, the process's CPU µs per op (every thread's)."""
    from ._files import IMPLS

    rec = _record(scenario, impl)
    name = scenario.split("/", 1)[1]
    p = _spawn([s.python, "-m", "ringloop.bench._files", impl, name,
                "--data", data, "--dir", directory, "--duration",
                str(duration), "--warmup", str(warmup), "--count",
                str(count), "--seed", str(seed)], s.server_cpu, s.env,
               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = _finish(p, duration + warmup + 300)
    try:
        res = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        rec["error"] = f"exit status {p.returncode}: {_tail(err)}"
        return rec
    if res.get("error") or p.returncode:
        rec["error"] = (res.get("error") or
                        f"exit status {p.returncode}: {_tail(err)}")
        return rec
    rec["server_loop"] = res["loop"]
    rec["files"] = res
    rec["error"] = check_identity(IMPLS[impl][0], res["loop"])
    if rec["error"]:
        return rec
    seconds, ops = res["seconds"], res["ops"]
    rec.update(ok=True, ops_per_s=ops / seconds,
               us_per_op=res["cpu_s"] * 1e6 / ops,
               mib_per_s=res["bytes"] / seconds / 2**20,
               server_util=res["cpu_s"] / seconds, threads=res["threads"])
    return rec
