"""`python -m ringloop.bench`: the plan, the run, the output."""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any, Sequence

from . import _report as report
from ._apps import APPS, NEEDS
from ._loops import BASELINE, LOOPS, missing_reason
from ._micro import NAMES as MICRO_NAMES
from ._runner import (Settings, find_raw_server, find_wrk, http_seconds,
                      pinning, run_echo, run_http, run_micro, run_raw_echo)

STYLES = ("protocol", "buffered", "streams", "sock")
SIZES = {"1k": 1024, "64k": 65536}
APP_TITLES = {"uvicorn": "uvicorn (httptools), bare ASGI hello world",
              "fastapi": "FastAPI on uvicorn (httptools), small JSON object",
              "aiohttp": "aiohttp.web hello world",
              "http": "HTTP hello-world (httptools protocol)"}
# The raw liburing echo server (bench/echo_raw_uring.c) runs as one more
# row in these scenarios: the floor for ringloop-uring's CPU per request.
RAW = "raw-uring"
RAW_SCENARIOS = ("echo/protocol/1k/*",)


@dataclass(frozen=True)
class Scenario:
    kind: str  # "echo", "http" (wrk), "app" (wrk) or "micro"
    style: str = ""  # echo: the echo style; http and app: the server
    conns: int = 0
    size: str = ""
    pipeline: int = 1  # HTTP: requests wrk sends per batch on a connection
    close: bool = False  # HTTP: a new connection for every request

    @property
    def name(self) -> str:
        if self.kind == "echo":
            return f"echo/{self.style}/{self.size}/c{self.conns}"
        if self.kind == "app":
            return f"app/{self.style}/c{self.conns}"
        if self.kind == "http" and self.close:
            server = "" if self.style == "http" else self.style + "/"
            return f"http/close/{server}c{self.conns}"
        if self.kind == "http" and self.pipeline > 1:
            return f"http/pipe{self.pipeline}/c{self.conns}"
        if self.kind == "http":
            return f"http/c{self.conns}"
        return "micro"

    @property
    def title(self) -> str:
        if self.kind == "echo":
            return (f"echo, {self.style} style, {self.size[:-1]} KiB messages,"
                    f" {self.conns} connection{'s' if self.conns > 1 else ''}")
        if self.kind in ("http", "app"):
            how = (f"{self.pipeline} pipelined requests per batch, "
                   if self.pipeline > 1 else
                   "a new connection per request (Connection: close), "
                   if self.close else "")
            return (f"{APP_TITLES[self.style]} under wrk, {how}"
                    f"{self.conns} connections")
        return "microbenchmarks"

    @property
    def wrk(self) -> bool:
        return self.kind in ("http", "app")

    @property
    def noisy(self) -> bool:
        """Application and connection-per-request scenarios move by up to
        15% from one round to the next: the full mode gives them more."""
        return self.kind == "app" or self.close

    def needs(self) -> tuple[str, ...]:
        """Python modules the scenario's server imports."""
        if not self.wrk:
            return ()
        return ("httptools",) if self.style == "http" else NEEDS[self.style]


def _echo(style: str, size: str, conns: int) -> Scenario:
    return Scenario("echo", style, conns, size)


def _app(app: str, conns: int) -> Scenario:
    return Scenario("app", app, conns)


def _close(server: str, conns: int) -> Scenario:
    return Scenario("http", server, conns, close=True)


QUICK = [_echo("protocol", "1k", 50), _echo("protocol", "1k", 500),
         _echo("protocol", "64k", 50), _echo("buffered", "1k", 50),
         _echo("streams", "1k", 50), _echo("sock", "1k", 50),
         Scenario("http", "http", 50), Scenario("http", "http", 50, "", 16),
         _app("uvicorn", 50), Scenario("micro")]
FULL = ([_echo(st, sz, c) for st in STYLES for sz in SIZES
         for c in (1, 50, 500)] +
        [Scenario("http", "http", 50), Scenario("http", "http", 500),
         Scenario("http", "http", 50, "", 16)] +
        [_app(app, c) for app in APPS for c in (50, 500)] +
        [_close("http", 50), _close("uvicorn", 50),
         Scenario("micro")])

# Per mode: duration, warmup, rounds, micro ops per sample, micro samples,
# rounds of the noisy (application, connection-per-request) scenarios.
MODES = {"quick": (1.5, 0.5, 1, 100_000, 3, 1),
         "full": (0.8, 0.3, 3, 200_000, 5, 5)}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m ringloop.bench",
        description="Compare asyncio, uvloop, ringloop-epoll and "
        "ringloop-uring: echo servers, an HTTP server and application "
        "servers (uvicorn, FastAPI, aiohttp) under load (server "
        "pinned to one CPU, load to another), and in-process "
        "microbenchmarks. Prints tables, writes results.json, results.txt "
        "and bench.png.")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="a representative subset, short runs "
                      "(under 2 minutes)")
    mode.add_argument("--full", action="store_true",
                      help="every scenario, 3 rounds, 5 for the application "
                      "and connection-per-request ones (the default)")
    ap.add_argument("--loops", default=",".join(LOOPS),
                    help="comma-separated subset of: " + ", ".join(LOOPS))
    ap.add_argument("--only", action="append", metavar="PATTERN",
                    help="run the scenarios matching this shell pattern "
                    "(repeatable), e.g. 'echo/protocol/*', 'http/*', 'app/*', "
                    "'micro'")
    ap.add_argument("--list", action="store_true",
                    help="list the scenarios of the mode and exit")
    ap.add_argument("--duration", type=float, help="measured seconds per run "
                    "(HTTP: whole seconds, at least 1)")
    ap.add_argument("--warmup", type=float,
                    help="seconds of load before measuring")
    ap.add_argument("--rounds", type=int, help="rounds of every scenario "
                    "(default: the mode's); each shows the median over them "
                    "(loop order rotates between rounds)")
    ap.add_argument("--micro-n", type=int, help="operations per "
                    "microbenchmark sample")
    ap.add_argument("--micro-reps", type=int,
                    help="samples per microbenchmark (median)")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--load-cpu", type=int, default=1)
    ap.add_argument("--out", default="ringloop-bench-results",
                    help="directory for results.json, results.txt, bench.png")
    ap.add_argument("--raw-server", metavar="PATH",
                    help="the raw liburing echo server (bench/echo_raw_uring)"
                    " measured as one more row of the 1 KiB Protocol echo "
                    "scenarios (default: $RINGLOOP_ECHO_RAW_URING)")
    ap.add_argument("--no-raw", action="store_true",
                    help="no raw liburing echo server row")
    ap.add_argument("--no-chart", action="store_true")
    ap.add_argument("--from-json", metavar="RESULTS_JSON",
                    help="measure nothing: print the tables and draw the "
                    "chart of an earlier run's results.json")
    args = ap.parse_args(argv)
    mode = MODES["quick" if args.quick else "full"]
    args.noisy_rounds = args.rounds or mode[5]
    for key, default in zip(("duration", "warmup", "rounds", "micro_n",
                             "micro_reps"), mode):
        if getattr(args, key) is None:
            setattr(args, key, default)
    return args


def rounds_of(sc: Scenario, args: argparse.Namespace) -> int:
    return args.noisy_rounds if sc.noisy else args.rounds


def gets_raw(sc: Scenario) -> bool:
    return any(fnmatch.fnmatchcase(sc.name, p) for p in RAW_SCENARIOS)


def plan(args: argparse.Namespace) -> list[Scenario]:
    scenarios = QUICK if args.quick else FULL
    if args.only:
        scenarios = [s for s in scenarios
                     if any(fnmatch.fnmatchcase(s.name, p) for p in args.only)]
    return scenarios


def _say(msg: str = "") -> None:
    print(msg, flush=True)


def _progress(i: int, total: int, rec: dict[str, Any]) -> None:
    head = f"[{i:>3}/{total}] {rec['scenario']:<22} {rec['loop']:<15}"
    if not rec["ok"]:
        _say(f"{head} FAILED: {rec['error']}")
    elif rec["scenario"] == "micro":
        _say(head + "  ".join(f" {k} {report._rate(v.get('ops_per_s'))}/s"
                              for k, v in rec["results"].items()))
    else:
        extra = ""
        if rec.get("syscalls_per_req") is not None:
            extra = (f"  {rec['syscalls_per_req']:.2f} sys/req "
                     f"{rec['completions_per_req']:.2f} cpl/req")
        _say(f"{head} {rec['rps']:>9.0f} req/s "
             f"{report._num(rec.get('us_per_req'), '.2f'):>7} µs/req{extra}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure everything the arguments ask for; return the JSON document."""
    t_start = time.monotonic()
    notes: list[str] = []
    skipped: dict[str, str] = {}
    loops = []
    wanted = [x.strip() for x in args.loops.split(",") if x.strip()]
    # The table's order, whatever the order asked for.
    wanted.sort(key=lambda n: LOOPS.index(n) if n in LOOPS else len(LOOPS))
    for name in wanted:
        why = missing_reason(name)
        if why:
            skipped[name] = why
            notes.append(f"skipped {name}: {why}")
        else:
            loops.append(name)
    if BASELINE not in loops:
        notes.append(f"no {BASELINE} in this run: no ratios to it")

    try:
        from .._tools import find_tool

        loadgen: str | None = find_tool("ringloop-loadgen")
    except FileNotFoundError as exc:
        loadgen = None
        notes.append(f"skipped the echo scenarios: {exc}")
    wrk = find_wrk()
    scenarios = plan(args)
    if wrk is None and any(s.wrk for s in scenarios):
        notes.append("skipped the HTTP and application scenarios: wrk is "
                     "not installed (apt-get install wrk)")
        scenarios = [s for s in scenarios if not s.wrk]
    missing: dict[str, list[str]] = {}
    for sc in scenarios:
        for mod in sc.needs():
            try:
                __import__(mod)
            except ImportError:
                missing.setdefault(mod, []).append(sc.name)
    for mod, names in missing.items():
        notes.append(f"skipped {', '.join(names)}: {mod} is not installed "
                     f"(pip install {mod})")
    skip = {n for names in missing.values() for n in names}
    scenarios = [s for s in scenarios if s.name not in skip]
    if loadgen is None:
        scenarios = [s for s in scenarios if s.kind != "echo"]
    raw = None
    if not args.no_raw and any(gets_raw(sc) for sc in scenarios):
        raw, why = find_raw_server(args.raw_server)
        if why:
            notes.append(f"no {RAW} row: {why}")

    server_cpu, load_cpu, why = pinning(args.server_cpu, args.load_cpu)
    if why:
        notes.append(why)
    s = Settings(loadgen=loadgen, wrk=wrk, server_cpu=server_cpu,
                 load_cpu=load_cpu, duration=args.duration,
                 warmup=args.warmup, micro_n=args.micro_n,
                 micro_reps=args.micro_reps)
    mach = report.machine(s)
    noisy = (f" ({args.noisy_rounds} for app/* and http/close/*)"
             if args.noisy_rounds != args.rounds and
             any(sc.noisy for sc in scenarios) else "")
    _say(f"ringloop.bench: {'quick' if args.quick else 'full'} mode, "
         f"{len(scenarios)} scenario(s) x {len(loops)} loop(s) x "
         f"{args.rounds} round(s){noisy}; {args.warmup:g} s warmup + "
         f"{args.duration:g} s per run (HTTP: {http_seconds(args.duration)} s"
         f" under wrk)")
    _say("machine: " + report.machine_line(mach))
    for n in notes:
        _say("note: " + n)

    def loops_of(sc: Scenario) -> list[str]:
        return loops + ([RAW] if raw and gets_raw(sc) else [])

    records: list[dict[str, Any]] = []
    total = sum(len(loops_of(sc)) * rounds_of(sc, args) for sc in scenarios)
    # Rounds interleave: every scenario once per round, the noisy ones
    # in the extra rounds of the full mode too.
    for rnd in range(max([args.rounds] + [rounds_of(sc, args)
                                          for sc in scenarios])):
        for k, sc in enumerate(scenarios):
            if rnd >= rounds_of(sc, args):
                continue
            row = loops_of(sc)
            # Rotate the order of the loops from one scenario and round to
            # the next, so that none is always measured first or last.
            shift = (rnd + k) % max(1, len(row))
            for loop in row[shift:] + row[:shift]:
                if loop == RAW:
                    assert raw is not None
                    rec = run_raw_echo(s, sc.name, loop, raw, sc.conns,
                                       SIZES[sc.size])
                elif sc.kind == "echo":
                    rec = run_echo(s, sc.name, loop, sc.style, sc.conns,
                                   SIZES[sc.size])
                elif sc.wrk:
                    rec = run_http(s, sc.name, loop, sc.conns,
                                   pipeline=sc.pipeline, style=sc.style,
                                   close=sc.close)
                else:
                    rec = run_micro(s, loop)
                rec["round"] = rnd
                records.append(rec)
                _progress(len(records), total, rec)

    # The raw runs first: what was measured outlives a failure below.
    with open(os.path.join(args.out, "runs.json"), "w") as f:
        json.dump(records, f, indent=1)
    names = [sc.name for sc in scenarios if sc.kind != "micro"]
    if any(sc.kind == "micro" for sc in scenarios):
        names += [f"micro/{n}" for n in MICRO_NAMES]
    extra = [RAW] if raw and any(gets_raw(sc) for sc in scenarios) else []
    summary = report.summarize(records, names, loops + extra)
    return {
        "machine": mach,
        "config": {"mode": "quick" if args.quick else "full",
                   "loops": loops, "skipped_loops": skipped,
                   "extra_loops": extra, "raw_server": raw,
                   "scenarios": names, "duration_s": args.duration,
                   "http_duration_s": http_seconds(args.duration),
                   "warmup_s": args.warmup, "rounds": args.rounds,
                   "noisy_rounds": args.noisy_rounds,
                   "micro_n": args.micro_n, "micro_reps": args.micro_reps,
                   "baseline": BASELINE},
        "notes": notes,
        "summary": summary,
        "targets": report.check_targets(
            summary, [sc.name for sc in FULL if sc.kind != "micro"] +
            [f"micro/{n}" for n in MICRO_NAMES]),
        "runs": records,
        "wall_time_s": round(time.monotonic() - t_start, 1),
    }


def render(doc: dict[str, Any]) -> list[str]:
    """The tables of a result document, as text lines."""
    loops = doc["config"]["loops"]
    names = doc["config"]["scenarios"]
    summary = doc["summary"]
    titles = {sc.name: sc.title for sc in FULL + QUICK}
    lines = [f"note: {n}" for n in doc["notes"]]
    lines += [""] if lines else []
    starved = False
    for name in names:
        if name.startswith("micro/"):
            continue
        lines += report.scenario_table(
            f"{titles.get(name, name)}  [{name}]", summary.get(name, {}),
            loops + doc["config"].get("extra_loops", []), name)
        lines.append("")
        starved |= any(report.starved(name, r)
                       for r in summary.get(name, {}).values())
    if starved:
        lines += [report.STARVED_NOTE, ""]
    micro = [n for n in names if n.startswith("micro/")]
    if micro:
        lines += report.micro_table(summary, micro, loops) + [""]
    lines += report.ratio_table(summary, names, loops) + [""]
    lines += report.targets_table(doc["targets"]) + [""]
    lines.append("machine: " + report.machine_line(doc["machine"]))
    lines.append(
        "Compare ratios within one run; absolute numbers move with the "
        "machine's load. req/s: the load generator's completed echoes (or "
        "wrk's responses) per second; srv µs/req: the server process's CPU "
        "time (user+system, /proc) per request; p50/p99: round-trip latency "
        "seen by the load generator.")
    return [line.rstrip() for line in lines]


def _terminate(signum: int, frame: Any) -> None:
    # Unwind (SystemExit), so that the server processes are killed.
    sys.exit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    if args.list:
        for sc in plan(args):
            print(sc.name)
        return 0
    os.makedirs(args.out, exist_ok=True)
    if args.from_json:
        with open(args.from_json) as f:
            doc = json.load(f)
    else:
        doc = run(args)
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(doc, f, indent=1)
    lines = render(doc)
    if not args.no_chart:
        png = os.path.join(args.out, "bench.png")
        why = report.chart(doc["summary"], doc["config"]["scenarios"],
                           doc["config"]["loops"], png,
                           report.machine_line(doc["machine"]))
        lines.append(f"note: no chart: {why}" if why else f"chart: {png}")
    json_path = args.from_json or os.path.join(args.out, "results.json")
    lines.append(f"results: {json_path} "
                 f"(wall time {doc['wall_time_s']:.0f} s)")
    with open(os.path.join(args.out, "results.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    _say()
    _say("\n".join(lines))
    failed = [r for r in doc["runs"] if not r["ok"]]
    return 1 if failed else 0
