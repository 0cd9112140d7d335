"""Authentication and authorization: users, tokens, Basic, anonymous."""

import asyncio
import logging
import time

import jwt
import pytest

from zuul_registry import auth as auth_module
from zuul_registry import config as config_module
from zuul_registry.api import base
from tests.api.helpers import (
    assert_error, basic_auth, digest_of, push_image)

SECRET = 'the-configured-secret-value-0123456789'
WRITER = config_module.User(name='writer', password='w-pass-123',
                            access='write')
READER = config_module.User(name='reader', password='r-pass-456',
                            access='read')


def bearer(token):
    return {'Authorization': 'Bearer ' + token}


async def get_token(client, scope, user=None, password=None):
    headers = {'Authorization': basic_auth(user, password)} if user else {}
    response = await client.get('/auth/token', params={
        'service': 'zuul-registry', 'scope': scope}, headers=headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body['token'] == body['access_token']
    assert body['expires_in'] == 3600
    assert body['issued_at'].endswith('Z')
    return body['token']


@pytest.fixture
async def secured(make_client):
    return await make_client(users=(WRITER,), secret=SECRET)


async def push_with_token(client, name, tag='v1', **kwargs):
    token = await get_token(client, 'repository:%s:pull,push' % name,
                            WRITER.name, WRITER.password)
    return await push_image(client, name, tag, headers=bearer(token),
                            **kwargs)


def forged(claims, key):
    """A token as an attacker would sign it: with `key` used directly."""
    now = int(time.time())
    base_claims = {'iss': 'zuul-registry', 'aud': 'zuul-registry',
                   'sub': 'writer', 'iat': now, 'exp': now + 600,
                   'access': [{'type': 'repository', 'name': 'org/img',
                               'actions': ['pull', 'push']}]}
    base_claims.update(claims)
    return jwt.encode(base_claims, key, algorithm='HS256')


async def test_without_users_everything_is_anonymous(client):
    response = await client.get('/v2/')
    assert response.status == 200
    await push_image(client, 'org/img', 'v1')


async def test_api_base_challenges_with_bearer_realm_and_service(secured):
    response = await secured.get('/v2/')
    await assert_error(response, 401, 'UNAUTHORIZED')
    challenge = response.headers['WWW-Authenticate']
    assert challenge.startswith('Bearer realm="http://')
    assert '/auth/token"' in challenge
    assert 'service="zuul-registry"' in challenge
    assert response.headers['Docker-Distribution-API-Version'] == \
        'registry/2.0'


async def test_challenge_names_the_scope_the_request_needs(secured):
    response = await secured.post('/v2/org/img/blobs/uploads/')
    await assert_error(response, 401, 'UNAUTHORIZED')
    assert 'scope="repository:org/img:pull,push"' in \
        response.headers['WWW-Authenticate']


async def test_realm_uses_the_public_url(make_client):
    client = await make_client(users=(WRITER,), secret=SECRET,
                               public_url='https://registry.example.com')
    response = await client.get('/v2/')
    assert response.headers['WWW-Authenticate'].startswith(
        'Bearer realm="https://registry.example.com/auth/token"')


async def test_write_user_token_flow_pushes_and_pulls(secured):
    digest, body = await push_with_token(secured, 'org/img')
    token = await get_token(secured, 'repository:org/img:pull')
    response = await secured.get('/v2/org/img/manifests/v1',
                                 headers=bearer(token))
    assert response.status == 200
    assert await response.read() == body


async def test_anonymous_push_is_refused_once_a_user_exists(secured):
    response = await secured.post('/v2/org/img/blobs/uploads/?digest=%s'
                                  % digest_of(b'x'), data=b'x')
    await assert_error(response, 401, 'UNAUTHORIZED')
    # An anonymous token does not grant push either.
    token = await get_token(secured, 'repository:org/img:pull,push')
    response = await secured.post('/v2/org/img/blobs/uploads/',
                                  headers=bearer(token))
    await assert_error(response, 401, 'UNAUTHORIZED')


async def test_anonymous_pull_allowed_without_read_users(secured):
    await push_with_token(secured, 'org/img')
    token = await get_token(secured, 'repository:org/img:pull')
    response = await secured.get('/v2/org/img/manifests/v1',
                                 headers=bearer(token))
    assert response.status == 200
    # Without any credentials the manifest itself needs a token.
    response = await secured.get('/v2/org/img/manifests/v1')
    assert response.status == 200   # anonymous pull needs no token


async def test_anonymous_pull_refused_when_read_users_exist(make_client):
    client = await make_client(users=(WRITER, READER), secret=SECRET)
    response = await client.get('/v2/org/img/tags/list')
    await assert_error(response, 401, 'UNAUTHORIZED')
    token = await get_token(client, 'repository:org/img:pull')
    response = await client.get('/v2/org/img/tags/list',
                                headers=bearer(token))
    await assert_error(response, 401, 'UNAUTHORIZED')
    token = await get_token(client, 'repository:org/img:pull',
                            READER.name, READER.password)
    response = await client.get('/v2/org/img/tags/list',
                                headers=bearer(token))
    await assert_error(response, 404, 'NAME_UNKNOWN')


async def test_anonymous_read_can_be_switched_explicitly(make_client):
    client = await make_client(users=(WRITER,), secret=SECRET,
                               anonymous_read=False)
    response = await client.get('/v2/org/img/tags/list')
    await assert_error(response, 401, 'UNAUTHORIZED')
    client = await make_client(users=(WRITER, READER), secret=SECRET,
                               anonymous_read=True)
    response = await client.get('/v2/org/img/tags/list')
    await assert_error(response, 404, 'NAME_UNKNOWN')


async def test_read_user_cannot_push(make_client):
    client = await make_client(users=(WRITER, READER), secret=SECRET)
    token = await get_token(client, 'repository:org/img:pull,push',
                            READER.name, READER.password)
    claims = jwt.decode(token, options={'verify_signature': False})
    assert claims['access'] == [{'type': 'repository', 'name': 'org/img',
                                 'actions': ['pull']}]
    response = await client.post('/v2/org/img/blobs/uploads/',
                                 headers=bearer(token))
    await assert_error(response, 401, 'UNAUTHORIZED')
    response = await client.post(
        '/v2/org/img/blobs/uploads/',
        headers={'Authorization': basic_auth(READER.name, READER.password)})
    await assert_error(response, 403, 'DENIED')


async def test_basic_auth_on_the_api_works(secured):
    headers = {'Authorization': basic_auth(WRITER.name, WRITER.password)}
    response = await secured.get('/v2/', headers=headers)
    assert response.status == 200
    await push_image(secured, 'org/img', 'v1', headers=headers)
    response = await secured.get('/v2/', headers={
        'Authorization': basic_auth(WRITER.name, 'wrong')})
    await assert_error(response, 401, 'UNAUTHORIZED')


@pytest.mark.parametrize('path', ['/v2/', '/v2/org/img/tags/list',
                                  '/auth/token'])
async def test_non_ascii_basic_credentials_are_401_not_500(secured, path):
    # b64decode refuses non-ASCII text with a plain ValueError.
    response = await secured.get(path, headers={'Authorization': 'Basic é'})
    await assert_error(response, 401, 'UNAUTHORIZED')


@pytest.mark.parametrize('value', [b'Bearer \xff', b'Bearer a.\xc3.b',
                                   b'Basic \xff'])
async def test_undecodable_authorization_bytes_are_401_not_500(secured,
                                                               value):
    # The server decodes header bytes as UTF-8 with surrogate escapes,
    # which PyJWT cannot encode back; no client library sends them.
    reader, writer = await asyncio.open_connection(secured.server.host,
                                                   secured.server.port)
    writer.write(b'GET /v2/ HTTP/1.1\r\nHost: registry\r\nAuthorization: '
                 + value + b'\r\nConnection: close\r\n\r\n')
    response = await reader.read()
    writer.close()
    assert response.startswith(b'HTTP/1.1 401 '), response[:300]
    assert b'"UNAUTHORIZED"' in response


# 'secret' is what the registry this one replaces signed with.
@pytest.mark.filterwarnings('ignore:The HMAC key is')
@pytest.mark.parametrize('key', ['secret', SECRET, 'x' * 64])
async def test_token_signed_with_another_key_is_refused(secured, key):
    token = forged({}, key)
    for method, path in (('POST', '/v2/org/img/blobs/uploads/'),
                         ('GET', '/v2/')):
        response = await secured.request(method, path, headers=bearer(token))
        await assert_error(response, 401, 'UNAUTHORIZED')


async def test_unsigned_alg_none_token_is_refused(secured):
    token = jwt.encode({'iss': 'zuul-registry', 'aud': 'zuul-registry',
                        'sub': 'writer', 'iat': int(time.time()),
                        'exp': int(time.time()) + 600,
                        'access': [{'type': 'repository', 'name': 'org/img',
                                    'actions': ['push', 'pull']}]},
                       None, algorithm='none')
    response = await secured.post('/v2/org/img/blobs/uploads/',
                                  headers=bearer(token))
    await assert_error(response, 401, 'UNAUTHORIZED')


async def test_expired_token_is_refused(secured):
    token = forged({'iat': int(time.time()) - 7200,
                    'exp': int(time.time()) - 3600}, SECRET)
    response = await secured.post('/v2/org/img/blobs/uploads/',
                                  headers=bearer(token))
    await assert_error(response, 401, 'UNAUTHORIZED')
    # The same claims, still valid, are accepted: the test can fail.
    key = secured.app[base.AUTH]._key
    response = await secured.post('/v2/org/img/blobs/uploads/',
                                  headers=bearer(forged({}, key)))
    assert response.status == 202


async def test_write_token_for_one_repository_cannot_push_another(secured):
    token = await get_token(secured, 'repository:org/a:pull,push',
                            WRITER.name, WRITER.password)
    response = await secured.post('/v2/org/a/blobs/uploads/',
                                  headers=bearer(token))
    assert response.status == 202
    response = await secured.post('/v2/org/b/blobs/uploads/',
                                  headers=bearer(token))
    await assert_error(response, 401, 'UNAUTHORIZED')
    assert 'repository:org/b:pull,push' in \
        response.headers['WWW-Authenticate']


async def test_mirror_forwarding_unknown_credentials_gets_a_read_token(
        secured):
    token = await get_token(secured, 'repository:library/alpine:pull',
                            'dockerhub-user', 'dockerhub-password')
    claims = jwt.decode(token, options={'verify_signature': False})
    assert claims['access'][0]['actions'] == ['pull']
    assert claims['sub'] == ''


async def test_unknown_credentials_refused_without_anonymous_read(
        make_client):
    client = await make_client(users=(WRITER, READER), secret=SECRET)
    response = await client.get('/auth/token', params={
        'scope': 'repository:org/img:pull'},
        headers={'Authorization': basic_auth('nobody', 'nothing')})
    await assert_error(response, 401, 'UNAUTHORIZED')


async def test_containerd_post_form_password_and_refresh_grants(secured):
    response = await secured.post('/auth/token', data={
        'grant_type': 'password', 'username': WRITER.name,
        'password': WRITER.password, 'service': 'zuul-registry',
        'client_id': 'containerd-client',
        'scope': 'repository:org/a:pull,push repository:org/b:pull'})
    assert response.status == 200
    body = await response.json()
    claims = jwt.decode(body['access_token'],
                        options={'verify_signature': False})
    assert {(a['name'], tuple(a['actions'])) for a in claims['access']} == \
        {('org/a', ('pull', 'push')), ('org/b', ('pull',))}
    response = await secured.post('/auth/token', data={
        'grant_type': 'refresh_token',
        'refresh_token': body['refresh_token'],
        'scope': 'repository:org/c:push'})
    assert response.status == 200
    refreshed = await response.json()
    response = await secured.post('/v2/org/c/blobs/uploads/',
                                  headers=bearer(refreshed['access_token']))
    assert response.status == 202
    # A refresh token is not an access token.
    response = await secured.post('/v2/org/c/blobs/uploads/',
                                  headers=bearer(body['refresh_token']))
    await assert_error(response, 401, 'UNAUTHORIZED')
    response = await secured.post('/auth/token', data={
        'grant_type': 'password', 'username': WRITER.name,
        'password': 'wrong', 'scope': 'repository:org/a:push'})
    claims = jwt.decode((await response.json())['access_token'],
                        options={'verify_signature': False})
    assert claims['access'] == [] and claims['sub'] == ''


async def test_two_servers_with_one_secret_accept_each_others_tokens(
        make_client):
    first = await make_client(users=(WRITER,), secret=SECRET)
    second = await make_client(users=(WRITER,), secret=SECRET)
    other = await make_client(users=(WRITER,),
                              secret='a-different-one-0123456789abcdefghij')
    token = await get_token(first, 'repository:org/img:pull,push',
                            WRITER.name, WRITER.password)
    response = await second.post('/v2/org/img/blobs/uploads/',
                                 headers=bearer(token))
    assert response.status == 202
    response = await other.post('/v2/org/img/blobs/uploads/',
                                headers=bearer(token))
    await assert_error(response, 401, 'UNAUTHORIZED')


async def test_namespaced_token_covers_both_spellings(make_client):
    client = await make_client(users=(WRITER,), secret=SECRET,
                               namespaced=True)
    token = await get_token(client, 'repository:library/alpine:pull,push',
                            WRITER.name, WRITER.password)
    response = await client.post(
        '/v2/docker.io/library/alpine/blobs/uploads/', headers=bearer(token))
    assert response.status == 202


async def test_mount_needs_pull_on_the_source(secured):
    data = b'mountable'
    digest = digest_of(data)
    token = await get_token(secured, 'repository:org/src:pull,push',
                            WRITER.name, WRITER.password)
    response = await secured.post('/v2/org/src/blobs/uploads/?digest=%s'
                                  % digest, data=data, headers=bearer(token))
    assert response.status == 201
    only_dst = await get_token(secured, 'repository:org/dst:pull,push',
                               WRITER.name, WRITER.password)
    url = '/v2/org/dst/blobs/uploads/?mount=%s&from=org/src' % digest
    response = await secured.post(url, headers=bearer(only_dst))
    assert response.status == 202
    both = await get_token(
        secured, 'repository:org/dst:pull,push repository:org/src:pull',
        WRITER.name, WRITER.password)
    response = await secured.post(url, headers=bearer(both))
    assert response.status == 201


async def test_logs_never_contain_passwords_tokens_or_secret(secured,
                                                             caplog):
    caplog.set_level(logging.DEBUG)
    token = await get_token(secured, 'repository:org/img:pull,push',
                            WRITER.name, WRITER.password)
    await push_image(secured, 'org/img', 'v1', headers=bearer(token))
    await secured.get('/v2/', headers={
        'Authorization': basic_auth(WRITER.name, 'wrong-password-x')})
    await secured.post('/auth/token', data={
        'grant_type': 'password', 'username': WRITER.name,
        'password': WRITER.password, 'scope': 'repository:org/img:pull'})
    text = caplog.text
    assert 'Issued token' in text   # the log is really captured
    for secret in (WRITER.password, 'wrong-password-x', SECRET, token,
                   token.split('.')[2]):
        assert secret not in text


def test_scope_parsing():
    assert list(auth_module.parse_scopes(
        ['repository:localhost:5000/a/b:pull,push registry:catalog:*',
         'repository:x:*'])) == [
        ('localhost:5000/a/b', {'pull', 'push'}),
        ('x', {'pull', 'push', 'delete'})]


async def test_user_with_bcrypt_hash_authenticates(make_client):
    import bcrypt
    hashed = bcrypt.hashpw(b'hashed-pass', bcrypt.gensalt(rounds=4))
    user = config_module.User(name='hasher', password=None, access='write',
                              password_hash=hashed.decode())
    client = await make_client(users=(user,), secret=SECRET)
    token = await get_token(client, 'repository:org/img:pull,push',
                            'hasher', 'hashed-pass')
    response = await client.post('/v2/org/img/blobs/uploads/',
                                 headers=bearer(token))
    assert response.status == 202
    response = await client.get('/v2/', headers={
        'Authorization': basic_auth('hasher', 'not-the-pass')})
    await assert_error(response, 401, 'UNAUTHORIZED')
    response = await client.get('/v2/', headers={
        'Authorization': basic_auth('hasher', 'hashed-pass')})
    assert response.status == 200
