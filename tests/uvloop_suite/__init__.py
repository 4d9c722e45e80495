"""uvloop's test suite on ringloop: the asyncio test classes of a pinned
uvloop release's tests, bound to ringloop's loops.

See run.py (the command: fetch, then tests/conformance/harness.py),
bindings.py (which classes, bound how) and exceptions.txt.
"""
