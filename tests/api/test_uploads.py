"""Pushing blobs: upload sessions, chunks, monolithic uploads."""

from tests.api.helpers import assert_error, digest_of


async def start(client, name='org/img'):
    response = await client.post('/v2/%s/blobs/uploads/' % name)
    assert response.status == 202
    return response


async def test_post_opens_a_session_with_location_uuid_and_range(client):
    response = await start(client)
    location = response.headers['Location']
    assert location.startswith('/v2/org/img/blobs/uploads/')
    assert response.headers['Docker-Upload-UUID'] == location.rsplit('/')[-1]
    assert response.headers['Range'] == '0-0'


async def test_monolithic_post_with_digest_creates_the_blob(client):
    data = b'monolithic'
    digest = digest_of(data)
    response = await client.post(
        '/v2/org/img/blobs/uploads/?digest=%s' % digest, data=data)
    assert response.status == 201
    assert response.headers['Location'] == '/v2/org/img/blobs/%s' % digest
    assert response.headers['Docker-Content-Digest'] == digest
    blob = await client.get('/v2/org/img/blobs/%s' % digest)
    assert await blob.read() == data


async def test_chunked_upload_with_content_range(client):
    data = bytes(range(256)) * 1000
    location = (await start(client)).headers['Location']
    for offset in range(0, len(data), 100000):
        chunk = data[offset:offset + 100000]
        response = await client.patch(location, data=chunk, headers={
            'Content-Range': '%d-%d' % (offset, offset + len(chunk) - 1),
            'Content-Type': 'application/octet-stream'})
        assert response.status == 202, await response.text()
        assert response.headers['Range'] == '0-%d' % (offset + len(chunk)
                                                      - 1)
        location = response.headers['Location']
    digest = digest_of(data)
    response = await client.put('%s?digest=%s' % (location, digest))
    assert response.status == 201
    assert response.headers['Docker-Content-Digest'] == digest
    assert await (await client.get(
        '/v2/org/img/blobs/%s' % digest)).read() == data


async def test_streamed_patch_without_content_range_then_put(client):
    data = b'streamed' * 5000
    location = (await start(client)).headers['Location']
    response = await client.patch(location, data=data)
    assert response.status == 202
    assert response.headers['Range'] == '0-%d' % (len(data) - 1)
    response = await client.put('%s?digest=%s' % (
        response.headers['Location'], digest_of(data)))
    assert response.status == 201


async def test_put_with_final_chunk_completes_upload(client):
    data = b'first part|second part'
    location = (await start(client)).headers['Location']
    response = await client.patch(location, data=data[:11])
    response = await client.put('%s?digest=%s' % (
        response.headers['Location'], digest_of(data)), data=data[11:])
    assert response.status == 201
    assert await (await client.get(
        '/v2/org/img/blobs/%s' % digest_of(data))).read() == data


async def test_empty_blob_can_be_pushed(client):
    location = (await start(client)).headers['Location']
    response = await client.put('%s?digest=%s' % (location, digest_of(b'')))
    assert response.status == 201
    response = await client.get('/v2/org/img/blobs/%s' % digest_of(b''))
    assert response.status == 200
    assert await response.read() == b''


async def test_chunk_not_starting_at_current_size_is_416(client):
    location = (await start(client)).headers['Location']
    response = await client.patch(location, data=b'abcd',
                                  headers={'Content-Range': '0-3'})
    assert response.status == 202
    for bad_range in ('0-3', '10-13', '2-5'):
        response = await client.patch(location, data=b'efgh',
                                      headers={'Content-Range': bad_range})
        await assert_error(response, 416, 'BLOB_UPLOAD_INVALID')
        assert response.headers['Range'] == '0-3'


async def test_content_range_disagreeing_with_length_is_416(client):
    location = (await start(client)).headers['Location']
    response = await client.patch(location, data=b'abcd',
                                  headers={'Content-Range': '0-9'})
    await assert_error(response, 416, 'BLOB_UPLOAD_INVALID')


async def test_content_range_outside_the_ascii_grammar_is_416(client):
    # Thousands of digits made int() raise (a 500); non-ASCII digits
    # ("\u0660-\u0663" is 0-3) were taken as numbers.
    location = (await start(client)).headers['Location']
    for bad_range in ('0-' + '1' * 4400, '1' * 4400 + '-0',
                      '\u0660-\u0663'):
        response = await client.patch(location, data=b'abcd',
                                      headers={'Content-Range': bad_range})
        await assert_error(response, 416, 'BLOB_UPLOAD_INVALID')
    response = await client.get(location)
    assert response.status == 204
    assert response.headers['Range'] == '0-0'


async def test_digest_mismatch_is_400_and_nothing_is_stored(client):
    data = b'real content'
    wrong = digest_of(b'other content')
    location = (await start(client)).headers['Location']
    response = await client.put('%s?digest=%s' % (location, wrong),
                                data=data)
    await assert_error(response, 400, 'DIGEST_INVALID')
    for digest in (wrong, digest_of(data)):
        response = await client.head('/v2/org/img/blobs/%s' % digest)
        assert response.status == 404
    # The session is gone too.
    response = await client.patch(location, data=b'more')
    await assert_error(response, 404, 'BLOB_UPLOAD_UNKNOWN')


async def test_monolithic_digest_mismatch_is_400(client):
    response = await client.post('/v2/org/img/blobs/uploads/?digest=%s'
                                 % digest_of(b'a'), data=b'b')
    await assert_error(response, 400, 'DIGEST_INVALID')
    response = await client.head('/v2/org/img/blobs/%s' % digest_of(b'a'))
    assert response.status == 404


async def test_put_without_digest_is_400_digest_invalid(client):
    location = (await start(client)).headers['Location']
    response = await client.put(location, data=b'x')
    await assert_error(response, 400, 'DIGEST_INVALID')


async def test_unknown_upload_is_404_blob_upload_unknown(client):
    for upload_id in ('00000000-0000-4000-8000-000000000000', 'not-an-id',
                      'A' * 32):
        response = await client.patch(
            '/v2/org/img/blobs/uploads/%s' % upload_id, data=b'x')
        await assert_error(response, 404, 'BLOB_UPLOAD_UNKNOWN')


async def test_upload_is_bound_to_its_repository(client):
    location = (await start(client, 'org/one')).headers['Location']
    upload_id = location.rsplit('/')[-1]
    response = await client.patch(
        '/v2/org/two/blobs/uploads/%s' % upload_id, data=b'x')
    await assert_error(response, 404, 'BLOB_UPLOAD_UNKNOWN')


async def test_upload_status_and_cancel(client):
    location = (await start(client)).headers['Location']
    await client.patch(location, data=b'12345')
    response = await client.get(location)
    assert response.status == 204
    assert response.headers['Range'] == '0-4'
    response = await client.delete(location)
    assert response.status == 204
    response = await client.get(location)
    await assert_error(response, 404, 'BLOB_UPLOAD_UNKNOWN')


async def test_same_blob_pushed_twice_at_once_both_succeed(client):
    import asyncio
    data = b'concurrent' * 10000
    digest = digest_of(data)

    async def push():
        location = (await start(client)).headers['Location']
        response = await client.put('%s?digest=%s' % (location, digest),
                                    data=data)
        return response.status

    assert await asyncio.gather(*[push() for _ in range(8)]) == [201] * 8
    assert await (await client.get(
        '/v2/org/img/blobs/%s' % digest)).read() == data


async def test_upload_continues_in_a_fresh_application(make_client):
    """A restart (or another process) continues by re-hashing chunks."""
    data = b'A' * 70000 + b'B' * 30000
    first = await make_client()
    location = (await start(first)).headers['Location']
    response = await first.patch(location, data=data[:70000])
    assert response.status == 202
    second = await make_client()   # same storage root, no hash state
    response = await second.patch(location, data=data[70000:],
                                  headers={'Content-Range': '70000-99999'})
    assert response.status == 202
    response = await second.put('%s?digest=%s' % (location,
                                                  digest_of(data)))
    assert response.status == 201
    response = await first.get('/v2/org/img/blobs/%s' % digest_of(data))
    assert await response.read() == data


async def test_cross_repository_mount(client):
    data = b'mount me'
    digest = digest_of(data)
    await client.post('/v2/org/src/blobs/uploads/?digest=%s' % digest,
                      data=data)
    response = await client.post(
        '/v2/org/dst/blobs/uploads/?mount=%s&from=org/src' % digest)
    assert response.status == 201
    assert response.headers['Location'] == '/v2/org/dst/blobs/%s' % digest
    assert await (await client.get(
        '/v2/org/dst/blobs/%s' % digest)).read() == data
    # Mounting what the source does not have opens a normal session.
    response = await client.post(
        '/v2/org/dst/blobs/uploads/?mount=%s&from=org/src'
        % digest_of(b'absent'))
    assert response.status == 202
