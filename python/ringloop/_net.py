"""Networking cold paths of ringloop.Loop: connection set-up, servers,
address resolution, TLS and option handling, following asyncio's
BaseEventLoop and selector loop with its public API (plus asyncio.sslproto,
asyncio.staggered and asyncio.trsock, as DESIGN.md allows).

The data paths are C (ringloop._ext): StreamTransport (recv completions call
the protocol directly, writes leave in one vectored sendmsg per iteration),
the server Acceptor (multishot accept) and the sock_* operations (one op and
one future each).
"""

from __future__ import annotations

import asyncio
import collections.abc
import errno
import functools
import itertools
import logging
import os
import socket
import stat
import sys
import warnings
import weakref
from asyncio import trsock
from typing import Any, Callable, Iterable

from . import _ext

logger = logging.getLogger("asyncio")

_PY311 = sys.version_info >= (3, 11)
_PY312 = sys.version_info >= (3, 12)
_PY313 = sys.version_info >= (3, 13)
_HAS_IPv6 = hasattr(socket, "AF_INET6")
_ACCEPT_RETRY_DELAY = 1.0  # asyncio.constants.ACCEPT_RETRY_DELAY
_unset = object()
_Future = asyncio.Future


def _ipaddr_info(host: Any, port: Any, family: int, type: int, proto: int,
                 flowinfo: int = 0, scopeid: int = 0) -> Any:
    """asyncio.base_events._ipaddr_info(): skip getaddrinfo for an IP."""
    if proto not in {0, socket.IPPROTO_TCP, socket.IPPROTO_UDP} or \
            host is None:
        return None
    if type == socket.SOCK_STREAM:
        proto = socket.IPPROTO_TCP
    elif type == socket.SOCK_DGRAM:
        proto = socket.IPPROTO_UDP
    else:
        return None
    if port is None:
        port = 0
    elif isinstance(port, (bytes, str)) and port in (b"", ""):
        port = 0
    else:
        try:
            port = int(port)
        except (TypeError, ValueError):
            return None
    if family == socket.AF_UNSPEC:
        afs = [socket.AF_INET]
        if _HAS_IPv6:
            afs.append(socket.AF_INET6)
    else:
        afs = [family]
    if isinstance(host, bytes):
        host = host.decode("idna")
    if "%" in host:
        return None
    for af in afs:
        try:
            socket.inet_pton(af, host)
            if _HAS_IPv6 and af == socket.AF_INET6:
                return af, type, proto, "", (host, port, flowinfo, scopeid)
            return af, type, proto, "", (host, port)
        except OSError:
            pass
    return None


def _interleave_addrinfos(addrinfos: list[Any],
                          first_address_family_count: int = 1) -> list[Any]:
    """Interleave the address families as happy eyeballs wants."""
    addrinfos_by_family: dict[int, list[Any]] = collections.OrderedDict()
    for addr in addrinfos:
        family = addr[0]
        if family not in addrinfos_by_family:
            addrinfos_by_family[family] = []
        addrinfos_by_family[family].append(addr)
    addrinfos_lists = list(addrinfos_by_family.values())
    reordered = []
    if first_address_family_count > 1:
        reordered.extend(addrinfos_lists[0][:first_address_family_count - 1])
        del addrinfos_lists[0][:first_address_family_count - 1]
    reordered.extend(
        a for a in itertools.chain.from_iterable(
            itertools.zip_longest(*addrinfos_lists)) if a is not None)
    return reordered


_SENDFILE_FALLBACK_READBUFFER_SIZE = 1024 * 256


def _check_sendfile_params(sock: socket.socket, file: Any, offset: Any,
                           count: Any) -> None:
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if not sock.type == socket.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM type sockets are supported")
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


def _set_nodelay(sock: socket.socket) -> None:
    if (sock.family in {socket.AF_INET, socket.AF_INET6} and
            sock.type == socket.SOCK_STREAM and
            sock.proto == socket.IPPROTO_TCP):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _set_reuseport(sock: socket.socket) -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port not supported by socket module")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        raise ValueError("reuse_port not supported by socket module, "
                         "SO_REUSEPORT defined but not implemented.")


try:
    from ssl import SSLSocket as _SSLSocket
except ImportError:  # pragma: no cover
    _SSLSocket = ()  # type: ignore


def _check_ssl_socket(sock: Any) -> None:
    """As asyncio: the sock_* methods refuse an ssl.SSLSocket (they would
    move its bytes past TLS)."""
    if isinstance(sock, _SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")


def _shutdown_timeout_arg(method: str, value: Any) -> Any:
    """ssl_shutdown_timeout as a method received it: None when not passed;
    on 3.10, where asyncio has no such parameter, passing it is the
    TypeError of an unknown keyword argument."""
    if value is _unset:
        return None
    if not _PY311:
        raise TypeError(f"Loop.{method}() got an unexpected keyword "
                        f"argument 'ssl_shutdown_timeout'")
    return value


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


def _set_result_unless_cancelled(fut: asyncio.Future[Any],
                                 result: Any) -> None:
    if not fut.cancelled():
        fut.set_result(result)


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


class Server(asyncio.AbstractServer):
    """What create_server() returns (asyncio.Server's API)."""

    def __init__(self, loop: Any, sockets: list[socket.socket],
                 protocol_factory: Callable[[], Any], backlog: int,
                 ssl_context: Any = None, ssl_handshake_timeout: Any = None,
                 ssl_shutdown_timeout: Any = None) -> None:
        self._loop = loop
        self._ssl_context = ssl_context
        self._ssl_handshake_timeout = ssl_handshake_timeout
        self._ssl_shutdown_timeout = ssl_shutdown_timeout
        self._sockets: list[socket.socket] | None = sockets
        self._acceptors: list[Any] = []
        self._active_count = 0
        self._waiters: list[asyncio.Future[None]] | None = []
        self._protocol_factory = protocol_factory
        self._backlog = backlog
        self._serving = False
        self._serving_forever_fut: asyncio.Future[None] | None = None
        self._clients: weakref.WeakSet[Any] = weakref.WeakSet()
        self._unix_cleanup: tuple[str, int] | None = None

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} sockets={self.sockets!r}>"

    def _attach(self, transport: Any = None) -> None:
        assert self._sockets is not None
        self._active_count += 1
        if transport is not None:
            self._clients.add(transport)

    def _detach(self, transport: Any = None) -> None:
        self._active_count -= 1
        if transport is not None:
            self._clients.discard(transport)
        if self._active_count == 0 and self._sockets is None:
            self._wakeup()

    def _wakeup(self) -> None:
        waiters = self._waiters
        self._waiters = None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def _start_serving(self) -> None:
        if self._serving:
            return
        self._serving = True
        assert self._sockets is not None
        for sock in self._sockets:
            sock.listen(self._backlog)
            self._acceptors.append(_AcceptorSlot(self, sock))

    def get_loop(self) -> Any:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    @property
    def sockets(self) -> tuple[Any, ...]:
        if self._sockets is None:
            return ()
        return tuple(trsock.TransportSocket(s) for s in self._sockets)

    def close(self) -> None:
        sockets = self._sockets
        if sockets is None:
            return
        self._sockets = None
        if self._unix_cleanup is not None:
            path, ino = self._unix_cleanup
            self._unix_cleanup = None
            try:
                if os.stat(path).st_ino == ino:
                    os.unlink(path)
            except OSError:
                pass
        for slot in self._acceptors:
            slot.close()
        self._acceptors = []
        for sock in sockets:
            sock.close()  # already detached: only marks the object closed
        self._serving = False
        if (self._serving_forever_fut is not None and
                not self._serving_forever_fut.done()):
            self._serving_forever_fut.cancel()
            self._serving_forever_fut = None
        if self._active_count == 0:
            self._wakeup()

    if _PY313:
        def close_clients(self) -> None:
            for transport in self._clients.copy():
                transport.close()

        def abort_clients(self) -> None:
            for transport in self._clients.copy():
                transport.abort()

    async def start_serving(self) -> None:
        self._start_serving()
        # Let the accepts go in before returning, as asyncio does.
        await asyncio.sleep(0)

    async def serve_forever(self) -> None:
        if self._serving_forever_fut is not None:
            raise RuntimeError(
                f"server {self!r} is already being awaited on "
                f"serve_forever()")
        if self._sockets is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._start_serving()
        self._serving_forever_fut = self._loop.create_future()
        try:
            await self._serving_forever_fut
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever_fut = None

    async def wait_closed(self) -> None:
        if _PY312:
            if self._waiters is None:
                return
        elif self._sockets is None or self._waiters is None:
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter


class _AcceptorSlot:
    """One listening socket of a Server and its C Acceptor.

    Made when the server starts serving, the Acceptor keeps a copy of that
    context and calls _accepted in a fresh copy of it per connection, as
    asyncio's accept reader and _accept_connection2 task: the protocol
    factory and the transport's callbacks see what the task that started
    serving had set, and no connection sees another's changes.
    """

    def __init__(self, server: Server, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.family, self.type, self.proto = sock.family, sock.type, sock.proto
        self.retry: Any = None
        self.acceptor = _ext.Acceptor(server._loop, sock, self._accepted)
        self.acceptor.start()

    def close(self) -> None:
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None
        self.sock.detach()
        self.acceptor.close()

    def _restart(self) -> None:
        self.retry = None
        if self.server._sockets is not None:
            self.acceptor.start()

    def _accepted(self, fd: int) -> None:
        loop = self.server._loop
        if fd < 0:
            err = -fd
            exc = OSError(err, os.strerror(err))
            if err in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS,
                       errno.ENOMEM):
                loop.call_exception_handler({
                    "message": "socket.accept() out of system resource",
                    "exception": exc,
                    "socket": trsock.TransportSocket(self.sock),
                })
            else:
                loop.call_exception_handler({
                    "message": "Error on accept()",
                    "exception": exc,
                    "socket": trsock.TransportSocket(self.sock),
                })
            self.retry = loop.call_later(_ACCEPT_RETRY_DELAY, self._restart)
            return
        conn = socket.socket(self.family, self.type | socket.SOCK_NONBLOCK,
                             self.proto, fd)
        try:
            protocol = self.server._protocol_factory()
        except (SystemExit, KeyboardInterrupt):
            conn.close()
            raise
        except BaseException as exc:
            conn.close()
            loop.call_exception_handler({
                "message": "Error on transport creation for incoming "
                           "connection",
                "exception": exc,
            })
            return
        try:
            server = self.server
            if server._ssl_context is None:
                loop._make_socket_transport(conn, protocol, server=server)
                return
            waiter = loop.create_future()
            transport = loop._make_ssl_transport(
                conn, protocol, server._ssl_context, waiter, server_side=True,
                server=server,
                ssl_handshake_timeout=server._ssl_handshake_timeout,
                ssl_shutdown_timeout=server._ssl_shutdown_timeout)
            waiter.add_done_callback(functools.partial(
                _ssl_handshake_done, loop, protocol, transport))
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            conn.close()
            loop.call_exception_handler({
                "message": "Error on transport creation for incoming "
                           "connection",
                "exception": exc,
                "protocol": protocol,
            })


def _ssl_handshake_done(loop: Any, protocol: Any, transport: Any,
                        waiter: asyncio.Future[None]) -> None:
    """asyncio's _accept_connection2 after `await waiter` failed: close the
    transport, and say why in debug mode only."""
    if waiter.cancelled() or waiter.exception() is None:
        return
    transport.close()
    if loop.get_debug():
        loop.call_exception_handler({
            "message": "Error on transport creation for incoming connection",
            "exception": waiter.exception(),
            "protocol": protocol,
            "transport": transport,
        })


class NetMixin:
    """The networking methods of ringloop.Loop."""

    _debug: bool

    # ---- transports ------------------------------------------------------

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

    async def create_datagram_endpoint(
            self, protocol_factory: Callable[[], Any], local_addr: Any = None,
            remote_addr: Any = None, *, family: int = 0, proto: int = 0,
            flags: int = 0, reuse_address: Any = _unset,
            reuse_port: Any = None, allow_broadcast: Any = None,
            sock: Any = None) -> tuple[Any, Any]:
        """Create a datagram endpoint; return (transport, protocol)."""
        if reuse_address is not _unset:
            if _PY311:  # the parameter is gone, as in asyncio
                raise TypeError("create_datagram_endpoint() got an "
                                "unexpected keyword argument 'reuse_address'")
            if reuse_address:
                raise ValueError(
                    "Passing `reuse_address=True` is no longer supported, "
                    "as the usage of SO_REUSEPORT in UDP poses a "
                    "significant security concern.")
            warnings.warn("The *reuse_address* parameter has been "
                          "deprecated as of 3.5.10 and is scheduled for "
                          "removal in 3.11.", DeprecationWarning,
                          stacklevel=2)
        if sock is not None:
            if sock.type != socket.SOCK_DGRAM:
                raise ValueError(f"A UDP Socket was expected, got {sock!r}")
            if (local_addr or remote_addr or family or proto or flags or
                    reuse_port or allow_broadcast):
                opts = dict(local_addr=local_addr, remote_addr=remote_addr,
                            family=family, proto=proto, flags=flags,
                            reuse_port=reuse_port,
                            allow_broadcast=allow_broadcast)
                problems = ", ".join(f"{k}={v}" for k, v in opts.items()
                                     if v)
                raise ValueError(
                    f"socket modifier keyword arguments can not be used "
                    f"when sock is specified. ({problems})")
            sock.setblocking(False)
            r_addr = None
        else:
            if not (local_addr or remote_addr):
                if family == 0:
                    raise ValueError("unexpected address family")
                addr_pairs_info: Any = (((family, proto), (None, None)),)
            elif family == socket.AF_UNIX:
                for addr in (local_addr, remote_addr):
                    if addr is not None and not isinstance(addr, str):
                        raise TypeError("string is expected")
                if local_addr and local_addr[0] not in (0, "\x00"):
                    try:
                        if stat.S_ISSOCK(os.stat(local_addr).st_mode):
                            os.remove(local_addr)
                    except FileNotFoundError:
                        pass
                    except OSError as err:
                        logger.error("Unable to check or remove stale UNIX "
                                     "socket %r: %r", local_addr, err)
                addr_pairs_info = (((family, proto),
                                    (local_addr, remote_addr)),)
            else:
                addr_infos: dict[Any, list[Any]] = {}
                for idx, addr in ((0, local_addr), (1, remote_addr)):
                    if addr is not None:
                        if not (isinstance(addr, tuple) and len(addr) == 2):
                            if not _PY311:  # 3.10's asyncio asserts it
                                raise AssertionError("2-tuple is expected")
                            raise TypeError("2-tuple is expected")
                        infos = await self._ensure_resolved(
                            addr, family=family, type=socket.SOCK_DGRAM,
                            proto=proto, flags=flags)
                        if not infos:
                            raise OSError("getaddrinfo() returned empty list")
                        for fam, _, pro, _, address in infos:
                            key = (fam, pro)
                            if key not in addr_infos:
                                addr_infos[key] = [None, None]
                            addr_infos[key][idx] = address
                addr_pairs_info = [
                    (key, addr_pair) for key, addr_pair in addr_infos.items()
                    if not ((local_addr and addr_pair[0] is None) or
                            (remote_addr and addr_pair[1] is None))]
                if not addr_pairs_info:
                    raise ValueError("can not get address information")
            exceptions = []
            for ((family, proto),
                 (local_address, remote_address)) in addr_pairs_info:
                sock = None
                r_addr = None
                try:
                    sock = socket.socket(family=family, type=socket.SOCK_DGRAM,
                                         proto=proto)
                    if reuse_port:
                        _set_reuseport(sock)
                    if allow_broadcast:
                        sock.setsockopt(socket.SOL_SOCKET,
                                        socket.SO_BROADCAST, 1)
                    sock.setblocking(False)
                    if local_addr:
                        sock.bind(local_address)
                    if remote_addr:
                        if not allow_broadcast:
                            await self.sock_connect(sock, remote_address)
                        r_addr = remote_address
                except OSError as exc:
                    if sock is not None:
                        sock.close()
                    exceptions.append(exc)
                except BaseException:
                    if sock is not None:
                        sock.close()
                    raise
                else:
                    break
            else:
                raise exceptions[0]
        protocol = protocol_factory()
        waiter = self.create_future()  # type: ignore
        transport = self._make_datagram_transport(sock, protocol, r_addr,
                                                  waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

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

    async def _create_connection_transport(
            self, sock: socket.socket, protocol_factory: Callable[[], Any],
            ssl: Any = None, server_hostname: Any = None,
            server_side: bool = False, ssl_handshake_timeout: Any = None,
            ssl_shutdown_timeout: Any = None) -> tuple[Any, Any]:
        sock.setblocking(False)
        protocol = protocol_factory()
        waiter = self.create_future()  # type: ignore
        if ssl:
            sslcontext = None if isinstance(ssl, bool) else ssl
            try:
                transport = self._make_ssl_transport(
                    sock, protocol, sslcontext, waiter,
                    server_side=server_side, server_hostname=server_hostname,
                    ssl_handshake_timeout=ssl_handshake_timeout,
                    ssl_shutdown_timeout=ssl_shutdown_timeout)
            except BaseException:
                # e.g. SSLProtocol refused a timeout: asyncio leaves the
                # connected socket to the garbage collector.
                sock.close()
                raise
        else:
            transport = self._make_socket_transport(sock, protocol, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    def _stop_serving(self, sock: socket.socket) -> None:
        # asyncio's BaseSelectorEventLoop._stop_serving(), which code and
        # tests written against asyncio's loops call.
        self.remove_reader(sock.fileno())  # type: ignore
        sock.close()

    # ---- resolution ------------------------------------------------------

    async def getaddrinfo(self, host: Any, port: Any, *, family: int = 0,
                          type: int = 0, proto: int = 0,
                          flags: int = 0) -> list[Any]:
        """socket.getaddrinfo() in the executor; numeric hosts at once."""
        if host is not None and not isinstance(host, (str, bytes)):
            pass
        else:
            try:
                return socket.getaddrinfo(
                    host, port, family, type, proto,
                    flags | socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)
            except (socket.gaierror, UnicodeError, TypeError):
                pass
        return await self.run_in_executor(  # type: ignore
            None, socket.getaddrinfo, host, port, family, type, proto, flags)

    async def getnameinfo(self, sockaddr: Any, flags: int = 0) -> Any:
        """socket.getnameinfo() in the executor."""
        return await self.run_in_executor(  # type: ignore
            None, socket.getnameinfo, sockaddr, flags)

    async def _ensure_resolved(self, address: Any, *, family: int = 0,
                               type: int = socket.SOCK_STREAM,
                               proto: int = 0, flags: int = 0) -> list[Any]:
        host, port = address[:2]
        info = _ipaddr_info(host, port, family, type, proto, *address[2:])
        if info is not None:
            return [info]
        return await self.getaddrinfo(host, port, family=family, type=type,
                                      proto=proto, flags=flags)

    # ---- sock_* ----------------------------------------------------------
    # The C methods try the call at once and return its result, or a future
    # when it has to wait for the socket (see sock.c).

    async def sock_recv(self, sock: socket.socket, n: int) -> bytes:
        """Receive up to n bytes from sock."""
        if isinstance(sock, _SSLSocket):
            _check_ssl_socket(sock)
        r = self._sock_recv(sock, n)  # type: ignore
        return (await r) if isinstance(r, _Future) else r

    async def sock_recv_into(self, sock: socket.socket, buf: Any) -> int:
        """Receive into buf; return the number of bytes."""
        _check_ssl_socket(sock)
        r = self._sock_recv_into(sock, buf)  # type: ignore
        return (await r) if isinstance(r, _Future) else r

    async def sock_recvfrom(self, sock: socket.socket,
                            bufsize: int) -> tuple[bytes, Any]:
        """Receive a datagram of up to bufsize bytes: (data, address)."""
        _check_ssl_socket(sock)
        r = self._sock_recvfrom(sock, bufsize)  # type: ignore
        return (await r) if isinstance(r, _Future) else r

    async def sock_recvfrom_into(self, sock: socket.socket, buf: Any,
                                 nbytes: int = 0) -> tuple[int, Any]:
        """Receive a datagram into buf: (nbytes, address)."""
        _check_ssl_socket(sock)
        if nbytes:
            # socket.recvfrom_into()'s checks
            if nbytes < 0:
                raise ValueError("negative buffersize in recvfrom_into")
            buf = memoryview(buf).cast("B")  # nbytes counts bytes
            if nbytes > buf.nbytes:
                raise ValueError("nbytes is greater than the length of the "
                                 "buffer")
            buf = buf[:nbytes]
        r = self._sock_recvfrom_into(sock, buf)  # type: ignore
        return (await r) if isinstance(r, _Future) else r

    async def sock_sendall(self, sock: socket.socket, data: Any) -> None:
        """Send all of data to sock."""
        if isinstance(sock, _SSLSocket):
            _check_ssl_socket(sock)
        # None: all of it went at once (the common case), nothing to wait for
        r = self._sock_sendall(sock, data)  # type: ignore
        if r is not None:
            await r

    async def sock_sendto(self, sock: socket.socket, data: Any,
                          address: Any) -> int:
        """Send a datagram to address; return the number of bytes sent."""
        _check_ssl_socket(sock)
        if self._debug and sock.gettimeout() != 0:
            # before the name-resolution fallback below catches ValueError
            raise ValueError("the socket must be non-blocking")
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                r = self._sock_sendto(sock, data, address)  # type: ignore
                return (await r) if isinstance(r, _Future) else r
            except ValueError:
                resolved = await self._ensure_resolved(
                    address, family=sock.family, type=sock.type,
                    proto=sock.proto)
                address = resolved[0][4]
        r = self._sock_sendto(sock, data, address)  # type: ignore
        return (await r) if isinstance(r, _Future) else r

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        """Connect sock to address (resolved in the executor if needed)."""
        _check_ssl_socket(sock)
        if self._debug and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        if sock.family != socket.AF_UNIX:
            resolved = await self._ensure_resolved(
                address, family=sock.family, type=sock.type,
                proto=sock.proto)
            _, _, _, _, address = resolved[0]
        r = self._sock_connect(sock, address)  # type: ignore
        if r is not None:
            await r

    async def sock_accept(self, sock: socket.socket) -> tuple[Any, Any]:
        """Accept a connection: (conn, address); conn is non-blocking."""
        _check_ssl_socket(sock)
        r = self._sock_accept(sock)  # type: ignore
        return (await r) if isinstance(r, _Future) else r

    # ---- sendfile --------------------------------------------------------

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

    # ---- connections -----------------------------------------------------

    async def _connect_sock(self, exceptions: list[Any], addr_info: Any,
                            local_addr_infos: Any = None) -> socket.socket:
        my_exceptions: list[Any] = []
        exceptions.append(my_exceptions)
        family, type_, proto, _, address = addr_info
        sock = None
        try:
            sock = socket.socket(family=family, type=type_, proto=proto)
            sock.setblocking(False)
            if local_addr_infos is not None:
                for lfamily, _, _, _, laddr in local_addr_infos:
                    if lfamily != family:
                        continue
                    try:
                        sock.bind(laddr)
                        break
                    except OSError as exc:
                        msg = (f"error while attempting to bind on "
                               f"address {laddr!r}: "
                               f"{exc.strerror.lower()}")
                        my_exceptions.append(OSError(exc.errno, msg))
                else:
                    if my_exceptions:
                        raise my_exceptions.pop()
                    raise OSError(f"no matching local address with "
                                  f"family={family} found")
            await self.sock_connect(sock, address)
            return sock
        except OSError as exc:
            my_exceptions.append(exc)
            if sock is not None:
                sock.close()
            raise
        except BaseException:
            if sock is not None:
                sock.close()
            raise

    async def create_connection(
            self, protocol_factory: Callable[[], Any], host: Any = None,
            port: Any = None, *, ssl: Any = None, family: int = 0,
            proto: int = 0, flags: int = 0, sock: Any = None,
            local_addr: Any = None, server_hostname: Any = None,
            ssl_handshake_timeout: Any = None,
            ssl_shutdown_timeout: Any = _unset,
            happy_eyeballs_delay: float | None = None,
            interleave: int | None = None,
            all_errors: bool = False) -> tuple[Any, Any]:
        """Connect to a TCP server; return (transport, protocol)."""
        ssl_shutdown_timeout = _shutdown_timeout_arg(
            "create_connection", ssl_shutdown_timeout)
        if server_hostname is not None and not ssl:
            raise ValueError("server_hostname is only meaningful with ssl")
        if server_hostname is None and ssl:
            if not host:
                raise ValueError("You must set server_hostname "
                                 "when using ssl without a host")
            server_hostname = host
        if ssl_handshake_timeout is not None and not ssl:
            raise ValueError(
                "ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and not ssl:
            raise ValueError(
                "ssl_shutdown_timeout is only meaningful with ssl")
        if sock is not None:
            _check_ssl_socket(sock)
        if happy_eyeballs_delay is not None and interleave is None:
            interleave = 1
        if host is not None or port is not None:
            if sock is not None:
                raise ValueError(
                    "host/port and sock can not be specified at the same "
                    "time")
            infos = await self._ensure_resolved(
                (host, port), family=family, type=socket.SOCK_STREAM,
                proto=proto, flags=flags)
            if not infos:
                raise OSError("getaddrinfo() returned empty list")
            if local_addr is not None:
                laddr_infos = await self._ensure_resolved(
                    local_addr, family=family, type=socket.SOCK_STREAM,
                    proto=proto, flags=flags)
                if not laddr_infos:
                    raise OSError("getaddrinfo() returned empty list")
            else:
                laddr_infos = None
            if interleave:
                infos = _interleave_addrinfos(infos, interleave)
            exceptions: list[Any] = []
            if happy_eyeballs_delay is None:
                for addrinfo in infos:
                    try:
                        sock = await self._connect_sock(
                            exceptions, addrinfo, laddr_infos)
                        break
                    except OSError:
                        continue
            else:
                from asyncio import staggered
                sock, _, _ = await staggered.staggered_race(
                    (functools.partial(self._connect_sock, exceptions,
                                       addrinfo, laddr_infos)
                     for addrinfo in infos),
                    happy_eyeballs_delay, loop=self)
            if sock is None:
                flat = [exc for sub in exceptions for exc in sub]
                try:
                    if all_errors and _PY312:
                        raise ExceptionGroup(  # noqa: F821
                            "create_connection failed", flat)
                    if len(flat) == 1:
                        raise flat[0]
                    model = str(flat[0])
                    if all(str(exc) == model for exc in flat):
                        raise flat[0]
                    raise OSError("Multiple exceptions: {}".format(
                        ", ".join(str(exc) for exc in flat)))
                finally:
                    flat = exceptions = []  # break reference cycles
        else:
            if sock is None:
                raise ValueError(
                    "host and port was not specified and no sock specified")
            if sock.type != socket.SOCK_STREAM:
                raise ValueError(
                    f"A Stream Socket was expected, got {sock!r}")
        return await self._create_connection_transport(
            sock, protocol_factory, ssl, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)

    async def create_unix_connection(
            self, protocol_factory: Callable[[], Any], path: Any = None, *,
            ssl: Any = None, sock: Any = None, server_hostname: Any = None,
            ssl_handshake_timeout: Any = None,
            ssl_shutdown_timeout: Any = _unset) -> tuple[Any, Any]:
        """Connect to a Unix socket; return (transport, protocol)."""
        ssl_shutdown_timeout = _shutdown_timeout_arg(
            "create_unix_connection", ssl_shutdown_timeout)
        if ssl:
            if server_hostname is None:
                raise ValueError(
                    "you have to pass server_hostname when using ssl")
        else:
            if server_hostname is not None:
                raise ValueError(
                    "server_hostname is only meaningful with ssl")
            if ssl_handshake_timeout is not None:
                raise ValueError(
                    "ssl_handshake_timeout is only meaningful with ssl")
            if ssl_shutdown_timeout is not None:
                raise ValueError(
                    "ssl_shutdown_timeout is only meaningful with ssl")
        if path is not None:
            if sock is not None:
                raise ValueError(
                    "path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
            try:
                sock.setblocking(False)
                await self.sock_connect(sock, path)
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("no path and sock were specified")
            if (sock.family != socket.AF_UNIX or
                    sock.type != socket.SOCK_STREAM):
                raise ValueError(
                    f"A UNIX Domain Stream Socket was expected, got {sock!r}")
            sock.setblocking(False)
        return await self._create_connection_transport(
            sock, protocol_factory, ssl, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)

    async def connect_accepted_socket(
            self, protocol_factory: Callable[[], Any], sock: socket.socket,
            *, ssl: Any = None, ssl_handshake_timeout: Any = None,
            ssl_shutdown_timeout: Any = _unset) -> tuple[Any, Any]:
        """Wrap an accepted connection into a (transport, protocol) pair."""
        ssl_shutdown_timeout = _shutdown_timeout_arg(
            "connect_accepted_socket", ssl_shutdown_timeout)
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")
        if ssl_handshake_timeout is not None and not ssl:
            raise ValueError(
                "ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and not ssl:
            raise ValueError(
                "ssl_shutdown_timeout is only meaningful with ssl")
        _check_ssl_socket(sock)
        return await self._create_connection_transport(
            sock, protocol_factory, ssl, "", server_side=True,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)

    # ---- servers ---------------------------------------------------------

    async def _create_server_getaddrinfo(self, host: Any, port: Any,
                                         family: int,
                                         flags: int) -> list[Any]:
        infos = await self._ensure_resolved(
            (host, port), family=family, type=socket.SOCK_STREAM,
            flags=flags)
        if not infos:
            raise OSError(f"getaddrinfo({host!r}) returned empty list")
        return infos

    async def create_server(
            self, protocol_factory: Callable[[], Any], host: Any = None,
            port: Any = None, *, family: int = socket.AF_UNSPEC,
            flags: int = socket.AI_PASSIVE, sock: Any = None,
            backlog: int = 100, ssl: Any = None, reuse_address: Any = None,
            reuse_port: Any = None, keep_alive: Any = None,
            ssl_handshake_timeout: Any = None,
            ssl_shutdown_timeout: Any = _unset,
            start_serving: bool = True) -> Server:
        """Create a TCP server; return a Server."""
        ssl_shutdown_timeout = _shutdown_timeout_arg(
            "create_server", ssl_shutdown_timeout)
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        if ssl_handshake_timeout is not None and ssl is None:
            raise ValueError(
                "ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and ssl is None:
            raise ValueError(
                "ssl_shutdown_timeout is only meaningful with ssl")
        if sock is not None:
            _check_ssl_socket(sock)
        if host is not None or port is not None:
            if sock is not None:
                raise ValueError(
                    "host/port and sock can not be specified at the same "
                    "time")
            if reuse_address is None:
                reuse_address = True
            sockets: list[socket.socket] = []
            if host == "":
                hosts: Iterable[Any] = [None]
            elif (isinstance(host, str) or
                  not isinstance(host, collections.abc.Iterable)):
                hosts = [host]
            else:
                hosts = host
            fs = [self._create_server_getaddrinfo(h, port, family=family,
                                                  flags=flags)
                  for h in hosts]
            infos = await asyncio.gather(*fs)
            infoset = set(itertools.chain.from_iterable(infos))
            completed = False
            try:
                for res in infoset:
                    af, socktype, proto, _, sa = res
                    try:
                        sock = socket.socket(af, socktype, proto)
                    except OSError:
                        continue
                    sockets.append(sock)
                    if reuse_address:
                        sock.setsockopt(socket.SOL_SOCKET,
                                        socket.SO_REUSEADDR, True)
                    if reuse_port:
                        _set_reuseport(sock)
                    if keep_alive:
                        sock.setsockopt(socket.SOL_SOCKET,
                                        socket.SO_KEEPALIVE, True)
                    if _HAS_IPv6 and af == socket.AF_INET6:
                        sock.setsockopt(socket.IPPROTO_IPV6,
                                        socket.IPV6_V6ONLY, True)
                    try:
                        sock.bind(sa)
                    except OSError as err:
                        msg = ("error while attempting to bind on address "
                               "%r: %s" % (sa, (err.strerror or "").lower()))
                        raise OSError(err.errno, msg) from None
                completed = True
            finally:
                if not completed:
                    for s in sockets:
                        s.close()
        else:
            if sock is None:
                raise ValueError("Neither host/port nor sock were specified")
            if sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")
            sockets = [sock]
        for s in sockets:
            s.setblocking(False)
        server = Server(self, sockets, protocol_factory, backlog, ssl,
                        ssl_handshake_timeout, ssl_shutdown_timeout)
        if start_serving:
            server._start_serving()
            await asyncio.sleep(0)
        if self._debug:
            logger.info("%r is serving", server)
        return server

    async def create_unix_server(
            self, protocol_factory: Callable[[], Any], path: Any = None, *,
            sock: Any = None, backlog: int = 100, ssl: Any = None,
            ssl_handshake_timeout: Any = None,
            ssl_shutdown_timeout: Any = _unset, start_serving: bool = True,
            cleanup_socket: bool = True) -> Server:
        """Create a Unix socket server; return a Server."""
        ssl_shutdown_timeout = _shutdown_timeout_arg(
            "create_unix_server", ssl_shutdown_timeout)
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        if ssl_handshake_timeout is not None and not ssl:
            raise ValueError(
                "ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and not ssl:
            raise ValueError(
                "ssl_shutdown_timeout is only meaningful with ssl")
        if path is not None:
            if sock is not None:
                raise ValueError(
                    "path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            if path[0] not in (0, "\x00"):
                try:
                    if stat.S_ISSOCK(os.stat(path).st_mode):
                        os.remove(path)
                except FileNotFoundError:
                    pass
                except OSError as err:
                    logger.error("Unable to check or remove stale UNIX "
                                 "socket %r: %r", path, err)
            try:
                sock.bind(path)
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    raise OSError(errno.EADDRINUSE,
                                  f"Address {path!r} is already in use"
                                  ) from None
                raise
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError(
                    "path was not specified, and no sock specified")
            if (sock.family != socket.AF_UNIX or
                    sock.type != socket.SOCK_STREAM):
                raise ValueError(
                    f"A UNIX Domain Stream Socket was expected, got {sock!r}")
        sock.setblocking(False)
        server = Server(self, [sock], protocol_factory, backlog, ssl,
                        ssl_handshake_timeout, ssl_shutdown_timeout)
        if _PY313 and cleanup_socket:
            path = sock.getsockname()
            if isinstance(path, str) and path and path[0] != "\x00":
                try:
                    server._unix_cleanup = (path, os.stat(path).st_ino)
                except OSError:
                    pass
        if start_serving:
            server._start_serving()
            await asyncio.sleep(0)
        return server
