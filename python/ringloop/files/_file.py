"""ringloop.files.open() and its file objects.

A file object wraps the stack the built-in open() would build (see
_shadow.py): each method reads ahead what the stack's method will need
(awaiting the loop's file ops), runs the stack's method, then writes out
what it wrote. Its methods run one at a time, in call order (a FIFO per
file); pread() calls, which neither move the position nor change the file,
run concurrently with each other.
"""

from __future__ import annotations

import asyncio
import codecs
import io
import os
import stat as _stat
import warnings
from collections import deque
from typing import Any, AsyncIterator, Callable, Generator, Iterable

from ._io import ExecutorIO, RingIO, io_for
from ._shadow import Shadow

_CancelledError = asyncio.CancelledError
_MASK64 = (1 << 64) - 1
_SLACK = 64


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None and hasattr(task, "uncancel"):
        task.uncancel()


class _Captured(Exception):
    pass


def _flags_of(file: Any, mode: str, buffering: int, encoding: Any,
              errors: Any, newline: Any, closefd: bool) -> int:
    """Validate the arguments as the built-in open() does (same errors)
    and return the flags it would open the file with."""
    got: list[int] = []

    def capture(path: Any, flags: int) -> int:
        got.append(flags)
        raise _Captured

    try:
        f = io.open(file, mode, buffering, encoding, errors, newline,
                    closefd, capture)
    except _Captured:
        return got[0]
    f.close()  # not reached for paths
    raise AssertionError("open() did not call its opener")


def _mode_bits(mode: str) -> tuple[bool, bool, bool, bool, bool]:
    """(reading, writing, appending, creating, updating) of a valid mode."""
    return ("r" in mode, "w" in mode, "a" in mode, "x" in mode, "+" in mode)


def _raw_mode(flags_mode: str) -> str:
    r, w, a, x, plus = _mode_bits(flags_mode)
    if x:
        return "xb+" if plus else "xb"
    if a:
        return "ab+" if plus else "ab"
    if r:
        return "rb+" if plus else "rb"
    return "rb+" if plus else "wb"


class AsyncFile:
    """A file opened by ringloop.files.open(): the built-in file object's
    methods, awaited (and pread/pwrite/fsync/fdatasync)."""

    def __init__(self, io_: RingIO | ExecutorIO, stack: Any, raw: Shadow,
                 closefd: bool, direct: bool, text: bool) -> None:
        self._io = io_
        self._stack = stack
        self._raw = raw
        self._fd = raw.fd
        self._closefd = closefd
        self._direct = direct
        self._text = text
        self._buffered = stack if not text else stack.buffer
        if self._buffered is raw:
            self._buffered = None
        self._reader = (not text
                        and type(self._buffered) is io.BufferedReader)
        self._bufsize = getattr(self, "_bs", io.DEFAULT_BUFFER_SIZE)
        self._closed = False
        # the FIFO: one exclusive op, or any number of preads, at a time
        self._excl = False
        self._shared = 0
        self._q: deque[tuple[asyncio.Future[None], bool]] = deque()
        self._pread_op = io_.c_pread if isinstance(io_, RingIO) else None
        self._nl: tuple[bytes, ...] | None = None

    # -- the FIFO ------------------------------------------------------------
    async def _wait_turn(self, excl: bool) -> None:
        fut = self._io.loop.create_future()
        item = (fut, excl)
        self._q.append(item)
        try:
            await fut
        except _CancelledError:
            if fut.done() and not fut.cancelled():
                self._leave(excl)  # our turn came just as we were cancelled
            else:
                try:
                    self._q.remove(item)
                except ValueError:
                    pass
                self._dispatch()
            raise

    def _leave(self, excl: bool) -> None:
        if excl:
            self._excl = False
        else:
            self._shared -= 1
        if self._q:
            self._dispatch()

    def _dispatch(self) -> None:
        q = self._q
        while q:
            fut, excl = q[0]
            if fut.done():
                q.popleft()
                continue
            if excl:
                if self._excl or self._shared:
                    return
                self._excl = True
                q.popleft()
                fut.set_result(None)
                return
            if self._excl:
                return
            self._shared += 1
            q.popleft()
            fut.set_result(None)

    # -- reading ahead and writing out ---------------------------------------
    async def _fill(self, p: int, n: int) -> None:
        """Make the window hold file[p:p+n] (less at the end of file)."""
        raw = self._raw
        ws, we = raw.wstart, raw.window_end()
        end = p + n
        if ws <= p and end <= we:
            return
        if ws <= p <= we and we > ws:
            data = await self._io.pread(self._fd, end - we, we, self._direct)
            raw.extend_window(data, len(data) < end - we,
                              min(p, self._logical()))
        else:
            data = await self._io.pread(self._fd, n, p, self._direct)
            raw.set_window(p, data, len(data) < n)

    async def _fill_to_eof(self, p: int) -> None:
        raw = self._raw
        if not (raw.wstart <= p <= raw.window_end()):
            await self._fill(p, self._bufsize)
        while not raw.weof:
            we = raw.window_end()
            size = os.fstat(self._fd).st_size
            want = max(size - we + 1, self._bufsize)
            data = await self._io.pread(self._fd, want, we, self._direct)
            raw.extend_window(data, len(data) < want, min(p, raw.wstart))

    async def _fill_line(self, p: int, limit: int, seps: tuple[bytes, ...],
                         extra: int) -> None:
        """Read ahead from p up to a line end (any of seps) or limit."""
        raw = self._raw
        step = max(self._bufsize, 8192)
        if not (raw.wstart <= p <= raw.window_end()):
            await self._fill(p, step)
        while True:
            i = p - raw.wstart
            hits = [j for j in (raw.wbuf.find(s, max(i, 0)) for s in seps)
                    if j >= 0]
            if hits:
                end = raw.wstart + min(hits) + _SLACK + extra
            elif limit >= 0 and raw.window_end() >= p + limit + extra:
                end = p + limit + extra
            elif raw.weof:
                return
            else:
                end = raw.window_end() + step
                step *= 2
                if limit >= 0:
                    end = min(end, p + limit + extra)
                await self._fill(raw.wstart if raw.wstart <= p else p,
                                 end - min(raw.wstart, p))
                if raw.weof:
                    return
                continue
            if limit >= 0:
                end = min(end, p + limit + extra + _SLACK)
            if end > raw.window_end() and not raw.weof:
                await self._fill(p, end - p)
            return

    def _logical(self) -> int:
        """The position the buffered layer is at (its read-ahead starts
        there)."""
        b = self._buffered
        if b is None or b.closed:
            return self._raw.pos
        try:
            return b.tell()
        except (OSError, ValueError):
            return self._raw.pos

    async def _writeback(self) -> None:
        """Write out the log (uncancellable; CancelledError after)."""
        raw = self._raw
        log, raw.log = raw.log, []
        cancelled = False
        # contiguous writes in a row go out as one
        merged: list[tuple[int, Any]] = []
        for off, d in log:
            if (d is not None and merged and merged[-1][1] is not None
                    and not raw.append
                    and merged[-1][0] + len(merged[-1][1]) == off):
                prev = merged[-1]
                buf = prev[1] if type(prev[1]) is bytearray \
                    else bytearray(prev[1])
                buf += d
                merged[-1] = (prev[0], buf)
            else:
                merged.append((off, d))
        for off, d in merged:
            try:
                if d is None:
                    await self._io.ftruncate(self._fd, off)
                else:
                    await self._io.pwrite_all(
                        self._fd, d, -1 if raw.append else off, self._direct)
            except _CancelledError:
                cancelled = True
        if cancelled:
            raise _CancelledError()

    # -- running a method ----------------------------------------------------
    async def _run(self, fn: Callable[..., Any], args: tuple[Any, ...],
                   ahead: Any = None) -> Any:
        """Take our turn; await `ahead` (a read-ahead) unless closed; run
        fn(*args) on the stack; write out what it wrote."""
        if self._excl or self._shared or self._q:
            await self._wait_turn(True)
        else:
            self._excl = True
        try:
            if ahead is not None and not self._closed:
                await ahead()
            r = fn(*args)
            if self._raw.log:
                try:
                    await self._writeback()
                except _CancelledError:
                    if ahead is None:
                        raise  # it happened: written out, then cancelled
                    # a read happened (and what it flushed is written
                    # out): its result is the caller's, the cancellation
                    # came too late
                    _uncancel()
            return r
        finally:
            self._excl = False
            if self._q:
                self._dispatch()

    def _readable(self) -> bool:
        return not self._closed and self._raw._readable

    def _ahead_n(self, n: int) -> Callable[[], Any] | None:
        """Read ahead for a read of n bytes (characters in text mode; -1:
        all)."""
        if not self._readable():
            return None
        raw = self._raw

        async def ahead() -> None:
            p = raw.pos
            if n is None or n < 0:
                await self._fill_to_eof(self._logical())
                return
            bs = self._bufsize
            if self._text:
                chunk = max(self._stack._CHUNK_SIZE, bs)
                await self._fill(p, 8 * n + 2 * chunk + _SLACK)
                return
            have = p - self._logical()
            if have >= n:
                return
            await self._fill(p, n - max(have, 0) + bs)
        return ahead

    # -- the file's methods --------------------------------------------------
    async def read(self, size: int | None = -1) -> Any:
        """Read up to size bytes (characters in text mode); all if -1."""
        if size is None:
            size = -1
        if (self._reader and size is not None and size > 0
                and not self._closed):
            return await self._read_buffered(size.__index__())
        if (self._buffered is None and not self._text and size > 0
                and self._readable()):
            return await self._read_raw(size.__index__())
        return await self._run(self._stack.read, (size,),
                               self._ahead_n(size))

    async def _read_raw(self, n: int) -> bytes:
        """buffering=0: one read at the position, as FileIO.read."""
        if self._excl or self._shared or self._q:
            await self._wait_turn(True)
        else:
            self._excl = True
        try:
            raw = self._raw
            data = await self._io.pread(self._fd, n, raw.pos, self._direct)
            raw.pos += len(data)
            return data
        finally:
            self._excl = False
            if self._q:
                self._dispatch()

    async def _read_buffered(self, n: int) -> bytes:
        """BufferedReader.read(n): what is buffered, then (when n spans
        whole buffers) one direct read into the result, as the built-in
        reads whole blocks past its buffer."""
        if self._excl or self._shared or self._q:
            await self._wait_turn(True)
        else:
            self._excl = True
        try:
            stack, raw, bs = self._stack, self._raw, self._bufsize
            lpos = stack.tell()
            have = raw.pos - lpos
            if n <= have:
                return stack.read(n)
            if have or n < bs:
                await self._fill(raw.pos, n - have + bs)
                return stack.read(n)
            bulk = n // bs * bs
            p = raw.pos
            data = await self._io.pread(self._fd, bulk, p, self._direct)
            parts = [data]
            got = len(data)
            while data and got < bulk:
                data = await self._io.pread(self._fd, bulk - got, p + got,
                                            self._direct)
                parts.append(data)
                got += len(data)
            if got == bulk and n > bulk:
                await self._fill(p + got, bs)
            # nothing changed until here (a cancelled read never started)
            raw.pos = p + got
            stack.seek(p + got)
            res = parts[0] if len(parts) == 1 else b"".join(parts)
            if got < bulk or n == bulk:
                return res
            return res + stack.read(n - bulk)
        finally:
            self._excl = False
            if self._q:
                self._dispatch()

    async def read1(self, size: int = -1) -> bytes:
        """Read up to size bytes with at most one read from the file."""
        read1 = self._stack.read1  # AttributeError in text mode, as open()
        n = self._bufsize if size is None or size < 0 else max(
            size, self._bufsize)
        return await self._run(read1, (size,), self._ahead_n(n))

    async def readinto(self, b: Any) -> int:
        """Read into b; the number of bytes read."""
        n = memoryview(b).nbytes
        return await self._run(self._stack.readinto, (b,), self._ahead_n(n))

    async def readinto1(self, b: Any) -> int:
        n = max(memoryview(b).nbytes, self._bufsize)
        return await self._run(self._stack.readinto1, (b,),
                               self._ahead_n(n))

    async def peek(self, size: int = 0) -> bytes:
        return await self._run(self._stack.peek, (size,),
                               self._ahead_n(self._bufsize))

    def _line_seps(self) -> tuple[bytes, ...]:
        if self._nl is None:
            if not self._text:
                self._nl = (b"\n",)
            else:
                enc = codecs.getincrementalencoder(self._stack.encoding)()
                enc.encode("a")
                seps = []
                for s in ("\n", "\r"):
                    try:
                        e = enc.encode(s)
                    except UnicodeError:
                        continue
                    if e:
                        seps.append(e)
                self._nl = tuple(seps) or (b"\n",)
        return self._nl

    def _ahead_line(self, limit: int) -> Callable[[], Any] | None:
        if not self._readable():
            return None

        async def ahead() -> None:
            if self._text:
                chunk = max(self._stack._CHUNK_SIZE, self._bufsize)
                lim = -1 if limit is None or limit < 0 else 8 * limit
                await self._fill_line(self._logical(), lim,
                                      self._line_seps(), 2 * chunk)
            else:
                lim = -1 if limit is None or limit < 0 else limit
                await self._fill_line(self._logical(), lim, (b"\n",),
                                      self._bufsize)
        return ahead

    async def readline(self, size: int | None = -1) -> Any:
        """Read one line (at most size bytes or characters)."""
        if size is None:
            size = -1
        return await self._run(self._stack.readline, (size,),
                               self._ahead_line(size.__index__()))

    async def readlines(self, hint: int | None = -1) -> list[Any]:
        """The lines up to the end, or until hint bytes/characters."""
        if hint is None or hint <= 0:
            return await self._run(self._stack.readlines, (),
                                   self._ahead_n(-1))
        return await self._run(self._stack.readlines, (hint,),
                               self._ahead_hint(hint))

    def _ahead_hint(self, hint: int) -> Callable[[], Any] | None:
        if not self._readable():
            return None

        async def ahead() -> None:
            p = self._logical()
            chunk = max(self._stack._CHUNK_SIZE, self._bufsize) \
                if self._text else self._bufsize
            need = (8 if self._text else 1) * hint + 2 * chunk
            await self._fill(p, need)
            await self._fill_line(p + need, -1, self._line_seps(),
                                  2 * chunk)
        return ahead

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    async def write(self, b: Any) -> int:
        """Write b (bytes-like, or str in text mode); the count written."""
        return await self._run(self._stack.write, (b,))

    async def writelines(self, lines: Iterable[Any]) -> None:
        await self._run(self._stack.writelines, (lines,))

    def _ahead_seek(self, offset: int, whence: int) -> Any:
        if not (self._text and whence == 0 and self._readable()):
            return None
        try:
            cookie = offset.__index__()
        except (AttributeError, TypeError):
            return None
        if cookie < 0:
            return None
        start = cookie & _MASK64
        feed = (cookie >> 128) & _MASK64

        async def ahead() -> None:
            if feed:
                await self._fill(start, feed + self._bufsize + _SLACK)
        return ahead

    async def seek(self, offset: int, whence: int = 0) -> int:
        """Move to offset (a tell() cookie in text mode); the new position."""
        return await self._run(self._stack.seek, (offset, whence),
                               self._ahead_seek(offset, whence))

    async def tell(self) -> int:
        return await self._run(self._stack.tell, ())

    async def truncate(self, size: int | None = None) -> int:
        return await self._run(self._stack.truncate, (size,))

    async def flush(self) -> None:
        await self._run(self._stack.flush, ())

    async def close(self) -> None:
        """Flush and close (closing twice is allowed)."""
        if self._excl or self._shared or self._q:
            await self._wait_turn(True)
        else:
            self._excl = True
        try:
            if self._closed:
                return
            try:
                try:
                    self._stack.close()
                finally:
                    if self._raw.log:
                        await self._writeback()
            finally:
                self._closed = True
                if self._closefd:
                    await self._io.close(self._fd)
                else:
                    self._io.release(self._fd)
        finally:
            self._excl = False
            if self._q:
                self._dispatch()

    # -- positional I/O and sync (ringloop.files extensions) -----------------
    async def pread(self, n: int, offset: int) -> bytes:
        """Read up to n bytes at offset; the position does not move."""
        if self._closed:
            raise ValueError("I/O operation on closed file.")
        if self._excl or self._q:
            await self._wait_turn(False)
        else:
            self._shared += 1
        try:
            op = self._pread_op
            if op is None:
                return await self._io.pread(self._fd, n, offset, self._direct)
            op = op(self._fd, n, offset, self._direct)
            try:
                return await op
            except _CancelledError:
                op.cancel()
                raise
        finally:
            self._shared -= 1
            if self._q:
                self._dispatch()

    async def _enter(self) -> None:
        if self._excl or self._shared or self._q:
            await self._wait_turn(True)
        else:
            self._excl = True

    def _exit(self) -> None:
        self._excl = False
        if self._q:
            self._dispatch()

    async def pwrite(self, data: Any, offset: int) -> int:
        """Write data at offset (one write, as os.pwrite); the position
        does not move."""
        await self._enter()
        try:
            if self._closed:
                raise ValueError("I/O operation on closed file.")
            n = await self._io.pwrite(self._fd, data, offset, self._direct)
            if n > 0:
                raw = self._raw
                # O_APPEND: Linux's pwrite appends, whatever the offset
                at = raw.size if raw.append else offset
                with memoryview(data) as m:
                    raw._patch_write(at, bytes(m.cast("B")[:n]))
            return n
        finally:
            self._exit()

    async def _sync(self, datasync: bool) -> None:
        await self._enter()
        try:
            if self._closed:
                raise ValueError("I/O operation on closed file.")
            self._stack.flush()
            if self._raw.log:
                await self._writeback()
            await self._io.fsync(self._fd, datasync)
        finally:
            self._exit()

    async def fsync(self) -> None:
        """Flush, then fsync(2) the file."""
        await self._sync(False)

    async def fdatasync(self) -> None:
        """Flush, then fdatasync(2) the file."""
        await self._sync(True)

    # -- what does not wait --------------------------------------------------
    def fileno(self) -> int:
        return self._stack.fileno()

    def readable(self) -> bool:
        return self._stack.readable()

    def writable(self) -> bool:
        return self._stack.writable()

    def seekable(self) -> bool:
        return self._stack.seekable()

    def isatty(self) -> bool:
        return self._stack.isatty()

    @property
    def closed(self) -> bool:
        return self._closed or self._stack.closed

    @property
    def name(self) -> Any:
        return self._stack.name

    @property
    def mode(self) -> str:
        return self._stack.mode

    def __getattr__(self, name: str) -> Any:
        # encoding, errors, newlines, line_buffering, raw attributes...
        if name in ("encoding", "errors", "newlines", "line_buffering",
                    "write_through"):
            return getattr(self._stack, name)
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {name!r}")

    async def __aenter__(self) -> "AsyncFile":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<ringloop.files.AsyncFile {self._stack!r}>"

    def __del__(self) -> None:
        if self.__dict__.get("_closed", True):
            return
        self._closed = True
        warnings.warn(f"unclosed file {self!r}", ResourceWarning, 2)
        try:
            self._stack.close()
            for off, d in self._raw.log:  # as the built-in: flush at exit
                if d is None:
                    os.ftruncate(self._fd, off)
                elif self._raw.append:
                    os.write(self._fd, d)
                else:
                    os.pwrite(self._fd, d, off)
        except Exception:
            pass
        finally:
            try:
                if not self._io.loop.is_closed():
                    self._io.release(self._fd)
            except Exception:
                pass
            if self._closefd:
                try:
                    os.close(self._fd)
                except OSError:
                    pass


async def _open(file: Any, mode: str, buffering: int, encoding: Any,
                errors: Any, newline: Any, closefd: bool, opener: Any,
                loop: Any) -> AsyncFile:
    if not isinstance(mode, str):
        raise TypeError(f"open() argument 'mode' must be str, not "
                        f"{type(mode).__name__}")
    if isinstance(file, int) and not isinstance(file, bool):
        if file < 0:
            raise ValueError("negative file descriptor")
        # validates, and answers as open() does for a bad fd (no close)
        io.open(file, mode, buffering, encoding, errors, newline, False)
        flags = None
    else:
        if not closefd:
            raise ValueError("Cannot use closefd=False with file name")
        flags = _flags_of(file, mode, buffering, encoding, errors, newline,
                          closefd)
    if loop is None:
        loop = asyncio.get_running_loop()
    io_ = io_for(loop)
    reading, writing, appending, creating, updating = _mode_bits(mode)
    binary = "b" in mode
    if flags is None:
        fd = file
    elif opener is not None:
        fd = opener(file, flags)
        if not isinstance(fd, int):
            raise TypeError("expected an integer from opener")
        if fd < 0:
            raise ValueError(f"opener returned {fd}")
    else:
        fd = await io_.open(file, flags, 0o666)
    try:
        st = os.fstat(fd)
        if _stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, os.strerror(21), file)
        fl = 0
        try:
            import fcntl
            fl = fcntl.fcntl(fd, fcntl.F_GETFL)
        except OSError:
            pass
        direct = bool(fl & getattr(os, "O_DIRECT", 0))
        try:
            if appending:
                pos = os.lseek(fd, 0, os.SEEK_END)
            else:
                pos = os.lseek(fd, 0, os.SEEK_CUR)
        except OSError:
            return await _open_unseekable(file, mode, buffering, encoding,
                                          errors, newline, closefd, fd, loop)
        raw = Shadow(fd, file, _raw_mode(mode), reading or updating,
                     writing or appending or creating or updating,
                     appending, pos, st.st_size)
        if buffering == 0 and not binary:
            raise ValueError("can't have unbuffered text I/O")
        line_buffering = buffering == 1 or (buffering < 0 and os.isatty(fd))
        if buffering == 1 or buffering < 0:
            buffering = io.DEFAULT_BUFFER_SIZE
            if st.st_blksize > 1:
                buffering = st.st_blksize
        if buffering == 0:
            stack = raw
        else:
            cls = (io.BufferedRandom if updating else
                   io.BufferedWriter if writing or appending or creating
                   else io.BufferedReader)
            stack = cls(raw, buffering)
            if not binary:
                stack = io.TextIOWrapper(stack, encoding, errors, newline,
                                         line_buffering)
                stack.mode = mode
        f = AsyncFile.__new__(AsyncFile)
        f._bs = buffering if buffering > 0 else io.DEFAULT_BUFFER_SIZE
        f.__init__(io_, stack, raw, closefd, direct, not binary)
        io_.hold(fd)
        return f
    except BaseException:
        if closefd:
            os.close(fd)
        raise


async def _open_unseekable(file: Any, mode: str, buffering: int,
                           encoding: Any, errors: Any, newline: Any,
                           closefd: bool, fd: int, loop: Any) -> Any:
    """A pipe or character device: the built-in file object, each call in
    the default executor (as aiofiles)."""
    from ._thread import ThreadFile
    f = io.open(fd, mode, buffering, encoding, errors, newline, closefd)
    if not isinstance(file, int):
        try:
            f.name = file
        except AttributeError:
            pass
    return ThreadFile(f, loop)


class _OpenContext:
    """What open() returns: awaitable, and an async context manager that
    closes the file."""

    __slots__ = ("_coro", "_file")

    def __init__(self, coro: Any) -> None:
        self._coro = coro
        self._file: Any = None

    def __await__(self) -> Generator[Any, None, AsyncFile]:
        return self._coro.__await__()

    async def __aenter__(self) -> AsyncFile:
        self._file = await self._coro
        return self._file

    async def __aexit__(self, *exc: Any) -> None:
        await self._file.close()
        self._file = None

    def close(self) -> None:
        self._coro.close()

    def send(self, value: Any) -> Any:
        return self._coro.send(value)

    def throw(self, *args: Any) -> Any:
        return self._coro.throw(*args)


def open(file: Any, mode: str = "r", buffering: int = -1,
         encoding: str | None = None, errors: str | None = None,
         newline: str | None = None, closefd: bool = True,
         opener: Callable[[Any, int], int] | None = None, *,
         loop: asyncio.AbstractEventLoop | None = None,
         executor: Any = None) -> _OpenContext:
    """Open file as the built-in open() does, for async use::

        async with ringloop.files.open("data.bin", "rb") as f:
            head = await f.read(4096)

    or ``f = await ringloop.files.open(...)`` (then ``await f.close()``).
    On ringloop's loop the file's I/O are the loop's own file operations;
    on any other loop, system calls in the default executor. `loop` and
    `executor` are accepted for aiofiles compatibility (executor is
    ignored).
    """
    return _OpenContext(_open(file, mode, buffering, encoding, errors,
                              newline, closefd, opener, loop))
