"""The io_uring opt-ins (RINGLOOP_ENABLE=sqpoll, napi) and the registered
ring fd (ring_fd, on by default) seen from Python: a loop asking for them
runs an echo exactly as asyncio does, loop.backend_features says what is
active, and an unknown word in RINGLOOP_ENABLE is refused exactly as one in
RINGLOOP_DISABLE is."""

from __future__ import annotations

import asyncio
import hashlib
import platform
import re

import pytest

import ringloop

from conftest import _URING_SKIP, make_factory, run_with

SIZES = (1, 100, 1024, 65536, 300_000)


def _kernel_at_least(major: int, minor: int) -> bool:
    m = re.match(r"(\d+)\.(\d+)", platform.release())
    return bool(m) and (int(m[1]), int(m[2])) >= (major, minor)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The switches as each test sets them (the feature matrix may have set
    RINGLOOP_DISABLE or RINGLOOP_ENABLE for the whole run)."""
    for name in ("RINGLOOP_DISABLE", "RINGLOOP_ENABLE", "RINGLOOP_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


async def _echo() -> list[tuple[int, str]]:
    """A TCP echo server and a client on the running loop: one message of
    each size (a deterministic pattern), each answered in full. Returns
    (size, digest of what came back) per message."""
    async def handle(reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    got = []
    for size in SIZES:
        msg = bytes((i * 7 + size) & 0xFF for i in range(size))
        writer.write(msg)
        back = await reader.readexactly(size)
        got.append((len(back), hashlib.sha256(back).hexdigest()))
    writer.write_eof()
    assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return got


@pytest.fixture(scope="module")
def expected() -> list[tuple[int, str]]:
    return run_with(make_factory("asyncio"), _echo())


@pytest.mark.parametrize("words", ["sqpoll", "napi", "sqpoll,napi"])
def test_enable_echo_uring(clean_env: pytest.MonkeyPatch, words: str,
                           expected: list[tuple[int, str]]) -> None:
    if _URING_SKIP:
        pytest.skip(_URING_SKIP)
    clean_env.setenv("RINGLOOP_ENABLE", words)
    loop = ringloop.new_event_loop("uring")
    feats = loop.backend_features
    loop.close()
    assert loop.backend == "uring"
    # What this kernel takes (SQPOLL needs no privilege since 5.11, NAPI is
    # 6.9); a refused one is left off and the loop runs without it.
    if "sqpoll" in words and _kernel_at_least(5, 11):
        assert "sqpoll" in feats
    if "napi" in words and _kernel_at_least(6, 9):
        assert "napi" in feats
    if "sqpoll" in feats:
        # The kernel refuses the TASKRUN modes with SQPOLL.
        assert not feats & {"defer_taskrun", "coop_taskrun"}
    assert run_with(make_factory("uring"), _echo()) == expected


def test_opt_ins_off_by_default(clean_env: pytest.MonkeyPatch,
                                backend: str) -> None:
    loop = ringloop.new_event_loop(backend)
    feats = loop.backend_features
    loop.close()
    assert not feats & {"sqpoll", "napi"}
    if backend == "uring" and _kernel_at_least(5, 18):
        assert "ring_fd" in feats
    if backend == "epoll":
        assert feats == frozenset()


def test_disable_wins(clean_env: pytest.MonkeyPatch,
                      expected: list[tuple[int, str]]) -> None:
    if _URING_SKIP:
        pytest.skip(_URING_SKIP)
    clean_env.setenv("RINGLOOP_ENABLE", "sqpoll,napi,ring_fd")
    clean_env.setenv("RINGLOOP_DISABLE", "sqpoll,napi,ring_fd")
    loop = ringloop.new_event_loop("uring")
    feats = loop.backend_features
    loop.close()
    assert not feats & {"sqpoll", "napi", "ring_fd"}
    assert run_with(make_factory("uring"), _echo()) == expected


def test_enable_on_epoll(clean_env: pytest.MonkeyPatch,
                         expected: list[tuple[int, str]]) -> None:
    """The epoll backend has no io_uring features: the words are accepted
    and nothing changes."""
    clean_env.setenv("RINGLOOP_ENABLE", "sqpoll,napi")
    loop = ringloop.new_event_loop("epoll")
    assert loop.backend_features == frozenset()
    loop.close()
    assert run_with(make_factory("epoll"), _echo()) == expected


def _error_for(monkeypatch: pytest.MonkeyPatch, name: str,
               backend: str) -> BaseException:
    monkeypatch.setenv(name, "sqpoll,no_such_word")
    try:
        with pytest.raises(Exception) as info:
            ringloop.new_event_loop(backend).close()
    finally:
        monkeypatch.delenv(name)
    return info.value


def test_unknown_word(clean_env: pytest.MonkeyPatch, backend: str) -> None:
    enable = _error_for(clean_env, "RINGLOOP_ENABLE", backend)
    disable = _error_for(clean_env, "RINGLOOP_DISABLE", backend)
    assert type(enable) is type(disable)
    assert isinstance(enable, ValueError)
    assert "RINGLOOP_ENABLE" in str(enable)
