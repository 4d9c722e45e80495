#!/usr/bin/env python3
"""uvloop's test suite on ringloop's backends.

Takes the tests of a pinned uvloop release from its source distribution,
fetched with pip into a cache (build/uvloop-suite/, once), and binds the
asyncio test classes of its modules (see bindings.py) to asyncio's own loop
(the reference, "asyncio") and to ringloop.new_event_loop(backend="epoll" /
"uring"); every (test, loop) pair runs in its own process with a timeout,
over --jobs workers, and the outcomes are compared (tests/conformance's
harness.py).

The bar: every test that passes on asyncio's loop passes on both ringloop
backends. A ringloop test that does not (fails, errors, skips, times out or
crashes) is an unexpected failure unless exceptions.txt lists it with a
reason; any unexpected failure makes the run exit 1. --report prints the same
tables and lists but always exits 0.

    python tests/uvloop_suite/run.py                  # everything, gate
    python tests/uvloop_suite/run.py --report         # state, never fails
    python tests/uvloop_suite/run.py -m test_tcp,test_udp -b epoll
    python tests/uvloop_suite/run.py test_create_server_1 -v
    python tests/uvloop_suite/run.py 'Test_AIO_TCPSSL.*' --no-reference
    python tests/uvloop_suite/run.py --list

The uvloop wheel (for `import uvloop` and uvloop._testbase) and the tests'
own requirements (psutil, pyOpenSSL) are installed with pip into
build/uvloop-suite/site-pyXY, a directory of their own that goes on
PYTHONPATH of the test processes only; the sdist's tests/ directory too.
Nothing is built from source. The environment passes through, so
RINGLOOP_DISABLE=multishot_recv,... runs the suite with io_uring fast paths
switched off; RINGLOOP_BACKEND is ignored.

Test ids are MODULE.CLASS.METHOD (unittest's, e.g.
test_tcp.Test_AIO_TCP.test_create_server_1); positional arguments are
fnmatch patterns over them, or over CLASS.METHOD, and a pattern without a
dot matches the method name.

Exit status: 0 ok (or --report), 1 unexpected failures, 2 harness error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "conformance"))

import harness  # noqa: E402

# The uvloop release whose tests run, and the tests' own requirements
# (uvloop's "test" extra without aiohttp, which test_aiohttp alone needs).
# Binary wheels only (uvloop 0.23.0 has them for CPython 3.10-3.13 at
# least): uvloop is never built here.
UVLOOP_VERSION = "0.23.0"
REQUIREMENTS = (f"uvloop=={UVLOOP_VERSION}", "psutil==7.2.2",
                "pyOpenSSL==26.4.0")
CACHE = os.path.join(ROOT, "build", "uvloop-suite")


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q",
           *args]
    print("uvloop-suite: " + " ".join(cmd[1:]), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True)


def fetch_tests(cache: str) -> str:
    """The tests/ directory of uvloop's sdist, downloaded (pip download)
    and unpacked into cache the first time."""
    name = f"uvloop-{UVLOOP_VERSION}"
    tests = os.path.join(cache, name, "tests")
    if os.path.isfile(os.path.join(tests, "test_base.py")):
        return tests
    sdist = os.path.join(cache, name + ".tar.gz")
    if not os.path.isfile(sdist):
        _pip("download", "--no-deps", "--no-binary", ":all:",
             f"uvloop=={UVLOOP_VERSION}", "-d", cache)
    # Unpack beside, then rename: a run cut short leaves no half tree.
    tmp = tempfile.mkdtemp(prefix="unpack-", dir=cache)
    try:
        with tarfile.open(sdist) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:   # Python < 3.10.12 / 3.11.4
                tar.extractall(tmp)
        shutil.rmtree(os.path.join(cache, name), ignore_errors=True)
        os.rename(os.path.join(tmp, name), os.path.join(cache, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tests


def install_requirements(cache: str) -> str:
    """A directory holding uvloop (the wheel) and the tests' requirements
    for this Python, installed with pip the first time."""
    site = os.path.join(cache, "site-py%d%d" % sys.version_info[:2])
    stamp = os.path.join(site, ".requirements")
    want = "\n".join(REQUIREMENTS) + "\n"
    try:
        with open(stamp) as fp:
            if fp.read() == want:
                return site
    except OSError:
        pass
    shutil.rmtree(site, ignore_errors=True)
    _pip("install", "--only-binary", ":all:", "--target", site,
         *REQUIREMENTS)
    with open(stamp, "w") as fp:
        fp.write(want)
    return site


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.makedirs(CACHE, exist_ok=True)
    if not {"-h", "--help"} & set(argv):
        try:
            tests = fetch_tests(CACHE)
            site = install_requirements(CACHE)
        except (OSError, subprocess.CalledProcessError,
                tarfile.TarError) as exc:
            print(f"uvloop-suite: cannot set up uvloop {UVLOOP_VERSION}'s "
                  f"tests: {exc}", file=sys.stderr)
            return 2
    else:
        tests = site = ""
    paths = (site, tests)
    sys.path[:0] = paths
    suite = harness.Suite(
        name="uvloop-suite",
        doc=__doc__ or "",
        bindings_file=os.path.join(HERE, "bindings.py"),
        exceptions_file=os.path.join(HERE, "exceptions.txt"),
        group_word="module",
        pythonpath=paths,
        timeout=70.0,
        timeout_help=": above the 60 s that test_process waits at most, "
                     "so a test can fail on its own")
    return harness.main(suite, argv)


if __name__ == "__main__":
    sys.exit(main())
