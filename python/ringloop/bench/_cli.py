"""`python -m ringloop.bench`: the plan, the run, the output."""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Sequence

from . import _files as files
from . import _report as report
from ._apps import APPS, NEEDS
from ._loops import BASELINE, LOOPS, missing_reason
from ._micro import NAMES as MICRO_NAMES
from ._runner import (Settings, find_raw_server, find_wrk, http_seconds,
                      pinning, run_echo, run_files, run_http, run_micro,
                      run_raw_echo)

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
    kind: str  # "echo", "http" (wrk), "app" (wrk), "micro" or "files"
    # echo: the echo style; http and app: the server; files: the scenario
    style: str = ""
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
        if self.kind == "files":
            return f"files/{self.style}"
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
        if self.kind == "files":
            return f"files: {self.style}"
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


# The files group (_files.py): ringloop.files against aiofiles and
# run_in_executor, its own implementations instead of the loops.
FILES = [Scenario("files", name) for name in files.SCENARIOS]
QUICK = [_echo("protocol", "1k", 50), _echo("protocol", "1k", 500),
         _echo("protocol", "64k", 50), _echo("buffered", "1k", 50),
         _echo("streams", "1k", 50), _echo("sock", "1k", 50),
         Scenario("http", "http", 50), Scenario("http", "http", 50, "", 16),
         _app("uvicorn", 50), Scenario("micro")] + FILES
FULL = ([_echo(st, sz, c) for st in STYLES for sz in SIZES
         for c in (1, 50, 500)] +
        [Scenario("http", "http", 50), Scenario("http", "http", 500),
         Scenario("http", "http", 50, "", 16)] +
        [_app(app, c) for app in APPS for c in (50, 500)] +
        [_close("http", 50), _close("uvicorn", 50),
         Scenario("micro")] + FILES)

# Per mode: duration, warmup, rounds, micro ops per sample, micro samples,
# rounds of the noisy (application, connection-per-request) scenarios.
MODES = {"quick": (1.5, 0.5, 1, 100_000, 3, 1),
         "full": (0.8, 0.3, 3, 200_000, 5, 5)}
# The files group per mode: MiB of the data file, small files written and
# fsynced, measured and warm-up seconds of the read scenarios.
FILES_MODES = {"quick": (64, 500, 0.5, 0.2), "full": (256, 1000, 2.0, 0.5)}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m ringloop.bench",
        description="Compare asyncio, uvloop, ringloop-epoll and "
        "ringloop-uring: echo servers, an HTTP server and application "
        "servers (uvicorn, FastAPI, aiohttp) under load (server "
        "pinned to one CPU, load to another), in-process "
        "microbenchmarks, and file IO (ringloop.files against aiofiles "
        "and run_in_executor). Prints tables, writes results.json, "
        "results.txt and bench.png.")
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
    ap.add_argument("--files-dir", metavar="DIR",
                    help="where the files group makes its data (in a "
                    "directory of its own, removed at the end): a disk "
                    "filesystem, for O_DIRECT (default: --out)")
    ap.add_argument("--files-mib", type=int, help="size of the files "
                    "group's data file in MiB (quick: 64, full: 256)")
    ap.add_argument("--files-count", type=int, help="small files written "
                    "and fsynced per batch (quick: 500, full: 1000)")
    ap.add_argument("--files-duration", type=float, help="measured seconds "
                    "of each files run (quick: 0.5, full: 2)")
    ap.add_argument("--files-warmup", type=float,
                    help="warm-up seconds of each files read run")
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
    for key, default in zip(("files_mib", "files_count", "files_duration",
                             "files_warmup"),
                            FILES_MODES["quick" if args.quick else "full"]):
        if getattr(args, key) is None:
            setattr(args, key, default)
    return args


def rounds_of(sc: Scenario, args: argparse.Namespace) -> int:
    return args.noisy_rounds if sc.noisy else args.rounds


def gets_raw(sc: Scenario) -> bool:
    return any(fnmatch.fnmatchcase(sc.name, p) for p in RAW_SCENARIOS)


def files_impls(loops: Sequence[str], skipped: dict[str, str]
                ) -> tuple[list[str], dict[str, str]]:
    """The files group's implementations that can run here (on the loops of
    this run), and why each of the others cannot."""
    ok, why = [], {}
    for impl, (loop, api) in files.IMPLS.items():
        if loop not in loops:
            why[impl] = skipped.get(loop) or f"{loop} is not in --loops"
        elif api == "aiofiles" and importlib.util.find_spec(
                "aiofiles") is None:
            why[impl] = "aiofiles is not installed (pip install aiofiles)"
        elif api == "ringloop" and importlib.util.find_spec(
                "ringloop.files") is None:
            why[impl] = "this ringloop has no ringloop.files"
        else:
            ok.append(impl)
    return ok, why


def plan(args: argparse.Namespace) -> list[Scenario]:
    scenarios = QUICK if args.quick else FULL
    if args.only:
        scenarios = [s for s in scenarios
                     if any(fnmatch.fnmatchcase(s.name, p) for p in args.only)]
    return scenarios


def _say(msg: str = "") -> None:
    print(msg, flush=True)


def _progress(i: int, total: int, rec: dict[str, Any]) -> None:
    head = f"[{i:>3}/{total}] {rec['scenario']:<22} {rec['loop']:<16}"
    if not rec["ok"]:
        _say(f"{head} FAILED: {rec['error']}")
    elif rec["scenario"].startswith("files/"):
        _say(f"{head} {rec['ops_per_s']:>9.0f} ops/s "
             f"{rec['us_per_op']:>7.2f} µs/op")
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

    # The files group: its data file (in a directory of its own, removed at
    # the end) and the implementations that can run.
    fnames = [sc.name for sc in scenarios if sc.kind == "files"]
    fimpls, fnot_run = files_impls(loops, skipped)
    fdata: dict[str, Any] = {}
    fdir = ""
    unavailable: dict[str, str] = {}
    if fnames:
        base = os.path.abspath(args.files_dir or args.out)
        try:
            os.makedirs(base, exist_ok=True)
            fdir = tempfile.mkdtemp(prefix="ringloop-files-", dir=base)
            fdata = files.prepare(fdir, args.files_mib * 2**20)
        except OSError as exc:
            notes.append(f"skipped the files group: no data file in "
                         f"{base}: {exc}")
            if fdir:
                files.cleanup(fdir)
            fnames = []
            scenarios = [sc for sc in scenarios if sc.kind != "files"]
    if fdata.get("direct_unavailable"):
        unavailable["files/rand4k-direct"] = fdata["direct_unavailable"]
        notes.append("files/rand4k-direct not measured: " +
                     fdata["direct_unavailable"])
        scenarios = [sc for sc in scenarios if sc.name not in unavailable]
    if fnames:
        fnote = (
            f"files group: a {args.files_mib} MiB data file on "
            f"{fdata['fs']} ({fdir}), fsync in batches of "
            f"{args.files_count} small files, {args.files_warmup:g} s "
            f"warm-up + {args.files_duration:g} s per run" +
            (" (quick mode: the full mode has 256 MiB, 1000 files, 2 s)"
             if args.quick else ""))
    noisy = (f" ({args.noisy_rounds} for app/* and http/close/*)"
             if args.noisy_rounds != args.rounds and
             any(sc.noisy for sc in scenarios) else "")
    nfiles = sum(sc.kind == "files" for sc in scenarios)
    fgroup = (f" + {nfiles} files scenario(s) x {len(fimpls)} "
              f"implementation(s)" if nfiles else "")
    _say(f"ringloop.bench: {'quick' if args.quick else 'full'} mode, "
         f"{len(scenarios) - nfiles} scenario(s) x {len(loops)} loop(s)"
         f"{fgroup} x {args.rounds} round(s){noisy}; {args.warmup:g} s "
         f"warmup + "
         f"{args.duration:g} s per run (HTTP: {http_seconds(args.duration)} s"
         f" under wrk)")
    _say("machine: " + report.machine_line(mach))
    for n in notes:
        _say("note: " + n)
    if fnames:
        _say("note: " + fnote)

    def loops_of(sc: Scenario) -> list[str]:
        if sc.kind == "files":
            return fimpls
        return loops + ([RAW] if raw and gets_raw(sc) else [])

    def measure(sc: Scenario, loop: str, rnd: int) -> dict[str, Any]:
        if loop == RAW:
            assert raw is not None
            return run_raw_echo(s, sc.name, loop, raw, sc.conns,
                                SIZES[sc.size])
        if sc.kind == "echo":
            return run_echo(s, sc.name, loop, sc.style, sc.conns,
                            SIZES[sc.size])
        if sc.wrk:
            return run_http(s, sc.name, loop, sc.conns, pipeline=sc.pipeline,
                            style=sc.style, close=sc.close)
        if sc.kind == "files":
            return run_files(s, sc.name, loop, fdata["path"], fdir,
                             args.files_duration, args.files_warmup,
                             args.files_count, seed=rnd + 1)
        return run_micro(s, loop)

    records: list[dict[str, Any]] = []
    total = sum(len(loops_of(sc)) * rounds_of(sc, args) for sc in scenarios)
    # Rounds interleave: every scenario once per round, the noisy ones
    # in the extra rounds of the full mode too.
    try:
        for rnd in range(max([args.rounds] + [rounds_of(sc, args)
                                              for sc in scenarios])):
            for k, sc in enumerate(scenarios):
                if rnd >= rounds_of(sc, args):
                    continue
                row = loops_of(sc)
                # Rotate the order of the loops from one scenario and round
                # to the next, so that none is always measured first or last.
                shift = (rnd + k) % max(1, len(row))
                for loop in row[shift:] + row[:shift]:
                    rec = measure(sc, loop, rnd)
                    rec["round"] = rnd
                    records.append(rec)
                    _progress(len(records), total, rec)
    finally:
        if fdir:
            files.cleanup(fdir)

    # The raw runs first: what was measured outlives a failure below.
    with open(os.path.join(args.out, "runs.json"), "w") as f:
        json.dump(records, f, indent=1)
    names = [sc.name for sc in scenarios if sc.kind not in ("micro",
                                                             "files")]
    if any(sc.kind == "micro" for sc in scenarios):
        names += [f"micro/{n}" for n in MICRO_NAMES]
    extra = [RAW] if raw and any(gets_raw(sc) for sc in scenarios) else []
    summary = report.summarize(records, names, loops + extra)
    fsummary = report.summarize(records, fnames, fimpls, files.BASELINE)
    fdoc = {"scenarios": fnames, "impls": fimpls, "not_run": fnot_run,
            "unavailable": unavailable, "baseline": files.BASELINE,
            "params": {"mode": "quick" if args.quick else "full",
                       "size": args.files_mib * 2**20,
                       "count": args.files_count, "tasks": files.TASKS,
                       "duration": args.files_duration,
                       "warmup": args.files_warmup, "fs": fdata.get("fs"),
                       "dir": fdir, "cpu": server_cpu},
            "summary": fsummary} if fnames else None
    return {
        "machine": mach,
        "loop_features": loop_features(records),
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
        "files": fdoc,
        "targets": report.check_targets(
            summary, [sc.name for sc in FULL
                      if sc.kind not in ("micro", "files")] +
            [f"micro/{n}" for n in MICRO_NAMES]) +
        report.check_files_targets(fsummary, unavailable, fnot_run),
        "runs": records,
        "wall_time_s": round(time.monotonic() - t_start, 1),
    }


def loop_features(records: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The io_uring/epoll fast paths each ringloop loop ran with, as its
    server reported them (RINGLOOP_DISABLE and RINGLOOP_ENABLE apply)."""
    out: dict[str, list[str]] = {}
    for rec in records:
        info = rec.get("server_loop") or {}
        if "backend_features" in info and rec.get("loop") not in out:
            out[rec["loop"]] = list(info["backend_features"])
    return out


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
    if doc.get("files"):
        lines += report.files_tables(doc["files"]) + [""]
    if any(summary.get(n) for n in names):
        lines += report.ratio_table(summary, names, loops) + [""]
    lines += report.targets_table(doc["targets"]) + [""]
    lines.append("machine: " + report.machine_line(doc["machine"]))
    for loop, feats in sorted(doc.get("loop_features", {}).items()):
        lines.append(f"{loop} fast paths: {', '.join(feats) or 'none'}")
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
