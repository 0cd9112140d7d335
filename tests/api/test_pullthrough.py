"""Pull-through: the registry serves what was pushed here, and for the
rest the upstream's, streamed while it is cached.

The upstream is a real zuul-registry app on a loopback port; faults it
cannot make (a body cut off, a stall, wrong bytes) come from small
aiohttp servers written for them.
"""

import asyncio
import dataclasses
import hashlib
import json
import time

import pytest
from aiohttp import web

from zuul_registry import oci
from zuul_registry.api import base
from zuul_registry.app import make_app
from zuul_registry.config.model import Upstream
from zuul_registry.prune import prune
from zuul_registry.storage import paths
from tests.api.helpers import (assert_error, digest_of, make_config,
                               push_blob, push_image)

BIG = 11 * 1024 * 1024 + 12345     # several fill segments, not a multiple


class Counter:
    """Counts the requests an upstream app answers, by method and path."""

    def __init__(self):
        self.seen = []

    @web.middleware
    async def middleware(self, request, handler):
        self.seen.append((request.method, request.path))
        return await handler(request)

    def count(self, method, fragment):
        return sum(1 for m, p in self.seen if m == method and fragment in p)


@pytest.fixture
async def upstream(aiohttp_server, tmp_path):
    """A real zuul-registry serving as the upstream, anonymous push/pull."""
    counter = Counter()
    app = make_app(make_config(tmp_path / 'upstream'))
    app.middlewares.append(counter.middleware)
    server = await aiohttp_server(app)
    server.counter = counter
    return server


@pytest.fixture
def make_mirror(aiohttp_client, tmp_path, make_driver):
    """A registry pulling through from `url`; namespaces off unless
    `namespace` is given.  Mirrors made with one `fill_directory` act as
    the workers of one server."""
    async def make(url, *, namespace=None, tags='pin', fill_directory=None,
                   **kwargs):
        upstream = Upstream(url=url.rstrip('/'), namespace=namespace,
                            tags=tags)
        config = make_config(tmp_path / 'mirror', upstreams=(upstream,),
                             namespaced=namespace is not None, **kwargs)
        return await aiohttp_client(make_app(
            config, driver=make_driver(), fill_directory=fill_directory))
    return make


def url_of(server):
    return str(server.make_url('/')).rstrip('/')


@pytest.fixture
async def pusher(upstream):
    """A test client of the upstream, to push content there."""
    from aiohttp.test_utils import TestClient
    client = TestClient(upstream)
    await client.start_server()
    yield client
    await client.close()


async def test_manifest_and_blobs_come_from_the_upstream(
        upstream, pusher, make_mirror):
    digest, _ = await push_image(pusher, 'org/img', 'v1', layer=b'L' * 1000)
    mirror = await make_mirror(url_of(upstream))
    response = await mirror.get('/v2/org/img/manifests/v1')
    assert response.status == 200, await response.text()
    body = await response.read()
    assert response.headers['Docker-Content-Digest'] == digest
    assert digest_of(body) == digest
    layer = json.loads(body)['layers'][0]['digest']
    response = await mirror.get('/v2/org/img/blobs/%s' % layer)
    assert response.status == 200
    assert await response.read() == b'L' * 1000
    assert int(response.headers['Content-Length']) == 1000


async def test_what_was_fetched_is_served_when_the_upstream_is_gone(
        upstream, pusher, make_mirror):
    digest, _ = await push_image(pusher, 'org/img', 'v1', layer=b'kept')
    mirror = await make_mirror(url_of(upstream))
    body = await (await mirror.get('/v2/org/img/manifests/v1')).read()
    layer = json.loads(body)['layers'][0]['digest']
    assert await (await mirror.get('/v2/org/img/blobs/%s'
                                   % layer)).read() == b'kept'
    await pusher.close()
    await upstream.close()
    response = await mirror.get('/v2/org/img/manifests/v1')
    assert response.status == 200
    assert response.headers['Docker-Content-Digest'] == digest
    response = await mirror.get('/v2/org/img/blobs/%s' % layer)
    assert await response.read() == b'kept'


async def test_a_tag_pushed_here_wins_over_the_upstream(
        upstream, pusher, make_mirror):
    await push_image(pusher, 'org/img', 'v1', layer=b'upstream')
    mirror = await make_mirror(url_of(upstream))
    local, _ = await push_image(mirror, 'org/img', 'v1', layer=b'local')
    response = await mirror.get('/v2/org/img/manifests/v1')
    assert response.headers['Docker-Content-Digest'] == local
    # Also after the upstream's tag was fetched once before the push.
    await push_image(pusher, 'org/other', 'v1', layer=b'upstream2')
    await (await mirror.get('/v2/org/other/manifests/v1')).read()
    local, _ = await push_image(mirror, 'org/other', 'v1', layer=b'local2')
    response = await mirror.get('/v2/org/other/manifests/v1')
    assert response.headers['Docker-Content-Digest'] == local


async def test_unknown_upstream_objects_are_404_with_the_spec_codes(
        upstream, make_mirror):
    mirror = await make_mirror(url_of(upstream))
    await assert_error(await mirror.get('/v2/org/none/manifests/v1'),
                       404, 'MANIFEST_UNKNOWN')
    await assert_error(await mirror.get(
        '/v2/org/none/blobs/' + digest_of(b'nothing')), 404, 'BLOB_UNKNOWN')
    response = await mirror.head('/v2/org/none/blobs/'
                                 + digest_of(b'nothing'))
    assert response.status == 404


async def test_an_unreachable_upstream_is_a_clear_502(make_mirror):
    from tests.server_process import free_port
    url = 'http://127.0.0.1:%d' % free_port()
    mirror = await make_mirror(url)
    response = await mirror.get('/v2/org/img/manifests/v1')
    body = await assert_error(response, 502, 'UNAVAILABLE')
    assert '127.0.0.1' in json.dumps(body)
    response = await mirror.get('/v2/org/img/blobs/' + digest_of(b'x'))
    await assert_error(response, 502, 'UNAVAILABLE')


async def test_a_big_blob_is_fetched_once_for_concurrent_clients(
        upstream, pusher, make_mirror):
    data = bytes(range(256)) * (BIG // 256) + b'tail'
    layer = await push_blob(pusher, 'org/big', data)
    mirror = await make_mirror(url_of(upstream))
    path = '/v2/org/big/blobs/%s' % layer

    async def pull():
        response = await mirror.get(path)
        assert response.status == 200
        hasher = hashlib.sha256()
        async for chunk in response.content.iter_chunked(65536):
            hasher.update(chunk)
        return 'sha256:' + hasher.hexdigest()

    results = await asyncio.gather(*[pull() for _ in range(4)])
    assert results == [layer] * 4
    assert upstream.counter.count('GET', '/blobs/') == 1
    # Committed: served from storage now, not fetched again.
    assert await pull() == layer
    assert upstream.counter.count('GET', '/blobs/') == 1


async def test_ranges_of_a_blob_being_filled(upstream, pusher, make_mirror):
    data = bytes(range(256)) * (BIG // 256)
    layer = await push_blob(pusher, 'org/big', data)
    mirror = await make_mirror(url_of(upstream))
    response = await mirror.get('/v2/org/big/blobs/%s' % layer,
                                headers={'Range': 'bytes=5000000-5000099'})
    assert response.status == 206
    assert await response.read() == data[5000000:5000100]


class StallingUpstream:
    """An upstream whose blob sends its first half, then waits for
    `release` (or breaks off, or sends wrong bytes; `mode` may change
    while it waits)."""

    def __init__(self, data, *, mode='stall'):
        self.data = data
        self.digest = digest_of(data)
        self.mode = mode
        self.release = asyncio.Event()
        self.half_sent = asyncio.Event()
        self.requests = 0

    async def base(self, request):
        return web.json_response({})

    async def blob(self, request):
        self.requests += 1
        response = web.StreamResponse(headers={
            'Content-Length': str(len(self.data)),
            'Docker-Content-Digest': self.digest})
        await response.prepare(request)
        half = len(self.data) // 2
        await response.write(self.data[:half])
        self.half_sent.set()
        if self.mode == 'break':
            request.transport.close()
            return response
        await self.release.wait()
        if self.mode == 'break':   # set while it waited
            request.transport.close()
            return response
        rest = self.data[half:]
        if self.mode == 'wrong':
            rest = bytes(len(rest))
        await response.write(rest)
        await response.write_eof()
        return response

    def app(self):
        app = web.Application()
        app.router.add_get('/v2/', self.base)
        app.router.add_route('*', '/v2/{name:.+}/blobs/{digest}', self.blob)
        return app


async def test_clients_read_while_the_upstream_still_sends(
        aiohttp_server, make_mirror):
    data = b'0123456789' * 300000
    fake = StallingUpstream(data)
    server = await aiohttp_server(fake.app())
    mirror = await make_mirror(url_of(server))
    response = await mirror.get('/v2/org/img/blobs/%s' % fake.digest)
    assert response.status == 200
    # The first half arrives while the upstream holds back the rest.
    first = await asyncio.wait_for(
        response.content.readexactly(len(data) // 2), 30)
    assert first == data[:len(data) // 2]
    # A second client joins the fill in progress, and is not held up.
    second = await mirror.get('/v2/org/img/blobs/%s' % fake.digest)
    assert second.status == 200
    assert await asyncio.wait_for(second.content.readexactly(1000), 30) \
        == data[:1000]
    fake.release.set()
    assert first + await response.read() == data
    assert data[:1000] + await second.read() == data
    assert fake.requests == 1


@pytest.mark.parametrize('mode', ['break', 'wrong'])
async def test_a_failed_fill_cuts_the_client_off_and_commits_nothing(
        aiohttp_server, make_mirror, mode):
    data = b'abcdefghij' * 200000
    fake = StallingUpstream(data, mode=mode)
    fake.release.set()
    server = await aiohttp_server(fake.app())
    mirror = await make_mirror(url_of(server))
    response = await mirror.get('/v2/org/img/blobs/%s' % fake.digest)
    received = b''
    with pytest.raises(Exception):
        async for chunk in response.content.iter_chunked(65536):
            received += chunk
        # A body that ended without an error must not be the blob.
        assert len(received) < len(data)
        raise AssertionError('the body ended as if complete')
    assert received != data
    storage = mirror.app[base.STORAGE]
    for _ in range(100):
        if not storage.pullthrough._fills:
            break
        await asyncio.sleep(0.05)
    digest = oci.Digest.parse(fake.digest)
    assert await storage.driver.stat(paths.blob(None, digest)) is None
    assert await storage.driver.list(paths.uploads(None)) == []
    # The next request starts over, and succeeds with a sound upstream.
    fake.mode = 'stall'
    response = await mirror.get('/v2/org/img/blobs/%s' % fake.digest)
    assert await response.read() == data
    assert fake.requests == 2


async def test_a_pinned_tag_does_not_follow_the_upstream(
        upstream, pusher, make_mirror):
    first, _ = await push_image(pusher, 'org/img', 'v1', layer=b'one')
    mirror = await make_mirror(url_of(upstream))
    assert (await mirror.get('/v2/org/img/manifests/v1')).headers[
        'Docker-Content-Digest'] == first
    await push_image(pusher, 'org/img', 'v1', layer=b'two')
    mirror.app[base.STORAGE].pullthrough.clock = lambda: 10 ** 10
    assert (await mirror.get('/v2/org/img/manifests/v1')).headers[
        'Docker-Content-Digest'] == first


async def test_a_tag_with_a_duration_is_checked_again_after_it(
        upstream, pusher, make_mirror):
    first, _ = await push_image(pusher, 'org/img', 'v1', layer=b'one')
    mirror = await make_mirror(url_of(upstream), tags=600)
    pullthrough = mirror.app[base.STORAGE].pullthrough
    now = [1000.0]
    pullthrough.clock = lambda: now[0]
    assert (await mirror.get('/v2/org/img/manifests/v1')).headers[
        'Docker-Content-Digest'] == first
    second, _ = await push_image(pusher, 'org/img', 'v1', layer=b'two')
    now[0] += 599
    assert (await mirror.get('/v2/org/img/manifests/v1')).headers[
        'Docker-Content-Digest'] == first
    now[0] += 2
    assert (await mirror.get('/v2/org/img/manifests/v1')).headers[
        'Docker-Content-Digest'] == second
    # The upstream gone: the last digest is served.
    await pusher.close()
    await upstream.close()
    now[0] += 10000
    response = await mirror.get('/v2/org/img/manifests/v1')
    assert response.status == 200
    assert response.headers['Docker-Content-Digest'] == second


async def test_containerd_ns_parameter_selects_the_namespace(
        upstream, pusher, make_mirror):
    digest, _ = await push_image(pusher, 'org/img', 'v1', layer=b'quay')
    mirror = await make_mirror(url_of(upstream), namespace='quay.io')
    response = await mirror.get('/v2/org/img/manifests/v1?ns=quay.io')
    assert response.status == 200
    assert response.headers['Docker-Content-Digest'] == digest
    # The same name without ns is in docker.io, which has no upstream.
    await assert_error(await mirror.get('/v2/org/img/manifests/v1'),
                       404, 'MANIFEST_UNKNOWN')
    await assert_error(await mirror.get(
        '/v2/org/img/manifests/v1?ns=bad_host!'), 400, 'NAME_INVALID')


async def test_an_index_and_its_children_come_through(
        upstream, pusher, make_mirror):
    child, _ = await push_image(pusher, 'org/multi', 'amd64', layer=b'amd')
    size = len(await (await pusher.get(
        '/v2/org/multi/manifests/amd64')).read())
    index = json.dumps({
        'schemaVersion': 2,
        'mediaType': 'application/vnd.oci.image.index.v1+json',
        'manifests': [{'mediaType': 'application/vnd.oci.image.manifest'
                       '.v1+json', 'digest': child, 'size': size,
                       'platform': {'architecture': 'amd64',
                                    'os': 'linux'}}]}).encode()
    response = await pusher.put(
        '/v2/org/multi/manifests/latest', data=index, headers={
            'Content-Type': 'application/vnd.oci.image.index.v1+json'})
    assert response.status == 201
    mirror = await make_mirror(url_of(upstream))
    response = await mirror.get('/v2/org/multi/manifests/latest')
    assert await response.read() == index
    response = await mirror.get('/v2/org/multi/manifests/%s' % child)
    assert response.status == 200
    assert response.headers['Docker-Content-Digest'] == child


async def test_fetched_manifests_expire_by_their_own_rule(
        upstream, pusher, make_mirror, tmp_path):
    """upstream-expiration expires what was fetched, and nothing pushed
    here; a pinned tag fetches its digest again afterwards."""
    fetched, _ = await push_image(pusher, 'org/img', 'v1', layer=b'up')
    mirror = await make_mirror(url_of(upstream))
    body = await (await mirror.get('/v2/org/img/manifests/v1')).read()
    layer = json.loads(body)['layers'][0]['digest']
    assert await (await mirror.get('/v2/org/img/blobs/' + layer)).read() \
        == b'up'
    pushed, _ = await push_image(mirror, 'org/mine', 'v1', layer=b'mine')
    storage = mirror.app[base.STORAGE]
    config = mirror.app[base.CONFIG]
    later = time.time() + 7200
    summary = await prune(dataclasses.replace(
        config, upstream_expiration=3600), storage.driver, now=later,
        upload_expiry=0)
    assert summary.objects['manifests'] == 1
    revision = paths.revision(None, 'org/img', oci.Digest.parse(fetched))
    assert await storage.driver.stat(revision) is None
    assert await storage.driver.stat(paths.revision(
        None, 'org/mine', oci.Digest.parse(pushed))) is not None
    # Without upstream-expiration, nothing fetched or pushed expires.
    summary = await prune(config, storage.driver, now=later,
                          upload_expiry=0)
    assert summary.objects['manifests'] == 0
    # The pinned tag still means that digest: fetched again on demand.
    response = await mirror.get('/v2/org/img/manifests/v1')
    assert response.headers['Docker-Content-Digest'] == fetched
    assert await storage.driver.stat(revision) is not None


async def test_an_empty_blob_is_answered_only_once_verified(
        aiohttp_server, make_mirror):
    """An empty body has no last byte to hold back: the answer waits for
    the verification, so a wrong empty body is a clean 502."""
    fake = StallingUpstream(b'')
    fake.digest = digest_of(b'not empty')   # what it claims to send
    fake.release.set()
    server = await aiohttp_server(fake.app())
    mirror = await make_mirror(url_of(server))
    response = await mirror.get('/v2/org/img/blobs/%s' % fake.digest)
    await assert_error(response, 502, 'UNAVAILABLE')
    # A real empty blob comes through.
    empty = StallingUpstream(b'')
    empty.release.set()
    server = await aiohttp_server(empty.app())
    mirror = await make_mirror(url_of(server))
    response = await mirror.get('/v2/org/img/blobs/%s' % empty.digest)
    assert response.status == 200
    assert await response.read() == b''
