"""Connections of ringloop.Loop: create_connection, Unix connections,
connect_accepted_socket, datagram endpoints, address resolution and the
sock_* methods, following asyncio's BaseEventLoop and selector loop with
its public API (plus asyncio.staggered, as DESIGN.md allows).

The data paths are C (ringloop._ext): the transports (_transports.py), the
server Acceptor (_servers.py) and the sock_* operations (tried at once, else
after a readiness poll: sock.c).
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import warnings
from typing import Any, Callable

from ._compat import (_PY311, _PY312, _SSLSocket, _check_ssl_socket,
                      _interleave_addrinfos, _ipaddr_info,
                      _remove_stale_unix_socket, _set_reuseport,
                      _shutdown_timeout_arg, _unset)

_Future = asyncio.Future


class NetMixin:
    """The connection and socket methods of ringloop.Loop."""

    _debug: bool

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
                if local_addr:
                    _remove_stale_unix_socket(local_addr)
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
