"""_catalog with token auth: the `registry:catalog:*` scope.

Clients that list repositories (crane, regclient, registry UIs) follow
the challenge of GET /v2/_catalog and fetch a token for the scope it
names, `registry:catalog:*`, as with CNCF Distribution.  Whoever may
pull everything (any user; anonymous clients when anonymous pull is
allowed) gets that grant, and the token lists every repository; a token
for some repositories still lists only those.
"""

import jwt
import pytest

from zuul_registry import config as config_module
from tests.api.helpers import assert_error, basic_auth, push_blob

SECRET = 'the-configured-secret-value-0123456789'
WRITER = config_module.User(name='writer', password='w-pass-123',
                            access='write')
READER = config_module.User(name='reader', password='r-pass-456',
                            access='read')
CATALOG_SCOPE = 'registry:catalog:*'


def basic(user):
    return {'Authorization': basic_auth(user.name, user.password)}


def bearer(token):
    return {'Authorization': 'Bearer ' + token}


async def token_for(client, scope, user=None):
    response = await client.get('/auth/token', params={
        'service': 'zuul-registry', 'scope': scope},
        headers=basic(user) if user else {})
    assert response.status == 200, await response.text()
    return (await response.json())['token']


async def catalog(client, token):
    response = await client.get('/v2/_catalog', headers=bearer(token))
    assert response.status == 200, await response.text()
    return (await response.json())['repositories']


async def with_repositories(client):
    for name in ('org/a', 'org/b'):
        await push_blob(client, name, b'x', headers=basic(WRITER))
    return client


@pytest.fixture
async def private(make_client):
    """Anonymous pull off: a read user exists."""
    return await with_repositories(
        await make_client(users=(WRITER, READER), secret=SECRET))


@pytest.fixture
async def public(make_client):
    """Anonymous pull on."""
    return await with_repositories(
        await make_client(users=(WRITER,), secret=SECRET))


async def test_catalog_challenge_names_the_catalog_scope(private):
    response = await private.get('/v2/_catalog')
    await assert_error(response, 401, 'UNAUTHORIZED')
    assert response.headers['WWW-Authenticate'].endswith(
        ',scope="registry:catalog:*"')


@pytest.mark.parametrize('user', [WRITER, READER])
async def test_catalog_token_of_a_user_lists_every_repository(private, user):
    token = await token_for(private, CATALOG_SCOPE, user)
    assert await catalog(private, token) == ['org/a', 'org/b']


async def test_catalog_token_from_a_posted_form_lists_everything(private):
    response = await private.post('/auth/token', data={
        'grant_type': 'password', 'username': READER.name,
        'password': READER.password, 'service': 'zuul-registry',
        'scope': 'repository:org/a:pull ' + CATALOG_SCOPE})
    assert response.status == 200, await response.text()
    body = await response.json()
    assert await catalog(private, body['access_token']) == ['org/a', 'org/b']


async def test_catalog_token_is_anonymous_when_anonymous_pull_is(public):
    token = await token_for(public, CATALOG_SCOPE)
    assert await catalog(public, token) == ['org/a', 'org/b']


async def test_no_catalog_grant_without_pull_everywhere(private):
    token = await token_for(private, CATALOG_SCOPE)
    claims = jwt.decode(token, options={'verify_signature': False})
    assert claims['access'] == []
    assert await catalog(private, token) == []


async def test_repository_token_still_lists_only_its_repository(private):
    token = await token_for(private, 'repository:org/b:pull', READER)
    assert await catalog(private, token) == ['org/b']


async def test_catalog_grant_lets_nothing_be_pulled(private):
    token = await token_for(private, CATALOG_SCOPE, READER)
    response = await private.get('/v2/org/a/tags/list',
                                 headers=bearer(token))
    await assert_error(response, 401, 'UNAUTHORIZED')
