"""Summaries of the raw runs: medians, ratios to uvloop, tables, targets,
the machine description, and the chart.

A ratio is always taken between two loops measured in the same round, one
right after the other, and the median of those per-round ratios is shown:
on a noisy machine that is steadier than a ratio of medians.
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import statistics
import textwrap
import subprocess
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from ._files import BASELINE as FILES_BASELINE
from ._files import IMPLS as FILES_IMPLS
from ._files import SCENARIOS as FILES_SCENARIOS
from ._loops import BASELINE, versions

# Metrics: record key -> (column title, True when higher is better).
METRICS = {
    "rps": ("req/s", True),
    "us_per_req": ("srv µs/req", False),
    "p50_us": ("p50 µs", False),
    "p99_us": ("p99 µs", False),
    "server_util": ("srv cpu", False),
    "load_util": ("load cpu", False),
    "ops_per_s": ("ops/s", True),
    # ringloop only, from the server's loop.stats()
    "syscalls_per_req": ("sys/req", False),
    "completions_per_req": ("cpl/req", False),
    "cqes_per_req": ("cqe/req", False),
    # the files group (_files.py): the process's CPU per operation
    "us_per_op": ("CPU µs/op", False),
    "mib_per_s": ("MiB/s", True),
    "threads": ("threads", False),
}


@dataclass(frozen=True)
class Target:
    scenario: str
    metric: str
    bound: float
    what: str
    loop: str = "ringloop-uring"
    against: str = BASELINE
    issue: int = 6

    def check(self, ratio: float) -> bool:
        higher = METRICS[self.metric][1]
        return ratio >= self.bound if higher else ratio <= self.bound

    @property
    def rule(self) -> str:
        sign = "≥" if METRICS[self.metric][1] else "≤"
        return f"{sign} {self.bound:g}x"

    @property
    def ratio_key(self) -> str:
        return ratio_key(self.metric, self.against)


def ratio_key(metric: str, against: str) -> str:
    """The summary key of a loop's ratio to `against` for `metric`."""
    return metric + "_ratio" + ("" if against == BASELINE else "_" + against)


# Issue 6, item 4: ringloop-uring against uvloop in the same run.
TARGET_LOOP = "ringloop-uring"
TARGETS = (
    Target("echo/protocol/1k/c50", "us_per_req", 0.93,
           "protocol echo, 1 KiB, 50 conns: server CPU per request"),
    Target("echo/protocol/1k/c500", "rps", 1.2,
           "protocol echo, 1 KiB, 500 conns: requests/s"),
    Target("echo/sock/1k/c50", "rps", 4.0,
           "sock_* echo, 1 KiB, 50 conns: requests/s"),
    Target("echo/streams/1k/c50", "rps", 1.05,
           "streams echo, 1 KiB, 50 conns: requests/s"),
    Target("micro/call_soon", "ops_per_s", 1.5, "call_soon: ops/s"),
    Target("micro/call_later_cancel", "ops_per_s", 2.0,
           "call_later+cancel: ops/s"),
    Target("micro/call_soon_threadsafe", "ops_per_s", 1.5,
           "call_soon_threadsafe: ops/s"),
    Target("http/c50", "rps", 1.1, "HTTP hello-world, 50 conns: requests/s"),
)
NOT_HERE = ("C core ping-pong within 5% of the raw liburing server: "
            "measured by bench/run_c.sh, not by this runner")

# Rows that are not event loops but floors to compare with: every loop's
# ratio to them is kept too (as <metric>_ratio_<name>).
REFERENCES = ("raw-uring",)
RAW_WITHIN = ("echo/protocol/1k/c50", "echo/protocol/1k/c500")


def _conns(scenario: str) -> int:
    tail = scenario.rsplit("/c", 1)
    return int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else 0


def issue14_targets(names: Sequence[str]) -> list[Target]:
    """Issue 14's targets on the scenarios `names` (the full mode's): all
    on server CPU per request (microbenchmarks: ops/s), ringloop-uring
    against uvloop and the raw liburing server, ringloop-epoll against
    uvloop."""
    uring, raw, epoll = [], [], []
    cpu = "server CPU per request"
    for sc in names:
        if sc.startswith("micro/"):
            epoll.append(Target(sc, "ops_per_s", 1.0, f"{sc}: ops/s",
                                "ringloop-epoll", issue=14))
            continue
        conns = _conns(sc)
        bound = None
        if sc.startswith("app/"):
            bound = 0.97 if conns < 500 else 0.85
        elif sc.startswith("http/close/"):
            bound = 0.85
        elif sc.startswith("echo/") and "/64k/" in sc:
            bound = 1.0
        elif sc.startswith("echo/") and "/1k/" in sc:
            bound = 0.90 if conns >= 50 else 1.0
        if bound is not None:
            uring.append(Target(sc, "us_per_req", bound, f"{sc}: {cpu}",
                                issue=14))
        if sc in RAW_WITHIN:
            raw.append(Target(sc, "us_per_req", 1.05, f"{sc}: {cpu}, "
                              "within 5% of the raw liburing server",
                              against="raw-uring", issue=14))
        epoll.append(Target(sc, "us_per_req", 1.0, f"{sc}: {cpu}",
                            "ringloop-epoll", issue=14))
    return uring + raw + epoll


# Issue 15, item 3: ringloop.files on io_uring against aiofiles on uvloop in
# the same round; on epoll, no slower than aiofiles on uvloop on any.
FILES_TARGETS = tuple(
    Target(f"files/{sc}", metric, bound, what, against=FILES_BASELINE,
           issue=15)
    for sc, metric, bound, what in (
        ("rand4k", "ops_per_s", 4.0,
         "(a) random 4 KiB reads, 64 tasks, page cache: ops/s"),
        ("rand4k", "us_per_op", 0.3,
         "(a) random 4 KiB reads, 64 tasks, page cache: CPU per op"),
        ("rand4k-direct", "ops_per_s", 2.0,
         "(b) random 4 KiB reads, 64 tasks, O_DIRECT: ops/s"),
        ("seq1m", "ops_per_s", 1.0,
         "(c) sequential read in 1 MiB chunks: throughput"),
        ("fsync", "ops_per_s", 1.5,
         "(d) small files written and fsynced: files/s"))) + tuple(
    Target(f"files/{sc}", "ops_per_s", 1.0, f"({k}) files/{sc}: "
           f"{'throughput' if sc == 'seq1m' else 'ops/s'}",
           "ringloop-epoll", FILES_BASELINE, issue=15)
    for k, sc in zip("abcd", FILES_SCENARIOS))


def flatten_micro(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Micro records (one per loop and round, all benchmarks) as one
    record per benchmark, like the others."""
    out = []
    for rec in records:
        if rec["scenario"] != "micro":
            out.append(rec)
            continue
        for bench, res in (rec.get("results") or {}).items():
            err = rec["error"] or res.get("error")
            row = {"scenario": f"micro/{bench}", "loop": rec["loop"],
                   "round": rec["round"], "ok": err is None, "error": err}
            if err is None:
                row["ops_per_s"] = res["ops_per_s"]
            out.append(row)
        if not rec.get("results"):
            out.append({**rec, "scenario": "micro/*"})
    return out


def _median(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


def summarize(records: list[dict[str, Any]], scenarios: Sequence[str],
              loops: Sequence[str], baseline: str = BASELINE
              ) -> dict[str, dict[str, dict[str, Any]]]:
    """{scenario: {loop: summary}}: medians over rounds, the median of the
    per-round ratios to `baseline` (uvloop; the files group: aiofiles on
    uvloop), and the failure if any run failed."""
    flat = flatten_micro(records)
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rec in flat:
        by.setdefault((rec["scenario"], rec["loop"]), []).append(rec)
    refs = [baseline] + [loop for loop in loops if loop in REFERENCES]
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for sc in scenarios:
        bases = {ref: {r["round"]: r for r in by.get((sc, ref), [])
                       if r["ok"]} for ref in refs}
        for loop in loops:
            runs = by.get((sc, loop), [])
            if not runs:
                continue
            failed = [r for r in runs if not r["ok"]]
            summary: dict[str, Any] = {"runs": len(runs),
                                       "failed_runs": len(failed)}
            if failed:
                # A server that misbehaved once has no numbers to show.
                summary["error"] = failed[0]["error"]
                out.setdefault(sc, {})[loop] = summary
                continue
            for key in METRICS:
                vals = [r[key] for r in runs if r.get(key) is not None]
                if not vals:
                    continue
                summary[key] = _median(vals)
                for ref in refs:
                    if ref != baseline and (
                            ref == loop or key not in ("rps", "us_per_req")):
                        continue
                    base = bases[ref]
                    # A metric a run lacks (wrk's p99 under pipelining)
                    # has no ratio in that round.
                    ratios = [r[key] / base[r["round"]][key] for r in runs
                              if r.get(key) is not None and
                              r["round"] in base and
                              base[r["round"]].get(key)]
                    if ratios:
                        k = ratio_key(key, ref)
                        summary[k] = _median(ratios)
                        summary[k + "_range"] = [min(ratios), max(ratios)]
            out.setdefault(sc, {})[loop] = summary
    return out


def check_targets(summary: dict[str, dict[str, dict[str, Any]]],
                  names: Sequence[str] | None = None
                  ) -> list[dict[str, Any]]:
    """Every target (issue 6's, then issue 14's on the scenarios `names`,
    by default those of `summary`) with its measured ratio and status:
    MET, MISSED, NOT RUN, FAILED or NO <reference>."""
    return [_check(t, summary) for t in list(TARGETS) + issue14_targets(
        list(summary) if names is None else names)]


def check_files_targets(summary: dict[str, dict[str, dict[str, Any]]],
                        unavailable: dict[str, str] | None = None,
                        not_run: dict[str, str] | None = None
                        ) -> list[dict[str, Any]]:
    """Issue 15's targets on the files group's summary (summarize() with
    the baseline aiofiles/uvloop); a scenario in `unavailable` (O_DIRECT
    refused where the data file is) is UNAVAILABLE, with the reason; a
    target whose implementation could not run (`not_run`: io_uring refused,
    no ringloop.files) is NOT RUN with the reason."""
    out = []
    for t in FILES_TARGETS:
        row = _check(t, summary)
        if row["status"] == "NOT RUN" and summary:
            why = (unavailable or {}).get(t.scenario)
            if why:
                row.update(status="UNAVAILABLE", why=why)
            elif t.loop in (not_run or {}):
                row["why"] = f"{t.loop}: {(not_run or {})[t.loop]}"
        out.append(row)
    return out


def _check(t: Target, summary: dict[str, dict[str, dict[str, Any]]]
           ) -> dict[str, Any]:
    """Target t's row: its measured ratio and status."""
    row: dict[str, Any] = {"scenario": t.scenario, "metric": t.metric,
                           "bound": t.bound, "what": t.what,
                           "rule": t.rule, "ratio": None,
                           "loop": t.loop, "against": t.against,
                           "issue": t.issue}
    rows = summary.get(t.scenario, {})
    got = rows.get(t.loop)
    if got is None:
        row["status"] = "NOT RUN"
    elif "error" in got or "error" in rows.get(t.against, {}):
        row["status"] = "FAILED"
    elif got.get(t.ratio_key) is None:
        row["status"] = f"NO {t.against.upper()}"
    else:
        row["ratio"] = got[t.ratio_key]
        row["range"] = got.get(t.ratio_key + "_range")
        row["status"] = "MET" if t.check(row["ratio"]) else "MISSED"
        # A throughput ratio says little when the load generator, not
        # the server, ran out of CPU: both loops then get its maximum.
        loads = [rows[loop].get("load_util")
                 for loop in (t.loop, t.against) if loop in rows]
        loads = [u for u in loads if u is not None]
        if t.metric == "rps" and loads and max(loads) >= LOAD_BOUND:
            row["load_bound"] = max(loads)
    return row


# ---- text ---------------------------------------------------------------

def _num(v: float | None, spec: str = ".0f") -> str:
    return "-" if v is None else format(v, spec)


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def _rate(v: float | None) -> str:
    if v is None:
        return "-"
    for div, unit in ((1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{v / div:.2f}{unit}"
    return f"{v:.0f}"


# A load generator at this share of its CPU or more limits what it measures.
LOAD_BOUND = 0.9

# Under closed-loop load from 50 or more connections a server should keep
# its CPU busy; one that used less was starved by other work on the machine
# (or waited on the load generator), and its req/s says little.
STARVED_UTIL = 0.8
STARVED_NOTE = (f"* the server used less than {STARVED_UTIL:.0%} of its CPU "
                "under load from many connections: other work on the machine "
                "(or the load generator) held it back; trust its µs/req more "
                "than its req/s")


def starved(scenario: str, r: dict[str, Any]) -> bool:
    util = r.get("server_util")
    conns = int(scenario.rsplit("/c", 1)[1]) if "/c" in scenario else 0
    return conns >= 50 and util is not None and util < STARVED_UTIL


def scenario_table(title: str, rows: dict[str, dict[str, Any]],
                   loops: Sequence[str], scenario: str) -> list[str]:
    """One scenario: a row per loop with its numbers and its ratios."""
    lines = [title,
             f"  {'loop':<15} {'req/s':>9} {'x uvloop':>9} "
             f"{'srv µs/req':>10} {'x uvloop':>9} {'p50 µs':>8} "
             f"{'p99 µs':>8} {'srv cpu':>7} {'load cpu':>8} "
             f"{'sys/req':>7} {'cpl/req':>7}",
             f"  {'':<15} {'':>9} {'(>1 good)':>9} {'':>10} "
             f"{'(<1 good)':>9}"]
    for loop in loops:
        r = rows.get(loop)
        if r is None:
            continue
        if "error" in r:
            lines.append(f"  {loop:<15} FAILED ({r['failed_runs']} of "
                         f"{r['runs']} runs): {r['error']}")
            continue
        lines.append(
            f"  {loop:<15} {_num(r.get('rps')):>9} "
            f"{_x(r.get('rps_ratio')):>9} "
            f"{_num(r.get('us_per_req'), '.2f'):>10} "
            f"{_x(r.get('us_per_req_ratio')):>9} "
            f"{_num(r.get('p50_us')):>8} {_num(r.get('p99_us')):>8} "
            f"{_pct(r.get('server_util')):>7}" +
            ("*" if starved(scenario, r) else " ") +
            f"{_pct(r.get('load_util')):>8} "
            f"{_num(r.get('syscalls_per_req'), '.2f'):>7} "
            f"{_num(r.get('completions_per_req'), '.2f'):>7}")
    lines.append("  sys/req, cpl/req: the ringloop server's syscalls and "
                 "completions per request (loop.stats(), whole run)")
    for ref in REFERENCES:
        key = ratio_key("us_per_req", ref)
        cells = [f"{loop} {_x(rows[loop].get(key))}" for loop in loops
                 if loop in rows and rows[loop].get(key) is not None]
        if cells:
            lines.append(f"  srv µs/req x {ref} (the C server, same round; "
                         f"<1 good): " + ", ".join(cells))
    return lines


def micro_table(summary: dict[str, dict[str, dict[str, Any]]],
                names: Sequence[str], loops: Sequence[str]) -> list[str]:
    lines = ["microbenchmarks, in-process: ops/s (x uvloop, >1 good)",
             "  " + f"{'benchmark':<22}" +
             "".join(f"{loop:>18}" for loop in loops)]
    for name in names:
        rows = summary.get(name, {})
        cells = []
        for loop in loops:
            r = rows.get(loop)
            if r is None:
                cells.append("-")
            elif "error" in r:
                cells.append("FAILED")
            else:
                cells.append(f"{_rate(r.get('ops_per_s'))} "
                             f"({_x(r.get('ops_per_s_ratio'))})")
        lines.append("  " + f"{name.split('/', 1)[1]:<22}" +
                     "".join(f"{c:>18}" for c in cells))
    errors = [(n, loop, r["error"]) for n in names
              for loop, r in summary.get(n, {}).items() if "error" in r]
    lines += [f"  FAILED {n} on {loop}: {e}" for n, loop, e in errors]
    return lines


def ratio_table(summary: dict[str, dict[str, dict[str, Any]]],
                scenarios: Sequence[str], loops: Sequence[str]) -> list[str]:
    """All scenarios in one table: uvloop's rate, then every other loop's
    ratios to it (throughput, then server CPU per request)."""
    others = [loop for loop in loops if loop != BASELINE]
    short = {"asyncio": "asyncio", "ringloop-epoll": "rl-epoll",
             "ringloop-uring": "rl-uring"}
    names = [short.get(loop, loop) for loop in others]
    w = 9
    n = max([len(sc) for sc in scenarios] + [8])
    head1 = (f"{'':<{n}} {'uvloop':>9} | "
             f"{'req/s or ops/s vs uvloop':^{w * len(others)}} "
             f"| {'srv µs/req vs uvloop':^{w * len(others)}}")
    head2 = (f"{'scenario':<{n}} {'req|op/s':>9} | " +
             "".join(f"{n:>{w}}" for n in names) + " | " +
             "".join(f"{n:>{w}}" for n in names))
    lines = ["summary: ratios to uvloop in the same run (throughput: >1 is "
             "better; server CPU per request: <1 is better)", head1, head2]
    for sc in scenarios:
        rows = summary.get(sc, {})
        if not rows:
            continue
        metric = "ops_per_s" if sc.startswith("micro/") else "rps"
        base = rows.get(BASELINE, {})
        cells1, cells2 = [], []
        for loop in others:
            r = rows.get(loop, {})
            fail = "FAILED" if "error" in r else None
            cells1.append(fail or _x(r.get(metric + "_ratio")))
            cells2.append(fail or ("" if metric == "ops_per_s" else
                                   _x(r.get("us_per_req_ratio"))))
        base_rate = "FAILED" if "error" in base else _rate(base.get(metric))
        lines.append(f"{sc:<{n}} {base_rate:>9} | " +
                     "".join(f"{c:>{w}}" for c in cells1) + " | " +
                     "".join(f"{c:>{w}}" for c in cells2))
    return lines


FILES_SHORT = {"ringloop-uring": "rl-uring", "ringloop-epoll": "rl-epoll",
               "aiofiles/uvloop": "aiof/uvl", "aiofiles/asyncio": "aiof/aio",
               "executor/uvloop": "exec/uvl", "executor/asyncio": "exec/aio"}


# The files scenarios that keep their process's CPU busy (page cache).
FILES_CPU_BOUND = ("files/rand4k", "files/seq1m")


def _impl_order(impl: str) -> int:
    order = list(FILES_IMPLS)
    return order.index(impl) if impl in order else len(order)


def files_title(scenario: str, params: dict[str, Any]) -> str:
    """What a files scenario does, with the sizes of this run."""
    mib = params["size"] // 2**20
    tasks = params.get("tasks", 64)
    name = scenario.split("/", 1)[1]
    if name == "rand4k":
        what = (f"{tasks} tasks, random 4 KiB reads from a {mib} MiB file "
                "in the page cache")
    elif name == "rand4k-direct":
        what = (f"{tasks} tasks, random 4 KiB reads from a {mib} MiB file "
                f"with O_DIRECT ({params.get('fs', '?')})")
    elif name == "seq1m":
        what = (f"one task reading a {mib} MiB file (page cache) from start "
                "to end in 1 MiB chunks; ops are chunks")
    else:
        what = (f"batches of {params.get('count')} small files (4 KiB) each "
                f"written and fsynced, {tasks} tasks at once; ops are files")
    return f"files: {what}  [{scenario}]"


def files_tables(files: dict[str, Any]) -> list[str]:
    """The files group (doc["files"]): a table per scenario with every
    implementation's ops/s and CPU per op and their ratios to aiofiles on
    uvloop, the implementations that did not run and why, then a summary of
    the ratios."""
    base = files["baseline"]
    summary = files["summary"]
    impls = files["impls"]
    params = files["params"]
    lines = [f"files group ({params['mode']} mode): ringloop.files against "
             f"aiofiles and run_in_executor; each run a process of its own"
             + (f" pinned to CPU {params['cpu']}" if params.get("cpu")
                is not None else "") +
             f", {params['warmup']:g} s warm-up + {params['duration']:g} s "
             f"per run, data file on {params.get('fs', '?')} "
             f"({params.get('dir')})"]
    if params["mode"] == "quick":
        lines.append(f"  quick mode: a {params['size'] // 2**20} MiB file, "
                     f"batches of {params['count']} small files (the full "
                     "mode: 256 MiB, 1000 files, 2 s runs, 3 rounds)")
    lines.append("")
    ax = "x " + FILES_SHORT.get(base, base)
    starved = False
    for sc in files["scenarios"]:
        lines.append(files_title(sc, params))
        why = files.get("unavailable", {}).get(sc)
        if why:
            lines += [f"  not measured: {why}", ""]
            continue
        lines += [f"  {'implementation':<17} {'ops/s':>9} {ax:>9} "
                  f"{'CPU µs/op':>9} {ax:>9} {'MiB/s':>7} {'cpu':>5} "
                  f"{'threads':>7}",
                  f"  {'':<17} {'':>9} {'(>1 good)':>9} {'':>9} "
                  f"{'(<1 good)':>9}"]
        rows = summary.get(sc, {})
        not_run = files.get("not_run", {})
        for impl in sorted(list(impls) + list(not_run), key=_impl_order):
            r = rows.get(impl)
            if impl in not_run:
                lines.append(f"  {impl:<17} NOT RUN: {not_run[impl]}")
                continue
            if r is None:
                continue
            if "error" in r:
                lines.append(f"  {impl:<17} FAILED ({r['failed_runs']} of "
                             f"{r['runs']} runs): {r['error']}")
                continue
            # Page-cache reads keep the CPU busy: less means that other
            # work on the machine held the process back.
            util = r.get("server_util")
            mark = (sc in FILES_CPU_BOUND and util is not None and
                    util < STARVED_UTIL)
            starved |= mark
            lines.append(
                f"  {impl:<17} {_num(r.get('ops_per_s')):>9} "
                f"{_x(r.get(ratio_key('ops_per_s', base))):>9} "
                f"{_num(r.get('us_per_op'), '.2f'):>9} "
                f"{_x(r.get(ratio_key('us_per_op', base))):>9} "
                f"{_num(r.get('mib_per_s')):>7} "
                f"{_pct(util):>5}{'*' if mark else ' '}"
                f"{_num(r.get('threads')):>7}")
        lines.append("")
    lines.append("  CPU µs/op: the process's CPU time (user + system, every "
                 "thread: getrusage) per operation; cpu: its share of one "
                 "CPU; threads: the process's threads at the end")
    if starved:
        lines.append(f"  * reads from the page cache used less than "
                     f"{STARVED_UTIL:.0%} of the CPU: other work on the "
                     "machine held the process back; trust its CPU µs/op "
                     "more than its ops/s")
    lines.append("")
    return lines + files_summary(files)


def files_summary(files: dict[str, Any]) -> list[str]:
    """One line per files scenario: aiofiles on uvloop's ops/s and CPU per
    op, every other implementation's ratios to them."""
    base = files["baseline"]
    others = [i for i in files["impls"] if i != base]
    names = [FILES_SHORT.get(i, i) for i in others]
    w = 9
    n = max([len(sc) for sc in files["scenarios"]] + [8])
    lines = [f"files summary: ratios to {base} in the same round (ops/s: "
             ">1 is better; CPU per op: <1 is better)",
             f"{'':<{n}} {base:^15} | {'ops/s vs ' + base:^{w * len(others)}}"
             f" | {'CPU/op vs ' + base:^{w * len(others)}}",
             f"{'scenario':<{n}} {'ops/s':>7} {'µs/op':>7} | " +
             "".join(f"{x:>{w}}" for x in names) + " | " +
             "".join(f"{x:>{w}}" for x in names)]
    for sc in files["scenarios"]:
        if sc in files.get("unavailable", {}):
            lines.append(f"{sc:<{n}} O_DIRECT unavailable here")
            continue
        rows = files["summary"].get(sc, {})
        b = rows.get(base, {})
        fail = "FAILED" if "error" in b else None
        cells1, cells2 = [], []
        for impl in others:
            r = rows.get(impl, {})
            bad = "FAILED" if "error" in r else None
            cells1.append(bad or _x(r.get(ratio_key("ops_per_s", base))))
            cells2.append(bad or _x(r.get(ratio_key("us_per_op", base))))
        lines.append(f"{sc:<{n}} {fail or _rate(b.get('ops_per_s')):>7} "
                     f"{'' if fail else _num(b.get('us_per_op'), '.2f'):>7}"
                     " | " + "".join(f"{c:>{w}}" for c in cells1) + " | " +
                     "".join(f"{c:>{w}}" for c in cells2))
    return lines


def targets_table(targets: list[dict[str, Any]]) -> list[str]:
    """The targets by issue: status, ratio (median over rounds of the
    per-round ratio; its range when there were several rounds), the rule;
    the targets on scenarios not measured in this run in one line."""
    lines = []
    for issue in sorted({t.get("issue", 6) for t in targets}):
        mine = [t for t in targets if t.get("issue", 6) == issue]
        lines.append(f"targets (issue {issue}): the ratio of the loop to "
                     "the reference measured in the same round, median "
                     "over rounds (reported, never asserted)")
        not_run = [t for t in mine
                   if t["status"] == "NOT RUN" and not t.get("why")]
        for t in mine:
            if t in not_run:
                continue
            ratio = "-" if t["ratio"] is None else f"{t['ratio']:.3f}x"
            rng = t.get("range")
            spread = (f" [{rng[0]:.2f}-{rng[1]:.2f}]"
                      if rng and rng[0] != rng[1] else "")
            vs = (f"{t.get('loop', TARGET_LOOP)} vs "
                  f"{t.get('against', BASELINE)}")
            lines.append(f"  {t['status']:<9} {ratio:>7}  "
                         f"(want {t['rule']:<7}) {vs}: {t['what']}{spread}")
            if t.get("why"):
                lines.append(f"  {'':<9} {'':>7}  {'':<14} {t['why']}")
            if t.get("load_bound"):
                lines.append(f"  {'':<9} {'':>7}  {'':<14} load-bound: the "
                             f"load generator used {t['load_bound']:.0%} of "
                             "its CPU, so req/s measured it more than the "
                             "server")
        if not_run:
            lines.append(f"  {'NOT RUN':<9} {len(not_run)} target(s) on "
                         "scenarios this run did not measure (the full "
                         "mode has them all)")
        if issue == 6:
            lines.append(f"  {'n/a':<9} {'':>7}  {'':<14} {NOT_HERE}")
    return lines


# ---- machine ------------------------------------------------------------

def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _hypervisor() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " hypervisor" in line
                       for line in f)
    except OSError:
        return False


def _mem_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def tool_version(argv: list[str]) -> str | None:
    if not shutil.which(argv[0]):
        return None
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    first = (p.stdout or p.stderr).strip().splitlines()
    return first[0] if first else None


def machine(settings: Any) -> dict[str, Any]:
    u = os.uname()
    return {
        "kernel": f"{u.sysname} {u.release}",
        "arch": u.machine,
        "cpu_model": _cpu_model(),
        "cpus": os.cpu_count(),
        "virtualized": _hypervisor(),
        "memory_gib": _mem_gib(),
        "python": f"{platform.python_implementation()} "
                  f"{platform.python_version()}",
        "versions": versions(),
        "wrk": tool_version([settings.wrk, "-v"]) if settings.wrk else None,
        "loadgen": settings.loadgen,
        "server_cpu": settings.server_cpu,
        "load_cpu": settings.load_cpu,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
    }


def machine_line(m: dict[str, Any]) -> str:
    v = m["versions"]
    virt = ", virtual machine" if m["virtualized"] else ""
    pin = (f"server on CPU {m['server_cpu']}, load on CPU {m['load_cpu']}"
           if m["server_cpu"] is not None else "unpinned")
    loops = ", ".join(f"{k} {v[k]}" for k in ("ringloop", "uvloop")
                      if v.get(k))
    return (f"{m['kernel']} {m['arch']}, {m['cpu_model']} ({m['cpus']} CPUs"
            f"{virt}), {m['python']}, {loops}; {pin}")


# ---- chart --------------------------------------------------------------

def chart(summary: dict[str, dict[str, dict[str, Any]]],
          scenarios: Sequence[str], loops: Sequence[str], path: str,
          subtitle: str) -> str | None:
    """Grouped bars of every loop's ratio to uvloop per scenario, on a log
    scale (throughput above, server CPU per request below). Returns why
    there is no chart, or None."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib)"
    others = [loop for loop in loops if loop != BASELINE]
    colors = {"asyncio": "#9e9e9e", "ringloop-epoll": "#64b5f6",
              "ringloop-uring": "#1565c0"}
    panels = [("rps", "throughput vs uvloop (>1 is better)", scenarios),
              ("us_per_req", "server CPU per request vs uvloop (<1 is better)",
               [s for s in scenarios if not s.startswith("micro/")])]
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 0.55 * len(scenarios) + 2),
                                            9), constrained_layout=True)
    for ax, (metric, label, names) in zip(axes, panels):
        width = 0.8 / max(1, len(others))
        marked = False
        for i, loop in enumerate(others):
            xs, ys, failed = [], [], []
            for j, sc in enumerate(names):
                m = "ops_per_s" if sc.startswith("micro/") else metric
                r = summary.get(sc, {}).get(loop, {})
                x = j + (i - (len(others) - 1) / 2) * width
                if r.get(m + "_ratio"):
                    xs.append(x)
                    ys.append(r[m + "_ratio"])
                elif "error" in r:
                    failed.append(x)
            ax.bar(xs, ys, width, label=loop, color=colors.get(loop))
            ax.plot(failed, [1.0] * len(failed), "x", color="red",
                    markersize=9,
                    label="failed" if failed and not marked else None)
            marked = marked or bool(failed)
        ax.axhline(1.0, color="black", linewidth=1, label="uvloop = 1")
        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_formatter(
            matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=4,
                   fontsize=8, frameon=False)
    fig.suptitle("ratio to uvloop measured in the same run\n" +
                 "\n".join(textwrap.wrap(subtitle, 110)), fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
