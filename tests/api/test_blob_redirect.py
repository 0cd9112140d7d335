"""S3 storage with `redirect`: a blob GET answers 307 with a presigned
URL, and the S3 server itself sends the bytes (real Ceph and SeaweedFS).
Everything else about the GET (authorization, 404, a bad range, the
quarantine) is still the registry's."""

import urllib.parse

import aiohttp
import pytest

from tests.api.helpers import (assert_error, basic_auth, make_config,
                               push_blob)
from tests.drivers import s3_fixtures
from zuul_registry import oci
from zuul_registry.api import base
from zuul_registry.app import make_app
from zuul_registry.config import READ, WRITE, User
from zuul_registry.drivers.s3 import REDIRECT_SECONDS

BLOB = bytes(range(256)) * (3 * 4096 + 7)      # about 3 MiB
NAME = 'org/img'


@pytest.fixture(params=s3_fixtures.KINDS)
def kind(request):
    return request.param


@pytest.fixture
def make_client(aiohttp_client, tmp_path, kind):
    async def make(*, redirect=True, **config):
        driver = s3_fixtures.make_driver(kind, redirect=redirect)
        return await aiohttp_client(make_app(
            make_config(tmp_path / 'unused', **config), driver=driver))
    return make


async def fetch(url, headers=None):
    """GET `url` as a client following the redirect would: no registry
    credentials go to the storage."""
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.get(url, headers=headers or {}) as response:
            return response.status, await response.read()


async def redirected(client, digest, headers=None):
    response = await client.get('/v2/%s/blobs/%s' % (NAME, digest),
                                headers=headers, allow_redirects=False)
    assert response.status == 307, await response.text()
    assert response.headers[oci.CONTENT_DIGEST_HEADER] == digest
    return response.headers['Location']


async def test_a_blob_get_is_sent_to_the_storage(make_client, kind):
    client = await make_client()
    digest = await push_blob(client, NAME, BLOB)
    url = await redirected(client, digest)
    server = s3_fixtures.s3_server().server(kind)
    assert url.startswith(server.endpoint + '/')
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query['X-Amz-Expires'] == [str(REDIRECT_SECONDS)]
    assert await fetch(url) == (200, BLOB)
    # A client resuming sends its Range to the storage.
    assert await fetch(url, {'Range': 'bytes=1000-1999'}) == \
        (206, BLOB[1000:2000])


async def test_what_is_not_a_stored_blob_is_answered_here(make_client):
    client = await make_client()
    digest = await push_blob(client, NAME, BLOB)
    response = await client.head('/v2/%s/blobs/%s' % (NAME, digest))
    assert response.status == 200
    assert response.headers['Content-Length'] == str(len(BLOB))
    unknown = 'sha256:' + '0' * 64
    response = await client.get('/v2/%s/blobs/%s' % (NAME, unknown),
                                allow_redirects=False)
    await assert_error(response, 404, 'BLOB_UNKNOWN')
    response = await client.get('/v2/%s/blobs/%s' % ('org/other', digest),
                                allow_redirects=False)
    await assert_error(response, 404, 'BLOB_UNKNOWN')
    response = await client.get(
        '/v2/%s/blobs/%s' % (NAME, digest), allow_redirects=False,
        headers={'Range': 'bytes=%d-' % (len(BLOB) + 10)})
    assert response.status == 416
    assert 'Location' not in response.headers


async def test_a_quarantined_blob_is_restored_before_the_redirect(
        make_client):
    client = await make_client()
    digest = await push_blob(client, NAME, BLOB)
    storage = client.app[base.STORAGE]
    assert await storage.blobs.quarantine.hold(
        None, oci.Digest.parse(digest))
    url = await redirected(client, digest)
    assert await fetch(url) == (200, BLOB)


async def test_only_an_authorized_client_is_redirected(make_client):
    users = (User(name='reader', password='secret-r', access=READ),
             User(name='writer', password='secret-w', access=WRITE))
    client = await make_client(users=users, anonymous_read=False)

    def basic(name, password):
        return {'Authorization': basic_auth(name, password)}
    digest = await push_blob(client, NAME, BLOB,
                             headers=basic('writer', 'secret-w'))
    response = await client.get('/v2/%s/blobs/%s' % (NAME, digest),
                                allow_redirects=False)
    assert response.status == 401
    assert 'Location' not in response.headers
    url = await redirected(client, digest, basic('reader', 'secret-r'))
    assert await fetch(url) == (200, BLOB)


async def test_without_redirect_the_registry_sends_the_bytes(make_client):
    client = await make_client(redirect=False)
    digest = await push_blob(client, NAME, BLOB)
    response = await client.get('/v2/%s/blobs/%s' % (NAME, digest),
                                allow_redirects=False)
    assert response.status == 200
    assert await response.read() == BLOB


async def test_a_blob_quarantined_after_its_redirect_comes_back_on_retry(
        make_client):
    # Prune takes the blob in the moment between the redirect and the
    # client's GET at the storage: that GET fails, nothing is lost, and
    # the client's next try through the registry restores the blob.
    client = await make_client()
    digest = await push_blob(client, NAME, BLOB)
    url = await redirected(client, digest)
    storage = client.app[base.STORAGE]
    assert await storage.blobs.quarantine.hold(
        None, oci.Digest.parse(digest))
    status, _ = await fetch(url)
    assert status == 404
    url = await redirected(client, digest)
    assert await fetch(url) == (200, BLOB)
