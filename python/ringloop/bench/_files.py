"""The files group: `python -m ringloop.bench._files IMPL SCENARIO ...`.

One process measures one implementation of asynchronous file IO on one
scenario, then prints one JSON line. The implementations (IMPLS):

  ringloop-uring     ringloop.files on ringloop's io_uring backend
  ringloop-epoll     ringloop.files on ringloop's epoll backend
  aiofiles/uvloop    aiofiles (a thread pool under every call) on uvloop
  aiofiles/asyncio   aiofiles on asyncio's default loop
  executor/uvloop    loop.run_in_executor(None, os.pread, ...) and the
                     other os calls, on uvloop
  executor/asyncio   the same on asyncio's default loop

each used as its users use it. The scenarios (SCENARIOS), on a data file
that the runner made (prepare(): every 4 KiB block starts with its index,
8 bytes little-endian, so that every read is checked):

  rand4k         TASKS tasks read 4 KiB blocks at random offsets of the file,
                 which is in the page cache (this process reads it all
                 first); ringloop.files: one file, f.pread(4096, offset);
                 aiofiles: a file per task, seek() then read(4096);
                 executor: os.pread on one descriptor
  rand4k-direct  the same with O_DIRECT (the page cache bypassed: the
                 device's reads); ringloop.files: opener= adding O_DIRECT,
                 then pread; aiofiles: buffering=0, seek() then readinto()
                 an aligned (mmap) buffer; executor: os.preadv into an
                 aligned buffer (os.pread's buffer is not aligned)
  seq1m          one task reads the whole file from start to end in 1 MiB
                 read()s, again and again (page cache); ops are the reads
  fsync          TASKS tasks write COUNT small files (4 KiB each, a new
                 file per op): open for writing, write, flush, fsync,
                 close; aiofiles' fsync is aiofiles.os.wrap(os.fsync), the
                 executor's the os calls one by one

The reads run for --warmup then --duration seconds (the ops in flight at the
end are waited for and counted); fsync writes a tenth of --count files to
warm up, then batches of --count new files until --duration is over (one
batch at least). The JSON has ops, bytes, wall seconds and the process's
CPU time (user + system of every thread, getrusage) over the measured part,
the number of threads at the end, and the loop (describe()). A wrong byte
count or block, or any exception, makes it {"error": ...} with exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import mmap
import os
import random
import resource
import shutil
import sys
import time
import traceback
from typing import Any, Awaitable, Callable

from ._loops import describe, make_loop

BLOCK = 4096
CHUNK = 1 << 20
TASKS = 64
SMALL_FILE = 4096

# implementation -> (event loop, API)
IMPLS: dict[str, tuple[str, str]] = {
    "ringloop-uring": ("ringloop-uring", "ringloop"),
    "ringloop-epoll": ("ringloop-epoll", "ringloop"),
    "aiofiles/uvloop": ("uvloop", "aiofiles"),
    "aiofiles/asyncio": ("asyncio", "aiofiles"),
    "executor/uvloop": ("uvloop", "executor"),
    "executor/asyncio": ("asyncio", "executor"),
}
BASELINE = "aiofiles/uvloop"
SCENARIOS = ("rand4k", "rand4k-direct", "seq1m", "fsync")
# Filesystems in memory, where O_DIRECT reads reach no device.
MEMORY_FS = ("tmpfs", "ramfs", "devtmpfs", "hugetlbfs")


class Mismatch(Exception):
    """A read returned other bytes than the file has there."""


def header(block: int) -> bytes:
    return block.to_bytes(8, "little")


def _check(data: Any, block: int, size: int) -> None:
    if len(data) != size or data[:8] != header(block):
        raise Mismatch(f"block {block}: got {len(data)} bytes starting "
                       f"{bytes(data[:8]).hex()}, want {size} starting "
                       f"{header(block).hex()}")

async def _seq_read(open_: Any, path: str, size: int, deadline: float) -> int:
    """Read path from start to end in CHUNK pieces, again and again, until
    deadline; check each piece; return the pieces read. `open_` is an
    aiofiles-style open (ringloop.files.open or aiofiles.open)."""
    n = 0
    while True:
        async with open_(path, "rb") as f:
            off = 0
            while True:
                if time.monotonic() >= deadline:
                    return n
                data = await f.read(CHUNK)
                if not data:
                    break
                _check(data, off // BLOCK, CHUNK)
                off += len(data)
                n += 1
            if off != size:
                raise Mismatch(f"read {off} of {size} bytes")



# ---- the data (made by the runner, in its process) ----------------------

def make_data(path: str, size: int) -> None:
    """A file of `size` bytes (a multiple of 1 MiB) whose 4 KiB blocks
    start with their index, flushed to the device (for O_DIRECT)."""
    fill = bytearray(os.urandom(CHUNK))
    with open(path, "wb") as f:
        for first in range(0, size // BLOCK, CHUNK // BLOCK):
            for k in range(CHUNK // BLOCK):
                fill[k * BLOCK:k * BLOCK + 8] = header(first + k)
            f.write(fill)
        f.flush()
        os.fsync(f.fileno())


def _fs_type(path: str) -> str:
    """The type of the filesystem `path` is on (/proc/self/mounts)."""
    path = os.path.realpath(path)
    best, kind = "", "unknown"
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mnt = parts[1].replace("\\040", " ")
                if (path == mnt or path.startswith(mnt.rstrip("/") + "/")
                        ) and len(mnt) >= len(best):
                    best, kind = mnt, parts[2]
    except OSError:
        pass
    return kind


def direct_reason(path: str) -> str | None:
    """None when `path` can be read with O_DIRECT, else why not."""
    fs = _fs_type(path)
    if not hasattr(os, "O_DIRECT"):
        return "this platform has no O_DIRECT"
    if fs in MEMORY_FS:
        # tmpfs takes O_DIRECT since Linux 6.6, but reads memory: not what
        # the scenario measures.
        return (f"the data file is on {fs} ({os.path.dirname(path)}), in "
                f"memory: O_DIRECT reads would reach no device (--files-dir "
                f"DIR on a disk filesystem such as ext4)")
    buf = mmap.mmap(-1, BLOCK)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        try:
            got = os.preadv(fd, [buf], 0)
        finally:
            os.close(fd)
    except OSError as exc:
        return (f"O_DIRECT is refused on {os.path.dirname(path)} ({fs}): "
                f"{exc.strerror} (--files-dir DIR on a disk filesystem "
                f"such as ext4)")
    finally:
        data = buf[:8]
        buf.close()
    if got != BLOCK or data != header(0):
        return f"an O_DIRECT read on {fs} returned {got} bytes, not the data"
    return None


def prepare(directory: str, size: int) -> dict[str, Any]:
    """Make the data file in `directory`: its path, size, filesystem type
    and why O_DIRECT is unavailable there (None when it is)."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "data.bin")
    make_data(path, size)
    return {"path": path, "size": size, "fs": _fs_type(path),
            "direct_unavailable": direct_reason(path)}


def cleanup(directory: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)


# ---- helpers of the measuring process -----------------------------------

def _cpu_s() -> float:
    """CPU time of this process so far, every thread's (alive or ended)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


def _warm_cache(path: str) -> None:
    """Read the whole file once, so that it is in the page cache."""
    buf = bytearray(CHUNK)
    fd = os.open(path, os.O_RDONLY)
    try:
        while os.readv(fd, [buf]):
            pass
    finally:
        os.close(fd)


def _direct_opener(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_DIRECT)


async def _gather_counts(workers: list[Awaitable[int]]) -> int:
    return sum(await asyncio.gather(*workers))


# ---- the implementations ------------------------------------------------
# Each has open() (not measured), a worker per task for a timed phase that
# runs until `deadline` (time.monotonic()) and returns its op count, a
# write_file() for fsync, and close(). The hot loops are written out in
# each, as their users would write them.

class Impl:
    def __init__(self, path: str, size: int, direct: bool,
                 seed: int) -> None:
        self.path = path
        self.blocks = size // BLOCK
        self.size = size
        self.direct = direct
        self.seed = seed
        self.streams = 0

    def rng(self) -> Callable[[int], int]:
        """A new random stream of block numbers (another one per task and
        phase: the measured reads are not the warm-up's again)."""
        self.streams += 1
        return random.Random(self.seed * 1_000_000 + self.streams).randrange

    async def open(self, tasks: int) -> None:
        pass

    async def rand(self, i: int, deadline: float) -> int:
        raise NotImplementedError  # pragma: no cover (every Impl has it)

    async def seq(self, deadline: float) -> int:
        raise NotImplementedError  # pragma: no cover

    async def write_file(self, path: str, data: bytes) -> None:
        raise NotImplementedError  # pragma: no cover

    async def close(self) -> None:
        pass


class RingloopFiles(Impl):
    async def open(self, tasks: int) -> None:
        from ringloop import files

        self.files = files
        self.f: Any = None
        if not self.path or not tasks:
            return
        if self.direct:
            self.f = await files.open(self.path, "rb", buffering=0,
                                      opener=_direct_opener)
        else:
            self.f = await files.open(self.path, "rb")

    async def rand(self, i: int, deadline: float) -> int:
        rnd, blocks, pread = self.rng(), self.blocks, self.f.pread
        mono = time.monotonic
        n = 0
        while mono() < deadline:
            b = rnd(blocks)
            _check(await pread(BLOCK, b * BLOCK), b, BLOCK)
            n += 1
        return n

    async def seq(self, deadline: float) -> int:
        return await _seq_read(self.files.open, self.path, self.size, deadline)

    async def write_file(self, path: str, data: bytes) -> None:
        async with self.files.open(path, "wb") as f:
            await f.write(data)
            await f.flush()
            await f.fsync()

    async def close(self) -> None:
        if self.f is not None:
            await self.f.close()


class Aiofiles(Impl):
    async def open(self, tasks: int) -> None:
        import aiofiles
        import aiofiles.os

        self.aiofiles = aiofiles
        self.fsync = aiofiles.os.wrap(os.fsync)
        self.handles: list[Any] = []
        self.bufs: list[mmap.mmap] = []
        for _ in range(tasks if self.path else 0):
            if self.direct:
                self.handles.append(await aiofiles.open(
                    self.path, "rb", buffering=0, opener=_direct_opener))
                self.bufs.append(mmap.mmap(-1, BLOCK))
            else:
                self.handles.append(await aiofiles.open(self.path, "rb"))

    async def rand(self, i: int, deadline: float) -> int:
        rnd, blocks, f = self.rng(), self.blocks, self.handles[i]
        mono = time.monotonic
        n = 0
        if self.direct:
            buf = self.bufs[i]
            while mono() < deadline:
                b = rnd(blocks)
                await f.seek(b * BLOCK)
                got = await f.readinto(buf)
                _check(buf[:got], b, BLOCK)
                n += 1
            return n
        while mono() < deadline:
            b = rnd(blocks)
            await f.seek(b * BLOCK)
            _check(await f.read(BLOCK), b, BLOCK)
            n += 1
        return n

    async def seq(self, deadline: float) -> int:
        return await _seq_read(self.aiofiles.open, self.path, self.size, deadline)

    async def write_file(self, path: str, data: bytes) -> None:
        async with self.aiofiles.open(path, "wb") as f:
            await f.write(data)
            await f.flush()
            await self.fsync(f.fileno())

    async def close(self) -> None:
        for f in self.handles:
            await f.close()
        for buf in self.bufs:
            buf.close()


class Executor(Impl):
    async def open(self, tasks: int) -> None:
        self.run = asyncio.get_running_loop().run_in_executor
        self.fd = -1
        self.bufs: list[mmap.mmap] = []
        if self.path and tasks:
            flags = os.O_RDONLY | os.O_CLOEXEC
            if self.direct:
                flags |= os.O_DIRECT
                self.bufs = [mmap.mmap(-1, BLOCK) for _ in range(tasks)]
            self.fd = await self.run(None, os.open, self.path, flags)

    async def rand(self, i: int, deadline: float) -> int:
        rnd, blocks, fd, run = self.rng(), self.blocks, self.fd, self.run
        mono = time.monotonic
        n = 0
        if self.direct:
            bufs = [self.bufs[i]]
            while mono() < deadline:
                b = rnd(blocks)
                got = await run(None, os.preadv, fd, bufs, b * BLOCK)
                _check(bufs[0][:got], b, BLOCK)
                n += 1
            return n
        pread = os.pread
        while mono() < deadline:
            b = rnd(blocks)
            _check(await run(None, pread, fd, BLOCK, b * BLOCK), b, BLOCK)
            n += 1
        return n

    async def seq(self, deadline: float) -> int:
        run = self.run
        n = 0
        while True:
            fd = await run(None, os.open, self.path,
                           os.O_RDONLY | os.O_CLOEXEC)
            try:
                off = 0
                while True:
                    if time.monotonic() >= deadline:
                        return n
                    data = await run(None, os.pread, fd, CHUNK, off)
                    if not data:
                        break
                    _check(data, off // BLOCK, CHUNK)
                    off += len(data)
                    n += 1
                if off != self.size:
                    raise Mismatch(f"read {off} of {self.size} bytes")
            finally:
                await run(None, os.close, fd)

    async def write_file(self, path: str, data: bytes) -> None:
        run = self.run
        fd = await run(None, os.open, path, os.O_WRONLY | os.O_CREAT |
                       os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            done = await run(None, os.write, fd, data)
            if done != len(data):
                raise Mismatch(f"os.write wrote {done} of {len(data)} bytes")
            await run(None, os.fsync, fd)
        finally:
            await run(None, os.close, fd)

    async def close(self) -> None:
        if self.fd >= 0:
            await self.run(None, os.close, self.fd)
        for buf in self.bufs:
            buf.close()


APIS: dict[str, type[Impl]] = {"ringloop": RingloopFiles,
                               "aiofiles": Aiofiles, "executor": Executor}


# ---- the measurement ----------------------------------------------------

def _payload(i: int) -> bytes:
    return (header(i) * (SMALL_FILE // 8))[:SMALL_FILE]


async def _write_files(impl: Impl, directory: str, first: int, count: int,
                       tasks: int) -> None:
    """`count` files written and fsynced by `tasks` tasks at once."""
    next_i = first
    end = first + count

    async def worker() -> None:
        nonlocal next_i
        while next_i < end:
            i = next_i
            next_i += 1
            await impl.write_file(os.path.join(directory, f"f{i}"),
                                  _payload(i))

    await asyncio.gather(*(worker() for _ in range(min(tasks, count))))


def _verify_files(directory: str, first: int, count: int) -> None:
    for i in range(first, first + count):
        with open(os.path.join(directory, f"f{i}"), "rb") as f:
            if f.read() != _payload(i):
                raise Mismatch(f"file f{i} does not have what was written")


async def measure(impl: Impl, scenario: str, args: argparse.Namespace
                  ) -> dict[str, Any]:
    tasks = args.tasks
    if scenario == "fsync":
        await impl.open(tasks)
        try:
            directory = os.path.join(args.dir, f"fsync-{os.getpid()}")
            os.makedirs(directory)
            try:
                warm = max(1, args.count // 10)
                await _write_files(impl, directory, 0, warm, tasks)
                # Batches of --count new files until --duration is over
                # (one batch at least).
                done = 0
                cpu0, t0 = _cpu_s(), time.perf_counter()
                while not done or time.perf_counter() - t0 < args.duration:
                    await _write_files(impl, directory, warm + done,
                                       args.count, tasks)
                    done += args.count
                seconds, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
                threads = _threads()
                _verify_files(directory, 0, warm + done)
            finally:
                shutil.rmtree(directory, ignore_errors=True)
            return {"ops": done, "bytes": done * SMALL_FILE,
                    "seconds": seconds, "cpu_s": cpu, "threads": threads,
                    "batches": done // args.count}
        finally:
            await impl.close()

    # seq1m is one task opening the file for each pass.
    await impl.open(0 if scenario == "seq1m" else tasks)
    try:
        async def phase(seconds: float) -> int:
            deadline = time.monotonic() + seconds
            if scenario == "seq1m":
                return await impl.seq(deadline)
            return await _gather_counts([impl.rand(i, deadline)
                                         for i in range(tasks)])

        await phase(args.warmup)
        cpu0, t0 = _cpu_s(), time.perf_counter()
        ops = await phase(args.duration)
        seconds, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
        size = CHUNK if scenario == "seq1m" else BLOCK
        return {"ops": ops, "bytes": ops * size, "seconds": seconds,
                "cpu_s": cpu, "threads": _threads()}
    finally:
        await impl.close()


def run(impl_name: str, scenario: str, args: argparse.Namespace
        ) -> dict[str, Any]:
    loop_name, api = IMPLS[impl_name]
    out: dict[str, Any] = {"impl": impl_name, "scenario": scenario}
    if scenario in ("rand4k", "seq1m"):
        _warm_cache(args.data)
    size = os.path.getsize(args.data)
    data = "" if scenario == "fsync" else args.data
    impl = APIS[api](data, size, scenario == "rand4k-direct", args.seed)
    loop = make_loop(loop_name)
    out["loop"] = describe(loop)
    asyncio.set_event_loop(loop)
    try:
        out.update(loop.run_until_complete(measure(impl, scenario, args)))
    finally:
        asyncio.set_event_loop(None)
        # Stop the default executor's threads before the loop closes, as
        # asyncio.run() does.
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
    if not out["ops"]:
        raise Mismatch("no operation completed")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ringloop.bench._files")
    ap.add_argument("impl", choices=IMPLS)
    ap.add_argument("scenario", choices=SCENARIOS)
    ap.add_argument("--data", required=True,
                    help="the data file (prepare()), for its size too")
    ap.add_argument("--dir", help="where fsync makes its files (default: "
                    "the data file's directory)")
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--warmup", type=float, default=0.3)
    ap.add_argument("--count", type=int, default=1000,
                    help="fsync: files written and fsynced")
    ap.add_argument("--tasks", type=int, default=TASKS)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    args.dir = args.dir or os.path.dirname(os.path.abspath(args.data))
    try:
        res = run(args.impl, args.scenario, args)
    except Exception as exc:  # reported, with the traceback on stderr
        traceback.print_exc()
        print(json.dumps({"impl": args.impl, "scenario": args.scenario,
                          "error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
