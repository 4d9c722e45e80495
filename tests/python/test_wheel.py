"""The wheel that scripts/wheel.sh builds (from the sdist, repaired by
auditwheel) is self-contained: installed into a fresh venv it imports and
serves, with no liburing on the machine, and none of its binaries needs
liburing (ldd). scripts/test.sh builds one and points RINGLOOP_TEST_WHEEL
at it; without it this test is skipped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

WHEEL = os.environ.get("RINGLOOP_TEST_WHEEL")
pytestmark = pytest.mark.skipif(
    not WHEEL, reason="RINGLOOP_TEST_WHEEL unset (scripts/test.sh builds a "
    "wheel with scripts/wheel.sh and sets it)")

# A small server on the installed ringloop: echo over TCP, with the client
# in the same loop; prints the backend and what came back.
SERVER = textwrap.dedent('''
    import asyncio, ringloop

    async def main():
        async def echo(reader, writer):
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping\\n")
        answer = await reader.readline()
        writer.close()
        server.close()
        await server.wait_closed()
        loop = asyncio.get_running_loop()
        print(type(loop).__module__, loop.backend, answer.decode().strip())

    ringloop.run(main())
''')

# Run a command as on a machine without liburing: in a mount namespace of
# its own where every liburing.so* in the system's library directories is
# hidden behind /dev/null (so the dynamic loader cannot load it).
HIDE_LIBURING = r'''
for f in /usr/lib/*/liburing.so* /usr/lib/liburing.so* /lib/*/liburing.so*; do
    [ -e "$f" ] && mount --bind /dev/null "$f"
done
exec "$@"
'''


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheel = Path(WHEEL or "")
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    if f"-{tag}-" not in wheel.name:
        pytest.skip(f"{wheel.name} is not for this Python ({tag})")
    env_dir = tmp_path_factory.mktemp("wheel") / "venv"
    venv.create(env_dir, with_pip=True)
    subprocess.run([env_dir / "bin" / "python", "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", "--no-index", "--no-deps",
                    str(wheel)], check=True)
    return env_dir


def test_wheel_is_manylinux() -> None:
    assert "-manylinux_" in Path(WHEEL or "").name, WHEEL


def test_wheel_binaries_need_no_liburing(installed: Path) -> None:
    python = installed / "bin" / "python"
    pkg = Path(subprocess.run(
        [python, "-c", "import ringloop, os; "
         "print(os.path.dirname(ringloop.__file__))"],
        capture_output=True, text=True, check=True, cwd=installed
    ).stdout.strip())
    assert pkg.is_relative_to(installed), pkg  # not the test venv's copy
    binaries = list(pkg.glob("_ext*.so")) + list((pkg / "_bin").iterdir())
    assert len(binaries) == 3, binaries  # extension, probe, loadgen
    for binary in binaries:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True,
                             check=True).stdout
        assert "liburing" not in out, (binary, out)
    assert not (pkg.parent / "ringloop.libs").exists()  # nothing grafted


def test_wheel_serves_without_liburing(installed: Path) -> None:
    python = installed / "bin" / "python"
    argv = [str(python), "-c", SERVER]
    if os.geteuid() == 0 and shutil.which("unshare"):
        argv = ["unshare", "--mount", "sh", "-c", HIDE_LIBURING, "sh", *argv]
        # liburing really is out of reach there:
        probe = subprocess.run(
            [*argv[:5], sys.executable, "-c",
             "import ctypes; ctypes.CDLL('liburing.so.2')"],
            capture_output=True, text=True)
        assert probe.returncode != 0, "liburing still loads"
    out = subprocess.run(argv, capture_output=True, text=True,
                         cwd=installed)
    assert out.returncode == 0, out.stderr
    module, backend, answer = out.stdout.split()
    assert module == "ringloop._loop" and answer == "ping"
    assert backend in ("uring", "epoll")
