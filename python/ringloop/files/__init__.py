"""ringloop.files: async files, an aiofiles-compatible API.

    async with ringloop.files.open("log.txt", "a") as f:
        await f.write("hello\n")
    st = await ringloop.files.os.stat("log.txt")

On ringloop's loop every read, write, open, stat, fsync, rename and unlink
is one of the loop's own operations (io_uring; on epoll a non-blocking try,
else the core's worker pool); on any other loop the same API runs the
system calls in the default executor. Files behave as the built-in open()'s
(the same buffering, text decoding, newline handling and errors); see
docs/files.md.
"""

from __future__ import annotations

from . import os, ospath
from ._file import AsyncFile, open

__all__ = ["open", "AsyncFile", "os", "ospath"]
