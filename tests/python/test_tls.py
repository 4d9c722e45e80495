"""TLS (asyncio.sslproto over the loop's stream transports): servers,
clients, streams and sendfile, on stock asyncio and both ringloop backends."""

from __future__ import annotations

import asyncio
import io
import os
import ssl
import subprocess
import tempfile
from typing import Any

import pytest

TIMEOUT = 30


@pytest.fixture(scope="module")
def contexts() -> Any:
    with tempfile.TemporaryDirectory() as d:
        cert = os.path.join(d, "cert.pem")
        key = os.path.join(d, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-days", "2", "-subj", "/CN=localhost", "-addext",
             "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", key, "-out", cert],
            check=True, capture_output=True, timeout=60)
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(cert, key)
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.load_verify_locations(cert)
        yield server, client


async def _echo(reader: Any, writer: Any) -> None:
    while True:
        data = await reader.read(65536)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()


def test_tls_echo(run: Any, contexts: Any) -> None:
    sctx, cctx = contexts
    payload = os.urandom(2 << 20)

    async def main() -> bytes:
        server = await asyncio.start_server(_echo, "127.0.0.1", 0, ssl=sctx)
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                "127.0.0.1", port, ssl=cctx, server_hostname="localhost"),
                TIMEOUT)
            assert writer.get_extra_info("peercert") is not None

            async def send() -> None:
                writer.write(payload)
                await writer.drain()

            sender = asyncio.ensure_future(send())
            got = await asyncio.wait_for(
                reader.readexactly(len(payload)), TIMEOUT)
            await sender
            writer.close()
            await writer.wait_closed()
            return got

    assert run(main()) == payload


def test_tls_handshake_failure(run: Any, contexts: Any) -> None:
    sctx, _ = contexts

    async def main() -> None:
        server = await asyncio.start_server(_echo, "127.0.0.1", 0, ssl=sctx)
        port = server.sockets[0].getsockname()[1]
        async with server:
            strict = ssl.create_default_context()  # does not trust our cert
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.wait_for(asyncio.open_connection(
                    "127.0.0.1", port, ssl=strict,
                    server_hostname="localhost"), TIMEOUT)

    run(main())


def test_tls_sendfile(run: Any, contexts: Any) -> None:
    sctx, cctx = contexts
    data = os.urandom(300000)

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bytes] = loop.create_future()

        async def handle(reader: Any, writer: Any) -> None:
            done.set_result(await reader.read())
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=sctx)
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=cctx, server_hostname="localhost")
            n = await asyncio.wait_for(
                loop.sendfile(writer.transport, io.BytesIO(data)), TIMEOUT)
            assert n == len(data)
            writer.close()
            got = await asyncio.wait_for(done, TIMEOUT)
            await writer.wait_closed()
            return got

    assert run(main()) == data
