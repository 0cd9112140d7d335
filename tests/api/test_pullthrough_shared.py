"""Pull-through fills shared by the workers of one server.

Two mirror apps on one storage and one fill directory are two workers:
one fetches a blob from the upstream, the other reads that fill from
storage as it grows (storage/fill_sharing.py).  The upstream stalls in
the middle of the blob, so the second worker provably reads along
before the fill ends.
"""

import asyncio
import hashlib

import pytest
from aiohttp import web

from tests.api.helpers import digest_of, make_config, push_image
from tests.api.test_pullthrough import (Counter, StallingUpstream,
                                        make_mirror, url_of)
from zuul_registry import oci
from zuul_registry.api import base
from zuul_registry.app import make_app
from zuul_registry.storage import fills, paths

__all__ = ['make_mirror']   # a fixture used here

# Three fill segments: the first half spans one whole segment, which a
# follower on any driver can read while the upstream stalls.
DATA = hashlib.sha256(b'seed').digest() * (3 * fills.SEGMENT // 32)


async def workers(aiohttp_server, make_mirror, tmp_path, fake):
    server = await aiohttp_server(fake.app())
    directory = tmp_path / 'fills'
    directory.mkdir()
    return [await make_mirror(url_of(server), fill_directory=str(directory))
            for _ in range(2)]


async def test_a_worker_reads_along_the_fill_of_another(
        aiohttp_server, make_mirror, tmp_path, caplog):
    caplog.set_level('INFO', logger='zuul_registry')
    fake = StallingUpstream(DATA)
    first, second = await workers(aiohttp_server, make_mirror, tmp_path,
                                  fake)
    path = '/v2/org/img/blobs/%s' % fake.digest
    leader = await first.get(path)
    assert leader.status == 200
    head = await asyncio.wait_for(leader.content.readexactly(1 << 20), 30)
    await asyncio.wait_for(fake.half_sent.wait(), 30)
    follower = await second.get(path)
    assert follower.status == 200
    assert int(follower.headers['Content-Length']) == len(DATA)
    # Read while the upstream still holds back the second half.
    along = await asyncio.wait_for(
        follower.content.readexactly(fills.SEGMENT), 30)
    assert along == DATA[:fills.SEGMENT]
    assert not fake.release.is_set()
    fake.release.set()
    assert head + await leader.read() == DATA
    assert along + await follower.read() == DATA
    assert fake.requests == 1
    assert 'following the fill of worker' in caplog.text
    # Committed: both serve it from storage now.
    for mirror in (first, second):
        response = await mirror.get(path)
        assert await response.read() == DATA
    assert fake.requests == 1


@pytest.mark.parametrize('mode', ['break', 'wrong'])
async def test_a_follower_is_cut_off_when_the_fill_fails(
        aiohttp_server, make_mirror, tmp_path, mode):
    fake = StallingUpstream(DATA, mode='stall')
    first, second = await workers(aiohttp_server, make_mirror, tmp_path,
                                  fake)
    path = '/v2/org/img/blobs/%s' % fake.digest
    leader = await first.get(path)
    await asyncio.wait_for(fake.half_sent.wait(), 30)
    follower = await second.get(path)
    assert follower.status == 200
    await asyncio.wait_for(follower.content.readexactly(1000), 30)
    # The rest goes wrong: the upstream breaks off, or sends zeros.
    fake.mode = mode
    fake.release.set()
    leader.close()
    received = 1000
    with pytest.raises(Exception):
        async for chunk in follower.content.iter_chunked(65536):
            received += len(chunk)
        raise AssertionError('the body ended as if complete (%d bytes)'
                             % received)
    assert received < len(DATA)
    storage = second.app[base.STORAGE]
    digest = oci.Digest.parse(fake.digest)
    assert await storage.driver.stat(paths.blob(None, digest)) is None
    # The next request starts over, on either worker, and succeeds.
    fake.mode = 'stall'
    response = await second.get(path)
    assert await response.read() == DATA
    assert fake.requests == 2



async def test_workers_ask_the_upstream_once_for_a_manifest(
        aiohttp_server, aiohttp_client, make_mirror, tmp_path):
    @web.middleware
    async def slowly(request, handler):
        # Time for every worker's request to come in meanwhile.
        if '/manifests/' in request.path and request.method == 'GET':
            await asyncio.sleep(0.3)
        return await handler(request)
    counter = Counter()
    app = make_app(make_config(tmp_path / 'upstream'))
    app.middlewares.extend([counter.middleware, slowly])
    upstream = await aiohttp_server(app)
    pusher = await aiohttp_client(upstream)
    tagged, _ = await push_image(pusher, 'org/img', 'v1', layer=b'one')
    untagged, _ = await push_image(pusher, 'org/img', 'v2', layer=b'two')
    directory = tmp_path / 'fills'
    directory.mkdir()
    mirrors = [await make_mirror(url_of(upstream),
                                 fill_directory=str(directory))
               for _ in range(2)]

    async def pull(mirror, reference):
        response = await mirror.get('/v2/org/img/manifests/' + reference)
        assert response.status == 200, await response.text()
        return digest_of(await response.read())

    for reference, digest in (('v1', tagged), (untagged, untagged)):
        before = counter.count('GET', '/manifests/')
        results = await asyncio.gather(*[
            pull(mirror, reference) for mirror in mirrors for _ in range(3)])
        assert results == [digest] * 6
        assert counter.count('GET', '/manifests/') == before + 1
