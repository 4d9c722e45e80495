#!/usr/bin/env python3
"""Run the programs of the selected CTest tests with the auto backend.

    matrix_auto.py --build DIR --log FILE [--jobs N] [--] CTEST-SELECT-ARGS

CTest pins each backend-generic test to a backend (RINGLOOP_BACKEND=uring or
=epoll in its ENVIRONMENT property) and the environment cannot override a
test property. tests/matrix.sh uses this script for the "io_uring refused"
configuration: it runs each selected program once, directly, with the test's
environment minus RINGLOOP_BACKEND, so every loop goes through auto
selection and has to fall back to epoll. Run it under probe-seccomp-refuse.

Prints one line, "total=N passed=P failed=F skipped=S", and writes each
test's output to the log. Exit status: 0 if nothing failed, 1 otherwise,
2 if ctest cannot list the tests.
"""
import argparse
import concurrent.futures
import json
import os
import subprocess
import sys


def list_tests(build, select):
    p = subprocess.run(["ctest", "--test-dir", build,
                        "--show-only=json-v1"] + select,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    if p.returncode != 0:
        sys.exit(f"matrix_auto: ctest --show-only failed: {p.stderr}")
    programs = {}
    for t in json.loads(p.stdout).get("tests", []):
        if "command" not in t:
            continue
        props = {x["name"]: x["value"] for x in t.get("properties", [])}
        key = tuple(t["command"])
        # One run per program: its .uring and .epoll registrations differ
        # only in the backend, which auto selection replaces.
        programs.setdefault(key, {"name": t["name"].rsplit(".", 1)[0],
                                  "props": props})
    return programs


def run_one(command, info):
    props = info["props"]
    env = {k: v for k, v in os.environ.items() if k != "RINGLOOP_BACKEND"}
    for kv in props.get("ENVIRONMENT", []):
        k, _, v = kv.partition("=")
        if k != "RINGLOOP_BACKEND":
            env[k] = v
    skip = int(props.get("SKIP_RETURN_CODE", 77))
    timeout = float(props.get("TIMEOUT", 120))
    try:
        p = subprocess.run(list(command), env=env,
                           cwd=props.get("WORKING_DIRECTORY"),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, timeout=timeout)
        rc, out = p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        rc, out = "timeout", (e.output or "")
    except OSError as e:
        rc, out = "cannot run", str(e)
    status = ("passed" if rc == 0 else "skipped" if rc == skip
              else "failed")
    return info["name"], status, rc, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("select", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    select = a.select[1:] if a.select[:1] == ["--"] else a.select
    programs = list_tests(a.build, select)
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    with open(a.log, "w") as log, \
            concurrent.futures.ThreadPoolExecutor(max(1, a.jobs)) as ex:
        futs = [ex.submit(run_one, c, i) for c, i in programs.items()]
        for f in concurrent.futures.as_completed(futs):
            name, status, rc, out = f.result()
            counts[status] += 1
            log.write(f"==== {name} (auto backend): {status} "
                      f"(exit {rc})\n{out}\n")
    print(f"total={len(programs)} passed={counts['passed']} "
          f"failed={counts['failed']} skipped={counts['skipped']}")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
