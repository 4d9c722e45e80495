"""Bind uvloop's test classes to ringloop loops.

uvloop's tests (tests/test_*.py of its source distribution, imported as
top-level modules from the unpacked sdist's tests/ directory, see run.py)
write each test once in a mixin and bind it twice: to uvloop
(`class Test_UV_TCP(_TestTCP, tb.UVTestCase)`) and to asyncio
(`class Test_AIO_TCP(_TestTCP, tb.AIOTestCase)`). The loop comes from
`self.new_loop()` in uvloop._testbase.BaseTestCase.setUp, the policy set
around the test from `self.new_policy()`, and where asyncio and uvloop
differ a test branches on `self.implementation` ('asyncio' / 'uvloop') or
`self.is_asyncio_loop()`.

Groups are the test modules; a test is CLASS.METHOD of an asyncio class
(a subclass of tb.AIOTestCase): the test ids are unittest's own
(test_tcp.Test_AIO_TCP.test_create_server_1). Classes bound to uvloop only
(Test_UV_*, TestUV*, TestPolicy) test uvloop itself and are not bound.

Loops ("kinds"):
  asyncio  the asyncio class as it is: asyncio.new_event_loop() (the
           selector loop) under asyncio's default policy, the reference.
  epoll, uring
           a subclass of the asyncio class whose new_loop() is
           ringloop.new_event_loop(backend=...) (a loop not on that
           backend fails the test), whose new_policy() is
           ringloop.EventLoopPolicy(backend=...) (so asyncio.new_event_loop()
           inside a test makes the same kind), and whose is_asyncio_loop()
           is True: ringloop follows asyncio where asyncio and uvloop differ
           (DESIGN.md), so it runs every test as asyncio, taking the tests'
           asyncio branches (implementation stays 'asyncio').
           CLASS_ATTRS below sets what else a class reads for its loop.

On every loop, _testbase.find_free_port() (the first free port from 50000
up) becomes a port the kernel picks: the harness runs tests side by side,
and two tests that ask at once would both get the same port.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import socket
import sys
import types
import unittest
from typing import Any, Callable

KINDS = ("asyncio", "epoll", "uring")
RINGLOOP_KINDS = ("epoll", "uring")

GROUPS = ("test_base", "test_context", "test_dns", "test_executors",
          "test_pipes", "test_process", "test_signals", "test_sockets",
          "test_tcp", "test_udp", "test_unix")

# Class attributes (per module) the tests read for the loop that a
# subprocess they start makes, formatted with the kind: test_signals' child
# programs run `loop = <NEW_LOOP>` (asyncio's class: asyncio.new_event_loop()).
CLASS_ATTRS: dict[str, dict[str, str]] = {
    "test_signals": {
        "NEW_LOOP": "__import__('ringloop').new_event_loop(backend={kind!r})",
    },
}

_CONFORMANCE_BINDINGS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "conformance", "bindings.py")


def _conformance() -> Any:
    # The asyncio conformance harness's bindings: its loop_factory().
    name = "conformance_bindings"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, _CONFORMANCE_BINDINGS)
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def loop_factory(kind: str) -> Callable[[], Any]:
    """A callable making a loop of kind; a ringloop loop on another
    backend than the one asked for raises RuntimeError."""
    if kind == "asyncio":
        import asyncio
        return asyncio.new_event_loop
    factory: Callable[[], Any] = _conformance().loop_factory(kind)
    return factory


def _aio_classes(group: str) -> dict[str, type]:
    from uvloop import _testbase as tb
    module = importlib.import_module(group)
    return {name: cls for name, cls in sorted(vars(module).items())
            if isinstance(cls, type) and issubclass(cls, tb.AIOTestCase)
            and cls.__module__ == module.__name__}


def test_names(group: str) -> list[str]:
    """CLASS.METHOD of every test of the module's asyncio classes."""
    loader = unittest.TestLoader()
    return [f"{name}.{method}"
            for name, cls in _aio_classes(group).items()
            for method in loader.getTestCaseNames(cls)]


def bind(cls: type, kind: str) -> type:
    """The asyncio test class cls on kind's loops (see the docstring)."""
    if kind == "asyncio":
        return cls
    import ringloop

    factory = loop_factory(kind)
    attrs: dict[str, Any] = {
        name: value.format(kind=kind)
        for name, value in CLASS_ATTRS.get(cls.__module__, {}).items()}

    def new_loop(self: Any) -> Any:
        return factory()

    def new_policy(self: Any) -> Any:
        return ringloop.EventLoopPolicy(backend=kind)

    def is_asyncio_loop(self: Any) -> bool:
        return True

    attrs.update(new_loop=new_loop, new_policy=new_policy,
                 is_asyncio_loop=is_asyncio_loop,
                 __module__=cls.__module__)
    # _testbase's metaclass gives the class body a dict of its own.
    return types.new_class(f"{cls.__name__}_{kind}", (cls,),
                           exec_body=lambda ns: ns.update(attrs))


def _free_port(start_from: int = 50000) -> int:
    """_testbase.find_free_port() for test processes that run side by side:
    a port the kernel picks, not the first free one from 50000 up, which two
    tests that run at once both get before either binds it."""
    with socket.socket() as sock:
        sock.bind(("", 0))
        port: int = sock.getsockname()[1]
        return port


def make_test(group: str, kind: str, name: str) -> unittest.TestCase:
    """The test GROUP.CLASS.METHOD on kind (what child.py runs)."""
    from uvloop import _testbase as tb
    tb.find_free_port = _free_port    # on every loop, asyncio's too
    class_name, method = name.split(".")
    test: unittest.TestCase = bind(_aio_classes(group)[class_name],
                                   kind)(method)
    return test
