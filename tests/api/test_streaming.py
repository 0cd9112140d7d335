"""Blobs served without sendfile: over TLS or from a remote driver.

The memory driver has no local files, so the handler must stream from
driver reads; the same path serves TLS connections.
"""

import pytest

from zuul_registry.app import make_app
from zuul_registry.drivers.memory import MemoryDriver
from tests.api.helpers import make_config, push_blob


@pytest.fixture
async def streaming_client(aiohttp_client, tmp_path):
    app = make_app(make_config(tmp_path), driver=MemoryDriver())
    return await aiohttp_client(app)


async def test_streamed_blob_has_length_digest_and_exact_bytes(
        streaming_client):
    data = bytes(range(256)) * 9000   # several read chunks
    digest = await push_blob(streaming_client, 'org/img', data)
    response = await streaming_client.get('/v2/org/img/blobs/%s' % digest)
    assert response.status == 200
    assert response.headers['Content-Length'] == str(len(data))
    assert response.headers['Docker-Content-Digest'] == digest
    assert response.headers['Content-Type'] == 'application/octet-stream'
    assert await response.read() == data


async def test_streamed_range_request_is_206(streaming_client):
    data = bytes(range(256)) * 9000
    digest = await push_blob(streaming_client, 'org/img', data)
    response = await streaming_client.get(
        '/v2/org/img/blobs/%s' % digest,
        headers={'Range': 'bytes=1000000-1999999'})
    assert response.status == 206
    assert response.headers['Content-Range'] == \
        'bytes 1000000-1999999/%d' % len(data)
    assert await response.read() == data[1000000:2000000]
