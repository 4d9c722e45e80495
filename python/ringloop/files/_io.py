"""The file operations a file object awaits, per event loop.

On ringloop's loop they are the loop's private ``_file_*`` methods (core
file ops: io_uring, or the epoll backend's non-blocking try and worker
pool); on any other loop, os functions run in the loop's default executor.

Cancellation: a read, stat or open that is cancelled is cancelled in the
core too (a read that has not started never happens; an fd opened anyway
is closed). A write or truncate once submitted is finished: the caller
learns how it ended, then CancelledError is raised.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from typing import Any

_CancelledError = asyncio.CancelledError
_cache: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


def io_for(loop: asyncio.AbstractEventLoop) -> "RingIO | ExecutorIO":
    """The operations for files used on loop."""
    try:
        return _cache[loop]
    except (KeyError, TypeError):
        pass
    io: RingIO | ExecutorIO
    if hasattr(loop, "_file_pread"):
        io = RingIO(loop)
    else:
        io = ExecutorIO(loop)
    try:
        _cache[loop] = io
    except TypeError:
        pass
    return io


async def _finish_op(op: Any) -> tuple[Any, bool]:
    """Wait for a submitted core op whatever cancels the caller meanwhile:
    (its result, whether the caller was cancelled)."""
    try:
        return await op, False
    except _CancelledError:
        pass
    while True:
        w = op.wait()
        try:
            return await w, True
        except _CancelledError:
            if not w.cancelled():
                raise


async def _finish_future(fut: "asyncio.Future[Any]") -> tuple[Any, bool]:
    """The same for an executor job's future."""
    cancelled = False
    while True:
        try:
            return await asyncio.shield(fut), cancelled
        except _CancelledError:
            if fut.cancelled():
                raise
            cancelled = True
            if fut.done():
                return fut.result(), True


class RingIO:
    """Core file ops on a ringloop loop."""

    ring = True

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.c_pread = loop._file_pread
        self.c_preadinto = loop._file_preadinto
        self.c_pwrite = loop._file_pwrite

    async def pread(self, fd: int, n: int, off: int,
                    direct: bool = False) -> bytes:
        op = self.c_pread(fd, n, off, direct)
        try:
            return await op
        except _CancelledError:
            op.cancel()
            raise

    async def preadinto(self, fd: int, buf: Any, off: int,
                        direct: bool = False) -> int:
        op = self.c_preadinto(fd, buf, off, direct)
        try:
            return await op
        except _CancelledError:
            op.cancel()
            raise

    async def pwrite_all(self, fd: int, data: Any, off: int,
                         direct: bool = False) -> int:
        """Write all of data at off (-1: the position, or the end with
        O_APPEND); uncancellable once started (see the top)."""
        view = memoryview(data).cast("B")
        total, cancelled = 0, False
        try:
            while total < len(view):
                part = view[total:] if total else view
                n, c = await _finish_op(
                    self.c_pwrite(fd, part, off if off < 0 else off + total,
                                  direct))
                cancelled = cancelled or c
                if n <= 0:
                    break
                total += n
        finally:
            view.release()
        if cancelled:
            raise _CancelledError()
        return total

    async def pwrite(self, fd: int, data: Any, off: int,
                     direct: bool = False) -> int:
        n, cancelled = await _finish_op(self.c_pwrite(fd, data, off, direct))
        if cancelled:
            raise _CancelledError()
        return n

    async def ftruncate(self, fd: int, size: int) -> None:
        _, cancelled = await _finish_op(self.loop._file_ftruncate(fd, size))
        if cancelled:
            raise _CancelledError()

    async def _cancellable(self, op: Any) -> Any:
        try:
            return await op
        except _CancelledError:
            op.cancel()
            raise

    def fsync(self, fd: int, datasync: bool) -> Any:
        return self._cancellable(self.loop._file_fsync(fd, datasync))

    def fallocate(self, fd: int, mode: int, off: int, length: int) -> Any:
        return self._cancellable(
            self.loop._file_fallocate(fd, mode, off, length))

    def open(self, path: Any, flags: int, mode: int) -> Any:
        return self._cancellable(self.loop._file_open(path, flags, mode))

    def stat(self, path: Any, follow: bool = True) -> Any:
        return self._cancellable(self.loop._file_stat(path, follow))

    def rename(self, src: Any, dst: Any) -> Any:
        return self._cancellable(self.loop._file_rename(src, dst))

    def unlink(self, path: Any, rmdir: bool = False) -> Any:
        return self._cancellable(self.loop._file_unlink(path, rmdir))

    def mkdir(self, path: Any, mode: int = 0o777) -> Any:
        return self._cancellable(self.loop._file_mkdir(path, mode))

    def hold(self, fd: int) -> None:
        self.loop._file_hold(fd)

    def release(self, fd: int) -> None:
        self.loop._file_release(fd)

    async def close(self, fd: int) -> None:
        if self.loop.is_closed():
            os.close(fd)
            return
        await _finish_op(self.loop._file_close(fd))

    def run(self, fn: Any, *args: Any) -> Any:
        """Something the core has no op for: the default executor."""
        return self.loop.run_in_executor(None, fn, *args)


def _direct_pread(fd: int, n: int, off: int) -> bytes:
    import mmap
    buf = mmap.mmap(-1, max(n, 4096))
    try:
        with memoryview(buf) as m:
            got = os.preadv(fd, [m[:n]], off)
        return bytes(buf[:got])
    finally:
        buf.close()


def _direct_pwrite(fd: int, data: Any, off: int) -> int:
    import mmap
    n = len(data)
    buf = mmap.mmap(-1, max(n, 4096))
    try:
        buf[:n] = data
        with memoryview(buf) as m:
            if off < 0:
                return os.writev(fd, [m[:n]])
            return os.pwritev(fd, [m[:n]], off)
    finally:
        buf.close()


def _pread(fd: int, n: int, off: int) -> bytes:
    return os.read(fd, n) if off < 0 else os.pread(fd, n, off)


def _pwrite(fd: int, data: Any, off: int) -> int:
    return os.write(fd, data) if off < 0 else os.pwrite(fd, data, off)


def _preadinto(fd: int, buf: Any, off: int) -> int:
    return os.readv(fd, [buf]) if off < 0 else os.preadv(fd, [buf], off)


def _stat(path: Any, follow: bool) -> os.stat_result:
    return os.stat(path, follow_symlinks=follow)


def _unlink(path: Any, rmdir: bool) -> None:
    (os.rmdir if rmdir else os.unlink)(path)


def _open(path: Any, flags: int, mode: int) -> int:
    return os.open(path, flags | os.O_CLOEXEC, mode)


class ExecutorIO:
    """os functions in the default executor (any other loop)."""

    ring = False

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def run(self, fn: Any, *args: Any) -> Any:
        return self.loop.run_in_executor(None, fn, *args)

    async def pread(self, fd: int, n: int, off: int,
                    direct: bool = False) -> bytes:
        return await self.run(_direct_pread if direct else _pread, fd, n, off)

    async def preadinto(self, fd: int, buf: Any, off: int,
                        direct: bool = False) -> int:
        if direct:
            data = await self.run(_direct_pread, fd, len(buf), off)
            memoryview(buf).cast("B")[:len(data)] = data
            return len(data)
        return await self.run(_preadinto, fd, buf, off)

    async def pwrite_all(self, fd: int, data: Any, off: int,
                         direct: bool = False) -> int:
        view = memoryview(data).cast("B")
        total, cancelled = 0, False
        fn = _direct_pwrite if direct else _pwrite
        while total < len(view):
            part = bytes(view[total:])
            n, c = await _finish_future(self.run(
                fn, fd, part, off if off < 0 else off + total))
            cancelled = cancelled or c
            if n <= 0:
                break
            total += n
        if cancelled:
            raise _CancelledError()
        return total

    async def pwrite(self, fd: int, data: Any, off: int,
                     direct: bool = False) -> int:
        fn = _direct_pwrite if direct else _pwrite
        n, cancelled = await _finish_future(self.run(fn, fd, data, off))
        if cancelled:
            raise _CancelledError()
        return n

    async def ftruncate(self, fd: int, size: int) -> None:
        _, cancelled = await _finish_future(self.run(os.ftruncate, fd, size))
        if cancelled:
            raise _CancelledError()

    def fsync(self, fd: int, datasync: bool) -> Any:
        return self.run(os.fdatasync if datasync else os.fsync, fd)

    def fallocate(self, fd: int, mode: int, off: int, length: int) -> Any:
        if mode:
            raise OSError(95, os.strerror(95))
        return self.run(os.posix_fallocate, fd, off, length)

    async def open(self, path: Any, flags: int, mode: int) -> int:
        fut = self.run(_open, path, flags, mode)
        try:
            return await asyncio.shield(fut)
        except _CancelledError:
            def close_it(f: "asyncio.Future[int]") -> None:
                if not f.cancelled() and f.exception() is None:
                    os.close(f.result())
            fut.add_done_callback(close_it)
            raise

    def stat(self, path: Any, follow: bool = True) -> Any:
        return self.run(_stat, path, follow)

    def rename(self, src: Any, dst: Any) -> Any:
        return self.run(os.rename, src, dst)

    def unlink(self, path: Any, rmdir: bool = False) -> Any:
        return self.run(_unlink, path, rmdir)

    def mkdir(self, path: Any, mode: int = 0o777) -> Any:
        return self.run(os.mkdir, path, mode)

    def hold(self, fd: int) -> None:
        pass

    def release(self, fd: int) -> None:
        pass

    async def close(self, fd: int) -> None:
        if self.loop.is_closed():
            os.close(fd)
            return
        await _finish_future(self.run(os.close, fd))
