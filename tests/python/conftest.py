"""Fixtures: every test runs on stock asyncio, ringloop-epoll and
ringloop-uring; asyncio's own loop defines the expected behaviour."""

from __future__ import annotations

import asyncio
import faulthandler
import functools
import resource
import ssl
from typing import Any, Callable

import pytest
import trustme

import ringloop
from ringloop import _compat

LOOPS = ["asyncio", "epoll", "uring"]


def _uring_unavailable() -> str | None:
    try:
        ringloop.new_event_loop("uring").close()
    except OSError as exc:
        return f"io_uring unavailable here: {exc}"
    return None


_URING_SKIP = _uring_unavailable()


def make_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if kind == "asyncio":
        return asyncio.SelectorEventLoop
    return functools.partial(ringloop.new_event_loop, kind)


@pytest.fixture(params=LOOPS)
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "uring" and _URING_SKIP:
        pytest.skip(_URING_SKIP)
    return request.param


@pytest.fixture(params=["epoll", "uring"])
def backend(request: pytest.FixtureRequest) -> str:
    """A ringloop backend, for tests of ringloop's own API."""
    if request.param == "uring" and _URING_SKIP:
        pytest.skip(_URING_SKIP)
    return request.param


@pytest.fixture
def loop_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop]:
    return make_factory(kind)


@pytest.fixture
def loop(loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> Any:
    loop = loop_factory()
    yield loop
    if not loop.is_closed():
        if not loop.is_running():
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def run_with(factory: Callable[[], asyncio.AbstractEventLoop], main: Any,
             *, debug: bool | None = None) -> Any:
    """asyncio.run(main) on a loop from factory, on every Python version."""
    return _compat.run_with(factory, main, debug)


@pytest.fixture
def run(loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> Any:
    return functools.partial(run_with, loop_factory)


@pytest.fixture(autouse=True)
def _hang_guard() -> Any:
    # A hung loop must fail the run with a traceback, not stall CI.
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


class Certs:
    """A CA, a server certificate for localhost and 127.0.0.1, and the
    contexts that use them."""

    def __init__(self) -> None:
        ca = trustme.CA()
        self.server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost", "127.0.0.1").configure_cert(self.server)
        self.client = ssl.create_default_context()
        ca.configure_trust(self.client)
        self.untrusted = ssl.create_default_context()  # trusts another CA
        trustme.CA().configure_trust(self.untrusted)


@pytest.fixture(scope="module")
def certs() -> Certs:
    return Certs()


def raise_nofile(need: int) -> tuple[int, int] | None:
    """Raise the soft RLIMIT_NOFILE to need if it is lower: the limits it
    had, or None when the hard limit is lower than need."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            return None
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    return soft, hard
