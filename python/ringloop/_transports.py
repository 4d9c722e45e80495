"""Transports: the C stream and datagram transports (ringloop._ext) under
asyncio's class names, and the loop methods that make them, TLS included
(asyncio.sslproto over a stream transport, start_tls).
"""

from __future__ import annotations

import asyncio
import socket
import warnings
from asyncio import trsock
from typing import Any

from . import _ext
from ._compat import (_PY313, _set_result_unless_cancelled,
                      _shutdown_timeout_arg, _unset, _PY311)

def _set_nodelay(sock: socket.socket) -> None:
    if (sock.family in {socket.AF_INET, socket.AF_INET6} and
            sock.type == socket.SOCK_STREAM and
            sock.proto == socket.IPPROTO_TCP):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _ssl_protocol(loop: Any, app_protocol: Any, sslcontext: Any,
                  waiter: Any, server_side: bool, server_hostname: Any,
                  ssl_handshake_timeout: Any, ssl_shutdown_timeout: Any,
                  call_connection_made: bool = True) -> Any:
    """An asyncio.sslproto.SSLProtocol (a BufferedProtocol on 3.11+, a
    Protocol with no shutdown timeout on 3.10)."""
    from asyncio import sslproto
    kw: dict[str, Any] = {}
    if _PY311:
        kw["ssl_shutdown_timeout"] = ssl_shutdown_timeout
    return sslproto.SSLProtocol(
        loop, app_protocol, sslcontext, waiter, server_side, server_hostname,
        call_connection_made=call_connection_made,
        ssl_handshake_timeout=ssl_handshake_timeout, **kw)


class _SocketTransport(_ext.StreamTransport):
    """A TCP or Unix stream transport (asyncio.Transport's API)."""

    _start_tls_compatible = True

    def __init__(self, loop: Any, sock: socket.socket, protocol: Any,
                 buffered: bool = False, server: Any = None,
                 extra: dict[str, Any] | None = None) -> None:
        self._extra = dict(extra) if extra else {}
        self._extra["socket"] = trsock.TransportSocket(sock)
        try:
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            self._extra["sockname"] = None
        if "peername" not in self._extra:
            try:
                self._extra["peername"] = sock.getpeername()
            except OSError:
                self._extra["peername"] = None
        if server is not None:
            server._attach(self)

    def __repr__(self) -> str:
        info = [self.__class__.__name__]
        fd = self._sock_fd
        if fd < 0:
            info.append("closed")
        elif self.is_closing():
            info.append("closing")
        info.append(f"fd={fd}")
        if fd >= 0:
            info.append("read=" + ("polling" if self.is_reading()
                                   else "idle"))
            info.append(f"write=<bufsize={self.get_write_buffer_size()}>")
        return "<{}>".format(" ".join(info))

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._sock_fd >= 0:
            if not self.is_closing():
                _warn(f"unclosed transport {self!r}", ResourceWarning,
                      source=self)
            self._close_now()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Optional transport information (socket, sockname, peername)."""
        return self._extra.get(name, default)

    def set_protocol(self, protocol: Any) -> None:
        self._set_protocol(protocol,
                           isinstance(protocol, asyncio.BufferedProtocol))


class _DatagramTransport(_ext.DatagramTransport):
    """A UDP or Unix datagram transport (asyncio.DatagramTransport's API)."""

    def __init__(self, loop: Any, sock: socket.socket, protocol: Any,
                 address: Any = None, connected: bool = False,
                 extra: dict[str, Any] | None = None) -> None:
        self._extra = dict(extra) if extra else {}
        self._extra["socket"] = trsock.TransportSocket(sock)
        try:
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            self._extra["sockname"] = None
        if "peername" not in self._extra:
            try:
                self._extra["peername"] = sock.getpeername()
            except OSError:
                self._extra["peername"] = None
        self._family = sock.family
        self._type = sock.type
        self._proto = sock.proto

    def __repr__(self) -> str:
        fd = self._sock_fd
        state = "closed" if fd < 0 else (
            "closing" if self.is_closing() else "open")
        return f"<{self.__class__.__name__} {state} fd={fd}>"

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._sock_fd >= 0:
            if not self.is_closing():
                _warn(f"unclosed transport {self!r}", ResourceWarning,
                      source=self)
            self._close_now()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def sendto(self, data: Any, addr: Any = None) -> None:
        """Send data to addr (None: the remote address)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, "
                            f"not {type(data).__name__!r}")
        if not data and not _PY313:
            return
        address = self._address
        if address:
            if addr not in (None, address):
                raise ValueError(
                    f"Invalid address: must be None or {address}")
            addr = address
        try:
            self._sendto(data, addr)
        except ValueError:
            # A name, not a numeric address: resolve it as socket.sendto()
            # would (blocking, as in asyncio).
            if self._family not in (socket.AF_INET, socket.AF_INET6):
                raise
            try:
                infos = socket.getaddrinfo(addr[0], addr[1], self._family,
                                           self._type, self._proto)
            except OSError as exc:
                self.get_protocol().error_received(exc)
                return
            self._sendto(data, infos[0][4])


class TransportMixin:
    """The transport factories of ringloop.Loop."""

    _debug: bool

    def _make_socket_transport(self, sock: socket.socket, protocol: Any,
                               waiter: Any = None, *,
                               extra: dict[str, Any] | None = None,
                               server: Any = None) -> _SocketTransport:
        _set_nodelay(sock)
        transport = _SocketTransport(
            self, sock, protocol,
            isinstance(protocol, asyncio.BufferedProtocol), server, extra)
        self.call_soon(protocol.connection_made, transport)  # type: ignore
        self.call_soon(transport._start_reading)  # type: ignore
        if waiter is not None:
            self.call_soon(_set_result_unless_cancelled,  # type: ignore
                           waiter, None)
        return transport

    def _make_datagram_transport(self, sock: socket.socket, protocol: Any,
                                 address: Any = None, waiter: Any = None,
                                 extra: dict[str, Any] | None = None
                                 ) -> _DatagramTransport:
        extra = dict(extra) if extra else {}
        if "peername" not in extra:
            try:
                extra["peername"] = sock.getpeername()
            except OSError:
                extra["peername"] = None
        transport = _DatagramTransport(self, sock, protocol, address,
                                       bool(extra["peername"]), extra)
        self.call_soon(protocol.connection_made, transport)  # type: ignore
        self.call_soon(transport._start_reading)  # type: ignore
        if waiter is not None:
            self.call_soon(_set_result_unless_cancelled,  # type: ignore
                           waiter, None)
        return transport

    def _make_ssl_transport(self, rawsock: socket.socket, protocol: Any,
                            sslcontext: Any, waiter: Any = None, *,
                            server_side: bool = False,
                            server_hostname: Any = None,
                            extra: dict[str, Any] | None = None,
                            server: Any = None,
                            ssl_handshake_timeout: Any = None,
                            ssl_shutdown_timeout: Any = None) -> Any:
        """TLS through asyncio.sslproto over a ringloop stream transport."""
        ssl_protocol = _ssl_protocol(
            self, protocol, sslcontext, waiter, server_side, server_hostname,
            ssl_handshake_timeout, ssl_shutdown_timeout)
        self._make_socket_transport(rawsock, ssl_protocol, extra=extra,
                                    server=server)
        return ssl_protocol._app_transport

    async def start_tls(self, transport: Any, protocol: Any,
                        sslcontext: Any, *, server_side: bool = False,
                        server_hostname: Any = None,
                        ssl_handshake_timeout: Any = None,
                        ssl_shutdown_timeout: Any = _unset) -> Any:
        """Upgrade transport to TLS; return the new transport that protocol
        should use from now on (BaseEventLoop.start_tls)."""
        ssl_shutdown_timeout = _shutdown_timeout_arg("start_tls",
                                                     ssl_shutdown_timeout)
        import ssl
        if not isinstance(sslcontext, ssl.SSLContext):
            raise TypeError(
                f"sslcontext is expected to be an instance of "
                f"ssl.SSLContext, got {sslcontext!r}")
        if not getattr(transport, "_start_tls_compatible", False):
            raise TypeError(
                f"transport {transport!r} is not supported by start_tls()")
        waiter = self.create_future()  # type: ignore
        ssl_protocol = _ssl_protocol(
            self, protocol, sslcontext, waiter, server_side, server_hostname,
            ssl_handshake_timeout, ssl_shutdown_timeout,
            call_connection_made=False)
        # Paused first, so that the SSL protocol gets no data before its
        # connection_made().
        transport.pause_reading()
        transport.set_protocol(ssl_protocol)
        conmade_cb = self.call_soon(  # type: ignore
            ssl_protocol.connection_made, transport)
        resume_cb = self.call_soon(transport.resume_reading)  # type: ignore
        try:
            await waiter
        except BaseException:
            transport.close()
            conmade_cb.cancel()
            resume_cb.cancel()
            raise
        return ssl_protocol._app_transport
