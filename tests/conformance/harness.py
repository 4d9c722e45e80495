"""The engine of the loop test harnesses: run bound tests, compare, report.

A suite (tests/conformance/run.py: CPython's asyncio loop tests;
tests/uvloop_suite/run.py: uvloop's test suite) names a bindings module and
an exceptions file, and calls main(). The bindings module provides

    GROUPS                       the group names (a mixin, a test module)
    test_names(group)            the group's test names on this Python
    loop_factory(kind)           a callable making a loop of that kind
    make_test(group, kind, name) the unittest.TestCase instance to run

Every (test, loop) pair runs in its own process (child.py) with a timeout,
over --jobs workers. Loops ("kinds"): "asyncio", asyncio's own loop, the
reference; "epoll" and "uring", ringloop.new_event_loop(backend=...).

The bar: every test that passes on asyncio's loop passes on both ringloop
backends. A ringloop test that does not (fails, errors, skips, times out or
crashes) is an unexpected failure unless the exceptions file lists it with a
reason; any unexpected failure makes the run exit 1. --report prints the
same tables and lists but always exits 0.

Exit status: 0 ok (or --report), 1 unexpected failures, 2 harness error.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from child import load_bindings  # noqa: E402

CHILD = os.path.join(HERE, "child.py")
REFERENCE = "asyncio"
KINDS = ("asyncio", "epoll", "uring")
RINGLOOP_KINDS = ("epoll", "uring")
# faulthandler prints this when child.py's deadline fires.
_FH_TIMEOUT = re.compile(r"Timeout \(\d+:\d\d:\d\d\)!\n")
_STATUS_CHAR = {"pass": ".", "fail": "F", "skip": "s", "timeout": "T",
                "crash": "C"}


@dataclass
class Suite:
    """One harness: what it binds (its bindings module) and its words."""
    name: str                  # prefix of its messages ("conformance")
    doc: str                   # its command's docstring: the --help text
    bindings_file: str         # the bindings module (see above), a path
    exceptions_file: str
    group_word: str = "mixin"  # what a group is: -m/--GROUP_WORD, tables
    # Directories put before PYTHONPATH for the test processes (and all
    # they start); the caller puts them on this process's sys.path too.
    pythonpath: tuple[str, ...] = ()
    timeout: float = 45.0
    timeout_help: str = ""
    bindings: Any = None       # the loaded module, set by main()


# ---- exceptions.txt ------------------------------------------------------

@dataclass
class Exception_:
    pattern: str
    kinds: frozenset[str]
    reason: str
    lineno: int
    used: set[tuple[str, str]] = field(default_factory=set)   # failing
    stale: set[tuple[str, str]] = field(default_factory=set)  # passing

    def matches(self, test_id: str, kind: str) -> bool:
        return kind in self.kinds and fnmatch.fnmatchcase(test_id,
                                                          self.pattern)


_REASON_OK = re.compile(r"\[[a-z][a-z0-9-]*\]|^deliberate:", re.I)
_REASON_BAD = re.compile(r"^\W*(fail(s|ed|ing)?|broken|flaky|todo|tbd)"
                         r"\W*$", re.I)


def load_exceptions(path: str, groups: Iterable[str]) -> list[Exception_]:
    """Parse exceptions.txt; raise ValueError on a malformed entry.

    One entry per line: TEST_ID_PATTERN BACKENDS REASON, where BACKENDS is
    epoll, uring, epoll,uring or *, and REASON names an issue tag ([net],
    [tls-proc], ...) for a missing feature, or starts with "deliberate:"
    and says which documented difference from asyncio it is.
    """
    groups = list(groups)
    entries: list[Exception_] = []
    if not os.path.exists(path):
        return entries
    with open(path, encoding="utf-8") as fp:
        for lineno, line in enumerate(fp, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 2)
            where = f"{os.path.basename(path)}:{lineno}"
            if len(parts) < 3:
                raise ValueError(f"{where}: want 'TEST_ID BACKENDS REASON'")
            pattern, kinds_s, reason = parts
            kinds = (set(RINGLOOP_KINDS) if kinds_s == "*"
                     else set(kinds_s.split(",")))
            if not kinds <= set(RINGLOOP_KINDS):
                raise ValueError(f"{where}: backends must be epoll, uring, "
                                 f"epoll,uring or *, not {kinds_s!r}")
            if "." not in pattern:
                raise ValueError(f"{where}: test id is GROUP.TEST_NAME")
            group = pattern.split(".", 1)[0]
            if group not in groups and not any(
                    fnmatch.fnmatchcase(g, group) for g in groups):
                raise ValueError(f"{where}: unknown group {group!r}")
            words = _REASON_OK.sub(" ", reason).split()
            if (_REASON_BAD.match(reason) or not _REASON_OK.search(reason)
                    or len(words) < 3):
                raise ValueError(
                    f"{where}: the reason must name the issue tag of the "
                    f"missing feature ([net], [tls-proc], ...) or start with "
                    f"'deliberate:', and say what is missing or different "
                    f"in a few words; got {reason!r}")
            entries.append(Exception_(pattern, frozenset(kinds), reason,
                                      lineno))
    return entries


def find_exception(entries: list[Exception_], test_id: str,
                   kind: str) -> Exception_ | None:
    for entry in entries:
        if entry.matches(test_id, kind):
            return entry
    return None


# ---- running -------------------------------------------------------------

@dataclass
class Outcome:
    group: str
    name: str
    kind: str
    status: str = "crash"        # pass fail skip timeout crash
    summary: str = ""
    reason: str = ""
    env_changed: bool = False
    duration: float = 0.0
    output: str = ""

    @property
    def test_id(self) -> str:
        return f"{self.group}.{self.name}"

    @property
    def detail(self) -> str:
        if self.status == "skip":
            return f"skipped: {self.reason}"
        return self.summary


def run_one(suite: Suite, group: str, name: str, kind: str, timeout: float,
            env: dict[str, str]) -> Outcome:
    outcome = Outcome(group, name, kind)
    tmp = tempfile.mkdtemp(prefix="ringloop-harness-")
    result_file = os.path.join(tmp, "result.json")
    workdir = os.path.join(tmp, "cwd")
    os.mkdir(workdir)
    start = time.monotonic()
    # Output goes to a file, not a pipe: a grandchild that a test leaves
    # behind would hold a pipe open after the test process has exited.
    with open(os.path.join(tmp, "output"), "w+b") as log:
        proc = subprocess.Popen(
            [sys.executable, CHILD, result_file, suite.bindings_file, group,
             kind, name, str(timeout)],
            cwd=workdir, env=env, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        killed = False
        try:
            proc.wait(timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            killed = True
            _killpg(proc.pid)
            proc.wait()
        # A test may leave children behind in its session (subprocess
        # tests): they go with it.
        _killpg(proc.pid)
        outcome.duration = time.monotonic() - start
        log.seek(0)
        outcome.output = log.read().decode("utf-8", "replace")
    record: dict[str, Any] | None = None
    try:
        with open(result_file) as fp:
            record = json.load(fp)
    except (OSError, ValueError):
        pass
    shutil.rmtree(tmp, ignore_errors=True)

    fh_timeout = _FH_TIMEOUT.search(outcome.output) is not None
    if record is not None:
        outcome.status = record["status"]
        outcome.summary = record.get("summary", "")
        outcome.reason = record.get("reason", "")
        outcome.env_changed = bool(record.get("env_changed"))
        if fh_timeout or killed:
            outcome.summary = (f"hung at interpreter exit after the test "
                               f"({outcome.status}); {outcome.summary}")
            outcome.status = "timeout"
    elif fh_timeout or killed:
        outcome.status = "timeout"
        outcome.summary = f"no result within {timeout:g}s" + _hang_site(
            outcome.output)
    else:
        outcome.status = "crash"
        rc = proc.returncode
        if rc is not None and rc < 0:
            try:
                sig = signal.Signals(-rc).name
            except ValueError:
                sig = str(-rc)
            outcome.summary = f"killed by {sig}"
        else:
            outcome.summary = f"exited with status {rc} and no result"
    return outcome


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _hang_site(output: str) -> str:
    """Where the main thread was in a faulthandler dump: the innermost frame
    and the innermost frame of the test module."""
    blocks = re.split(r"^(?:Current thread|Thread) 0x[0-9a-f]+ "
                      r"\(most recent call first\):\n", output, flags=re.M)
    main = [b for b in blocks[1:] if "in <module>" in b] or blocks[1:2]
    if not main:
        return ""
    frames = re.findall(r'^\s+File "([^"]+)", line (\d+) in (\S+)',
                        main[0], flags=re.M)
    if not frames:
        return ""
    sites = [frames[0]]
    sites += [f for f in frames[1:]
              if os.path.basename(f[0]).startswith("test_")][:1]
    return "  [" + " <- ".join(f"{os.path.basename(f)}:{line} in {func}"
                               for f, line, func in sites) + "]"


def preflight(suite: Suite, kinds: list[str], env: dict[str, str]
              ) -> tuple[dict[str, str], str, list[str]]:
    """Check each ringloop kind can make a loop.

    Returns ({kind: problem}, a line naming the ringloop under test, notes).
    """
    problems: dict[str, str] = {}
    notes: list[str] = []
    about = "ringloop not used"
    for kind in kinds:
        if kind == REFERENCE:
            continue
        code = ("import asyncio, os, sys, ringloop\n"
                f"sys.path.insert(0, {HERE!r})\n"
                "from child import load_bindings\n"
                f"bindings = load_bindings({suite.bindings_file!r})\n"
                "try:\n"
                f"    loop = bindings.loop_factory({kind!r})()\n"
                "except (OSError, RuntimeError) as exc:\n"
                "    print(f'{type(exc).__name__}: {exc}'); sys.exit(3)\n"
                "print(sorted(loop.backend_features)); loop.close(); "
                "A = asyncio.AbstractEventLoop; "
                "print(' '.join(n for n in dir(A) if not n.startswith('_') "
                "and getattr(type(loop), n) is getattr(A, n))); "
                "print('ringloop', ringloop.__version__, 'from', "
                "os.path.dirname(ringloop.__file__))")
        proc = subprocess.run([sys.executable, "-c", code], env=env,
                              cwd=tempfile.gettempdir(),
                              capture_output=True, text=True, timeout=60)
        if proc.returncode == 3:     # the kernel refuses this backend
            problems[kind] = proc.stdout.strip()
        elif proc.returncode != 0:   # ringloop itself is broken or absent
            raise RuntimeError(f"cannot make a ringloop-{kind} loop with "
                               f"{sys.executable}:\n{proc.stderr.strip()}")
        else:
            features, stubs, about = proc.stdout.splitlines()[-3:]
            notes.append(f"ringloop-{kind} features: {features}")
            if stubs and kind == "epoll":
                notes.append("asyncio.AbstractEventLoop methods that "
                             "ringloop.Loop does not implement: "
                             + ", ".join(stubs.split()))
    return problems, about, notes


# ---- reporting -------------------------------------------------------------

def tail(text: str, n: int) -> str:
    lines = text.rstrip().splitlines()
    return "\n".join(lines[-n:])


def print_table(group_word: str, groups: list[str], kinds: list[str],
                results: dict[tuple[str, str, str], Outcome],
                names: dict[str, list[str]], has_ref: bool,
                exc_entries: list[Exception_]) -> None:
    """Per group and loop: pass/fail/skip, and what is missing vs asyncio."""
    print()
    cols = ("tests", "pass", "fail", "skip", "T/C")
    w = max([15] + [len(g) + 1 for g in groups])
    head = f"{group_word:<{w}}{'loop':<8}" + "".join(f"{c:>6}" for c in cols)
    if has_ref:
        head += "   vs asyncio: missing excepted unexpected"
    print(head)
    print("-" * len(head))
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    for group in groups + ["total"]:
        for kind in kinds:
            if group == "total":
                c = totals[kind]
            else:
                c = Counter()
                for name in names[group]:
                    o = results[(group, name, kind)]
                    c["tests"] += 1
                    c["skip" if o.status == "skip" else
                      "pass" if o.status == "pass" else "fail"] += 1
                    if o.status in ("timeout", "crash"):
                        c["T/C"] += 1
                    if kind == REFERENCE or not has_ref:
                        continue
                    ref = results[(group, name, REFERENCE)]
                    if ref.status == "pass" and o.status != "pass":
                        c["missing"] += 1
                        if find_exception(exc_entries, o.test_id, kind):
                            c["excepted"] += 1
                        else:
                            c["unexpected"] += 1
                totals[kind].update(c)
            row = f"{group:<{w}}{kind:<8}" + "".join(f"{c[k]:>6}"
                                                     for k in cols)
            if has_ref and kind != REFERENCE:
                row += (f"   {'':<11} {c['missing']:>7} {c['excepted']:>8}"
                        f" {c['unexpected']:>10}")
            print(row)
        print("-" * len(head))
    print("fail counts timeouts and crashes too (T/C); missing = passes on "
          "asyncio's loop, not on this one (excepted: in exceptions.txt)")


def merge_by_test(outcomes: Iterable[Outcome]) -> list[list[Outcome]]:
    """Group outcomes of one test with the same status and summary."""
    merged: dict[tuple[str, str, str], list[Outcome]] = {}
    for o in outcomes:
        merged.setdefault((o.test_id, o.status, o.detail), []).append(o)
    return list(merged.values())


def kinds_of(outcomes: Iterable[Outcome]) -> str:
    return ",".join(sorted({o.kind for o in outcomes},
                           key=KINDS.index))


def normalize_cause(summary: str) -> str:
    # Group "X: msg [file.py:123 in f]" across tests: drop object addresses
    # and temporary names that differ from run to run.
    s = re.sub(r"0x[0-9a-f]+", "0x…", summary)
    s = re.sub(r"/tmp/\S+", "/tmp/…", s)
    s = re.sub(r"\b(fd|port)=\d+", r"\1=N", s)
    return s


def main(suite: Suite, argv: list[str] | None = None) -> int:
    """Run the suite's command line (see the module docstring)."""
    bindings = suite.bindings = load_bindings(suite.bindings_file)
    all_groups = list(bindings.GROUPS)
    ap = argparse.ArgumentParser(
        description=suite.doc.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent(suite.doc.split("\n\n", 1)[1]))
    ap.add_argument("patterns", nargs="*", metavar="TEST_ID",
                    help="fnmatch patterns over GROUP.TEST_NAME (a pattern "
                         "without a dot: over the test method's name)")
    ap.add_argument("-m", f"--{suite.group_word}", dest="groups", default="",
                    metavar=suite.group_word.upper(),
                    help=f"comma-separated {suite.group_word}s: "
                         + ",".join(all_groups) + " (default: all)")
    ap.add_argument("-b", "--backend", default="epoll,uring",
                    help="comma-separated ringloop backends (default "
                         "epoll,uring)")
    ap.add_argument("--require-uring", action="store_true",
                    help="exit 2 if this kernel refuses io_uring (default: "
                         "skip the uring backend with a notice)")
    ap.add_argument("--no-reference", action="store_true",
                    help="skip asyncio's loop; implies --report")
    ap.add_argument("--report", action="store_true",
                    help="print the state, exit 0 even with failures")
    ap.add_argument("-j", "--jobs", type=int, default=2,
                    help="parallel test processes (default 2)")
    ap.add_argument("--timeout", type=float, default=suite.timeout,
                    help=f"seconds per test process (default "
                         f"{suite.timeout:g}{suite.timeout_help})")
    ap.add_argument("--tail", type=int, default=15,
                    help="output lines shown per failure (default 15)")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="one line per result; full output of failures, "
                         "excepted ones too")
    ap.add_argument("--show-output", action="store_true",
                    help="print the whole output of every selected run")
    ap.add_argument("--list", action="store_true",
                    help="list the selected test ids and exit")
    ap.add_argument("--exceptions", default=suite.exceptions_file,
                    help="exceptions file (default: %(default)s)")
    ap.add_argument("--json", metavar="FILE",
                    help="write every outcome (with output tail) as JSON")
    args = ap.parse_args(argv)

    groups = [g for g in args.groups.split(",") if g] or all_groups
    for g in groups:
        if g not in all_groups:
            ap.error(f"unknown {suite.group_word} {g!r}; choose from "
                     + ", ".join(all_groups))
    backends = [b for b in args.backend.split(",") if b]
    for b in backends:
        if b not in RINGLOOP_KINDS:
            ap.error(f"unknown backend {b!r}; choose from epoll, uring")
    has_ref = not args.no_reference
    report_only = args.report or not has_ref

    try:
        exc_entries = load_exceptions(args.exceptions, all_groups)
    except ValueError as exc:
        print(f"{suite.name}: {exc}", file=sys.stderr)
        return 2

    names: dict[str, list[str]] = {}
    for g in groups:
        selected = []
        for name in bindings.test_names(g):
            tid = f"{g}.{name}"
            if not args.patterns or any(
                    fnmatch.fnmatchcase(tid, p) or fnmatch.fnmatchcase(name, p)
                    if "." in p
                    else fnmatch.fnmatchcase(name.rsplit(".", 1)[-1], p)
                    for p in args.patterns):
                selected.append(name)
        names[g] = selected
    groups = [g for g in groups if names[g]]
    if not groups:
        print(f"{suite.name}: no test matches", file=sys.stderr)
        return 2
    if args.list:
        for g in groups:
            for name in names[g]:
                print(f"{g}.{name}")
        return 0

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [*suite.pythonpath, *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTHONASYNCIODEBUG", None)   # as CPython's test runs
    env.pop("RINGLOOP_BACKEND", None)     # the binding names the backend

    kinds = ([REFERENCE] if has_ref else []) + backends
    try:
        problems, about, notes = preflight(suite, kinds, env)
    except RuntimeError as exc:
        print(f"{suite.name}: {exc}", file=sys.stderr)
        return 2
    print(f"{suite.name}: Python {sys.version.split()[0]} "
          f"({sys.executable}), {about}")
    for note in notes:
        print(f"{suite.name}: {note}")
    for kind, why in problems.items():
        print(f"{suite.name}: ringloop-{kind} unavailable, skipped: {why}")
    unavailable = set(problems)
    if "epoll" in unavailable or (args.require_uring and
                                  "uring" in unavailable):
        print(f"{suite.name}: a required backend is unavailable",
              file=sys.stderr)
        return 2
    kinds = [k for k in kinds if k not in unavailable]

    # Loop by loop: a test never runs beside itself on another loop (a test
    # that binds a fixed port, as uvloop's test_datagram_protocol does,
    # would collide with itself).
    jobs = [(g, n, k) for k in kinds for g in groups for n in names[g]]
    if env.get("RINGLOOP_DISABLE"):
        print(f"{suite.name}: RINGLOOP_DISABLE={env['RINGLOOP_DISABLE']}")
    print(f"{suite.name}: {sum(len(names[g]) for g in groups)} tests x "
          f"{len(kinds)} loops ({', '.join(kinds)}) = {len(jobs)} runs, "
          f"{args.jobs} workers, timeout {args.timeout:g}s")
    sys.stdout.flush()

    results: dict[tuple[str, str, str], Outcome] = {}
    lock = threading.Lock()
    done = 0
    t0 = time.monotonic()

    def work(job: tuple[str, str, str]) -> None:
        nonlocal done
        o = run_one(suite, *job, timeout=args.timeout, env=env)
        with lock:
            results[job] = o
            done += 1
            if args.verbose:
                extra = o.detail
                print(f"[{done}/{len(jobs)}] {o.status.upper():7} "
                      f"{o.test_id} [{o.kind}] {o.duration:.2f}s"
                      + (f"  {extra}" if extra else ""))
            else:
                sys.stdout.write(_STATUS_CHAR.get(o.status, "?"))
                if done % 78 == 0 or done == len(jobs):
                    sys.stdout.write(f" {done}/{len(jobs)}\n")
            if args.show_output:
                print(o.output)
            sys.stdout.flush()

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for _ in pool.map(work, jobs):
            pass
    elapsed = time.monotonic() - t0

    # Compare with the reference.
    unexpected: list[Outcome] = []
    excepted: list[Outcome] = []
    better: list[Outcome] = []
    for g in groups:
        for name in names[g]:
            ref = results.get((g, name, REFERENCE))
            for kind in kinds:
                if kind == REFERENCE:
                    continue
                o = results[(g, name, kind)]
                entry = find_exception(exc_entries, o.test_id, kind)
                if ref is None:
                    failing = o.status not in ("pass", "skip")
                elif ref.status == "pass":
                    failing = o.status != "pass"
                else:
                    failing = False
                    if o.status == "pass" and ref.status != "skip":
                        better.append(o)
                if entry is not None:
                    if failing:
                        entry.used.add((o.test_id, kind))
                        excepted.append(o)
                    elif o.status == "pass":
                        entry.stale.add((o.test_id, kind))
                elif failing:
                    unexpected.append(o)

    # The long part first, the summaries last, where a CI log ends.
    if excepted and args.verbose:
        print(f"\nexcepted failures ({len(excepted)} runs):")
        for same in merge_by_test(excepted):
            o = same[0]
            print(f"\n--- {o.test_id} [{kinds_of(same)}] "
                  f"EXCEPTED {o.status.upper()}: {o.detail}")
            print(textwrap.indent(o.output.rstrip(), "    "))
    if unexpected:
        print(f"\nunexpected failures ({len(unexpected)} runs), with the "
              f"tail of their output:")
        for same in merge_by_test(unexpected):
            o = same[0]
            print(f"\n--- {o.test_id} [{kinds_of(same)}] "
                  f"{o.status.upper()}: {o.detail}")
            print(textwrap.indent(
                o.output.rstrip() if args.verbose else tail(o.output,
                                                            args.tail),
                "    "))

    print_table(suite.group_word, groups, kinds, results, names, has_ref,
                exc_entries)

    if has_ref:
        ref_all = [results[(g, n, REFERENCE)] for g in groups
                   for n in names[g]]
        ref_bad = [o for o in ref_all if o.status not in ("pass", "skip")]
        if ref_bad:
            print(f"\nfailing on asyncio's own loop too, so not required "
                  f"({len(ref_bad)}):")
            for o in ref_bad:
                print(f"  {o.test_id}: {o.status} {o.summary}")
        ref_skip = Counter(o.reason for o in ref_all if o.status == "skip")
        if ref_skip and args.verbose:
            print("\nskipped on asyncio's loop:")
            for reason, count in ref_skip.most_common():
                print(f"  {count:3} {reason}")
    env_changed = [o for o in results.values() if o.kind != REFERENCE
                   and o.env_changed and not (
                       has_ref and results[(o.group, o.name,
                                            REFERENCE)].env_changed)]
    if env_changed:
        print(f"\nleft threads or child processes behind (test_utils "
              f"'env changed'; not on asyncio's loop) ({len(env_changed)}):")
        for same in merge_by_test(env_changed):
            print(f"  {same[0].test_id} [{kinds_of(same)}] "
                  f"{same[0].status}")
    if better:
        print(f"\npass on ringloop but not on asyncio's loop ({len(better)}):")
        for o in better:
            print(f"  {o.test_id} [{o.kind}]")

    used = [e for e in exc_entries if e.used]
    stale = [e for e in exc_entries if e.stale and not e.used]
    partly = [e for e in exc_entries if e.stale and e.used]
    if used:
        n = sum(len(e.used) for e in used)
        print(f"\nexcepted ({n} runs, {len(used)} entries of "
              f"{os.path.basename(args.exceptions)}):")
        for e in used:
            kinds_s = ",".join(sorted(e.kinds))
            reason = e.reason
            if len(reason) > 90 and not args.verbose:
                reason = reason[:89] + "…"
            print(f"  {len(e.used):4}  {e.pattern} [{kinds_s}]  {reason}")
    if stale:
        print("\nstale exceptions: every selected test they cover now "
              "passes; remove them:")
        for e in stale:
            print(f"  line {e.lineno}: {e.pattern}  {e.reason}")
    if args.verbose:
        all_ids = [f"{g}.{n}" for g in all_groups
                   for n in bindings.test_names(g)]
        idle = [e for e in exc_entries
                if not any(fnmatch.fnmatchcase(t, e.pattern)
                           for t in all_ids)]
        if idle:
            print("\nexceptions that match no test on this Python (another "
                  "version's, or a typo):")
            for e in idle:
                print(f"  line {e.lineno}: {e.pattern}")
    if partly and args.verbose:
        print("\nexceptions that now cover some passing tests (narrow them):")
        for e in partly:
            print(f"  line {e.lineno}: {e.pattern}: "
                  + ", ".join(f"{t}[{k}]" for t, k in sorted(e.stale)))

    if unexpected:
        causes: dict[str, list[Outcome]] = defaultdict(list)
        for o in unexpected:
            causes[normalize_cause(f"{o.status}: {o.detail}")].append(o)
        print(f"\nunexpected failures by cause ({len(unexpected)} runs, "
              f"{len(causes)} causes):")
        for cause, outs in sorted(causes.items(), key=lambda kv: -len(kv[1])):
            print(f"  {len(outs):4}  [{kinds_of(outs)}] {cause}")

    if args.json:
        with open(args.json, "w") as fp:
            json.dump({
                "python": sys.version.split()[0],
                "elapsed": round(elapsed, 1),
                "outcomes": [
                    {"id": o.test_id, "loop": o.kind, "status": o.status,
                     "summary": o.summary, "reason": o.reason,
                     "env_changed": o.env_changed,
                     "duration": round(o.duration, 3),
                     "tail": tail(o.output, args.tail)
                     if o.status != "pass" else ""}
                    for o in results.values()],
                "unexpected": [f"{o.test_id}[{o.kind}]" for o in unexpected],
            }, fp, indent=1)

    print(f"\n{suite.name}: {len(jobs)} runs in {elapsed:.0f}s; "
          f"{len(unexpected)} unexpected failures"
          + ("" if has_ref else " (no reference: every non-passing, "
             "non-skipped test counted)"))
    if unavailable:
        print(f"{suite.name}: not run on " + ", ".join(
            f"ringloop-{k} ({problems[k]})" for k in sorted(unavailable)))
    if report_only:
        print(f"{suite.name}: report mode, exit 0")
        return 0
    if unexpected:
        print(f"{suite.name}: FAIL")
        return 1
    print(f"{suite.name}: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
