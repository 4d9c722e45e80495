"""Servers: asyncio.Server's API over the C Acceptor (multishot accept),
create_server and create_unix_server.
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
import weakref
from asyncio import trsock
from typing import Any, Callable, Iterable

from . import _ext
from ._compat import (_HAS_IPv6, _PY312, _PY313, _check_ssl_socket,
                      _remove_stale_unix_socket, _set_reuseport,
                      _shutdown_timeout_arg, _unset)
from ._transports import TransportMixin, _SocketTransport

logger = logging.getLogger("asyncio")

_ACCEPT_RETRY_DELAY = 1.0  # asyncio.constants.ACCEPT_RETRY_DELAY


class Server(_ext.ServerBase, asyncio.AbstractServer):
    """What create_server() returns (asyncio.Server's API).

    _attach, _detach, _active_count and _clients are ServerBase's, in C:
    transports attach and detach without a Python frame.
    """

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
        self._sockets_given = False  # create_server(sock=...)

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} sockets={self.sockets!r}>"

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
    context and sets up each connection in a fresh copy of it, as asyncio's
    accept reader and _accept_connection2 task: the protocol factory and
    the transport's callbacks see what the task that started serving had
    set, and no connection sees another's changes.

    A plain server's connections are set up by the Acceptor, in C, with no
    Python frame of ours: the socket object, the protocol, the transport,
    connection_made and _start_reading, as _accepted does below. _accepted
    runs for TLS servers, for a loop with its own _make_socket_transport
    (its type's or its own attribute, checked at each start), in debug
    mode, and on accept errors.
    """

    def __init__(self, server: Server, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.family, self.type, self.proto = sock.family, sock.type, sock.proto
        self.retry: Any = None
        plain: dict[str, Any] = {}
        if server._ssl_context is None:
            plain = dict(
                server=server, protocol_factory=server._protocol_factory,
                transport_type=_SocketTransport,
                make_socket_transport=TransportMixin._make_socket_transport)
        self.acceptor = _ext.Acceptor(server._loop, sock, self._accepted,
                                      **plain)
        self.acceptor.start()

    def close(self) -> None:
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None
        self.sock.detach()
        # A socket given to create_server(sock=) may be shared with other
        # processes (a pre-fork server's): it must go on listening there.
        self.acceptor.close(not self.server._sockets_given)

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


class ServerMixin:
    """The server methods of ringloop.Loop."""

    _debug: bool

    def _stop_serving(self, sock: socket.socket) -> None:
        # asyncio's BaseSelectorEventLoop._stop_serving(), which code and
        # tests written against asyncio's loops call.
        self.remove_reader(sock.fileno())  # type: ignore
        sock.close()

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
        server._sockets_given = host is None and port is None
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
            _remove_stale_unix_socket(path)
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
        server._sockets_given = path is None
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
