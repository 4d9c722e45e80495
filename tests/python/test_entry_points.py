"""ringloop.run, new_event_loop, EventLoopPolicy, install, Runner,
IsolatedAsyncioTestCase, and how the backend is chosen and reported."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import unittest
from typing import Any

import pytest

import ringloop


async def _which() -> tuple[str, str]:
    loop = asyncio.get_running_loop()
    return type(loop).__name__, loop.backend


def test_run(backend: str) -> None:
    assert ringloop.run(_which(), backend=backend) == ("Loop", backend)


def test_run_debug(backend: str) -> None:
    async def main() -> bool:
        return asyncio.get_running_loop().get_debug()

    assert ringloop.run(main(), backend=backend, debug=True) is True


def test_new_event_loop(backend: str) -> None:
    loop = ringloop.new_event_loop(backend)
    try:
        assert isinstance(loop, ringloop.Loop)
        assert isinstance(loop, asyncio.AbstractEventLoop)
        assert loop.backend == backend
        assert loop.backend_fallback_reason is None
        assert loop.backend_fallback_errno == 0
        assert isinstance(loop.backend_features, frozenset)
    finally:
        loop.close()
    assert loop.backend == backend  # still readable after close


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.Runner")
def test_runner_loop_factory(backend: str) -> None:
    with asyncio.Runner(
            loop_factory=lambda: ringloop.new_event_loop(backend)) as r:
        assert r.run(_which()) == ("Loop", backend)
        assert r.run(_which()) == ("Loop", backend)


@pytest.mark.skipif(sys.version_info < (3, 12),
                    reason="asyncio.run(loop_factory=) is 3.12+")
def test_asyncio_run_loop_factory() -> None:
    res = asyncio.run(_which(), loop_factory=ringloop.new_event_loop)
    assert res[0] == "Loop"


def test_policy_and_install(backend: str) -> None:
    old = asyncio.get_event_loop_policy()
    try:
        asyncio.set_event_loop_policy(ringloop.EventLoopPolicy(backend))
        assert asyncio.run(_which()) == ("Loop", backend)
        ringloop.install()
        assert asyncio.run(_which())[0] == "Loop"
        loop = asyncio.new_event_loop()
        assert isinstance(loop, ringloop.Loop)
        loop.close()
    finally:
        asyncio.set_event_loop_policy(old)


def test_isolated_asyncio_test_case(backend: str) -> None:
    seen: list[Any] = []

    class Case(unittest.IsolatedAsyncioTestCase):
        async def asyncSetUp(self) -> None:
            seen.append("setup")

        async def test_it(self) -> None:
            loop = asyncio.get_running_loop()
            seen.append((type(loop).__name__, loop.backend))
            await asyncio.sleep(0.001)
            await asyncio.to_thread(lambda: None)

        async def asyncTearDown(self) -> None:
            seen.append("teardown")

    if sys.version_info >= (3, 13):
        Case.loop_factory = staticmethod(  # type: ignore[attr-defined]
            lambda: ringloop.new_event_loop(backend))
        policy = None
    else:
        policy = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(ringloop.EventLoopPolicy(backend))
    try:
        result = unittest.TestResult()
        Case("test_it").run(result)
    finally:
        if policy is not None:
            asyncio.set_event_loop_policy(policy)
    assert result.wasSuccessful(), result.errors + result.failures
    assert seen == ["setup", ("Loop", backend), "teardown"]


def test_bad_backend_name() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        ringloop.new_event_loop("kqueue")
    with pytest.raises(TypeError):
        ringloop.new_event_loop(3)  # type: ignore[arg-type]


def _env_backend(value: str) -> subprocess.CompletedProcess[str]:
    code = ("import sys; sys.path[:0] = %r; import ringloop; "
            "l = ringloop.new_event_loop(); "
            "print(l.backend, l.backend_fallback_reason); l.close()"
            % (sys.path,))
    env = dict(os.environ, RINGLOOP_BACKEND=value)
    return subprocess.run([sys.executable, "-c", code], env=env,
                          capture_output=True, text=True, timeout=60)


def test_env_backend(backend: str) -> None:
    out = _env_backend(backend)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == backend


def test_env_backend_invalid() -> None:
    out = _env_backend("bogus")
    assert out.returncode != 0
    assert "RINGLOOP_BACKEND" in out.stderr


def test_explicit_argument_beats_env() -> None:
    code = ("import sys; sys.path[:0] = %r; import ringloop; "
            "l = ringloop.new_event_loop('epoll'); print(l.backend); "
            "l.close()" % (sys.path,))
    env = dict(os.environ, RINGLOOP_BACKEND="uring")
    out = subprocess.run([sys.executable, "-c", code], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "epoll", out.stderr


def test_public_api() -> None:
    for name in ringloop.__all__:
        assert hasattr(ringloop, name)
    assert ringloop.Handle.__name__ == "Handle"
    assert ringloop.TimerHandle.__mro__[1] is ringloop.Handle
