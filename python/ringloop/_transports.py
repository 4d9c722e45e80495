"""Transports: the C stream and datagram transports (ringloop._ext) under
asyncio's class names, and the loop methods that make them, TLS included
(asyncio.sslproto over a stream transport, start_tls).
"""

from __future__ import annotations

import socket
from typing import Any

from . import _ext
from ._compat import (_PY313, _set_result_unless_cancelled,
                      _shutdown_timeout_arg, _unset, _PY311)

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
    """A TCP or Unix stream transport (asyncio.Transport's API).

    All of it is C: _SocketTransport(loop, sock, protocol, buffered=None,
    server=None, extra=None) sets TCP_NODELAY, builds the extra info and
    attaches to the server without running Python code.
    """

    _start_tls_compatible = True


class _DatagramTransport(_ext.DatagramTransport):
    """A UDP or Unix datagram transport (asyncio.DatagramTransport's API).

    C but for sendto()'s checks and its name resolution fallback.
    """

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
            sock = self.get_extra_info("socket")
            if sock.family not in (socket.AF_INET, socket.AF_INET6):
                raise
            try:
                infos = socket.getaddrinfo(addr[0], addr[1], sock.family,
                                           sock.type, sock.proto)
            except OSError as exc:
                self.get_protocol().error_received(exc)
                return
            self._sendto(data, infos[0][4])


class TransportMixin:
    """The transport factories of ringloop.Loop."""

    _debug: bool

    def _transport_made(self, protocol: Any, transport: Any,
                        waiter: Any) -> None:
        # as asyncio's transports' constructors: connection_made, then
        # reading, then the waiter, each in its own callback
        self.call_soon(protocol.connection_made, transport)  # type: ignore
        self.call_soon(transport._start_reading)  # type: ignore
        if waiter is not None:
            self.call_soon(_set_result_unless_cancelled,  # type: ignore
                           waiter, None)

    def _make_socket_transport(self, sock: socket.socket, protocol: Any,
                               waiter: Any = None, *,
                               extra: dict[str, Any] | None = None,
                               server: Any = None) -> _SocketTransport:
        transport = _SocketTransport(self, sock, protocol, None, server,
                                     extra)
        self._transport_made(protocol, transport, waiter)
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
        self._transport_made(protocol, transport, waiter)
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
