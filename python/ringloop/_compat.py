"""What asyncio keeps in private helpers and ringloop needs as they are:
version gates, asyncio.base_events' address helpers, the ssl and shutdown
argument checks, _set_result_unless_cancelled, and asyncio.run()'s
shutdown for Python 3.10 (asyncio.Runner does it from 3.11 on).
"""

from __future__ import annotations

import asyncio
import collections.abc
import itertools
import logging
import os
import socket
import stat
import sys
from typing import Any, Callable



logger = logging.getLogger("asyncio")

_PY311 = sys.version_info >= (3, 11)
_PY312 = sys.version_info >= (3, 12)
_PY313 = sys.version_info >= (3, 13)
_HAS_IPv6 = hasattr(socket, "AF_INET6")
_unset = object()


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


def _set_result_unless_cancelled(fut: asyncio.Future[Any],
                                 result: Any) -> None:
    if not fut.cancelled():
        fut.set_result(result)


def _cancel_all_tasks(loop: Any) -> None:
    """asyncio.runners._cancel_all_tasks()."""
    to_cancel = asyncio.all_tasks(loop)
    if not to_cancel:
        return
    for task in to_cancel:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*to_cancel,
                                           return_exceptions=True))
    for task in to_cancel:
        if task.cancelled():
            continue
        if task.exception() is not None:
            loop.call_exception_handler({
                "message": "unhandled exception during asyncio.run() "
                           "shutdown",
                "exception": task.exception(),
                "task": task,
            })


def run_with(factory: Callable[[], Any], main: Any,
             debug: bool | None = None) -> Any:
    """asyncio.run(main) on a loop from factory, on every Python version:
    asyncio.Runner from 3.11 on, 3.10's asyncio.run() before."""
    if _PY311:
        with asyncio.Runner(loop_factory=factory, debug=debug) as runner:
            return runner.run(main)
    if asyncio._get_running_loop() is not None:
        raise RuntimeError(
            "asyncio.run() cannot be called from a running event loop")
    if not asyncio.iscoroutine(main):
        raise ValueError(f"a coroutine was expected, got {main!r}")
    loop = factory()
    try:
        asyncio.set_event_loop(loop)
        if debug is not None:
            loop.set_debug(debug)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _remove_stale_unix_socket(path: Any) -> None:
    """What asyncio does before binding a Unix socket to a path: remove a
    socket file left there, and log (not raise) when it cannot tell."""
    if path[0] in (0, "\x00"):
        return  # an abstract name: no file
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        logger.error("Unable to check or remove stale UNIX socket %r: %r",
                     path, err)
