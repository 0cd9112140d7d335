"""Smaller TLS read buffers (zuul_registry/tls_reads.py) take, and a
TLS connection opened afterwards still carries a large body whole."""

import asyncio
import hashlib
import os
import ssl

import pytest

from bench.certs import write_self_signed
from zuul_registry import tls_reads


@pytest.fixture
def small_buffers():
    from asyncio import sslproto
    before = sslproto.SSLProtocol.max_size
    assert tls_reads.use_small_buffers()
    yield sslproto.SSLProtocol
    sslproto.SSLProtocol.max_size = before


def contexts(tmp_path):
    """Server and client SSL contexts for a throwaway certificate."""
    files = write_self_signed(str(tmp_path))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(files.cert, files.key)
    return server, ssl.create_default_context(cafile=files.cert)


async def test_a_body_crosses_a_tls_connection_with_small_buffers(
        small_buffers, tmp_path):
    assert small_buffers.max_size == tls_reads.READ_BUFFER
    server_context, client_context = contexts(tmp_path)
    body = os.urandom(3 * 1024 * 1024 + 17)
    received = hashlib.sha256()
    done = asyncio.Event()

    async def handle(reader, writer):
        buffer_sizes = len(writer.transport._ssl_protocol._ssl_buffer)
        assert buffer_sizes == tls_reads.READ_BUFFER
        while data := await reader.read(1 << 20):
            received.update(data)
        writer.close()
        done.set()

    server = await asyncio.start_server(handle, '127.0.0.1', 0,
                                        ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection(
        '127.0.0.1', port, ssl=client_context, server_hostname='127.0.0.1')
    writer.write(body)
    await writer.drain()
    writer.write_eof() if writer.can_write_eof() else None
    writer.close()
    await asyncio.wait_for(done.wait(), 30)
    server.close()
    assert received.digest() == hashlib.sha256(body).digest()


async def test_an_upload_reads_more_at_a_time_unless_many_stream_in(
        small_buffers, tmp_path):
    server_context, client_context = contexts(tmp_path)
    sizes = []
    done = asyncio.Event()

    async def handle(reader, writer):
        protocol = writer.transport._ssl_protocol
        for bodies in (1, tls_reads.CROWD, tls_reads.CROWD + 1, None):
            tls_reads.fit_upload(writer.transport, bodies)
            sizes.append(protocol.max_size)
        writer.close()
        done.set()

    server = await asyncio.start_server(handle, '127.0.0.1', 0,
                                        ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection(
        '127.0.0.1', port, ssl=client_context, server_hostname='127.0.0.1')
    await asyncio.wait_for(done.wait(), 30)
    writer.close()
    server.close()
    small, large = tls_reads.READ_BUFFER, tls_reads.UPLOAD_READ_BUFFER
    assert sizes == [large, large, small, small]
    # A plain connection (no TLS protocol under it), or none: no error.
    tls_reads.fit_upload(object(), 1)
    tls_reads.fit_upload(None, 1)
