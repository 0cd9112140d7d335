"""Push and pull through a zuul-registry server process on Swift, next to
swiftclient moving the same bytes straight to and from Swift (the ceiling).

The test checks the round trip on a small blob.  For the numbers:

    python -m tests.clients.test_swift_throughput [MiB [CHUNK_MiB]]

prints MB/s (10^6 bytes a second) for each way, measured in one run on the
one-node loopback Swift of tests/drivers/swift_server.
"""

import asyncio
import hashlib
import os
import sys
import tempfile
import time

import aiohttp
import swiftclient

from tests.drivers import swift_server
from tests.server_process import ServerProcess

PIECE = 1024 * 1024


def _pieces(data):
    view = memoryview(data)
    for start in range(0, len(data), PIECE):
        yield view[start:start + PIECE]


async def _async_pieces(data):
    for piece in _pieces(data):
        yield bytes(piece)


def swift_registry(directory, swift, container):
    return ServerProcess(directory, debug=False, registry={'storage': {
        'driver': 'swift', 'container': container,
        'auth-url': swift.auth_url, 'user': swift_server.USER,
        'key': swift_server.KEY}})


async def push(url, name, data, *, chunk):
    """Push `data` as a blob in PATCHes of `chunk` bytes; seconds taken."""
    digest = 'sha256:' + hashlib.sha256(data).hexdigest()
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        response = await session.post('%s/v2/%s/blobs/uploads/' % (url, name))
        assert response.status == 202, await response.text()
        location = response.headers['Location']
        for start in range(0, len(data), chunk):
            end = min(start + chunk, len(data))
            response = await session.patch(
                url + location if location.startswith('/') else location,
                data=_async_pieces(data[start:end]), headers={
                    'Content-Type': 'application/octet-stream',
                    'Content-Range': '%d-%d' % (start, end - 1)})
            assert response.status == 202, await response.text()
            location = response.headers['Location']
        separator = '&' if '?' in location else '?'
        response = await session.put('%s%s%sdigest=%s' % (
            url if location.startswith('/') else '', location, separator,
            digest))
        assert response.status == 201, await response.text()
    return time.monotonic() - started, digest


async def pull(url, name, digest):
    """Pull the blob, checking its digest; seconds taken and size."""
    hasher, size = hashlib.sha256(), 0
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        async with session.get('%s/v2/%s/blobs/%s' % (url, name,
                                                      digest)) as response:
            assert response.status == 200, await response.text()
            async for piece in response.content.iter_chunked(PIECE):
                hasher.update(piece)
                size += len(piece)
    assert 'sha256:' + hasher.hexdigest() == digest
    return time.monotonic() - started, size


def direct(swift, container, data):
    """swiftclient PUT and GET of `data`: seconds each way."""
    conn = swiftclient.Connection(
        retries=0, **swift_server.connection_options(swift))
    try:
        conn.put_container(container)
        started = time.monotonic()
        conn.put_object(container, 'direct', _pieces(data))
        put_seconds = time.monotonic() - started
        started = time.monotonic()
        _, body = conn.get_object(container, 'direct', resp_chunk_size=PIECE)
        hasher = hashlib.sha256()
        for piece in body:
            hasher.update(piece)
        get_seconds = time.monotonic() - started
        assert hasher.digest() == hashlib.sha256(data).digest()
        return put_seconds, get_seconds
    finally:
        conn.close()


def measure(directory, size, chunk):
    """{way: MB/s} for `size` random bytes pushed in `chunk`-byte PATCHes."""
    swift = swift_server.shared()
    data = os.urandom(size)
    container = swift_server.new_container()
    with swift_registry(directory, swift, container) as registry:
        push_seconds, digest = asyncio.run(
            push(registry.url, 'bench/blob', data, chunk=chunk))
        pull_seconds, pulled = asyncio.run(
            pull(registry.url, 'bench/blob', digest))
    assert pulled == size
    put_seconds, get_seconds = direct(swift, container, data)
    rate = {way: size / seconds / 1e6 for way, seconds in (
        ('registry push', push_seconds), ('registry pull', pull_seconds),
        ('swiftclient put', put_seconds), ('swiftclient get', get_seconds))}
    return rate


def test_a_blob_round_trips_through_a_registry_on_swift(tmp_path):
    rates = measure(str(tmp_path), 8 * 1024 * 1024 + 5, 3 * 1024 * 1024)
    assert all(rate > 0 for rate in rates.values())


def main(argv):
    size = int(argv[0]) if argv else 256
    chunk = int(argv[1]) if len(argv) > 1 else size
    with tempfile.TemporaryDirectory() as directory:
        rates = measure(directory, size * PIECE, chunk * PIECE)
    print('%d MiB in %d MiB PATCHes, loopback Swift:' % (size, chunk))
    for way, rate in rates.items():
        print('  %-16s %7.1f MB/s' % (way, rate))


if __name__ == '__main__':
    main(sys.argv[1:])
