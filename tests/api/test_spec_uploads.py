"""Upload sessions and cross-repository mounts, as the spec words them."""

import base64

import pytest

from zuul_registry import config as config_module
from tests.api.helpers import assert_error, digest_of, push_blob

SECRET = 'uploads-test-secret-0123456789abcdef'
WRITER = config_module.User(name='writer', password='w-pass',
                            access='write')


async def start(client, name='org/img', **kwargs):
    response = await client.post('/v2/%s/blobs/uploads/' % name, **kwargs)
    assert response.status == 202, await response.text()
    return response.headers['Location']


async def test_upload_status_is_204_with_location_and_range(client):
    location = await start(client)
    response = await client.get(location)
    assert response.status == 204
    assert response.headers['Location'] == location
    assert response.headers['Range'] == '0-0'
    response = await client.patch(location, data=b'0123456789',
                                  headers={'Content-Range': '0-9'})
    assert response.status == 202
    assert response.headers['Location'] == location
    assert response.headers['Range'] == '0-9'
    response = await client.get(location)
    assert response.status == 204
    assert response.headers['Range'] == '0-9'


async def test_cancelled_upload_is_gone(client):
    location = await start(client)
    await client.patch(location, data=b'data')
    response = await client.delete(location)
    assert response.status == 204
    for method in ('GET', 'PATCH', 'PUT', 'DELETE'):
        response = await client.request(
            method, location + ('?digest=%s' % digest_of(b'data')
                                if method == 'PUT' else ''),
            data=b'more' if method == 'PATCH' else None)
        await assert_error(response, 404, 'BLOB_UPLOAD_UNKNOWN')


async def test_repeated_or_out_of_order_chunk_is_416_with_range(client):
    location = await start(client)
    response = await client.patch(location, data=b'abcd',
                                  headers={'Content-Range': '4-7'})
    await assert_error(response, 416, 'BLOB_UPLOAD_INVALID')
    assert response.headers['Range'] == '0-0'
    await client.patch(location, data=b'abcd',
                       headers={'Content-Range': '0-3'})
    for content_range in ('0-3', '5-8', '3-6'):
        response = await client.patch(location, data=b'efgh',
                                      headers={'Content-Range':
                                               content_range})
        await assert_error(response, 416, 'BLOB_UPLOAD_INVALID')
        assert response.headers['Range'] == '0-3'
    response = await client.patch(location, data=b'efgh',
                                  headers={'Content-Range': '4-7'})
    assert response.status == 202
    response = await client.put('%s?digest=%s'
                                % (location, digest_of(b'abcdefgh')))
    assert response.status == 201


async def test_upload_is_bound_to_its_repository_for_every_method(client):
    location = await start(client, 'org/one')
    upload_id = location.rsplit('/', 1)[-1]
    other = '/v2/org/two/blobs/uploads/%s' % upload_id
    for method in ('GET', 'PATCH', 'DELETE'):
        response = await client.request(method, other, data=b'x')
        await assert_error(response, 404, 'BLOB_UPLOAD_UNKNOWN')
    response = await client.put('%s?digest=%s' % (other, digest_of(b'')))
    await assert_error(response, 404, 'BLOB_UPLOAD_UNKNOWN')
    # The owner's session is untouched.
    response = await client.get(location)
    assert response.status == 204


async def test_upload_is_bound_to_its_namespace(make_client):
    client = await make_client(namespaced=True)
    location = await start(client, 'quay.io/org/img')
    upload_id = location.rsplit('/', 1)[-1]
    for name in ('docker.io/org/img', 'org/img'):
        response = await client.get('/v2/%s/blobs/uploads/%s'
                                    % (name, upload_id))
        await assert_error(response, 404, 'BLOB_UPLOAD_UNKNOWN')
    assert (await client.get(location)).status == 204


async def test_mount_from_another_repository_is_201_with_location(client):
    digest = await push_blob(client, 'org/src', b'shared layer')
    response = await client.post(
        '/v2/org/dst/blobs/uploads/?mount=%s&from=org/src' % digest)
    assert response.status == 201
    assert response.headers['Location'] == '/v2/org/dst/blobs/%s' % digest
    assert response.headers['Docker-Content-Digest'] == digest
    response = await client.get('/v2/org/dst/blobs/%s' % digest)
    assert await response.read() == b'shared layer'


async def test_mount_without_from_finds_the_blob_in_the_namespace(client):
    digest = await push_blob(client, 'org/src', b'discovered')
    response = await client.post('/v2/org/dst/blobs/uploads/?mount=%s'
                                 % digest)
    assert response.status == 201
    assert response.headers['Location'] == '/v2/org/dst/blobs/%s' % digest
    response = await client.post('/v2/org/dst/blobs/uploads/?mount=%s'
                                 % digest_of(b'nowhere'))
    assert response.status == 202
    assert '/blobs/uploads/' in response.headers['Location']


@pytest.mark.parametrize('source', ['org/empty', 'Not_A_Name', 'org/src'])
async def test_failed_mount_falls_back_to_an_upload_session(client, source):
    await push_blob(client, 'org/src', b'something else')
    response = await client.post(
        '/v2/org/dst/blobs/uploads/?mount=%s&from=%s'
        % (digest_of(b'absent'), source))
    assert response.status == 202
    location = response.headers['Location']
    response = await client.put('%s?digest=%s' % (location,
                                                  digest_of(b'absent')),
                                data=b'absent')
    assert response.status == 201


async def test_mount_never_crosses_namespaces(make_client):
    client = await make_client(namespaced=True)
    digest = await push_blob(client, 'quay.io/org/src', b'quay blob')
    for query in ('mount=%s&from=quay.io/org/src' % digest,
                  'mount=%s' % digest):
        response = await client.post(
            '/v2/docker.io/org/dst/blobs/uploads/?%s' % query)
        assert response.status == 202
    response = await client.head('/v2/docker.io/org/dst/blobs/%s' % digest)
    assert response.status == 404


async def test_mount_needs_pull_access_to_the_source(make_client):
    client = await make_client(users=(WRITER,), secret=SECRET,
                               anonymous_read=False)
    basic = 'Basic ' + base64.b64encode(b'writer:w-pass').decode()
    digest = await push_blob(client, 'org/private', b'secret layer',
                             headers={'Authorization': basic})
    response = await client.get('/auth/token', params={
        'service': 'zuul-registry',
        'scope': 'repository:org/dst:pull,push'},
        headers={'Authorization': basic})
    bearer = {'Authorization': 'Bearer ' + (await response.json())['token']}
    # The token grants nothing on org/private: no mount, from it or by
    # discovery; an ordinary upload session instead.
    for query in ('mount=%s&from=org/private' % digest, 'mount=%s' % digest):
        response = await client.post('/v2/org/dst/blobs/uploads/?' + query,
                                     headers=bearer)
        assert response.status == 202
    response = await client.head('/v2/org/dst/blobs/%s' % digest,
                                 headers={'Authorization': basic})
    assert response.status == 404
    # The user itself may read everything, so both forms mount.
    for query in ('mount=%s&from=org/private' % digest, 'mount=%s' % digest):
        response = await client.post('/v2/org/dst/blobs/uploads/?' + query,
                                     headers={'Authorization': basic})
        assert response.status == 201
