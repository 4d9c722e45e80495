"""add_signal_handler / remove_signal_handler and Ctrl-C, as asyncio's
unix loop."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest


def _kill_later(sig: int, delay: float = 0.05) -> threading.Thread:
    def fire() -> None:
        time.sleep(delay)
        os.kill(os.getpid(), sig)

    t = threading.Thread(target=fire)
    t.start()
    return t


def test_add_signal_handler(loop: Any) -> None:
    got: list[Any] = []

    def handler(*args: Any) -> None:
        got.append(args)
        loop.stop()

    loop.add_signal_handler(signal.SIGUSR1, handler, "a", 1)
    try:
        loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
        loop.run_forever()
    finally:
        assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert got == [("a", 1)]
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_signal_wakes_sleeping_loop(loop: Any) -> None:
    got: list[int] = []

    def handler() -> None:
        got.append(1)
        loop.stop()

    loop.add_signal_handler(signal.SIGUSR2, handler)
    t = _kill_later(signal.SIGUSR2)
    try:
        loop.run_forever()  # nothing scheduled: woken by the signal only
    finally:
        t.join()
        loop.remove_signal_handler(signal.SIGUSR2)
    assert got == [1]


def test_remove_signal_handler(loop: Any) -> None:
    assert loop.remove_signal_handler(signal.SIGUSR1) is False
    loop.add_signal_handler(signal.SIGINT, print)
    assert loop.remove_signal_handler(signal.SIGINT) is True
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_signal_handler_errors(loop: Any) -> None:
    async def coro() -> None:
        pass

    with pytest.raises(TypeError):
        loop.add_signal_handler(signal.SIGUSR1, coro)
    with pytest.raises(TypeError):
        loop.add_signal_handler("USR1", print)
    with pytest.raises(ValueError):
        loop.add_signal_handler(100000, print)
    with pytest.raises(RuntimeError):
        loop.add_signal_handler(signal.SIGKILL, print)


def test_signal_handler_from_other_thread(loop: Any) -> None:
    errors: list[type] = []

    def other() -> None:
        try:
            loop.add_signal_handler(signal.SIGUSR1, print)
        except RuntimeError:
            errors.append(RuntimeError)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert errors == [RuntimeError]


def test_close_removes_signal_handlers(loop_factory: Any) -> None:
    loop = loop_factory()
    loop.add_signal_handler(signal.SIGUSR1, print)
    loop.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signals go to the main thread")
def test_ctrl_c_interrupts_run_until_complete(loop: Any) -> None:
    t = _kill_later(signal.SIGINT)
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(asyncio.sleep(30))
    finally:
        t.join()
    assert not loop.is_running()


def test_ctrl_c_interrupts_idle_loop(loop: Any) -> None:
    t = _kill_later(signal.SIGINT)
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(loop.create_future())
    finally:
        t.join()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.Runner")
def test_ctrl_c_with_runner_cancels_main(loop_factory: Any) -> None:
    cancelled: list[bool] = []

    async def main() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    t = _kill_later(signal.SIGINT)
    try:
        with pytest.raises(KeyboardInterrupt):
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                runner.run(main())
    finally:
        t.join()
    assert cancelled == [True]


SCRIPT = """
import asyncio, os, signal, sys
sys.path[:0] = {path!r}
import ringloop

async def main():
    asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(),
                                          signal.SIGINT)
    try:
        await asyncio.sleep(30)
    finally:
        print("finally ran", flush=True)

try:
    {runner}
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
"""


def test_ctrl_c_program_output_matches_asyncio(kind: str) -> None:
    runner = ("asyncio.run(main())" if kind == "asyncio"
              else f"ringloop.run(main(), backend={kind!r})")
    code = textwrap.dedent(SCRIPT).format(path=sys.path, runner=runner)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=60)
    assert out.stdout == "finally ran\nKeyboardInterrupt\n", out.stderr
