"""Pipes and subprocesses on ringloop.Loop.

Pipe transports (connect_read_pipe / connect_write_pipe) are the C pipe
transport (ringloop._ext.PipeTransport, end "r" or "w"), a stream
transport whose reads and writes are loop operations like a socket's, with
the same flow control. What is here checks the file, builds the transport
and keeps asyncio's class names, with the methods one end lacks.

Subprocesses reuse asyncio.base_subprocess.BaseSubprocessTransport (which
connects the child's pipes through connect_*_pipe). A child's exit is
watched without a SIGCHLD handler or a child watcher: the loop watches a
pidfd (os.pidfd_open) for readability like any reader, then reaps the child
with waitpid(WNOHANG); so it works on a loop in any thread and beside other
loops. Where pidfd_open is refused (ENOSYS on old kernels, EPERM under
seccomp), a thread blocks in waitpid() for that child instead, as asyncio's
ThreadedChildWatcher does.
"""

from __future__ import annotations

import contextvars
import errno
import logging
import os
import stat
import subprocess
import sys
import threading
from asyncio import base_subprocess
from typing import Any, Callable

from . import _ext
from ._compat import _set_result_unless_cancelled

logger = logging.getLogger("asyncio")

# pidfd_open errors that mean "not here" rather than "this child": fall back
# to a waiting thread.
_PIDFD_REFUSED = (errno.ENOSYS, errno.EPERM, errno.EACCES)

# The context a child's exit (process_exited, connection_lost) is handled
# in. asyncio 3.12+ watches a pidfd with a reader added when the child
# starts: a copy of the context that started it, which the pidfd watch
# here has too. Before 3.12 its default ThreadedChildWatcher reports the
# exit from its thread with call_soon_threadsafe: in that thread's empty
# context (as the waiting-thread fallback here, on every version).
_EXIT_IN_EMPTY_CONTEXT = sys.version_info < (3, 12)



def _not_on(kind: str, name: str) -> Callable[..., Any]:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{name}() is not available on a "
                                  f"{kind} pipe transport")
    method.__name__ = name
    return method


# ---- pipe transports -------------------------------------------------------

class _PipeTransport(_ext.PipeTransport):
    """What both ends share (all C: the pipe object as _pipe and the "pipe"
    extra info, repr, finalizer)."""


class _ReadPipeTransport(_PipeTransport):
    """The read end of a pipe, FIFO, character device, PTY or socket."""

    write = _not_on("read", "write")
    writelines = _not_on("read", "writelines")
    write_eof = _not_on("read", "write_eof")

    def can_write_eof(self) -> bool:
        return False


class _WritePipeTransport(_PipeTransport):
    """The write end of a pipe, FIFO, character device, PTY or socket."""

    is_reading = _not_on("write", "is_reading")
    pause_reading = _not_on("write", "pause_reading")
    resume_reading = _not_on("write", "resume_reading")


# ---- subprocesses ------------------------------------------------------------

class _SubprocessTransport(base_subprocess.BaseSubprocessTransport):
    """asyncio's subprocess transport; the loop watches the child's exit."""

    def _start(self, args: Any, shell: bool, stdin: Any, stdout: Any,
               stderr: Any, bufsize: int, **kwargs: Any) -> None:
        # Looked up at call time: tests patch subprocess.Popen.
        self._proc = subprocess.Popen(
            args, shell=shell, stdin=stdin, stdout=stdout, stderr=stderr,
            universal_newlines=False, bufsize=bufsize, **kwargs)


def _describe_pipe(fd: Any) -> str:
    if fd == subprocess.PIPE:
        return "<pipe>"
    if fd == subprocess.STDOUT:
        return "<stdout>"
    if fd == subprocess.DEVNULL:
        return "<devnull>"
    return repr(fd)


def _returncode(status: int) -> int:
    try:
        return os.waitstatus_to_exitcode(status)
    except ValueError:  # a status waitpid should never give: pass it on
        return status


class ProcMixin:
    """The pipe and subprocess methods of ringloop.Loop."""

    _debug: bool
    _child_pidfds: set[int]  # pidfds the loop watches (Loop.__init__)

    # ---- pipes -------------------------------------------------------------

    def _pipe_transport(self, cls: type, end: str, pipe: Any, protocol: Any,
                        waiter: Any, extra: Any) -> Any:
        fd = pipe.fileno()
        mode = os.fstat(fd).st_mode
        is_fifo, is_sock = stat.S_ISFIFO(mode), stat.S_ISSOCK(mode)
        if not (is_fifo or is_sock or stat.S_ISCHR(mode)):
            if end == "r":
                raise ValueError("Pipe transport is for pipes/sockets only.")
            raise ValueError("Pipe transport is only for pipes, sockets and "
                             "character devices")
        os.set_blocking(fd, False)
        transport = cls(self, pipe, protocol, end, extra)
        self.call_soon(protocol.connection_made, transport)  # type: ignore
        # The write end of a FIFO or socket watches for the reader going
        # away; a character device's (a PTY's) would see its input instead.
        if end == "r" or is_fifo or is_sock:
            self.call_soon(transport._start_reading)  # type: ignore
        if waiter is not None:
            self.call_soon(_set_result_unless_cancelled,  # type: ignore
                           waiter, None)
        return transport

    def _make_read_pipe_transport(self, pipe: Any, protocol: Any,
                                  waiter: Any = None,
                                  extra: dict[str, Any] | None = None) -> Any:
        return self._pipe_transport(_ReadPipeTransport, "r", pipe, protocol,
                                    waiter, extra)

    def _make_write_pipe_transport(self, pipe: Any, protocol: Any,
                                   waiter: Any = None,
                                   extra: dict[str, Any] | None = None
                                   ) -> Any:
        return self._pipe_transport(_WritePipeTransport, "w", pipe, protocol,
                                    waiter, extra)

    async def _connect_pipe(self, make: Callable[..., Any],
                            protocol_factory: Callable[[], Any], pipe: Any,
                            what: str) -> tuple[Any, Any]:
        protocol = protocol_factory()
        waiter = self.create_future()  # type: ignore
        transport = make(pipe, protocol, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        if self._debug:
            logger.debug("%s pipe %r connected: (%r, %r)", what,
                         pipe.fileno(), transport, protocol)
        return transport, protocol

    async def connect_read_pipe(self, protocol_factory: Callable[[], Any],
                                pipe: Any) -> tuple[Any, Any]:
        """Read from a pipe, FIFO, character device or PTY (a file object
        with fileno()) into a protocol; return (transport, protocol)."""
        return await self._connect_pipe(self._make_read_pipe_transport,
                                        protocol_factory, pipe, "Read")

    async def connect_write_pipe(self, protocol_factory: Callable[[], Any],
                                 pipe: Any) -> tuple[Any, Any]:
        """Write to a pipe, FIFO, character device or PTY through a
        transport; return (transport, protocol)."""
        return await self._connect_pipe(self._make_write_pipe_transport,
                                        protocol_factory, pipe, "Write")

    # ---- subprocesses ------------------------------------------------------

    @staticmethod
    def _check_subprocess_args(universal_newlines: Any, bufsize: Any,
                               text: Any, encoding: Any,
                               errors: Any) -> None:
        # asyncio's checks and messages: the pipes carry bytes, unbuffered.
        if universal_newlines:
            raise ValueError("universal_newlines must be False")
        if bufsize != 0:
            raise ValueError("bufsize must be 0")
        if text:
            raise ValueError("text must be False")
        if encoding is not None:
            raise ValueError("encoding must be None")
        if errors is not None:
            raise ValueError("errors must be None")

    def _log_subprocess(self, msg: str, stdin: Any, stdout: Any,
                        stderr: Any) -> None:
        parts = [msg]
        if stdin is not None:
            parts.append(f"stdin={_describe_pipe(stdin)}")
        if stdout is not None and stderr == subprocess.STDOUT:
            parts.append(f"stdout=stderr={_describe_pipe(stdout)}")
        else:
            if stdout is not None:
                parts.append(f"stdout={_describe_pipe(stdout)}")
            if stderr is not None:
                parts.append(f"stderr={_describe_pipe(stderr)}")
        logger.debug(" ".join(parts))

    async def _spawn(self, protocol_factory: Callable[[], Any], args: Any,
                     shell: bool, stdin: Any, stdout: Any, stderr: Any,
                     bufsize: int, what: str,
                     kwargs: dict[str, Any]) -> tuple[Any, Any]:
        protocol = protocol_factory()
        if self._debug:
            # Never the arguments: they may hold secrets, or be huge.
            self._log_subprocess(what, stdin, stdout, stderr)
        transport = await self._make_subprocess_transport(
            protocol, args, shell, stdin, stdout, stderr, bufsize, **kwargs)
        if self._debug:
            logger.info("%s: %r", what, transport)
        return transport, protocol

    async def subprocess_shell(self, protocol_factory: Callable[[], Any],
                               cmd: str | bytes, *,
                               stdin: Any = subprocess.PIPE,
                               stdout: Any = subprocess.PIPE,
                               stderr: Any = subprocess.PIPE,
                               universal_newlines: bool = False,
                               shell: bool = True, bufsize: int = 0,
                               encoding: Any = None, errors: Any = None,
                               text: Any = None,
                               **kwargs: Any) -> tuple[Any, Any]:
        """Run cmd through the shell; return (transport, protocol)."""
        if not isinstance(cmd, (bytes, str)):
            raise ValueError("cmd must be a string")
        if not shell:
            raise ValueError("shell must be True")
        self._check_subprocess_args(universal_newlines, bufsize, text,
                                    encoding, errors)
        return await self._spawn(protocol_factory, cmd, True, stdin, stdout,
                                 stderr, bufsize,
                                 f"run shell command {cmd!r}", kwargs)

    async def subprocess_exec(self, protocol_factory: Callable[[], Any],
                              program: Any, *args: Any,
                              stdin: Any = subprocess.PIPE,
                              stdout: Any = subprocess.PIPE,
                              stderr: Any = subprocess.PIPE,
                              universal_newlines: bool = False,
                              shell: bool = False, bufsize: int = 0,
                              encoding: Any = None, errors: Any = None,
                              text: Any = None,
                              **kwargs: Any) -> tuple[Any, Any]:
        """Run program with args; return (transport, protocol)."""
        if shell:
            raise ValueError("shell must be False")
        self._check_subprocess_args(universal_newlines, bufsize, text,
                                    encoding, errors)
        return await self._spawn(protocol_factory, (program,) + args, False,
                                 stdin, stdout, stderr, bufsize,
                                 f"execute program {program!r}", kwargs)

    async def _make_subprocess_transport(
            self, protocol: Any, args: Any, shell: bool, stdin: Any,
            stdout: Any, stderr: Any, bufsize: int,
            extra: dict[str, Any] | None = None,
            **kwargs: Any) -> _SubprocessTransport:
        waiter = self.create_future()  # type: ignore
        transp = _SubprocessTransport(self, protocol, args, shell, stdin,
                                      stdout, stderr, bufsize, waiter=waiter,
                                      extra=extra, **kwargs)
        self._watch_child(transp)
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transp.close()
            await transp._wait()
            raise
        return transp

    # ---- watching children -------------------------------------------------

    def _watch_child(self, transp: _SubprocessTransport) -> None:
        """Watch transp's child until it exits; never raises."""
        pid = transp.get_pid()
        try:
            pidfd = os.pidfd_open(pid)
        except AttributeError:  # not Linux
            pidfd = -1
        except OSError as exc:
            if exc.errno == errno.ESRCH:
                # Already reaped by someone else (SIGCHLD set to SIG_IGN,
                # a waitpid(-1) elsewhere): the status is gone.
                self.call_soon(  # type: ignore
                    self._child_exited, transp, None,
                    context=(contextvars.Context() if _EXIT_IN_EMPTY_CONTEXT
                             else None))
                return
            if exc.errno not in _PIDFD_REFUSED:
                logger.warning("pidfd_open(%d) failed (%s): waiting for the "
                               "child in a thread", pid, exc)
            elif self._debug:
                logger.debug("pidfd_open refused (%s): waiting for child "
                             "%d in a thread", exc, pid)
            pidfd = -1
        if pidfd >= 0:
            try:
                self.add_reader(pidfd, self._child_ready,  # type: ignore
                                pidfd, pid, transp)
                self._child_pidfds.add(pidfd)
                return
            except Exception as exc:
                logger.warning("cannot watch pidfd %d of child %d (%s): "
                               "waiting for it in a thread", pidfd, pid, exc)
                os.close(pidfd)
        threading.Thread(target=_wait_in_thread, args=(self, pid, transp),
                         name=f"ringloop-waitpid-{pid}", daemon=True).start()

    def _child_ready(self, pidfd: int, pid: int,
                     transp: _SubprocessTransport) -> None:
        # The pidfd is readable: the child has exited.
        try:
            wpid, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            returncode = None
        else:
            if wpid == 0:
                return  # not waitable yet: the watch stays
            returncode = _returncode(status)
        self.remove_reader(pidfd)  # type: ignore
        self._child_pidfds.discard(pidfd)
        os.close(pidfd)
        if _EXIT_IN_EMPTY_CONTEXT:
            contextvars.Context().run(self._child_exited, transp, returncode)
        else:
            self._child_exited(transp, returncode)

    def _child_exited(self, transp: _SubprocessTransport,
                      returncode: int | None) -> None:
        if returncode is None:
            # Reaped elsewhere: Popen.poll() (transport.close(), or
            # send_signal() before 3.13) keeps the status; else it is lost.
            returncode = transp._proc.returncode if transp._proc else None
            if returncode is None:
                returncode = 255
                logger.warning("child process pid %d exit status already "
                               "read: will report returncode 255",
                               transp.get_pid())
        if transp.get_returncode() is None:
            transp._process_exited(returncode)

    def _close_child_watches(self) -> None:
        """After the loop closed: close the pidfds of children it watched
        (their transports never learn the exit status)."""
        while self._child_pidfds:
            os.close(self._child_pidfds.pop())


def _wait_in_thread(loop: Any, pid: int,
                    transp: _SubprocessTransport) -> None:
    """The pidfd fallback: block in waitpid(), then hand over to the loop."""
    try:
        _, status = os.waitpid(pid, 0)
        returncode: int | None = _returncode(status)
    except ChildProcessError:
        returncode = None
    try:
        loop.call_soon_threadsafe(loop._child_exited, transp, returncode)
    except RuntimeError:
        logger.warning("Loop %r that handles pid %r is closed", loop, pid)
