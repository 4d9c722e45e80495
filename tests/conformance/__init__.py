"""asyncio conformance harness: CPython's loop test mixins on ringloop.

See run.py (the command), bindings.py (which mixins, bound how),
harness.py (the engine, shared with tests/uvloop_suite),
child.py (one test in one process) and exceptions.txt.
"""
