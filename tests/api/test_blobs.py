"""Pulling blobs: GET and HEAD /v2/<name>/blobs/<digest>."""

import yarl

from tests.api.helpers import assert_error, digest_of, push_blob


async def test_api_base_answers_200_with_version_header(client):
    response = await client.get('/v2/')
    assert response.status == 200
    assert response.headers['Docker-Distribution-API-Version'] == \
        'registry/2.0'


async def test_get_blob_returns_bytes_length_digest_and_octet_stream(client):
    data = b'x' * 100000
    digest = await push_blob(client, 'org/img', data)
    response = await client.get('/v2/org/img/blobs/%s' % digest)
    assert response.status == 200
    assert await response.read() == data
    assert response.headers['Content-Length'] == str(len(data))
    assert response.headers['Docker-Content-Digest'] == digest
    assert response.headers['Content-Type'] == 'application/octet-stream'


async def test_head_blob_has_length_and_digest_but_no_body(client):
    data = b'some bytes'
    digest = await push_blob(client, 'org/img', data)
    response = await client.head('/v2/org/img/blobs/%s' % digest)
    assert response.status == 200
    assert response.headers['Content-Length'] == str(len(data))
    assert response.headers['Docker-Content-Digest'] == digest
    assert await response.read() == b''


async def test_range_request_answers_206_with_content_range(client):
    data = bytes(range(256)) * 40
    digest = await push_blob(client, 'org/img', data)
    response = await client.get('/v2/org/img/blobs/%s' % digest,
                                headers={'Range': 'bytes=100-199'})
    assert response.status == 206
    assert await response.read() == data[100:200]
    assert response.headers['Content-Range'] == \
        'bytes 100-199/%d' % len(data)
    response = await client.get('/v2/org/img/blobs/%s' % digest,
                                headers={'Range': 'bytes=-10'})
    assert response.status == 206
    assert await response.read() == data[-10:]
    response = await client.get('/v2/org/img/blobs/%s' % digest,
                                headers={'Range': 'bytes=10000-'})
    assert response.status == 206
    assert await response.read() == data[10000:]


async def test_unsatisfiable_range_answers_416(client):
    digest = await push_blob(client, 'org/img', b'short')
    response = await client.get('/v2/org/img/blobs/%s' % digest,
                                headers={'Range': 'bytes=10-20'})
    await assert_error(response, 416, 'BLOB_UPLOAD_INVALID')
    assert response.headers['Content-Range'] == 'bytes */5'


async def test_unknown_blob_is_404_blob_unknown(client):
    response = await client.get('/v2/org/img/blobs/%s' % digest_of(b'no'))
    await assert_error(response, 404, 'BLOB_UNKNOWN')
    response = await client.head('/v2/org/img/blobs/%s' % digest_of(b'no'))
    assert response.status == 404


async def test_blob_is_invisible_in_a_repository_it_was_not_pushed_to(
        client):
    digest = await push_blob(client, 'org/one', b'private to one')
    response = await client.get('/v2/org/two/blobs/%s' % digest)
    await assert_error(response, 404, 'BLOB_UNKNOWN')


async def test_malformed_digest_is_400_digest_invalid(client):
    for bad in ('sha256:xyz', 'md5:' + 'a' * 32, 'sha256:' + 'A' * 64,
                'nodigest'):
        response = await client.get('/v2/org/img/blobs/%s' % bad)
        await assert_error(response, 400, 'DIGEST_INVALID')


async def test_malformed_names_are_400_name_invalid(client):
    digest = digest_of(b'x')
    for name in ('UPPER/case', 'a//b', '-lead', 'a/_hidden', 'x' * 256,
                 'a/b%00', 'a/b%2e'):
        response = await client.get('/v2/%s/blobs/%s' % (name, digest))
        await assert_error(response, 400, 'NAME_INVALID')


async def test_path_traversal_never_reaches_outside_the_root(client,
                                                             tmp_path):
    secret = tmp_path / 'secret'
    secret.write_bytes(b'do not serve')
    digest = digest_of(b'do not serve')
    base = client.make_url('/')
    for path in ('/v2/../../secret/blobs/%s' % digest,
                 '/v2/%2e%2e/%2e%2e/secret/blobs/' + digest,
                 '/v2/a/..%2f..%2fsecret/blobs/' + digest,
                 '/v2/a/%2e%2e/%2e%2e/%2e%2e/secret/blobs/' + digest,
                 '/v2//etc/blobs/' + digest):
        # Sent byte for byte: the client must not normalize the path.
        url = yarl.URL('%s://%s:%d%s' % (base.scheme, base.host, base.port,
                                         path), encoded=True)
        response = await client.session.get(url)
        assert response.status in (400, 404), path
        assert b'do not serve' not in await response.read()
        body = await response.json()
        assert body['errors'][0]['code']
