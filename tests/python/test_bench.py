"""Smoke test of the comparative benchmark (python -m ringloop.bench): an
ultra-short run on the ringloop loops, then the shape of its JSON and the
proof that every server echoed correctly. No assertion on any timing."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from ringloop._tools import find_tool
from ringloop.bench import _report
from ringloop.bench._loops import missing_reason
from ringloop.bench._runner import Settings, run_echo

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
            "--out", str(tmp_path)]
    for name in SCENARIOS + ["micro"]:
        argv += ["--only", name]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "targets (issue 6)" in p.stdout
    doc = json.loads((tmp_path / "results.json").read_text())

    for key in ("kernel", "cpu_model", "cpus", "python", "versions"):
        assert doc["machine"][key], key
    assert doc["config"]["loops"] == LOOPS
    assert doc["config"]["scenarios"] == SCENARIOS + MICRO

    runs = doc["runs"]
    assert len(runs) == len(LOOPS) * (len(SCENARIOS) + 1)
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
    assert {t["scenario"] for t in doc["targets"]} == {
        t.scenario for t in _report.TARGETS}


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
    targets = {t["scenario"]: t for t in _report.check_targets(summary)}
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
