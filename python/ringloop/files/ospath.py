"""Async os.path functions (aiofiles.ospath's): ringloop.files.os.path.

exists, isfile, isdir, islink, getsize, getmtime, getatime, getctime and
samefile stat through the loop's file ops on ringloop's loop; the others
run in the default executor.
"""

from __future__ import annotations

import asyncio
import os
import stat as _stat
from typing import Any

from ._io import io_for

__all__ = ["exists", "isfile", "isdir", "islink", "ismount", "getsize",
           "getmtime", "getatime", "getctime", "samefile", "sameopenfile",
           "abspath", "lexists"]


def _io(loop: Any) -> Any:
    return io_for(loop if loop is not None else asyncio.get_running_loop())


async def _stat_or_none(path: Any, follow: bool, loop: Any) -> Any:
    try:
        return await _io(loop).stat(path, follow)
    except (OSError, ValueError):
        return None


async def exists(path: Any, *, loop: Any = None, executor: Any = None) -> bool:
    return await _stat_or_none(path, True, loop) is not None


async def lexists(path: Any, *, loop: Any = None,
                  executor: Any = None) -> bool:
    return await _stat_or_none(path, False, loop) is not None


async def isfile(path: Any, *, loop: Any = None, executor: Any = None) -> bool:
    st = await _stat_or_none(path, True, loop)
    return st is not None and _stat.S_ISREG(st.st_mode)


async def isdir(path: Any, *, loop: Any = None, executor: Any = None) -> bool:
    st = await _stat_or_none(path, True, loop)
    return st is not None and _stat.S_ISDIR(st.st_mode)


async def islink(path: Any, *, loop: Any = None, executor: Any = None) -> bool:
    st = await _stat_or_none(path, False, loop)
    return st is not None and _stat.S_ISLNK(st.st_mode)


async def getsize(path: Any, *, loop: Any = None, executor: Any = None) -> int:
    return (await _io(loop).stat(path, True)).st_size


async def getmtime(path: Any, *, loop: Any = None,
                   executor: Any = None) -> float:
    return (await _io(loop).stat(path, True)).st_mtime


async def getatime(path: Any, *, loop: Any = None,
                   executor: Any = None) -> float:
    return (await _io(loop).stat(path, True)).st_atime


async def getctime(path: Any, *, loop: Any = None,
                   executor: Any = None) -> float:
    return (await _io(loop).stat(path, True)).st_ctime


async def samefile(f1: Any, f2: Any, *, loop: Any = None,
                   executor: Any = None) -> bool:
    io_ = _io(loop)
    s1 = await io_.stat(f1, True)
    s2 = await io_.stat(f2, True)
    return os.path.samestat(s1, s2)


async def sameopenfile(fp1: int, fp2: int, *, loop: Any = None,
                       executor: Any = None) -> bool:
    io_ = _io(loop)
    return os.path.samestat(await io_.stat(fp1, True),
                            await io_.stat(fp2, True))


async def ismount(path: Any, *, loop: Any = None,
                  executor: Any = None) -> bool:
    return await _io(loop).run(os.path.ismount, path)


async def abspath(path: Any, *, loop: Any = None,
                  executor: Any = None) -> Any:
    return await _io(loop).run(os.path.abspath, path)
