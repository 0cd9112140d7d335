"""A monolithic POST ?digest= that fails leaves no upload session behind.

The client never learns the session's id (the answer is an error, not
202 with a Location), so nobody could finish or cancel it.
"""

import asyncio
import logging

import aiohttp
import pytest

from zuul_registry.api import base
from zuul_registry.storage import paths
from tests.api.helpers import assert_error, digest_of


async def uploads_left(client):
    driver = client.server.app[base.STORAGE].driver
    return await driver.list(paths.uploads(None))


@pytest.mark.parametrize('digest', [
    'sha256:nothex', 'md5:' + '0' * 32, 'sha256:' + '0' * 63, 'latest',
])
async def test_monolithic_post_with_invalid_digest_starts_no_upload(
        client, digest):
    response = await client.post('/v2/org/img/blobs/uploads/?digest=' +
                                 digest, data=b'data')
    await assert_error(response, 400, 'DIGEST_INVALID')
    assert await uploads_left(client) == []


async def test_monolithic_post_with_wrong_digest_leaves_no_upload(client):
    response = await client.post('/v2/org/img/blobs/uploads/?digest=' +
                                 digest_of(b'other'), data=b'data')
    await assert_error(response, 400, 'DIGEST_INVALID')
    assert await uploads_left(client) == []


async def test_monolithic_post_cut_short_by_the_client_leaves_no_upload(
        client, caplog):
    caplog.set_level(logging.INFO, logger='zuul_registry.storage.uploads')

    async def body():
        yield b'x' * 100000
        await asyncio.sleep(0.2)   # the server has started the upload
        raise RuntimeError('client gives up')

    with pytest.raises((aiohttp.ClientError, RuntimeError)):
        await client.post(
            '/v2/org/img/blobs/uploads/?digest=' + digest_of(b'x' * 200000),
            data=body(), headers={'Content-Length': '200000'})
    # The server may still be making the session when the client is
    # gone (slow storage): wait until it has dealt with it.
    for _ in range(200):
        if any(record.getMessage().endswith(' cancelled')
               for record in caplog.records):
            break
        await asyncio.sleep(0.05)
    for _ in range(100):   # listings of object stores may lag
        if await uploads_left(client) == []:
            break
        await asyncio.sleep(0.05)
    assert await uploads_left(client) == []


async def test_monolithic_post_still_creates_the_blob(client):
    response = await client.post('/v2/org/img/blobs/uploads/?digest=' +
                                 digest_of(b'data'), data=b'data')
    assert response.status == 201
    assert await uploads_left(client) == []
