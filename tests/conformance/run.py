#!/usr/bin/env python3
"""asyncio conformance: CPython's own loop tests on ringloop's backends.

Binds the loop test mixins of the running interpreter's test.test_asyncio
(see bindings.py) to asyncio.SelectorEventLoop (the reference, "asyncio") and
to ringloop.new_event_loop(backend="epoll" / "uring"), runs every (test, loop)
pair in its own subprocess with a timeout, over --jobs workers, and compares.

The bar: every test that passes on asyncio's loop passes on both ringloop
backends. A ringloop test that does not (fails, errors, skips, times out or
crashes) is an unexpected failure unless exceptions.txt lists it with a
reason; any unexpected failure makes the run exit 1. --report prints the same
tables and lists but always exits 0 (for use while features are missing).

    python tests/conformance/run.py                   # everything, gate
    python tests/conformance/run.py --report          # state, never fails
    python tests/conformance/run.py -m events,sock -b epoll
    python tests/conformance/run.py events.test_reader_callback -v
    python tests/conformance/run.py 'sock.test_sock_*' --no-reference
    python tests/conformance/run.py --list

The environment passes through, so RINGLOOP_DISABLE=multishot_recv,... runs
the suite with io_uring fast paths switched off. RINGLOOP_BACKEND is ignored:
each binding names its backend, and a loop that is not on the backend asked
for fails the test.

Test ids are GROUP.TEST_NAME (groups: events, subprocess, sock, sendfile,
server, buffered_proto, start_tls, ssl, streams, timeouts, taskgroups,
waitfor, subprocess_api); positional arguments are fnmatch patterns over
them, and a pattern without a dot matches the test name in every group.

Exit status: 0 ok (or --report), 1 unexpected failures, 2 harness error.
"""


import os
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import harness  # noqa: E402

SUITE = harness.Suite(
    name="conformance",
    doc=__doc__ or "",
    bindings_file=os.path.join(HERE, "bindings.py"),
    exceptions_file=os.path.join(HERE, "exceptions.txt"),
    group_word="mixin",
    timeout=45.0,
    timeout_help=": above test.support.SHORT_TIMEOUT, 30 s, which the "
                 "tests wait at most, so a test can fail on its own")


def main(argv: list[str] | None = None) -> int:
    return harness.main(SUITE, argv)


if __name__ == "__main__":
    sys.exit(main())
