"""The upstream client against real registries and tiny fault servers.

Real upstreams on loopback: a zuul-registry without users (anonymous
pull), a zuul-registry over TLS with users (the Bearer token flow, with a
test CA as ``ca``), and docker-registry with htpasswd (a Basic
challenge).  Faults no real registry can be made to produce (a body cut
short, a 503 once, a redirect to another origin) come from small aiohttp
servers in the test.
"""

import asyncio
import base64
import json
import logging
import os
import secrets
import ssl

import aiohttp
import bcrypt
import pytest
import yarl
from aiohttp import web

from tests.api.helpers import basic_auth, digest_of, image_manifest
from tests.clients import tls
from tests.server_process import DistributionProcess
from tests.server_process import ServerProcess
from tests.server_process import free_port
from zuul_registry.upstream.client import CHUNK_SIZE, UpstreamRegistry
from zuul_registry.upstream.errors import UpstreamNotFound
from zuul_registry.upstream.errors import UpstreamUnavailable

SECRET = secrets.token_urlsafe(48)
WRITER = ('writer', secrets.token_urlsafe(18))
READER = ('reader', secrets.token_urlsafe(18))
LAYER = os.urandom(3 * CHUNK_SIZE + 12345)
OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'


# -- pushing content into an upstream ----------------------------------------

async def push_image(base, name, tag, *, auth=None, cafile=None):
    """Push a config, LAYER and a manifest; return (digest, body)."""
    headers = {'Authorization': auth} if auth else {}
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context)) as session:
        async def blob(data):
            async with session.post('%s/v2/%s/blobs/uploads/' % (base, name),
                                    headers=headers) as response:
                assert response.status == 202, await response.text()
                location = yarl.URL(base).join(
                    yarl.URL(response.headers['Location']))
            async with session.put(
                    location.update_query(digest=digest_of(data)),
                    data=data, headers=headers) as response:
                assert response.status == 201, await response.text()
            return digest_of(data)
        config = json.dumps({'architecture': 'amd64', 'os': 'linux'}).encode()
        body = image_manifest(await blob(config), len(config),
                              [(await blob(LAYER), len(LAYER))])
        async with session.put(
                '%s/v2/%s/manifests/%s' % (base, name, tag), data=body,
                headers={'Content-Type': OCI_MANIFEST, **headers}) as r:
            assert r.status == 201, await r.text()
    return digest_of(body), body


async def read_blob(upstream, repository, digest):
    async with upstream.open_blob(repository, digest) as stream:
        pieces = [piece async for piece in stream.chunks]
    assert all(0 < len(piece) <= CHUNK_SIZE for piece in pieces)
    return stream.size, b''.join(pieces)


# -- real upstreams ----------------------------------------------------------

@pytest.fixture(scope='module')
def anonymous(tmp_path_factory):
    with ServerProcess(tmp_path_factory.mktemp('anonymous')) as server:
        yield server


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    return tls.make_pki(tmp_path_factory.mktemp('pki'))


@pytest.fixture(scope='module')
def secured(tmp_path_factory, pki):
    port = free_port()
    with ServerProcess(tmp_path_factory.mktemp('secured'), port=port,
                       tls_ca=pki.ca_cert, registry={
                           'tls-cert': pki.server_cert,
                           'tls-key': pki.server_key,
                           'secret': SECRET,
                           'public-url': 'https://127.0.0.1:%d' % port,
                           'users': [
                               {'name': WRITER[0], 'pass': WRITER[1],
                                'access': 'write'},
                               {'name': READER[0], 'pass': READER[1],
                                'access': 'read'}]}) as server:
        yield server


class HtpasswdDistribution(DistributionProcess):
    def config(self):
        config = super().config()
        config['auth'] = {'htpasswd': {
            'realm': 'test-realm',
            'path': os.path.join(self.directory, 'htpasswd')}}
        return config

    def start(self):
        hashed = bcrypt.hashpw(WRITER[1].encode(), bcrypt.gensalt(rounds=4))
        with open(os.path.join(self.directory, 'htpasswd'), 'w') as f:
            f.write('%s:%s\n' % (WRITER[0], hashed.decode()))
        return super().start()


@pytest.fixture(scope='module')
def distribution(tmp_path_factory):
    # "users": a 401 on /v2/ means ready.
    with HtpasswdDistribution(tmp_path_factory.mktemp('dist'),
                              registry={'users': 'htpasswd'}) as server:
        yield server


@pytest.fixture
async def make_upstream():
    upstreams = []

    def make(url, **kwargs):
        upstreams.append(UpstreamRegistry(url, **kwargs))
        return upstreams[-1]
    yield make
    for upstream in upstreams:
        await upstream.close()


def token_requests(server, since):
    return server.log_text(since=since).count('GET /auth/token')


# -- 1. anonymous pull -------------------------------------------------------

async def test_anonymous_pull_of_manifest_and_blob(anonymous, make_upstream):
    digest, body = await push_image(anonymous.url, 'library/alpine', '3')
    upstream = make_upstream(anonymous.url + '/')
    assert upstream.url == anonymous.url + '/'

    manifest = await upstream.get_manifest('library/alpine', '3')
    assert manifest.body == body
    assert manifest.media_type == OCI_MANIFEST
    assert manifest.digest == digest
    head = await upstream.head_manifest('library/alpine', digest)
    assert (head.digest, head.media_type, head.size) == (
        digest, OCI_MANIFEST, len(body))

    layer = json.loads(body)['layers'][0]['digest']
    assert await upstream.head_blob('library/alpine', layer) == len(LAYER)
    assert await read_blob(upstream, 'library/alpine', layer) == (
        len(LAYER), LAYER)


async def test_manifest_over_the_size_limit(anonymous, make_upstream):
    await push_image(anonymous.url, 'big/manifest', 'x')
    upstream = make_upstream(anonymous.url, manifest_size_limit=100)
    with pytest.raises(UpstreamUnavailable, match='limit of 100'):
        await upstream.get_manifest('big/manifest', 'x')


# -- 4. not found, unreachable -----------------------------------------------

async def test_unknown_manifest_blob_and_repository_are_not_found(
        anonymous, make_upstream):
    await push_image(anonymous.url, 'known/repo', 'v1')
    upstream = make_upstream(anonymous.url)
    missing = digest_of(b'never pushed')
    with pytest.raises(UpstreamNotFound, match=anonymous.url):
        await upstream.get_manifest('known/repo', 'no-such-tag')
    with pytest.raises(UpstreamNotFound):
        await upstream.head_manifest('unknown/repo', 'v1')
    with pytest.raises(UpstreamNotFound):
        await upstream.head_blob('known/repo', missing)
    with pytest.raises(UpstreamNotFound):
        async with upstream.open_blob('known/repo', missing):
            pass


async def test_unreachable_upstream_names_its_url_after_retries(
        make_upstream, caplog):
    url = 'http://127.0.0.1:%d' % free_port()
    upstream = make_upstream(url, retries=2, connect_timeout=2)
    caplog.set_level(logging.WARNING, logger='zuul_registry.upstream')
    with pytest.raises(UpstreamUnavailable) as raised:
        await upstream.get_manifest('library/alpine', 'latest')
    assert url in str(raised.value)
    assert 'after 3 attempts' in str(raised.value)
    retries = [r for r in caplog.records if 'attempt' in r.getMessage()]
    assert len(retries) == 2


# -- 2. the Bearer token flow over TLS ---------------------------------------

async def test_token_flow_over_tls_with_ca_caches_tokens_per_scope(
        secured, pki, make_upstream, caplog):
    digest, body = await push_image(secured.url, 'private/app', 'v1',
                                    auth=basic_auth(*WRITER),
                                    cafile=pki.ca_cert)
    layer = json.loads(body)['layers'][0]['digest']
    since = secured.log_offset()
    caplog.set_level(logging.DEBUG, logger='zuul_registry.upstream')
    upstream = make_upstream(secured.url, username=READER[0],
                             password=READER[1], ca=pki.ca_cert)

    manifest = await upstream.get_manifest('private/app', 'v1')
    assert (manifest.body, manifest.digest) == (body, digest)
    assert (await upstream.head_manifest('private/app', 'v1')).digest \
        == digest
    assert await upstream.head_blob('private/app', layer) == len(LAYER)
    assert await read_blob(upstream, 'private/app', layer) == (
        len(LAYER), LAYER)
    secured.wait_for_log_lines(since, 'GET /v2/private/app/blobs/')
    assert token_requests(secured, since) == 1   # one scope, one token

    # Another repository is another scope: one more token.
    with pytest.raises(UpstreamNotFound):
        await upstream.get_manifest('private/other', 'v1')
    secured.wait_for_log_lines(since, 'GET /v2/private/other/')
    assert token_requests(secured, since) == 2
    assert READER[1] not in caplog.text
    assert 'Bearer ' not in caplog.text


async def test_token_flow_with_refused_credentials(secured, pki,
                                                   make_upstream, caplog):
    wrong = secrets.token_urlsafe(18)
    upstream = make_upstream(secured.url, username=READER[0],
                             password=wrong, ca=pki.ca_cert)
    with pytest.raises(UpstreamUnavailable) as raised:
        await upstream.get_manifest('private/app', 'v1')
    message = str(raised.value)
    assert 'credentials' in message and secured.url in message
    assert wrong not in message and wrong not in caplog.text


async def test_anonymous_client_of_a_private_upstream(secured, pki,
                                                      make_upstream):
    upstream = make_upstream(secured.url, ca=pki.ca_cert)
    with pytest.raises(UpstreamUnavailable,
                       match='anonymous access refused.*credentials'):
        await upstream.head_manifest('private/app', 'v1')


async def test_tls_without_the_ca_fails_at_once(secured, make_upstream,
                                                caplog):
    upstream = make_upstream(secured.url, retries=3)
    caplog.set_level(logging.WARNING, logger='zuul_registry.upstream')
    with pytest.raises(UpstreamUnavailable, match='TLS'):
        await upstream.head_manifest('private/app', 'v1')
    assert 'attempt' not in caplog.text   # a bad certificate is not retried


# -- 3. Basic auth (docker-registry with htpasswd) ---------------------------

async def test_basic_challenge_sends_the_credentials(distribution,
                                                     make_upstream):
    digest, body = await push_image(distribution.url, 'team/tool', 'v2',
                                    auth=basic_auth(*WRITER))
    layer = json.loads(body)['layers'][0]['digest']
    upstream = make_upstream(distribution.url, username=WRITER[0],
                             password=WRITER[1])
    manifest = await upstream.get_manifest('team/tool', 'v2')
    assert (manifest.body, manifest.media_type, manifest.digest) == (
        body, OCI_MANIFEST, digest)
    assert await read_blob(upstream, 'team/tool', layer) == (
        len(LAYER), LAYER)
    with pytest.raises(UpstreamNotFound):
        await upstream.head_blob('team/tool', digest_of(b'nothing'))


async def test_basic_challenge_with_a_wrong_password(distribution,
                                                     make_upstream, caplog):
    wrong = secrets.token_urlsafe(18)
    caplog.set_level(logging.DEBUG, logger='zuul_registry.upstream')
    upstream = make_upstream(distribution.url, username=WRITER[0],
                             password=wrong)
    with pytest.raises(UpstreamUnavailable) as raised:
        await upstream.get_manifest('team/tool', 'v2')
    message = str(raised.value)
    assert 'credentials' in message and distribution.url in message
    for secret in (wrong, base64.b64encode(
            ('%s:%s' % (WRITER[0], wrong)).encode()).decode()):
        assert secret not in message and secret not in caplog.text


async def test_basic_challenge_without_credentials(distribution,
                                                   make_upstream):
    upstream = make_upstream(distribution.url)
    with pytest.raises(UpstreamUnavailable, match='credentials'):
        await upstream.get_manifest('team/tool', 'v2')


# -- 5. a blob cut off mid-way -----------------------------------------------

async def test_blob_cut_off_mid_way_raises_from_the_iterator(
        aiohttp_server, make_upstream):
    async def cut_off(request):
        response = web.StreamResponse()
        response.content_length = 4 * CHUNK_SIZE
        await response.prepare(request)
        await response.write(b'x' * (CHUNK_SIZE + 100))
        request.transport.close()
        return response
    app = web.Application()
    app.router.add_get('/v2/{name:.+}/blobs/{digest}', cut_off)
    server = await aiohttp_server(app)
    url = str(server.make_url('')).rstrip('/')
    upstream = make_upstream(url)
    received = 0
    with pytest.raises(UpstreamUnavailable) as raised:
        async with upstream.open_blob('a/b', digest_of(b'x')) as stream:
            assert stream.size == 4 * CHUNK_SIZE
            async for piece in stream.chunks:
                received += len(piece)
    assert received < 4 * CHUNK_SIZE
    assert url in str(raised.value) and 'a/b@sha256:' in str(raised.value)


# -- 6. retries and redirects ------------------------------------------------

async def test_503_then_200_is_retried(aiohttp_server, make_upstream):
    calls = []

    async def flaky(request):
        calls.append(request.method)
        if len(calls) % 2:
            return web.Response(status=503, text='busy')
        return web.Response(body=b'{"schemaVersion": 2}',
                            content_type=OCI_MANIFEST)
    app = web.Application()
    app.router.add_get('/v2/{name:.+}/manifests/{ref}', flaky)
    server = await aiohttp_server(app)
    upstream = make_upstream(str(server.make_url('')))
    manifest = await upstream.get_manifest('a/b', 'v1')
    assert manifest.body == b'{"schemaVersion": 2}'
    assert manifest.media_type == OCI_MANIFEST
    assert manifest.digest is None
    assert calls == ['GET', 'GET']
    head = await upstream.head_manifest('a/b', 'v1')     # HEAD too
    assert head.media_type == OCI_MANIFEST and head.size == 20
    assert calls == ['GET', 'GET', 'HEAD', 'HEAD']


async def test_503_every_time_gives_up_after_the_retries(aiohttp_server,
                                                         make_upstream):
    calls = []

    async def down(request):
        calls.append(request.method)
        return web.Response(status=503)
    app = web.Application()
    app.router.add_get('/v2/{name:.+}/manifests/{ref}', down)
    server = await aiohttp_server(app)
    upstream = make_upstream(str(server.make_url('')), retries=2)
    with pytest.raises(UpstreamUnavailable, match='503 after 3 attempts'):
        await upstream.get_manifest('a/b', 'v1')
    assert len(calls) == 3


async def test_redirect_to_another_origin_gets_no_authorization(
        aiohttp_server, make_upstream):
    seen = {'registry': [], 'storage': [], 'token': 0}

    async def storage(request):
        seen['storage'].append(request.headers.get('Authorization'))
        return web.Response(body=LAYER)
    storage_app = web.Application()
    storage_app.router.add_get('/bucket/{key}', storage)
    storage_server = await aiohttp_server(storage_app)

    async def token(request):
        seen['token'] += 1
        assert request.query['scope'] == 'repository:a/b:pull'
        assert request.query['service'] == 'tiny'
        return web.json_response({'access_token': 'tiny-token'})

    async def blob(request):
        authorization = request.headers.get('Authorization')
        seen['registry'].append(authorization)
        if authorization != 'Bearer tiny-token':
            return web.Response(status=401, headers={
                'WWW-Authenticate': 'Bearer realm="%s",service="tiny",'
                'scope="repository:a/b:pull"' % request.url.join(
                    yarl.URL('/token'))})
        raise web.HTTPTemporaryRedirect(
            storage_server.make_url('/bucket/layer?signature=abc'))
    app = web.Application()
    app.router.add_get('/token', token)
    app.router.add_get('/v2/{name:.+}/blobs/{digest}', blob)
    server = await aiohttp_server(app)

    upstream = make_upstream(str(server.make_url('')))
    digest = digest_of(LAYER)
    assert await read_blob(upstream, 'a/b', digest) == (len(LAYER), LAYER)
    assert await read_blob(upstream, 'a/b', digest) == (len(LAYER), LAYER)
    assert seen == {'registry': [None, 'Bearer tiny-token',
                                 'Bearer tiny-token'],
                    'storage': [None, None], 'token': 1}


async def test_tokens_are_shared_and_renewed_when_expired_or_refused(
        aiohttp_server, make_upstream):
    state = {'issued': 0, 'valid': 'none yet', 'expires_in': 300}

    async def token(request):
        state['issued'] += 1
        state['valid'] = 'Bearer t%d' % state['issued']
        return web.json_response({'token': 't%d' % state['issued'],
                                  'expires_in': state['expires_in']})

    async def manifest(request):
        if request.headers.get('Authorization') != state['valid']:
            return web.Response(status=401, headers={
                'WWW-Authenticate': 'Bearer realm="%s"'
                % request.url.join(yarl.URL('/token'))})
        return web.Response(body=b'{}', content_type=OCI_MANIFEST)
    app = web.Application()
    app.router.add_get('/token', token)
    app.router.add_get('/v2/{name:.+}/manifests/{ref}', manifest)
    server = await aiohttp_server(app)
    upstream = make_upstream(str(server.make_url('')))

    # Concurrent first requests of one scope share one token request.
    await asyncio.gather(*[upstream.get_manifest('a/b', str(i))
                           for i in range(5)])
    assert state['issued'] == 1
    # A token the upstream no longer accepts is replaced.
    state['valid'] = 'revoked'
    await upstream.get_manifest('a/b', 'x')
    assert state['issued'] == 2
    # A token is not used past its expiry (a fifth of it earlier).
    state['expires_in'] = 1
    state['valid'] = 'revoked'
    await upstream.get_manifest('a/b', 'x')
    assert state['issued'] == 3
    await asyncio.sleep(1.0)
    await upstream.get_manifest('a/b', 'x')
    assert state['issued'] == 4


def test_constructing_needs_no_event_loop():
    upstream = UpstreamRegistry('https://registry.example')
    assert upstream.url == 'https://registry.example'


async def test_insufficient_scope_after_a_token_is_unavailable_with_a_hint(
        aiohttp_server, make_upstream):
    async def token(request):
        return web.json_response({'token': 'anonymous'})

    async def manifest(request):
        return web.Response(status=401, headers={
            'WWW-Authenticate': 'Bearer realm="%s",error="insufficient_scope"'
            % request.url.join(yarl.URL('/token'))})
    app = web.Application()
    app.router.add_get('/token', token)
    app.router.add_get('/v2/{name:.+}/manifests/{ref}', manifest)
    server = await aiohttp_server(app)
    upstream = make_upstream(str(server.make_url('')))
    with pytest.raises(UpstreamUnavailable,
                       match='insufficient_scope.*may not exist'):
        await upstream.get_manifest('no/such', 'latest')
