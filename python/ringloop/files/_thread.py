"""Files that cannot seek (pipes, character devices): the built-in file
object, each method run in the default executor (as aiofiles does), one
at a time in call order."""

from __future__ import annotations

import asyncio
import functools
from typing import Any, AsyncIterator

_BLOCKING = ("read", "read1", "readinto", "readinto1", "readline",
             "readlines", "write", "writelines", "flush", "peek", "seek",
             "tell", "truncate")


class ThreadFile:
    def __init__(self, f: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._f = f
        self._loop = loop
        self._lock = asyncio.Lock()

    async def _call(self, name: str, *args: Any) -> Any:
        async with self._lock:
            fn = functools.partial(getattr(self._f, name), *args)
            return await self._loop.run_in_executor(None, fn)

    def __getattr__(self, name: str) -> Any:
        if name in _BLOCKING:
            return functools.partial(self._call, name)
        return getattr(self._f, name)

    async def pread(self, n: int, offset: int) -> bytes:
        import os
        return await self._loop.run_in_executor(None, os.pread,
                                                self._f.fileno(), n, offset)

    async def close(self) -> None:
        async with self._lock:
            await self._loop.run_in_executor(None, self._f.close)

    async def fsync(self) -> None:
        import os
        await self._call("flush")
        await self._loop.run_in_executor(None, os.fsync, self._f.fileno())

    async def fdatasync(self) -> None:
        import os
        await self._call("flush")
        await self._loop.run_in_executor(None, os.fdatasync,
                                         self._f.fileno())

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        line = await self._call("readline")
        if not line:
            raise StopAsyncIteration
        return line

    async def __aenter__(self) -> "ThreadFile":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
