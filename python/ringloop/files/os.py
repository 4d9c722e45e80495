"""Async os functions (aiofiles.os's): ringloop.files.os.

On ringloop's loop, stat, lstat, rename, replace, remove, unlink, mkdir,
makedirs, rmdir, fsync and fdatasync are the loop's file ops (io_uring, or
the epoll backend's worker pool); the others (and calls with dir_fd
arguments) run in the default executor, as they do on any other loop.
Errors are os's: the same exception types, errno and filenames.
"""

from __future__ import annotations

import asyncio
import functools
import os as _os
from typing import Any

from . import ospath as path
from ._io import io_for

__all__ = ["path", "stat", "lstat", "rename", "renames", "replace", "remove",
           "unlink", "mkdir", "makedirs", "rmdir", "removedirs", "link",
           "symlink", "readlink", "listdir", "scandir", "access", "getcwd",
           "sendfile", "statvfs", "fsync", "fdatasync", "wrap"]


def _io(loop: Any) -> Any:
    return io_for(loop if loop is not None else asyncio.get_running_loop())


def wrap(func: Any) -> Any:
    """func(*args, **kwargs) in the default executor, as an async
    function (aiofiles.os.wrap)."""
    @functools.wraps(func)
    async def run(*args: Any, loop: Any = None, executor: Any = None,
                  **kwargs: Any) -> Any:
        loop = loop if loop is not None else asyncio.get_running_loop()
        return await loop.run_in_executor(
            executor, functools.partial(func, *args, **kwargs))
    return run


async def stat(path: Any, *, dir_fd: int | None = None,
               follow_symlinks: bool = True, loop: Any = None,
               executor: Any = None) -> _os.stat_result:
    if dir_fd is not None:
        return await _io(loop).run(functools.partial(
            _os.stat, path, dir_fd=dir_fd, follow_symlinks=follow_symlinks))
    return await _io(loop).stat(path, follow_symlinks)


async def lstat(path: Any, *, dir_fd: int | None = None, loop: Any = None,
                executor: Any = None) -> _os.stat_result:
    return await stat(path, dir_fd=dir_fd, follow_symlinks=False, loop=loop)


async def rename(src: Any, dst: Any, *, src_dir_fd: int | None = None,
                 dst_dir_fd: int | None = None, loop: Any = None,
                 executor: Any = None) -> None:
    if src_dir_fd is not None or dst_dir_fd is not None:
        return await _io(loop).run(functools.partial(
            _os.rename, src, dst, src_dir_fd=src_dir_fd,
            dst_dir_fd=dst_dir_fd))
    await _io(loop).rename(src, dst)


replace = rename  # rename(2) replaces on POSIX, as os.replace


async def remove(path: Any, *, dir_fd: int | None = None, loop: Any = None,
                 executor: Any = None) -> None:
    if dir_fd is not None:
        return await _io(loop).run(functools.partial(
            _os.remove, path, dir_fd=dir_fd))
    await _io(loop).unlink(path, False)


unlink = remove


async def rmdir(path: Any, *, dir_fd: int | None = None, loop: Any = None,
                executor: Any = None) -> None:
    if dir_fd is not None:
        return await _io(loop).run(functools.partial(
            _os.rmdir, path, dir_fd=dir_fd))
    await _io(loop).unlink(path, True)


async def mkdir(path: Any, mode: int = 0o777, *, dir_fd: int | None = None,
                loop: Any = None, executor: Any = None) -> None:
    if dir_fd is not None:
        return await _io(loop).run(functools.partial(
            _os.mkdir, path, mode, dir_fd=dir_fd))
    await _io(loop).mkdir(path, mode)


async def makedirs(name: Any, mode: int = 0o777, exist_ok: bool = False, *,
                   loop: Any = None, executor: Any = None) -> None:
    """os.makedirs(), each mkdir and stat a file op."""
    head, tail = _os.path.split(name)
    if not tail:
        head, tail = _os.path.split(head)
    if head and tail and not await path.exists(head, loop=loop):
        try:
            await makedirs(head, exist_ok=exist_ok, loop=loop)
        except FileExistsError:
            pass
        cdir = _os.curdir
        if isinstance(tail, bytes):
            cdir = bytes(_os.curdir, "ASCII")
        if tail == cdir:
            return
    try:
        await mkdir(name, mode, loop=loop)
    except OSError:
        if not exist_ok or not await path.isdir(name, loop=loop):
            raise


async def fsync(fd: Any, *, loop: Any = None, executor: Any = None) -> None:
    if not isinstance(fd, int):
        fd = fd.fileno()
    await _io(loop).fsync(fd, False)


async def fdatasync(fd: Any, *, loop: Any = None,
                    executor: Any = None) -> None:
    if not isinstance(fd, int):
        fd = fd.fileno()
    await _io(loop).fsync(fd, True)


renames = wrap(_os.renames)
removedirs = wrap(_os.removedirs)
link = wrap(_os.link)
symlink = wrap(_os.symlink)
readlink = wrap(_os.readlink)
listdir = wrap(_os.listdir)
scandir = wrap(_os.scandir)
access = wrap(_os.access)
getcwd = wrap(_os.getcwd)
sendfile = wrap(_os.sendfile)
statvfs = wrap(_os.statvfs)
