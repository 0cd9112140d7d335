"""The anonymous fallback of the token endpoint, and what a refused
push is told.

Where anonymous pull is allowed, dockerd sends a user's Docker Hub
credentials (a password, or an identity token as a refresh token) to a
mirror along with the pull's scope: those get an anonymous token.  A
token request without any scope is a login, and must not succeed with
a wrong password.
"""

import jwt
import pytest

from tests.api.helpers import assert_error, basic_auth, push_image
from tests.api.test_auth import READER, SECRET, WRITER, bearer, get_token

SCOPE = 'repository:org/img:pull'


@pytest.fixture
async def buildset(make_client):
    """A write user only: anonymous pull allowed, as the roles set up."""
    return await make_client(users=(WRITER,), secret=SECRET)


@pytest.fixture
async def secured(make_client):
    """A read user exists: anonymous pull refused."""
    return await make_client(users=(WRITER, READER), secret=SECRET)


async def test_unknown_password_with_a_scope_gets_an_anonymous_token(
        buildset):
    token = await get_token(buildset, SCOPE, 'hub-user', 'hub-password')
    claims = jwt.decode(token, options={'verify_signature': False})
    assert not claims.get('sub')   # anonymous
    assert claims['access'][0]['actions'] == ['pull']


async def test_a_login_without_scope_with_a_wrong_password_is_refused(
        buildset):
    response = await buildset.get('/auth/token', params={
        'service': 'zuul-registry'}, headers={
        'Authorization': basic_auth(WRITER.name, 'wrong')})
    await assert_error(response, 401, 'UNAUTHORIZED')
    response = await buildset.get('/auth/token', params={
        'service': 'zuul-registry'}, headers={
        'Authorization': basic_auth(WRITER.name, WRITER.password)})
    assert response.status == 200


async def test_a_password_grant_without_scope_is_checked(buildset):
    response = await buildset.post('/auth/token', data={
        'grant_type': 'password', 'username': WRITER.name,
        'password': 'wrong', 'service': 'zuul-registry'})
    await assert_error(response, 401, 'UNAUTHORIZED')


async def test_an_unknown_refresh_token_with_a_scope_gets_anonymous_pull(
        buildset):
    response = await buildset.post('/auth/token', data={
        'grant_type': 'refresh_token', 'refresh_token': 'a-hub-identity',
        'service': 'zuul-registry', 'scope': SCOPE})
    assert response.status == 200, await response.text()
    body = await response.json()
    assert 'refresh_token' not in body
    # Without a scope, or where anonymous pull is refused: 401.
    response = await buildset.post('/auth/token', data={
        'grant_type': 'refresh_token', 'refresh_token': 'a-hub-identity',
        'service': 'zuul-registry'})
    await assert_error(response, 401, 'UNAUTHORIZED')


async def test_no_fallback_where_anonymous_pull_is_refused(secured):
    response = await secured.post('/auth/token', data={
        'grant_type': 'refresh_token', 'refresh_token': 'a-hub-identity',
        'service': 'zuul-registry', 'scope': SCOPE})
    await assert_error(response, 401, 'UNAUTHORIZED')
    response = await secured.get('/auth/token', params={
        'service': 'zuul-registry', 'scope': SCOPE}, headers={
        'Authorization': basic_auth('hub-user', 'hub-password')})
    await assert_error(response, 401, 'UNAUTHORIZED')


async def test_a_token_without_push_is_told_insufficient_scope(secured):
    await push_image(secured, 'org/img', 'v1', headers=bearer(
        await get_token(secured, 'repository:org/img:pull,push',
                        WRITER.name, WRITER.password)))
    token = await get_token(secured, 'repository:org/img:pull,push',
                            READER.name, READER.password)
    response = await secured.post('/v2/org/img/blobs/uploads/',
                                  headers=bearer(token))
    await assert_error(response, 401, 'UNAUTHORIZED')
    challenge = response.headers['WWW-Authenticate']
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="repository:org/img:pull,push"' in challenge
    # No token at all: a plain challenge, asking to log in.
    response = await secured.post('/v2/org/img/blobs/uploads/')
    assert 'error=' not in response.headers['WWW-Authenticate']
