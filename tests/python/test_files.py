"""ringloop.files against the built-in open(): random operation sequences
(fixed seeds) run on a real file through open() and on another through
ringloop.files.open() must return the same values, raise the same errors
and leave the same bytes, in every mode, on every loop."""

from __future__ import annotations

import asyncio
import io
import os
import random
import zlib
from typing import Any

import pytest

import ringloop.files as rf

BIN_MODES = ["rb", "r+b", "wb", "w+b", "ab", "a+b", "xb", "x+b"]
TEXT_MODES = ["r", "r+", "w", "w+", "a", "a+"]
CHARS = "ab\n\r\r\n é日本\U0001f600xyz\t"


def outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except Exception as exc:  # compared with ringloop.files' outcome
        return type(exc).__name__, str(exc)


async def aoutcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", await fn(*args)
    except Exception as exc:
        return type(exc).__name__, str(exc)


def random_bytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.choice(b"ab\n\r\x00xyz") for _ in range(n))


def random_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(CHARS) for _ in range(n))


def bin_op(rng: random.Random, mode: str, size: int) -> tuple[str, tuple]:
    kinds = ["read", "read", "read1", "readinto", "readline", "readlines",
             "write", "write", "writelines", "seek", "seek", "tell",
             "truncate", "flush", "pread", "pwrite", "peek"]
    k = rng.choice(kinds)
    n = rng.choice([0, 1, 3, 100, 4095, 4096, 8192, 9000, 20000, -1])
    if k in ("read", "read1"):
        return k, (n,)
    if k == "readinto":
        return k, (max(n, 0),)
    if k == "readline":
        return k, (rng.choice([-1, -1, 5, 100]),)
    if k == "readlines":
        return k, (rng.choice([-1, 10, 1000]),)
    if k == "write":
        return k, (random_bytes(rng, rng.choice([1, 10, 500, 5000, 20000])),)
    if k == "writelines":
        return k, ([random_bytes(rng, rng.randint(0, 50)) for _ in range(3)],)
    if k == "seek":
        whence = rng.choice([0, 0, 1, 2])
        off = rng.randint(0, size + 100) if whence == 0 else \
            rng.randint(-50, 50)
        return k, (off, whence)
    if k == "truncate":
        return k, (rng.choice([None, rng.randint(0, size + 100)]),)
    if k == "pread":
        return k, (rng.choice([1, 100, 5000]), rng.randint(0, size + 10))
    if k == "pwrite":
        return k, (random_bytes(rng, rng.choice([1, 50, 3000])),
                   rng.randint(0, size + 10))
    if k == "peek":
        return k, (rng.choice([0, 1, 100]),)
    return k, ()


def apply_sync(f: Any, k: str, args: tuple) -> tuple[str, Any]:
    if k == "readinto":
        b = bytearray(args[0])
        r = outcome(f.readinto, b)
        return r if r[0] != "ok" else ("ok", (r[1], bytes(b)))
    if k == "pread":
        return outcome(os.pread, f.fileno(), *args)
    if k == "pwrite":
        return outcome(os.pwrite, f.fileno(), *args)
    if not hasattr(f, k):
        return "AttributeError", k
    r = outcome(getattr(f, k), *args)
    return ("AttributeError", k) if r[0] == "AttributeError" else r


async def apply_async(f: Any, k: str, args: tuple) -> tuple[str, Any]:
    if k == "readinto":
        b = bytearray(args[0])
        r = await aoutcome(f.readinto, b)
        return r if r[0] != "ok" else ("ok", (r[1], bytes(b)))
    r = await aoutcome(getattr(f, k), *args)
    # the raw classes' names differ (FileIO, ours): the type is what counts
    return ("AttributeError", k) if r[0] == "AttributeError" else r


def prepare(tmp_path: Any, name: str, content: bytes, mode: str) -> str:
    path = str(tmp_path / name)
    if "x" not in mode:
        with open(path, "wb") as f:
            f.write(content)
    return path


@pytest.mark.parametrize("buffering", [-1, 0, 16])
@pytest.mark.parametrize("mode", BIN_MODES)
def test_binary_random_ops(run: Any, tmp_path: Any, mode: str,
                           buffering: int) -> None:
    rng = random.Random(zlib.crc32(repr((mode, buffering)).encode()))
    content = random_bytes(rng, 30000)
    a = prepare(tmp_path, "a", content, mode)
    b = prepare(tmp_path, "b", content, mode)
    ops = [bin_op(rng, mode, len(content)) for _ in range(250)]
    # the built-in: one op at a time, pread/pwrite as os.pread/os.pwrite
    expect = []
    with open(a, mode, buffering=buffering) as f:
        for k, args in ops:
            if k == "peek" and not hasattr(f, "peek"):
                expect.append(("AttributeError", k))
                continue
            expect.append(apply_sync(f, k, args))

    async def main() -> tuple[list, int]:
        got = []
        async with rf.open(b, mode, buffering=buffering) as f:
            for k, args in ops:
                if k == "peek" and not hasattr(f._stack, "peek"):
                    got.append(("AttributeError", k))
                    continue
                got.append(await apply_async(f, k, args))
            misses = f._raw.misses
        return got, misses

    got, misses = run(main())
    for i, (e, g) in enumerate(zip(expect, got)):
        assert e == g, f"op {i} {ops[i][0]}{ops[i][1]!r:.60}: {e!r:.200} " \
                       f"!= {g!r:.200}"
    with open(a, "rb") as fa, open(b, "rb") as fb:
        assert fa.read() == fb.read()


def text_op(rng: random.Random, cookies: list) -> tuple[str, tuple]:
    k = rng.choice(["read", "read", "readline", "readline", "readlines",
                    "write", "write", "tell", "seek", "flush", "truncate"])
    if k == "read":
        return k, (rng.choice([0, 1, 5, 100, 3000, -1]),)
    if k == "readline":
        return k, (rng.choice([-1, -1, 3, 50]),)
    if k == "readlines":
        return k, (rng.choice([-1, 20]),)
    if k == "write":
        return k, (random_text(rng, rng.choice([1, 7, 300, 5000])),)
    if k == "seek":
        return k, rng.choice([(0, 0), (0, 2), (0, 1), ("cookie", 0)])
    if k == "truncate":
        return k, (None,)
    return k, ()


@pytest.mark.parametrize("encoding,newline", [
    ("utf-8", None), ("utf-8", ""), ("utf-8", "\r\n"), ("utf-16", None),
    ("latin-1", "\r"), ("ascii", "\n")])
@pytest.mark.parametrize("mode", TEXT_MODES)
def test_text_random_ops(run: Any, tmp_path: Any, mode: str, encoding: str,
                         newline: str | None) -> None:
    rng = random.Random(zlib.crc32(repr((mode, encoding, newline)).encode()))
    errors = "replace" if encoding in ("ascii", "latin-1") else "strict"
    text = random_text(rng, 20000)
    content = text.encode(encoding, errors)
    a = prepare(tmp_path, "a", content, mode)
    b = prepare(tmp_path, "b", content, mode)
    ops = [text_op(rng, []) for _ in range(200)]
    kw = dict(encoding=encoding, errors=errors, newline=newline)

    def fix(args: tuple, cookies: list) -> tuple:
        if args and args[0] == "cookie":
            return (cookies[-1] if cookies else 0, 0)
        return args

    expect = []
    cookies_a: list = []
    with open(a, mode, **kw) as f:
        for k, args in ops:
            r = apply_sync(f, k, fix(args, cookies_a))
            if k == "tell" and r[0] == "ok":
                cookies_a.append(r[1])
            expect.append(r)

    async def main() -> list:
        got = []
        cookies: list = []
        async with rf.open(b, mode, **kw) as f:
            for k, args in ops:
                r = await apply_async(f, k, fix(args, cookies))
                if k == "tell" and r[0] == "ok":
                    cookies.append(r[1])
                got.append(r)
        return got

    got = run(main())
    for i, (e, g) in enumerate(zip(expect, got)):
        assert e == g, f"op {i} {ops[i][0]}{ops[i][1]!r:.60}: {e!r:.200} " \
                       f"!= {g!r:.200}"
    with open(a, "rb") as fa, open(b, "rb") as fb:
        assert fa.read() == fb.read()


def test_iteration_and_attributes(run: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "t")
    with open(path, "w", newline="") as f:
        f.write("one\ntwo\r\nthree\rfour")

    async def main() -> None:
        async with rf.open(path) as f:
            assert [line async for line in f] == \
                open(path).readlines()
            assert f.name == path and f.mode == "r"
            assert f.encoding == open(path).encoding
            assert f.readable() and not f.writable() and f.seekable()
            assert isinstance(f.fileno(), int)
            assert not f.closed
        assert f.closed
        f = await rf.open(path, "rb", buffering=0)
        assert f.mode == "rb"
        assert await f.read() == open(path, "rb").read()
        await f.close()
        await f.close()  # twice is fine

    run(main())


def test_errors_as_open(run: Any, tmp_path: Any) -> None:
    d = tmp_path / "dir"
    d.mkdir()
    ro = tmp_path / "ro"
    ro.write_bytes(b"x")
    cases: list[tuple[Any, str, dict]] = [
        (str(tmp_path / "missing"), "r", {}),
        (str(tmp_path / "missing" / "x"), "w", {}),
        (str(d), "r", {}),
        (str(d), "w", {}),
        (str(ro), "x", {}),
        (str(ro), "rw", {}),
        (str(ro), "rbt", {}),
        (str(ro), "rb", {"encoding": "utf-8"}),
        (str(ro), "r", {"buffering": 0}),
        (str(ro), "r", {"encoding": "no-such-codec"}),
        (str(ro), "r", {"newline": "x"}),
        (str(ro), "r", {"closefd": False}),
        (-1, "r", {}),
        (12345, "rb", {}),
        (3.5, "r", {}),
        (str(tmp_path / "nul\0"), "r", {}),
        (tmp_path / "missing", "r", {}),
    ]
    for file, mode, kw in cases:
        try:
            with open(file, mode, **kw):
                pass
            expect: Any = None
        except Exception as exc:
            expect = (type(exc), str(exc), getattr(exc, "filename", None))

        async def main() -> Any:
            try:
                f = await rf.open(file, mode, **kw)
                await f.close()
            except Exception as exc:
                return (type(exc), str(exc), getattr(exc, "filename", None))
            return None
        assert run(main()) == expect, (file, mode, kw)


def test_closed_and_unsupported(run: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "f")
    with open(path, "wb") as f:
        f.write(b"abc\n")

    async def main() -> None:
        for mode in ("r", "rb", "w", "wb"):
            b = open(path, mode)
            f = await rf.open(path, mode)
            for name in ("read", "write", "readline"):
                arg = ("x" if "b" not in mode else b"x",) \
                    if name == "write" else ()
                assert outcome(getattr(b, name), *arg) == \
                    await aoutcome(getattr(f, name), *arg), (mode, name)
            b.close()
            await f.close()
            for name in ("read", "write", "readline", "seek", "tell",
                         "flush"):
                arg: tuple = ("x" if "b" not in mode else b"x",) \
                    if name == "write" else (0,) if name == "seek" else ()
                assert outcome(getattr(b, name), *arg) == \
                    await aoutcome(getattr(f, name), *arg), (mode, name)
            with pytest.raises(ValueError, match="closed file"):
                await f.pread(1, 0)

    run(main())


def test_large_offsets_sparse(run: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "sparse")
    big = 5 << 30  # past 4 GiB

    async def main() -> None:
        async with rf.open(path, "w+b") as f:
            await f.seek(big)
            assert await f.write(b"tail") == 4
            await f.flush()  # pread, as os.pread, sees only the file
            assert await f.tell() == big + 4
            assert await f.pwrite(b"mid", 1 << 32) == 3
            assert await f.pread(3, 1 << 32) == b"mid"
            assert await f.pread(8, big - 4) == b"\0\0\0\0tail"
            await f.seek(big - 2)
            assert await f.read(10) == b"\0\0tail"
            await f.seek(100)
            assert await f.read(4) == b"\0\0\0\0"
            assert await f.seek(0, 2) == big + 4
            assert await f.truncate(big + 2) == big + 2
        st = await rf.os.stat(path)
        assert st.st_size == big + 2
        assert st.st_blocks * 512 < 1 << 20  # still sparse
        with open(path, "rb") as f:
            f.seek(big)
            assert f.read() == b"ta"
            f.seek(1 << 32)
            assert f.read(3) == b"mid"

    run(main())


def test_concurrent_readers_writers(run: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "c")
    block = 4096
    nblocks = 64

    async def main() -> None:
        async with rf.open(path, "w+b") as f:
            # positional writes from many tasks at once
            await asyncio.gather(*(
                f.pwrite(bytes([i]) * block, i * block)
                for i in range(nblocks)))
            # readers at once, each sees its block
            got = await asyncio.gather(*(
                f.pread(block, i * block) for i in range(nblocks)))
            assert got == [bytes([i]) * block for i in range(nblocks)]
            # sequential writes from many tasks: call order (a FIFO)
            await f.seek(0)
            await asyncio.gather(*(
                f.write(bytes([100 + i]) * 1000) for i in range(50)))
            await f.flush()
            assert await f.tell() == 50000
            await f.seek(0)
            reads = await asyncio.gather(*(f.read(1000) for _ in range(50)))
            assert reads == [bytes([100 + i]) * 1000 for i in range(50)]
        with open(path, "rb") as fb:
            data = fb.read()
        assert data[:50000] == b"".join(bytes([100 + i]) * 1000
                                        for i in range(50))
        assert len(data) == nblocks * block

    run(main())


def test_many_files_concurrently(run: Any, tmp_path: Any) -> None:
    async def one(i: int) -> bytes:
        path = tmp_path / f"f{i}"
        async with rf.open(path, "wb") as f:
            await f.write(b"%d" % i * 1000)
            await f.fsync()
        async with rf.open(path, "rb") as f:
            return await f.read()

    async def main() -> None:
        got = await asyncio.gather(*(one(i) for i in range(100)))
        assert got == [b"%d" % i * 1000 for i in range(100)]

    run(main())


def test_os_functions(run: Any, tmp_path: Any) -> None:
    base = tmp_path / "d"

    async def main() -> None:
        fos = rf.os
        await fos.makedirs(base / "a" / "b")
        await fos.makedirs(str(base / "a" / "b"), exist_ok=True)
        with pytest.raises(FileExistsError):
            await fos.makedirs(base / "a" / "b")
        await fos.mkdir(str(base / "m"), 0o700)
        assert (await fos.stat(base / "m")).st_mode & 0o777 == 0o700
        with pytest.raises(FileExistsError) as ei:
            await fos.mkdir(str(base / "m"))
        assert ei.value.filename == str(base / "m")
        p = str(base / "file")
        async with rf.open(p, "w") as f:
            await f.write("12345")
        st = await fos.stat(p)
        ref = os.stat(p)
        for field in ("st_mode", "st_ino", "st_dev", "st_nlink", "st_uid",
                      "st_gid", "st_size", "st_mtime_ns", "st_ctime_ns",
                      "st_blksize", "st_blocks", "st_rdev", "st_mtime"):
            assert getattr(st, field) == getattr(ref, field), field
        assert tuple(st) == tuple(ref)
        os.symlink(p, base / "link")
        assert (await fos.lstat(base / "link")).st_mode == \
            os.lstat(base / "link").st_mode
        assert await fos.path.exists(p)
        assert await fos.path.isfile(p) and not await fos.path.isdir(p)
        assert await fos.path.isdir(base) and await fos.path.islink(
            base / "link")
        assert await fos.path.getsize(p) == 5
        assert not await fos.path.exists(base / "nope")
        assert sorted(await fos.listdir(base)) == sorted(os.listdir(base))
        assert sorted(e.name for e in await fos.scandir(base)) == \
            sorted(os.listdir(base))
        await fos.rename(p, base / "renamed")
        await fos.replace(base / "renamed", base / "m2")
        with pytest.raises(FileNotFoundError) as ei:
            await fos.rename(p, base / "x")
        assert (ei.value.filename, ei.value.filename2) == (p,
                                                           str(base / "x"))
        with pytest.raises(IsADirectoryError):
            await fos.remove(base / "m")
        with pytest.raises(OSError) as ei:
            await fos.rmdir(base / "a")
        assert ei.value.errno == 39  # ENOTEMPTY
        await fos.remove(base / "m2")
        await fos.unlink(base / "link")
        await fos.rmdir(base / "m")
        with pytest.raises(FileNotFoundError):
            await fos.stat(base / "m2")
        fd = os.open(base / "a" / "s", os.O_RDWR | os.O_CREAT)
        try:
            await fos.fsync(fd)
            await fos.fdatasync(fd)
            os.write(fd, b"data")
            assert await fos.sendfile(fd, fd, 0, 0) == 0
        finally:
            os.close(fd)

    run(main())


def test_import_forms() -> None:
    import ringloop.files.os as fos
    from ringloop.files import os as fos2
    assert fos is fos2 is rf.os
    assert rf.os.path is rf.ospath


def test_fsync_flushes(run: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "s")

    async def main() -> None:
        async with rf.open(path, "w") as f:
            await f.write("abc")
            await f.fsync()
            assert open(path).read() == "abc"
            await f.write("def")
            await f.fdatasync()
            assert open(path).read() == "abcdef"

    run(main())


def test_readahead_covers_sequential_reads(run: Any, tmp_path: Any) -> None:
    """Line by line and chunk by chunk, the window always holds what the
    stack reads: no blocking read on the loop thread."""
    path = str(tmp_path / "lines")
    with open(path, "w") as f:
        for i in range(20000):
            f.write(f"line {i} " + "x" * (i % 97) + "\n")

    async def main() -> None:
        async with rf.open(path) as f:
            n = 0
            async for _ in f:
                n += 1
            assert n == 20000
            assert f._raw.misses == 0
        async with rf.open(path, "rb") as f:
            while await f.read(1000):
                pass
            await f.seek(0)
            while await f.readline():
                pass
            assert f._raw.misses == 0
        async with rf.open(path, encoding="utf-8") as f:
            while await f.read(777):
                pass
            assert f._raw.misses == 0

    run(main())


def test_io_stack_is_the_builtins(run: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "s")

    async def main() -> None:
        async with rf.open(path, "w+") as f:
            assert type(f._stack) is io.TextIOWrapper
            assert type(f._stack.buffer) is io.BufferedRandom

    run(main())


READS = ("read", "readline", "readinto", "readlines", "pread")


@pytest.mark.parametrize("mode,buffering", [
    ("rb", -1), ("rb", 0), ("r+b", -1), ("r+b", 0), ("w+b", 7), ("a+b", -1),
    ("r+", -1)])
def test_cancel_at_every_step(run: Any, tmp_path: Any, mode: str,
                              buffering: int) -> None:
    """Each op is cancelled after 0..4 loop turns: a read that raised
    CancelledError never happened; a write either happened (and was
    written out) or never started; the reference (built-in open()) gets
    the ops that happened, and everything else must match it."""
    rng = random.Random(zlib.crc32(repr((mode, buffering)).encode()))
    text = "b" not in mode
    content = random_bytes(rng, 50000)
    if text:
        content = random_text(rng, 20000).encode()
    a = prepare(tmp_path, "a", content, mode)
    b = prepare(tmp_path, "b", content, mode)
    kinds = ["read", "readline", "readinto", "pread", "write", "seek",
             "readlines"]
    if text:
        kinds = ["read", "readline", "write"]
    if "+" not in mode and "r" in mode:
        kinds = [k for k in kinds if k != "write"]
    ref = open(a, mode, buffering=buffering)
    seen = {"cancelled": 0, "done": 0}

    async def main() -> None:
        f = await rf.open(b, mode, buffering=buffering)
        for _ in range(300):
            k = rng.choice(kinds)
            n = rng.choice([1, 100, 4096, 10000])
            if k == "write":
                args: tuple = (random_text(rng, n) if text
                               else random_bytes(rng, n),)
            elif k == "seek":
                args = (rng.randint(0, len(content)),)
            elif k == "pread":
                args = (n, rng.randint(0, len(content)))
            elif k == "readinto":
                args = (n,)
            elif k == "readlines":
                args = (rng.choice([1, 500]),)
            else:
                args = (rng.choice([-1, n]),) if k == "readline" else (n,)
            task = asyncio.ensure_future(apply_async(f, k, args))
            for _ in range(rng.randint(0, 4)):
                await asyncio.sleep(0)
            task.cancel()
            try:
                got = await task
            except asyncio.CancelledError:
                seen["cancelled"] += 1
                if k in READS:
                    continue  # never happened: the reference skips it
                before = ref.tell()
                now = await f.tell()
                if k == "write":
                    happened = now != before
                else:
                    happened = now == args[0] != before
                if happened:
                    apply_sync(ref, k, args)
                assert now == ref.tell()
                continue
            seen["done"] += 1
            assert got == apply_sync(ref, k, args), (k, args)
        await f.close()

    run(main())
    ref.close()
    assert seen["cancelled"] and seen["done"]
    with open(a, "rb") as fa, open(b, "rb") as fb:
        assert fa.read() == fb.read()


def test_cancel_waiting_in_fifo(run: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "q")
    with open(path, "wb") as f:
        f.write(bytes(range(256)) * 64)

    async def main() -> None:
        async with rf.open(path, "rb") as f:
            tasks = [asyncio.ensure_future(f.read(10)) for _ in range(10)]
            tasks[3].cancel()
            tasks[7].cancel()
            res = await asyncio.gather(*tasks, return_exceptions=True)
            data = [r for r in res if isinstance(r, bytes)]
            assert b"".join(data) == (bytes(range(256)) * 64)[:80]
            assert isinstance(res[3], asyncio.CancelledError)
            assert await f.tell() == 80

    run(main())


def test_loop_closed_with_ops_in_flight(loop_factory: Any,
                                        tmp_path: Any) -> None:
    path = str(tmp_path / "inflight")
    with open(path, "wb") as f:
        f.write(b"x" * (1 << 20))
    loop = loop_factory()
    holder: list = []

    async def start() -> None:
        f = await rf.open(path, "r+b")
        holder.append(f)
        for i in range(32):
            holder.append(asyncio.ensure_future(f.pread(4096, i * 4096)))
            holder.append(asyncio.ensure_future(
                f.pwrite(b"y" * 4096, i * 4096)))
            holder.append(asyncio.ensure_future(rf.os.stat(path)))
            holder.append(asyncio.ensure_future(f.fsync()))

    loop.run_until_complete(start())
    loop.run_until_complete(asyncio.sleep(0))
    for t in holder[1:]:
        t.cancel()
    loop.close()  # ops in flight: no crash, no hang
    f = holder[0]
    holder.clear()
    with pytest.warns(ResourceWarning):
        f.__del__()
    f._closed = True


def test_pool_threads_one(monkeypatch: Any, backend: str,
                          tmp_path: Any) -> None:
    """One pool thread (RINGLOOP_POOL_THREADS=1): ops queue up, none is
    lost."""
    import ringloop
    monkeypatch.setenv("RINGLOOP_POOL_THREADS", "1")
    loop = ringloop.new_event_loop(backend)

    async def main() -> None:
        async def one(i: int) -> bytes:
            p = tmp_path / f"p{i}"
            async with rf.open(p, "wb") as f:
                await f.write(b"%d" % i * 100)
                await f.fsync()
            st = await rf.os.stat(p)
            assert st.st_size == len(b"%d" % i * 100)
            async with rf.open(p, "rb") as f:
                return await f.read()
        got = await asyncio.gather(*(one(i) for i in range(40)))
        assert got == [b"%d" % i * 100 for i in range(40)]

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def test_o_direct(run: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "direct")
    data = os.urandom(1 << 16)
    with open(path, "wb") as f:
        f.write(data)

    def opener(p: str, flags: int) -> int:
        return os.open(p, flags | os.O_DIRECT)

    async def main() -> None:
        try:
            f = await rf.open(path, "r+b", buffering=0, opener=opener)
        except OSError as exc:
            pytest.skip(f"no O_DIRECT here: {exc}")
        async with f:
            assert f._direct
            assert await f.pread(4096, 8192) == data[8192:12288]
            assert await f.pwrite(b"z" * 4096, 4096) == 4096
            assert await f.pread(8192, 0) == data[:4096] + b"z" * 4096
            buf = bytearray(4096)
            await f.seek(4096)
            assert await f.readinto(buf) == 4096 and buf == b"z" * 4096
        with open(path, "rb") as fb:
            assert fb.read(8192) == data[:4096] + b"z" * 4096

    run(main())


def test_other_loop_uses_executor(tmp_path: Any) -> None:
    path = str(tmp_path / "e")

    async def main() -> None:
        async with rf.open(path, "w") as f:
            assert not f._io.ring
            await f.write("abc")
        async with rf.open(path) as f:
            assert await f.read() == "abc"

    asyncio.run(main())
