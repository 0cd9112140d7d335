"""Content management: deleting manifests, tags and blobs."""

import json

import pytest

from zuul_registry import config as config_module
from tests.api.helpers import (basic_auth, assert_error, digest_of, push_blob,
                               push_image)

SECRET = 'deletion-test-secret-0123456789abcdef'
WRITER = config_module.User(name='writer', password='w-pass',
                            access='write')
READER = config_module.User(name='reader', password='r-pass',
                            access='read')


def basic(user):
    return {'Authorization': basic_auth(user.name, user.password)}


async def tags_of(client, name):
    response = await client.get('/v2/%s/tags/list' % name)
    return (await response.json())['tags']


async def test_delete_manifest_by_digest_is_202_then_404_for_it_and_its_tags(
        client):
    digest, body = await push_image(client, 'org/img', 'v1')
    for tag in ('latest', 'stable'):
        response = await client.put('/v2/org/img/manifests/%s' % tag,
                                    data=body, headers={
                                        'Content-Type': json.loads(body)[
                                            'mediaType']})
        assert response.status == 201
    other, _ = await push_image(client, 'org/img', 'other', layer=b'other')
    response = await client.delete('/v2/org/img/manifests/%s' % digest)
    assert response.status == 202
    for reference in (digest, 'v1', 'latest', 'stable'):
        for method in (client.get, client.head):
            response = await method('/v2/org/img/manifests/%s' % reference)
            assert response.status == 404
    assert await tags_of(client, 'org/img') == ['other']
    response = await client.get('/v2/org/img/manifests/other')
    assert response.headers['Docker-Content-Digest'] == other


async def test_delete_manifest_by_tag_removes_only_that_tag(client):
    digest, body = await push_image(client, 'org/img', 'v1')
    response = await client.put('/v2/org/img/manifests/latest', data=body,
                                headers={'Content-Type':
                                         json.loads(body)['mediaType']})
    response = await client.delete('/v2/org/img/manifests/v1')
    assert response.status == 202
    await assert_error(await client.get('/v2/org/img/manifests/v1'), 404,
                       'MANIFEST_UNKNOWN')
    assert await tags_of(client, 'org/img') == ['latest']
    for reference in (digest, 'latest'):
        response = await client.get('/v2/org/img/manifests/%s' % reference)
        assert response.status == 200


async def test_deleting_a_manifest_leaves_its_blobs(client):
    digest, body = await push_image(client, 'org/img', 'v1')
    response = await client.delete('/v2/org/img/manifests/%s' % digest)
    assert response.status == 202
    manifest = json.loads(body)
    for descriptor in [manifest['config']] + manifest['layers']:
        response = await client.get('/v2/org/img/blobs/%s'
                                    % descriptor['digest'])
        assert response.status == 200


async def test_deleting_unknown_manifest_or_tag_is_404(client):
    await push_image(client, 'org/img', 'v1')
    for name, reference in (('org/img', digest_of(b'none')),
                            ('org/img', 'none'),
                            ('org/nothing', 'v1'),
                            ('org/nothing', digest_of(b'none'))):
        response = await client.delete('/v2/%s/manifests/%s'
                                       % (name, reference))
        await assert_error(response, 404, 'MANIFEST_UNKNOWN')


async def test_deleting_a_manifest_twice_is_404_the_second_time(client):
    digest, _ = await push_image(client, 'org/img', 'v1')
    response = await client.delete('/v2/org/img/manifests/%s' % digest)
    assert response.status == 202
    response = await client.delete('/v2/org/img/manifests/%s' % digest)
    await assert_error(response, 404, 'MANIFEST_UNKNOWN')


async def test_delete_blob_is_202_and_unlinks_it_from_the_repository(
        client):
    data = b'blob to delete'
    digest = await push_blob(client, 'org/img', data)
    await push_blob(client, 'org/other', data)
    response = await client.delete('/v2/org/img/blobs/%s' % digest)
    assert response.status == 202
    for method in (client.get, client.head):
        response = await method('/v2/org/img/blobs/%s' % digest)
        assert response.status == 404
    # Another repository linking the same bytes keeps them.
    response = await client.get('/v2/org/other/blobs/%s' % digest)
    assert await response.read() == data
    response = await client.delete('/v2/org/img/blobs/%s' % digest)
    await assert_error(response, 404, 'BLOB_UNKNOWN')


async def test_deleting_unknown_blob_is_404_blob_unknown(client):
    response = await client.delete('/v2/org/img/blobs/%s'
                                   % digest_of(b'never'))
    await assert_error(response, 404, 'BLOB_UNKNOWN')


async def test_deleting_with_invalid_digest_is_400(client):
    response = await client.delete('/v2/org/img/blobs/sha256:xyz')
    await assert_error(response, 400, 'DIGEST_INVALID')


async def test_delete_disabled_answers_405_unsupported_for_all_three(
        make_client):
    client = await make_client(delete_enabled=False)
    digest, body = await push_image(client, 'org/img', 'v1')
    layer = json.loads(body)['layers'][0]['digest']
    for path in ('/v2/org/img/manifests/%s' % digest,
                 '/v2/org/img/manifests/v1',
                 '/v2/org/img/blobs/%s' % layer):
        response = await client.delete(path)
        await assert_error(response, 405, 'UNSUPPORTED')
        # RFC 9110: a 405 names the methods the resource does answer.
        assert response.headers['Allow'] == (
            'GET, HEAD, PUT' if '/manifests/' in path else 'GET, HEAD')
    # Nothing was deleted.
    for path in ('/v2/org/img/manifests/v1', '/v2/org/img/blobs/%s' % layer):
        assert (await client.get(path)).status == 200
    # Cancelling an upload is no deletion of content.
    response = await client.post('/v2/org/img/blobs/uploads/')
    response = await client.delete(response.headers['Location'])
    assert response.status == 204


@pytest.fixture
async def secured(make_client):
    return await make_client(users=(WRITER, READER), secret=SECRET)


async def test_deletion_needs_the_delete_action(secured):
    digest, _ = await push_image(secured, 'org/img', 'v1',
                                 headers=basic(WRITER))
    path = '/v2/org/img/manifests/%s' % digest
    response = await secured.delete(path)
    await assert_error(response, 401, 'UNAUTHORIZED')
    assert 'scope="repository:org/img:delete"' in \
        response.headers['WWW-Authenticate']
    response = await secured.delete(path, headers=basic(READER))
    await assert_error(response, 403, 'DENIED')
    # A token for pull and push does not grant delete.
    response = await secured.get('/auth/token', params={
        'service': 'zuul-registry',
        'scope': 'repository:org/img:pull,push'}, headers=basic(WRITER))
    token = (await response.json())['token']
    response = await secured.delete(
        path, headers={'Authorization': 'Bearer ' + token})
    await assert_error(response, 401, 'UNAUTHORIZED')
    response = await secured.delete(path, headers=basic(WRITER))
    assert response.status == 202


async def test_cancelling_an_upload_needs_push_not_delete(secured):
    response = await secured.get('/auth/token', params={
        'service': 'zuul-registry',
        'scope': 'repository:org/img:pull,push'}, headers=basic(WRITER))
    bearer = {'Authorization': 'Bearer ' + (await response.json())['token']}
    response = await secured.post('/v2/org/img/blobs/uploads/',
                                  headers=bearer)
    assert response.status == 202
    response = await secured.delete(response.headers['Location'],
                                    headers=bearer)
    assert response.status == 204
