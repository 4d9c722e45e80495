"""Bind CPython's asyncio loop test mixins to a loop factory.

The mixins come from the RUNNING interpreter's test.test_asyncio, so the
suite follows whatever Python runs the harness (3.10 to 3.13 today). Each
group below is one mixin; its test case class is built the way CPython builds
its own SelectorEventLoop test class in the same module, with only the loop
factory swapped:

  events      test_events.EventLoopTestsMixin       (+ UnixEventLoopTestsMixin,
                                                      test_utils.TestCase)
  subprocess  test_events.SubprocessTestsMixin      (same class as CPython's
                                                      EPollEventLoopTests)
  sock        test_sock_lowlevel.BaseSockTestsMixin (test_utils.TestCase)
  sendfile    test_sendfile.SendfileTestsBase       (test_utils.TestCase)
  server      test_server.BaseStartServer           (unittest.TestCase)
  buffered_proto test_buffered_proto.BaseTestBufferedProtocol
                                                     (unittest.TestCase)
  start_tls   test_sslproto.BaseStartTLS            (unittest.TestCase)
  ssl         test_ssl.TestSSL (3.11+; a TestCase itself, whose setUp
              calls asyncio.new_event_loop(): bound with an event loop
              policy that makes the kind's loops)
  subprocess_api test_subprocess.SubprocessMixin   (test_utils.TestCase,
                                                      a setUp making
                                                      self.loop, as CPython's
                                                      SubprocessProactorTests)

A group whose module this Python lacks (test_ssl on 3.10) has no tests.

Test methods that CPython's Linux selector class of the module defines itself
(e.g. SelectorStartServerTests.test_start_unix_server_1) are loop-agnostic
tests of public API and are bound too, as extras of that group.

Loops ("kinds"): "asyncio" is asyncio.SelectorEventLoop() (epoll selector on
Linux), the reference; "epoll" and "uring" are ringloop.new_event_loop(
backend=...). ringloop is imported only when a ringloop kind is bound.
"""

from __future__ import annotations

import asyncio
import importlib
import unittest
from dataclasses import dataclass
from typing import Any, Callable

KINDS = ("asyncio", "epoll", "uring")
RINGLOOP_KINDS = ("epoll", "uring")


@dataclass(frozen=True)
class Group:
    name: str
    module: str                      # under test.test_asyncio
    mixin: str                       # the mixin whose tests form the group
    # Bases before the TestCase class, in CPython's order. A base missing
    # from this Python's module (e.g. UnixEventLoopTestsMixin, which goes
    # with the child watchers) is replaced by the next one that exists.
    bases: tuple[tuple[str, ...], ...]
    testcase: str                    # "test_utils.TestCase" / "unittest"
    # CPython's own Linux selector class in the module: its own test_*
    # methods are bound as extras.
    selector_class: str = ""
    # The mixin uses self.loop but has no setUp making it (CPython's
    # classes of the module do, one per child watcher): bind() adds one.
    make_loop: bool = False
    doc: str = ""
    # The tests make their loops with asyncio.new_event_loop(): bind them
    # with an event loop policy that makes the kind's loops.
    policy: bool = False


GROUPS: dict[str, Group] = {g.name: g for g in (
    Group("events", "test_events", "EventLoopTestsMixin",
          bases=(("UnixEventLoopTestsMixin", "EventLoopTestsMixin"),),
          testcase="test_utils.TestCase",
          selector_class="EPollEventLoopTests",
          doc="test_events.EventLoopTestsMixin"),
    Group("subprocess", "test_events", "SubprocessTestsMixin",
          bases=(("UnixEventLoopTestsMixin", "EventLoopTestsMixin"),
                 ("SubprocessTestsMixin",)),
          testcase="test_utils.TestCase",
          doc="test_events.SubprocessTestsMixin"),
    Group("sock", "test_sock_lowlevel", "BaseSockTestsMixin",
          bases=(("BaseSockTestsMixin",),),
          testcase="test_utils.TestCase",
          selector_class="EPollEventLoopTests",
          doc="test_sock_lowlevel.BaseSockTestsMixin"),
    Group("sendfile", "test_sendfile", "SendfileTestsBase",
          bases=(("SendfileTestsBase",),),
          testcase="test_utils.TestCase",
          selector_class="EPollEventLoopTests",
          doc="test_sendfile.SendfileTestsBase"),
    Group("server", "test_server", "BaseStartServer",
          bases=(("BaseStartServer",),),
          testcase="unittest",
          selector_class="SelectorStartServerTests",
          doc="test_server.BaseStartServer"),
    Group("buffered_proto", "test_buffered_proto",
          "BaseTestBufferedProtocol",
          bases=(("BaseTestBufferedProtocol",),),
          testcase="unittest",
          selector_class="BufferedProtocolSelectorTests",
          doc="test_buffered_proto.BaseTestBufferedProtocol"),
    Group("start_tls", "test_sslproto", "BaseStartTLS",
          bases=(("BaseStartTLS",),),
          testcase="unittest",
          selector_class="SelectorStartTLSTests",
          doc="test_sslproto.BaseStartTLS"),
    Group("ssl", "test_ssl", "TestSSL",
          bases=(("TestSSL",),),
          testcase="test_utils.TestCase",
          doc="test_ssl.TestSSL",
          policy=True),
    # Whole test classes of loop-agnostic asyncio modules, whose loops come
    # from asyncio.new_event_loop() (setUp, or IsolatedAsyncioTestCase's
    # Runner): bound through the policy, they run on the kind's loop.
    Group("streams", "test_streams", "StreamTests",
          bases=(("StreamTests",),),
          testcase="test_utils.TestCase",
          doc="test_streams.StreamTests",
          policy=True),
    Group("timeouts", "test_timeouts", "TimeoutTests",
          bases=(("TimeoutTests",),),
          testcase="unittest",
          doc="test_timeouts.TimeoutTests (3.11+)",
          policy=True),
    Group("taskgroups", "test_taskgroups", "TestTaskGroup",
          bases=(("TestTaskGroup",),),
          testcase="unittest",
          doc="test_taskgroups.TestTaskGroup (3.11+)",
          policy=True),
    Group("waitfor", "test_waitfor", "AsyncioWaitForTest",
          bases=(("AsyncioWaitForTest",),),
          testcase="unittest",
          doc="test_waitfor.AsyncioWaitForTest (3.11+)",
          policy=True),
    Group("subprocess_api", "test_subprocess", "SubprocessMixin",
          bases=(("SubprocessMixin",),),
          testcase="test_utils.TestCase",
          make_loop=True,
          doc="test_subprocess.SubprocessMixin"),
)}


def _module(name: str) -> Any:
    return importlib.import_module(f"test.test_asyncio.{name}")


def _testcase_base(group: Group) -> type:
    if group.testcase == "unittest":
        return unittest.TestCase
    base: type = _module("utils").TestCase
    return base


def _bases(group: Group) -> list[type]:
    mod = _module(group.module)
    bases: list[type] = []
    for choices in group.bases:
        for name in choices:
            cls = getattr(mod, name, None)
            if cls is not None:
                bases.append(cls)
                break
        else:
            raise RuntimeError(f"test.test_asyncio.{group.module} has none "
                               f"of {choices}: harness needs updating")
    bases.append(_testcase_base(group))
    return bases


def _extras(group: Group) -> dict[str, Callable[..., Any]]:
    """test_* methods CPython's selector class adds to the mixin's."""
    if not group.selector_class:
        return {}
    cls = getattr(_module(group.module), group.selector_class, None)
    if cls is None:
        return {}
    return {name: meth for name, meth in vars(cls).items()
            if name.startswith("test") and callable(meth)}


def test_names(group_name: str) -> list[str]:
    """The group's test method names on this Python, sorted."""
    group = GROUPS[group_name]
    try:
        mod = _module(group.module)
    except ModuleNotFoundError:  # e.g. test_ssl before 3.11
        return []
    mixin = getattr(mod, group.mixin)
    names = set(unittest.TestLoader().getTestCaseNames(mixin))
    names.update(_extras(group))
    return sorted(names)


def loop_factory(kind: str) -> Callable[[], Any]:
    if kind == "asyncio":
        import asyncio
        return asyncio.SelectorEventLoop
    if kind not in RINGLOOP_KINDS:
        raise ValueError(f"unknown loop kind {kind!r}")
    import ringloop

    def factory() -> Any:
        loop = ringloop.new_event_loop(backend=kind)
        if loop.backend != kind:   # never test one backend under the other
            loop.close()
            raise RuntimeError(f"asked ringloop for {kind}, got "
                               f"{loop.backend}: "
                               f"{loop.backend_fallback_reason}")
        return loop
    return factory


def bind(group_name: str, kind: str) -> type:
    """The unittest.TestCase class running the group's tests on kind."""
    group = GROUPS[group_name]
    factory = loop_factory(kind)

    def create_event_loop(self: Any) -> Any:
        return factory()

    ns: dict[str, Any] = dict(_extras(group))
    # test_events / test_sock_lowlevel / test_sendfile call
    # create_event_loop(); functional.FunctionalTestCaseMixin calls new_loop().
    ns["create_event_loop"] = create_event_loop
    ns["new_loop"] = create_event_loop
    ns["__module__"] = __name__
    if group.policy:
        class Policy(asyncio.DefaultEventLoopPolicy):
            def new_event_loop(self) -> Any:
                return factory()

        # Around the whole run, not in setUp: IsolatedAsyncioTestCase makes
        # its loop (asyncio.Runner -> new_event_loop()) before setUp.
        def run(self: Any, result: Any = None) -> Any:
            asyncio.set_event_loop_policy(Policy())
            try:
                return super(cls, self).run(result)
            finally:
                asyncio.set_event_loop_policy(None)
        ns["run"] = run
    name = f"{group_name.title().replace('_', '')}_{kind}_Tests"
    cls = type(name, tuple(_bases(group)), ns)
    if group.make_loop:
        def setUp(self: Any) -> None:
            super(cls, self).setUp()
            self.loop = factory()
            self.set_event_loop(self.loop)
        cls.setUp = setUp  # type: ignore[attr-defined]
    return cls


def make_test(group_name: str, kind: str, name: str) -> unittest.TestCase:
    """The test GROUP.NAME on kind (what harness.py's child.py runs)."""
    return bind(group_name, kind)(name)
