"""loop.sendfile() and loop.sock_sendfile(): os.sendfile where it works
(zero-copy), else reads in the executor written through sock_sendall or the
transport, as asyncio's BaseEventLoop and selector loop do.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from typing import Any

from ._compat import _check_ssl_socket
from ._transports import _SocketTransport

_SENDFILE_FALLBACK_READBUFFER_SIZE = 1024 * 256


def _check_range(offset: Any, count: Any) -> None:
    """What sendfile() and sock_sendfile() both check, as asyncio."""
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(
                f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(
                f"count must be a positive integer (got {count!r})")
    if not isinstance(offset, int):
        raise TypeError(
            f"offset must be a non-negative integer (got {offset!r})")
    if offset < 0:
        raise ValueError(
            f"offset must be a non-negative integer (got {offset!r})")


def _check_sendfile_params(sock: socket.socket, file: Any, offset: Any,
                           count: Any) -> None:
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if not sock.type == socket.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM type sockets are supported")
    _check_range(offset, count)


class _SendfileFallbackProtocol(asyncio.Protocol):
    """Stands in for a transport's protocol during a sendfile fallback: it
    turns pause_writing/resume_writing into a future to wait on."""

    def __init__(self, transp: Any) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport = transp
        self._proto = transp.get_protocol()
        self._should_resume_reading = transp.is_reading()
        self._should_resume_writing = bool(
            getattr(transp, "_protocol_paused", False))
        transp.pause_reading()
        transp.set_protocol(self)
        self._write_ready_fut: asyncio.Future[Any] | None = (
            self._loop.create_future() if self._should_resume_writing
            else None)

    async def drain(self) -> None:
        if self._transport.is_closing():
            raise ConnectionError("Connection closed by peer")
        fut = self._write_ready_fut
        if fut is not None:
            await fut

    def connection_made(self, transport: Any) -> None:
        raise RuntimeError("Invalid state: "
                           "connection should have been established already.")

    def connection_lost(self, exc: Any) -> None:
        if self._write_ready_fut is not None:
            self._write_ready_fut.set_exception(
                exc if exc is not None
                else ConnectionError("Connection is closed by peer"))
        self._proto.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._write_ready_fut is None:
            self._write_ready_fut = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._write_ready_fut is not None:
            self._write_ready_fut.set_result(False)
            self._write_ready_fut = None

    def data_received(self, data: bytes) -> None:
        raise RuntimeError("Invalid state: reading should be paused")

    def eof_received(self) -> None:
        raise RuntimeError("Invalid state: reading should be paused")

    async def restore(self) -> None:
        self._transport.set_protocol(self._proto)
        if self._should_resume_reading:
            self._transport.resume_reading()
        if self._write_ready_fut is not None:
            self._write_ready_fut.cancel()
        if self._should_resume_writing:
            self._proto.resume_writing()


class SendfileMixin:
    """The sendfile methods of ringloop.Loop."""

    _debug: bool

    async def sock_sendfile(self, sock: socket.socket, file: Any,
                            offset: int = 0, count: int | None = None, *,
                            fallback: bool = True) -> int:
        """Send a file over sock: os.sendfile (zero-copy) where it works,
        else reads in the executor and sock_sendall (fallback=True)."""
        if self._debug and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        _check_ssl_socket(sock)
        _check_sendfile_params(sock, file, offset, count)
        try:
            return await self._sock_sendfile_native(sock, file, offset, count)
        except asyncio.SendfileNotAvailableError:
            if not fallback:
                raise
        return await self._sock_sendfile_fallback(sock, file, offset, count)

    async def _sock_sendfile_native(self, sock: socket.socket, file: Any,
                                    offset: int, count: int | None) -> int:
        try:
            fileno = file.fileno()
        except (AttributeError, OSError) as err:
            raise asyncio.SendfileNotAvailableError("not a regular file") \
                from err
        try:
            fsize = os.fstat(fileno).st_size
        except OSError:
            raise asyncio.SendfileNotAvailableError("not a regular file")
        blocksize = count if count else fsize
        if not blocksize:
            return 0  # empty file
        blocksize = min(blocksize, 0xffff_ffff)
        end_pos = min(offset + count, fsize) if count else fsize
        fd = sock.fileno()
        total_sent = 0
        try:
            while True:
                blocksize = min(end_pos - offset - total_sent, blocksize)
                if blocksize <= 0:
                    return total_sent
                try:
                    sent = os.sendfile(fd, fileno, offset + total_sent,
                                       blocksize)
                except (BlockingIOError, InterruptedError):
                    await self._sock_wait_writable(sock)  # type: ignore
                    continue
                except OSError as exc:
                    if exc.errno == errno.ENOTCONN and \
                            type(exc) is not ConnectionError:
                        new_exc = ConnectionError("socket is not connected",
                                                  errno.ENOTCONN)
                        new_exc.__cause__ = exc
                        exc = new_exc
                    if total_sent == 0:
                        raise asyncio.SendfileNotAvailableError(
                            "os.sendfile call failed") from exc
                    raise exc
                if sent == 0:
                    return total_sent  # EOF
                total_sent += sent
        finally:
            if total_sent > 0:
                os.lseek(fileno, offset + total_sent, os.SEEK_SET)

    async def _sock_sendfile_fallback(self, sock: socket.socket, file: Any,
                                      offset: int,
                                      count: int | None) -> int:
        if offset:
            file.seek(offset)
        blocksize = (min(count, _SENDFILE_FALLBACK_READBUFFER_SIZE)
                     if count else _SENDFILE_FALLBACK_READBUFFER_SIZE)
        buf = bytearray(blocksize)
        total_sent = 0
        try:
            while True:
                if count:
                    blocksize = min(count - total_sent, blocksize)
                    if blocksize <= 0:
                        break
                view = memoryview(buf)[:blocksize]
                read = await self.run_in_executor(  # type: ignore
                    None, file.readinto, view)
                if not read:
                    break  # EOF
                await self.sock_sendall(sock, view[:read])
                total_sent += read
            return total_sent
        finally:
            if total_sent > 0 and hasattr(file, "seek"):
                file.seek(offset + total_sent)

    async def sendfile(self, transport: Any, file: Any, offset: int = 0,
                       count: int | None = None, *,
                       fallback: bool = True) -> int:
        """Send a file over a transport; return the number of bytes sent."""
        if transport.is_closing():
            raise RuntimeError("Transport is closing")
        if not isinstance(transport, _SocketTransport):
            # e.g. TLS: asyncio's transports say what they support
            mode = getattr(transport, "_sendfile_compatible", None)
            if getattr(mode, "name", "UNSUPPORTED") not in (
                    "FALLBACK", "TRY_NATIVE"):
                raise RuntimeError(
                    f"sendfile is not supported for transport {transport!r}")
            if not fallback:
                raise RuntimeError(
                    f"fallback is disabled and native sendfile is not "
                    f"supported for transport {transport!r}")
        if "b" not in getattr(file, "mode", "b"):
            raise ValueError("file should be opened in binary mode")
        _check_range(offset, count)
        if not isinstance(transport, _SocketTransport):
            return await self._sendfile_fallback(transport, file, offset,
                                                 count)
        try:
            return await self._sendfile_native(transport, file, offset,
                                               count)
        except asyncio.SendfileNotAvailableError:
            if not fallback:
                raise
        return await self._sendfile_fallback(transport, file, offset, count)

    async def _sendfile_write_fallback(self, transp: Any, file: Any,
                                       offset: int,
                                       count: int | None) -> int:
        """asyncio's _sendfile_fallback: read in the executor, write to the
        transport, wait while its protocol would be paused."""
        if offset:
            file.seek(offset)
        blocksize = min(count, 16384) if count else 16384
        buf = bytearray(blocksize)
        total_sent = 0
        proto = _SendfileFallbackProtocol(transp)
        try:
            while True:
                if count:
                    blocksize = min(count - total_sent, blocksize)
                    if blocksize <= 0:
                        return total_sent
                view = memoryview(buf)[:blocksize]
                read = await self.run_in_executor(  # type: ignore
                    None, file.readinto, view)
                if not read:
                    return total_sent
                await proto.drain()
                transp.write(view[:read])
                total_sent += read
        finally:
            if total_sent > 0 and hasattr(file, "seek"):
                file.seek(offset + total_sent)
            await proto.restore()

    async def _sendfile_native(self, transp: Any, file: Any, offset: int,
                               count: int | None) -> int:
        return await self._sendfile_quiet(transp, self._sock_sendfile_native,
                                          file, offset, count)

    async def _sendfile_fallback(self, transp: Any, file: Any, offset: int,
                                 count: int | None) -> int:
        # asyncio's: through transport.write() (sock_* methods refuse a
        # transport's socket, as asyncio's)
        return await self._sendfile_write_fallback(transp, file, offset,
                                                   count)

    async def _sendfile_quiet(self, transp: Any, send: Any, file: Any,
                              offset: int, count: int | None) -> int:
        # As asyncio: no reading, the queue drained and writes refused while
        # the file goes straight to the socket.
        resume_reading = transp.is_reading()
        transp.pause_reading()
        await transp._make_empty_waiter()
        try:
            return await send(transp._sock, file, offset, count)
        finally:
            transp._reset_empty_waiter()
            if resume_reading:
                transp.resume_reading()
