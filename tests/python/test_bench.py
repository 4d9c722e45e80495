"""Smoke test of the comparative benchmark (python -m ringloop.bench): an
ultra-short run on the ringloop loops, then the shape of its JSON and the
proof that every server echoed correctly; one round of the application and
connection-per-request scenarios; the targets report. No assertion on any
timing."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest

from ringloop._tools import find_tool
from ringloop.bench import _report
from ringloop.bench._loops import missing_reason
from ringloop.bench._runner import (Settings, find_raw_server, find_wrk,
                                    run_echo, run_http, run_raw_echo)

try:
    LOADGEN: str | None = find_tool("ringloop-loadgen")
except FileNotFoundError:
    LOADGEN = None

needs_loadgen = pytest.mark.skipif(LOADGEN is None,
                                   reason="ringloop-loadgen not installed")
LOOPS = [loop for loop in ("ringloop-epoll", "ringloop-uring")
         if missing_reason(loop) is None]
SCENARIOS = ["echo/protocol/1k/c50", "echo/streams/1k/c1"]
MICRO = ["micro/call_soon", "micro/call_later_cancel",
         "micro/call_soon_threadsafe"]


@needs_loadgen
def test_bench_smoke(tmp_path: Any) -> None:
    argv = [sys.executable, "-m", "ringloop.bench", "--loops", ",".join(LOOPS),
            "--duration", "0.2", "--warmup", "0.05", "--rounds", "1",
            "--micro-n", "2000", "--micro-reps", "1", "--no-chart",
            "--no-raw", "--out", str(tmp_path)]
    for name in SCENARIOS + ["micro"]:
        argv += ["--only", name]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "targets (issue 6)" in p.stdout
    assert "targets (issue 14)" in p.stdout
    doc = json.loads((tmp_path / "results.json").read_text())

    for key in ("kernel", "cpu_model", "cpus", "python", "versions"):
        assert doc["machine"][key], key
    assert doc["config"]["loops"] == LOOPS
    assert doc["config"]["scenarios"] == SCENARIOS + MICRO

    runs = doc["runs"]
    assert len(runs) == len(LOOPS) * (len(SCENARIOS) + 1)
    # The fast paths each loop ran with, in the document and the text.
    for loop in LOOPS:
        feats = doc["loop_features"][loop]
        assert f"{loop} fast paths: {', '.join(feats) or 'none'}" in p.stdout
    for rec in runs:
        assert rec["ok"], rec["error"]
        backend = rec["loop"].split("-", 1)[1]
        assert rec["server_loop"]["backend"] == backend
        if rec["scenario"] == "micro":
            assert {f"micro/{n}" for n in rec["results"]} == set(MICRO)
            continue
        lg = rec["loadgen"]
        # loadgen compared every byte of every echo.
        assert lg["requests"] > 0
        assert lg["mismatches"] == lg["errors"] == lg["stalled"] == 0
        assert lg["alive"] == lg["conns"]
        assert rec["server"]["errors"] == 0
        assert rec["server"]["connections"] >= lg["conns"]

    for name in SCENARIOS + MICRO:
        for loop in LOOPS:
            row = doc["summary"][name][loop]
            assert "error" not in row
            keys = (("ops_per_s",) if name.startswith("micro/") else
                    ("rps", "us_per_req", "p50_us", "p99_us", "load_util"))
            for key in keys:
                assert row[key] > 0, (name, loop, key)
    # No uvloop in this run: the targets are reported, never asserted.
    targets = doc["targets"]
    assert {t["scenario"] for t in targets if t["issue"] == 6} == {
        t.scenario for t in _report.TARGETS}
    for t in targets:
        if t["loop"] not in LOOPS:  # io_uring refused here: not measured
            assert t["status"] == "NOT RUN", t
        elif t["scenario"] in SCENARIOS + MICRO and t["against"] == "uvloop":
            assert t["status"] == "NO UVLOOP", t
        elif t["scenario"] not in SCENARIOS + MICRO:
            assert t["status"] == "NOT RUN", t


def _have(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


WRK = find_wrk()
needs_wrk = pytest.mark.skipif(WRK is None, reason="wrk not installed")
# The application scenarios whose servers this environment has (the CI's
# venv has uvicorn; scripts/bench.sh's has them all).
APP_SCENARIOS = [name for name, mods in (
    ("app/uvicorn/c50", ("uvicorn", "httptools")),
    ("app/fastapi/c50", ("uvicorn", "httptools", "fastapi")),
    ("app/aiohttp/c50", ("aiohttp",)),
    ("http/close/c50", ("httptools",)),
    ("http/close/uvicorn/c50", ("uvicorn", "httptools"))) if _have(*mods)]


@needs_wrk
@pytest.mark.skipif(not APP_SCENARIOS, reason="no uvicorn, aiohttp or "
                    "httptools")
def test_bench_apps_smoke(tmp_path: Any) -> None:
    # One round of one second under wrk per scenario and loop; the rows,
    # the proof of a connection per request, and issue 14's targets.
    argv = [sys.executable, "-m", "ringloop.bench", "--loops", ",".join(LOOPS),
            "--duration", "1", "--warmup", "0", "--rounds", "1",
            "--no-chart", "--no-raw", "--out", str(tmp_path)]
    for name in APP_SCENARIOS:
        argv += ["--only", name]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "targets (issue 14)" in p.stdout
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["config"]["scenarios"] == APP_SCENARIOS
    assert len(doc["runs"]) == len(LOOPS) * len(APP_SCENARIOS)
    for rec in doc["runs"]:
        assert rec["ok"], rec["error"]
        assert rec["server_loop"]["backend"] == rec["loop"].split("-", 1)[1]
        assert rec["server"]["errors"] == 0
        assert rec["server"]["requests"] >= rec["wrk"]["requests"] > 0
        if "/close/" in rec["scenario"]:
            # wrk opened a connection for every request.
            assert rec["server"]["connections"] >= rec["wrk"]["requests"]
            assert rec["conns_per_req"] >= 1
    for name in APP_SCENARIOS:
        for loop in LOOPS:
            row = doc["summary"][name][loop]
            for key in ("rps", "us_per_req", "p50_us", "syscalls_per_req"):
                assert row[key] > 0, (name, loop, key)
    wanted = {(t["scenario"], t["loop"]) for t in doc["targets"]
              if t["issue"] == 14 and t["status"] != "NOT RUN"}
    assert wanted == {(n, loop) for n in APP_SCENARIOS for loop in LOOPS}
    text = p.stdout
    for name in APP_SCENARIOS:
        assert f"[{name}]" in text


@needs_wrk
@pytest.mark.skipif(not _have("uvicorn", "httptools"),
                    reason="uvicorn not installed")
@pytest.mark.parametrize("fault", ["corrupt", "raise"])
def test_bench_reports_a_bad_app(fault: str) -> None:
    # An application that answers 500 or raises fails the run.
    s = Settings(loadgen=None, wrk=WRK, server_cpu=None, load_cpu=None,
                 duration=1, warmup=0)
    rec = run_http(s, "app/uvicorn/c2", "ringloop-uring"
                   if "ringloop-uring" in LOOPS else "ringloop-epoll", 2,
                   ["--fault", fault], style="uvicorn")
    assert not rec["ok"]
    assert "rps" not in rec
    want = "status" if fault == "corrupt" else "the server counted"
    assert want in rec["error"]


RAW = find_raw_server(None)[0] or next(
    (p for p in [os.path.join(os.path.dirname(__file__), "..", "..",
                              "build", "bench", "bench", "echo_raw_uring")]
     if os.access(p, os.X_OK)), None)


@needs_loadgen
@pytest.mark.skipif(RAW is None, reason="bench/echo_raw_uring not built")
@pytest.mark.skipif("ringloop-uring" not in LOOPS,
                    reason="io_uring is refused here: the raw server needs it")
def test_bench_raw_server_row() -> None:
    s = Settings(loadgen=LOADGEN, wrk=None, server_cpu=None, load_cpu=None,
                 duration=0.2, warmup=0.05)
    assert RAW is not None
    rec = run_raw_echo(s, "echo/protocol/1k/c2", "raw-uring", RAW, 2, 1024)
    assert rec["ok"], rec["error"]
    assert rec["loadgen"]["requests"] > 0
    assert rec["loadgen"]["mismatches"] == 0
    assert rec["us_per_req"] > 0


def test_bench_issue14_targets() -> None:
    # Every scenario of the full mode has its targets; the raw server's
    # ratio is taken within the round like uvloop's.
    from ringloop.bench._cli import FULL

    names = [sc.name for sc in FULL if sc.kind not in ("micro", "files")]
    targets = _report.issue14_targets(names + ["micro/call_soon"])
    by = {(t.scenario, t.loop, t.against): t for t in targets}
    for name in names:
        assert by[(name, "ringloop-epoll", "uvloop")].bound == 1.0
    uring = {t.scenario: t.bound for t in targets
             if t.loop == "ringloop-uring" and t.against == "uvloop"}
    assert uring["app/uvicorn/c50"] == uring["app/aiohttp/c50"] == 0.97
    assert uring["app/fastapi/c500"] == uring["http/close/c50"] == 0.85
    assert uring["http/close/uvicorn/c50"] == 0.85
    assert uring["echo/buffered/64k/c50"] == uring["echo/sock/1k/c1"] == 1.0
    assert uring["echo/streams/1k/c500"] == 0.90
    assert "http/c50" not in uring
    assert by[("echo/protocol/1k/c500", "ringloop-uring",
               "raw-uring")].bound == 1.05

    runs = [{"scenario": "echo/protocol/1k/c50", "loop": loop, "round": r,
             "ok": True, "error": None, "us_per_req": us}
            for r in range(3)
            for loop, us in (("uvloop", 5.0), ("raw-uring", 4.0),
                             ("ringloop-uring", 4.0 + 0.1 * r))]
    loops = ["uvloop", "ringloop-uring", "raw-uring"]
    summary = _report.summarize(runs, ["echo/protocol/1k/c50"], loops)
    row = summary["echo/protocol/1k/c50"]["ringloop-uring"]
    assert row["us_per_req_ratio_raw-uring"] == pytest.approx(1.025)
    got = {(t["loop"], t["against"]): t for t in _report.check_targets(
        summary, ["echo/protocol/1k/c50"]) if t["issue"] == 14}
    assert got[("ringloop-uring", "raw-uring")]["status"] == "MET"
    assert got[("ringloop-uring", "uvloop")]["status"] == "MET"
    assert got[("ringloop-uring", "uvloop")]["ratio"] == pytest.approx(0.82)
    assert got[("ringloop-epoll", "uvloop")]["status"] == "NOT RUN"


@needs_loadgen
@pytest.mark.parametrize("fault", ["corrupt", "raise"])
def test_bench_reports_a_bad_server(fault: str) -> None:
    s = Settings(loadgen=LOADGEN, wrk=None, server_cpu=None, load_cpu=None,
                 duration=0.2, warmup=0.05)
    rec = run_echo(s, "echo/protocol/1k/c2", "ringloop-epoll", "protocol",
                   2, 1024, ["--fault", fault])
    assert not rec["ok"]
    assert "rps" not in rec
    want = "mismatches" if fault == "corrupt" else "the server counted"
    assert want in rec["error"]


def test_bench_ratios_pair_rounds() -> None:
    # Each ratio is taken within one round, then the median over rounds.
    runs = [
        {"scenario": "s/c50", "loop": loop, "round": r, "ok": True,
         "error": None, "rps": rps}
        for r, (base, other) in enumerate([(100, 150), (50, 60), (200, 250)])
        for loop, rps in (("uvloop", base), ("ringloop-uring", other))
    ] + [{"scenario": "t/c50", "loop": "ringloop-uring", "round": 0,
          "ok": False, "error": "boom"}]
    summary = _report.summarize(runs, ["s/c50", "t/c50"],
                                ["uvloop", "ringloop-uring"])
    row = summary["s/c50"]["ringloop-uring"]
    assert row["rps"] == 150
    assert row["rps_ratio"] == 1.25
    assert row["rps_ratio_range"] == [1.2, 1.5]
    assert summary["t/c50"]["ringloop-uring"]["error"] == "boom"
    assert "rps" not in summary["t/c50"]["ringloop-uring"]


def test_bench_marks_load_bound_targets() -> None:
    # A throughput target measured while the load generator had no CPU
    # left says so; one with a load generator to spare does not.
    def runs(scenario: str, load: float) -> list[dict[str, Any]]:
        return [{"scenario": scenario, "loop": loop, "round": 0, "ok": True,
                 "error": None, "rps": rps, "load_util": load}
                for loop, rps in (("uvloop", 100.0),
                                  ("ringloop-uring", 101.0))]

    summary = _report.summarize(
        runs("http/c50", 0.99) + runs("echo/sock/1k/c50", 0.5),
        ["http/c50", "echo/sock/1k/c50"], ["uvloop", "ringloop-uring"])
    targets = {t["scenario"]: t for t in _report.check_targets(summary)
               if t["issue"] == 6}
    assert targets["http/c50"]["load_bound"] == 0.99
    assert "load_bound" not in targets["echo/sock/1k/c50"]
    text = "\n".join(_report.targets_table(list(targets.values())))
    assert "load-bound: the load generator used 99% of its CPU" in text


def test_bench_ratio_skips_missing_metric() -> None:
    # wrk may report no p99 for one loop's run: that round has no ratio
    # for it, and the rest of the summary stands.
    runs = [{"scenario": "http/pipe16/c50", "loop": loop, "round": r,
             "ok": True, "error": None, "rps": 100.0 * (r + 1),
             "p99_us": p99}
            for r in range(2)
            for loop, p99 in (("uvloop", 500.0),
                              ("ringloop-uring", None if r else 250.0))]
    summary = _report.summarize(runs, ["http/pipe16/c50"],
                                ["uvloop", "ringloop-uring"])
    row = summary["http/pipe16/c50"]["ringloop-uring"]
    assert row["p99_us"] == 250.0
    assert row["p99_us_ratio"] == 0.5
    assert row["rps_ratio"] == 1.0


# ---- the files group (issue 15) -----------------------------------------

FILES_SCENARIOS = ["files/rand4k", "files/rand4k-direct", "files/seq1m",
                   "files/fsync"]


def test_bench_files_smoke(tmp_path: Any) -> None:
    # One short round of the files group on every loop this environment
    # has: the table, a row with numbers for every implementation that ran,
    # NOT RUN (with the reason) for the others (ringloop-uring where
    # io_uring is refused), and issue 15's target lines. No assertion on
    # any speed.
    from ringloop.bench import _files
    from ringloop.bench._cli import files_impls

    argv = [sys.executable, "-m", "ringloop.bench", "--only", "files/*",
            "--loops", "asyncio,uvloop,ringloop-epoll,ringloop-uring",
            "--rounds", "1", "--files-mib", "4", "--files-count", "20",
            "--files-duration", "0.1", "--files-warmup", "0.02",
            "--no-chart", "--out", str(tmp_path)]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    text = p.stdout
    doc = json.loads((tmp_path / "results.json").read_text())
    files = doc["files"]
    assert files["scenarios"] == FILES_SCENARIOS
    assert files["baseline"] == "aiofiles/uvloop"
    assert files["params"]["size"] == 4 << 20
    # Every implementation either ran or says why not.
    assert set(files["impls"]) | set(files["not_run"]) == set(_files.IMPLS)
    assert not set(files["impls"]) & set(files["not_run"])
    assert "executor/asyncio" in files["impls"]
    skipped = {loop: missing_reason(loop) for loop in
               ("uvloop", "ringloop-epoll", "ringloop-uring")}
    expect, _ = files_impls([lp for lp in ("asyncio", "uvloop",
                                           "ringloop-epoll", "ringloop-uring")
                             if not skipped.get(lp)], {})
    assert files["impls"] == expect
    if skipped["ringloop-uring"]:  # io_uring refused here
        assert "ringloop-uring" in files["not_run"]
        assert "ringloop-uring    NOT RUN: " in text
    # The data directory is gone.
    assert not [n for n in os.listdir(tmp_path)
                if n.startswith("ringloop-files-")]

    measured = [sc for sc in FILES_SCENARIOS
                if sc not in files["unavailable"]]
    assert "files/rand4k" in measured
    runs = [r for r in doc["runs"] if r["scenario"].startswith("files/")]
    assert len(runs) == len(files["impls"]) * len(measured)
    for rec in runs:
        assert rec["ok"], rec["error"]
        assert rec["files"]["ops"] > 0
    for sc in FILES_SCENARIOS:
        assert f"[{sc}]" in text
        if sc in files["unavailable"]:
            assert "not measured: " in text
            continue
        for impl in files["impls"]:
            row = files["summary"][sc][impl]
            for key in ("ops_per_s", "us_per_op", "mib_per_s", "threads"):
                assert row[key] > 0, (sc, impl, key)
        for impl in files["not_run"]:
            assert f"  {impl:<17} NOT RUN: " in text

    # Every implementation that ran has a row with its numbers.
    table = text[text.index("files group ("):text.index("files summary")]
    for impl in files["impls"]:
        assert re.search(rf"^  {re.escape(impl)} +\d+ ", table, re.M), impl
    assert "files summary: ratios to aiofiles/uvloop" in text

    assert "targets (issue 15)" in text
    targets = [t for t in doc["targets"] if t["issue"] == 15]
    assert len(targets) == len(_report.FILES_TARGETS) == 9
    base = "aiofiles/uvloop" in files["impls"]
    for t in targets:
        if t["scenario"] in files["unavailable"]:
            assert t["status"] == "UNAVAILABLE", t
        elif t["loop"] not in files["impls"]:
            assert t["status"] == "NOT RUN" and t["why"], t
        elif not base:
            assert t["status"] == "NO AIOFILES/UVLOOP", t
        else:
            assert t["status"] in ("MET", "MISSED"), t
            assert t["ratio"] > 0
            ratio = f"{t['ratio']:.3f}x"
            assert f"  {t['status']:<9} {ratio:>7}  (want " in text


def test_bench_files_reports_a_wrong_read(tmp_path: Any) -> None:
    # A read that returns other bytes than the file has fails the run.
    from ringloop.bench import _files
    from ringloop.bench._runner import run_files

    data = str(tmp_path / "data.bin")
    _files.make_data(data, 1 << 20)
    with open(data, "r+b") as f:
        f.write(b"\xff" * (1 << 20))
    s = Settings(loadgen=None, wrk=None, server_cpu=None, load_cpu=None)
    for scenario in ("files/rand4k", "files/seq1m"):
        rec = run_files(s, scenario, "executor/asyncio", data, str(tmp_path),
                        0.05, 0.0, 10)
        assert not rec["ok"]
        assert "ops_per_s" not in rec
        assert "Mismatch" in rec["error"], rec["error"]
    rec = run_files(s, "files/fsync", "executor/asyncio", data,
                    str(tmp_path), 0.05, 0.0, 10)
    assert rec["ok"], rec["error"]
    # Whole batches of 10 files, every one checked after the run.
    assert rec["files"]["ops"] >= 10
    assert rec["files"]["ops"] == 10 * rec["files"]["batches"]


def test_bench_files_targets() -> None:
    # Ratios to aiofiles on uvloop within each round; (a) has two targets;
    # O_DIRECT unavailable and an implementation that could not run are
    # reported as such.
    impls = ["ringloop-uring", "ringloop-epoll", "aiofiles/uvloop"]
    numbers = {"ringloop-uring": (50_000.0, 8.0),
               "ringloop-epoll": (9_000.0, 30.0),
               "aiofiles/uvloop": (10_000.0, 40.0)}
    runs = [{"scenario": sc, "loop": impl, "round": r, "ok": True,
             "error": None, "ops_per_s": numbers[impl][0] * (r + 1),
             "us_per_op": numbers[impl][1]}
            for sc in ("files/rand4k", "files/seq1m") for r in range(2)
            for impl in impls]
    names = ["files/rand4k", "files/rand4k-direct", "files/seq1m",
             "files/fsync"]
    summary = _report.summarize(runs, names, impls, "aiofiles/uvloop")
    row = summary["files/rand4k"]["ringloop-uring"]
    assert row["ops_per_s_ratio_aiofiles/uvloop"] == pytest.approx(5.0)
    assert row["us_per_op_ratio_aiofiles/uvloop"] == pytest.approx(0.2)
    got = {(t["scenario"], t["loop"], t["metric"]): t
           for t in _report.check_files_targets(
               summary, {"files/rand4k-direct": "O_DIRECT refused"},
               {"executor/uvloop": "uvloop is not installed"})}
    assert got[("files/rand4k", "ringloop-uring", "ops_per_s")][
        "status"] == "MET"
    assert got[("files/rand4k", "ringloop-uring", "us_per_op")][
        "status"] == "MET"
    assert got[("files/rand4k", "ringloop-epoll", "ops_per_s")][
        "status"] == "MISSED"
    assert got[("files/seq1m", "ringloop-uring", "ops_per_s")][
        "status"] == "MET"
    direct = got[("files/rand4k-direct", "ringloop-uring", "ops_per_s")]
    assert direct["status"] == "UNAVAILABLE"
    assert direct["why"] == "O_DIRECT refused"
    assert got[("files/fsync", "ringloop-uring", "ops_per_s")][
        "status"] == "NOT RUN"
    text = "\n".join(_report.targets_table(list(got.values())))
    assert "targets (issue 15)" in text
    assert "  MET        5.000x  (want ≥ 4x   ) ringloop-uring vs " \
        "aiofiles/uvloop: (a)" in text
    assert "O_DIRECT refused" in text
