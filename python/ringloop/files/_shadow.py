"""The raw layer under the real io.Buffered*/io.TextIOWrapper of a file.

A file object of ringloop.files is the very stack the built-in open()
builds (TextIOWrapper over BufferedReader/Writer/Random over a raw file),
except that its raw file is a Shadow: a FileIO look-alike that never makes
a system call. Its reads are served from a window, a copy of a stretch of
the file that the async layer read beforehand (with the loop's file ops),
and its writes and truncations are recorded in a log that the async layer
writes out afterwards. So every operation is: await the reads it needs,
run the stack's own method (synchronously, with the built-in open()'s exact
semantics), await the writes it made.

Should the window miss what a method reads (the async layer guesses what
each method needs; it guesses generously), the Shadow reads the file with
a plain os.pread on the spot: slower, never wrong. `misses` counts them.
"""

from __future__ import annotations

import io
import os
from typing import Any

SEEK_SET, SEEK_CUR, SEEK_END = 0, 1, 2
_ZERO_FILL_MAX = 1 << 20


class Shadow(io.RawIOBase):
    """A FileIO over fd whose I/O is the window and the log (see above)."""

    def __init__(self, fd: int, name: Any, mode: str, readable: bool,
                 writable: bool, append: bool, pos: int, size: int) -> None:
        super().__init__()
        self.fd = fd
        self.name = name
        self.mode = mode
        self._readable = readable
        self._writable = writable
        self.append = append
        self.pos = pos
        self.size = size  # the file's size as far as we know
        self.wstart = 0  # the window: file[wstart:wstart+len(wbuf)]
        self.wbuf = bytearray()
        self.weof = False  # the file ended at the window's end when read
        self.log: list[tuple[int, Any]] = []  # (offset, data), (size, None)
        self.misses = 0

    # -- what FileIO answers -------------------------------------------------
    def readable(self) -> bool:
        self._checkClosed()
        return self._readable

    def writable(self) -> bool:
        self._checkClosed()
        return self._writable

    def seekable(self) -> bool:
        self._checkClosed()
        return True

    def fileno(self) -> int:
        self._checkClosed()
        return self.fd

    def isatty(self) -> bool:
        self._checkClosed()
        return False

    def _checkClosed(self, msg: Any = None) -> None:  # noqa: N802
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def _unsupported(self, what: str) -> None:
        raise io.UnsupportedOperation(f"File not open for {what}")

    # -- reading -------------------------------------------------------------
    def readinto(self, b: Any) -> int:
        self._checkClosed()
        if not self._readable:
            self._unsupported("reading")
        m = b if type(b) is memoryview and b.format == "B" else \
            memoryview(b).cast("B")
        n = len(m)
        p = self.pos
        i = p - self.wstart
        avail = len(self.wbuf) - i
        if i < 0 or (avail < n and not self.weof):
            self._fetch_sync(p, max(n, 8192))
            i = p - self.wstart
            avail = len(self.wbuf) - i
        k = n if avail >= n else max(avail, 0)
        if k:
            m[:k] = self.wbuf[i:i + k]
        self.pos = p + k
        return k

    def readall(self) -> bytes:
        chunks = []
        while True:
            b = bytearray(max(len(self.wbuf) - (self.pos - self.wstart),
                              8192))
            n = self.readinto(b)
            if not n:
                break
            chunks.append(bytes(b[:n]))
        return b"".join(chunks)

    def _fetch_sync(self, p: int, n: int) -> None:
        """The window missed: read the file here (see the top)."""
        self.misses += 1
        data = os.pread(self.fd, n, p)
        self.set_window(p, data, len(data) < n)

    def set_window(self, p: int, data: Any, eof: bool) -> None:
        """The file holds data at p (read just now); eof: it ends there.
        Writes not written out yet are applied on top."""
        self.wstart = p
        self.wbuf = data if type(data) is bytearray else bytearray(data)
        self.weof = eof
        end = p + len(data)
        if data and (eof or end > self.size):
            self.size = end
        elif eof and self.size > p:
            self.size = p  # it ends at p, or before
        log = self.log
        if log:
            self.log = []
            for off, d in log:  # replay onto the new window
                if d is None:
                    self._patch_truncate(off)
                else:
                    self._patch_write(off, d)
            self.log = log

    def extend_window(self, data: Any, eof: bool, keep_from: int) -> None:
        """data follows the window (read just now); drop what lies before
        keep_from."""
        cut = keep_from - self.wstart
        if cut > 0 and cut >= len(self.wbuf) // 2:
            wb = self.wbuf[cut:]
            wb += data
            self.wstart = keep_from
            self.set_window(keep_from, wb, eof)
        else:
            wb = self.wbuf
            wb += data
            self.set_window(self.wstart, wb, eof)

    def window_end(self) -> int:
        return self.wstart + len(self.wbuf)

    # -- writing -------------------------------------------------------------
    def write(self, b: Any) -> int:
        self._checkClosed()
        if not self._writable:
            self._unsupported("writing")
        data = bytes(b)
        n = len(data)
        off = self.size if self.append else self.pos
        if n:
            self.log.append((off, data))
            self._patch_write(off, data)
        self.pos = off + n
        return n

    def _patch_write(self, off: int, data: bytes) -> None:
        end = off + len(data)
        ws, we = self.wstart, self.window_end()
        if ws <= off <= we:
            self.wbuf[off - ws:end - ws] = data
        elif off > we and self.weof and off - we <= _ZERO_FILL_MAX:
            self.wbuf += bytes(off - we)
            self.wbuf += data
        elif off < ws <= end:
            self.wbuf[:end - ws] = b""
            self.wbuf[0:0] = data
            self.wstart = off
        elif off > we:
            self.wstart, self.wbuf = off, bytearray(data)
            self.weof = end >= self.size
        if end > self.size:
            self.size = end

    def truncate(self, size: Any = None) -> int:
        self._checkClosed()
        if not self._writable:
            self._unsupported("writing")
        if size is None:
            size = self.pos
        size = size.__index__()
        if size < 0:
            raise OSError(22, os.strerror(22))
        self.log.append((size, None))
        self._patch_truncate(size)
        return size

    def _patch_truncate(self, size: int) -> None:
        ws, we = self.wstart, self.window_end()
        if size < we:
            del self.wbuf[max(size - ws, 0):]
            self.weof = size >= ws
            if size < ws:
                self.wstart, self.wbuf = size, bytearray()
        elif self.weof and size > we:
            if size - we <= _ZERO_FILL_MAX:
                self.wbuf += bytes(size - we)
            else:
                self.wstart, self.wbuf = size, bytearray()
        self.size = size

    # -- position ------------------------------------------------------------
    def seek(self, pos: int, whence: int = SEEK_SET) -> int:
        self._checkClosed()
        pos = pos.__index__()
        if whence == SEEK_CUR:
            pos += self.pos
        elif whence == SEEK_END:
            if not self.log:
                self.size = os.fstat(self.fd).st_size
            pos += self.size
        elif whence != SEEK_SET:
            raise ValueError(f"invalid whence ({whence}, should be 0, 1 "
                             f"or 2)")
        if pos < 0:
            raise OSError(22, os.strerror(22))
        self.pos = pos
        return pos

    def tell(self) -> int:
        self._checkClosed()
        return self.pos

    def close(self) -> None:
        super().close()

    def __repr__(self) -> str:
        return f"<ringloop.files raw {self.name!r} mode={self.mode!r}>"
