"""Run ONE bound test in this process and write its outcome as JSON.

    python child.py RESULT.json BINDINGS.py GROUP KIND TEST_NAME TIMEOUT

harness.py starts one of these per (test, loop) in a fresh temporary working
directory (test_sendfile writes its data file into the cwd); BINDINGS.py is
the suite's bindings module, whose make_test(GROUP, KIND, TEST_NAME) gives
the unittest.TestCase to run (see harness.py). The unittest
report goes to stderr; the JSON record holds status (pass/fail/skip), the
skip reason, and for a failure a one-line summary of the exception and the
innermost frame it came from, which harness.py uses to group failures by cause.
A hang is cut by faulthandler shortly before harness.py's own deadline, with
every thread's traceback in the output.
"""

from __future__ import annotations

import faulthandler
import importlib.util
import json
import os
import sys
import time
import traceback
import unittest
from typing import Any

sys.dont_write_bytecode = True


def load_bindings(path: str) -> Any:
    """Import a suite's bindings module from its file, as "bindings"."""
    spec = importlib.util.spec_from_file_location("bindings", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bindings"] = module
    spec.loader.exec_module(module)
    return module


def _stub_name(exc: BaseException | None) -> str | None:
    """'loop.X()' if exc, or an exception it happened during, is the
    NotImplementedError of asyncio.AbstractEventLoop's stub for X."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, NotImplementedError):
            frames = traceback.extract_tb(exc.__traceback__)
            if frames and frames[-1].filename.endswith(
                    os.path.join("asyncio", "events.py")):
                return f"loop.{frames[-1].name}()"
            if not frames and not str(exc):
                # assertRaises() strips the traceback of what it caught.
                return "a loop method (seen by assertRaises)"
        exc = exc.__context__
        seen += 1
    return None


def _summary(err: Any) -> str:
    exc_type: type[BaseException] = err[0]
    exc, tb = err[1], err[2]
    stub = _stub_name(exc)
    if stub is not None:
        # The loop lacks the method (maybe seen through an assertRaises
        # that expected asyncio's own error from it).
        return f"not implemented: {stub}"
    msg = str(exc).strip().splitlines()
    text = exc_type.__name__ + (f": {msg[0][:160]}" if msg else "")
    frames = traceback.extract_tb(tb)
    if frames:
        inner = frames[-1]
        where = f"{os.path.basename(inner.filename)}:{inner.lineno} " \
                f"in {inner.name}"
        text += f"  [{where}]"
    return text


class _Result(unittest.TextTestResult):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.summaries: list[str] = []
        self.skip_reasons: list[str] = []

    def addError(self, test: Any, err: Any) -> None:
        self.summaries.append(_summary(err))
        super().addError(test, err)

    def addFailure(self, test: Any, err: Any) -> None:
        self.summaries.append(_summary(err))
        super().addFailure(test, err)

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
        if err is not None:
            self.summaries.append(_summary(err))
        super().addSubTest(test, subtest, err)

    def addSkip(self, test: Any, reason: str) -> None:
        self.skip_reasons.append(reason)
        super().addSkip(test, reason)

    def addUnexpectedSuccess(self, test: Any) -> None:
        self.summaries.append("unexpected success")
        super().addUnexpectedSuccess(test)


def main(argv: list[str]) -> int:
    out, bindings_file, group, kind, name, timeout = argv
    faulthandler.enable()
    # Leave harness.py a few seconds to collect the dump.
    faulthandler.dump_traceback_later(max(float(timeout) - 3, 1), exit=True)

    record: dict[str, Any] = {"status": "fail", "summary": "", "reason": ""}
    start = time.monotonic()
    try:
        bindings = load_bindings(bindings_file)
        suite = unittest.TestSuite([bindings.make_test(group, kind, name)])
        runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=2,
                                         resultclass=_Result)
        result = runner.run(suite)
    except BaseException as exc:   # binding failed: report, don't crash
        traceback.print_exc()
        record["summary"] = "harness: " + _summary(sys.exc_info())
        if isinstance(exc, KeyboardInterrupt):
            raise
    else:
        assert isinstance(result, _Result)
        if not result.wasSuccessful():
            record["summary"] = "; ".join(dict.fromkeys(result.summaries))
        elif result.skipped and result.testsRun <= len(result.skipped):
            record["status"] = "skip"
            record["reason"] = "; ".join(result.skip_reasons)
        else:
            record["status"] = "pass"
    record["duration"] = round(time.monotonic() - start, 3)
    # Set by test_utils.TestCase.tearDown's threading_cleanup() and
    # reap_children() when a test leaves threads or child processes behind
    # (regrtest calls this "env changed"); a note, not a failure.
    from test import support
    record["env_changed"] = bool(getattr(support, "environment_altered",
                                         False))
    # faulthandler stays armed: a hang at interpreter exit (a thread left
    # behind) is reported too.
    sys.stdout.flush()
    sys.stderr.flush()
    with open(out, "w") as fp:
        json.dump(record, fp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
