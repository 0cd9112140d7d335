"""Bodies are stored exactly as sent, whatever their Content-Encoding.

CNCF Distribution stores the bytes of the request as they arrive; a
registry that decompressed `Content-Encoding: gzip` would store bytes the
client never sent (a small request could become a huge blob) and hash
something other than what the client hashed.
"""

import gzip

from tests.api.helpers import (
    OCI_MANIFEST, assert_error, digest_of, image_manifest, push_blob)

GZIP = {'Content-Encoding': 'gzip'}


async def test_gzip_encoded_monolithic_blob_is_stored_as_sent(client):
    sent = gzip.compress(b'the layer bytes ' * 1000)
    digest = digest_of(sent)
    response = await client.post('/v2/org/img/blobs/uploads/?digest=%s'
                                 % digest, data=sent, headers=GZIP)
    assert response.status == 201, await response.text()
    assert response.headers['Docker-Content-Digest'] == digest
    blob = await client.get('/v2/org/img/blobs/%s' % digest,
                            auto_decompress=False)
    assert await blob.read() == sent
    assert 'Content-Encoding' not in blob.headers


async def test_gzip_encoded_patch_and_put_are_stored_as_sent(client):
    first, last = gzip.compress(b'a' * 100000), gzip.compress(b'b' * 50)
    sent = first + last
    response = await client.post('/v2/org/img/blobs/uploads/')
    location = response.headers['Location']
    response = await client.patch(location, data=first, headers=GZIP)
    assert response.status == 202, await response.text()
    assert response.headers['Range'] == '0-%d' % (len(first) - 1)
    response = await client.put('%s?digest=%s' % (location, digest_of(sent)),
                                data=last, headers=GZIP)
    assert response.status == 201, await response.text()
    blob = await client.get('/v2/org/img/blobs/%s' % digest_of(sent),
                            auto_decompress=False)
    assert await blob.read() == sent


async def test_invalid_gzip_body_is_stored_as_sent_not_a_500(client):
    sent = b'\x1f\x8b this is not gzip at all'
    digest = digest_of(sent)
    response = await client.post('/v2/org/img/blobs/uploads/?digest=%s'
                                 % digest, data=sent, headers=GZIP)
    assert response.status == 201, await response.text()
    blob = await client.get('/v2/org/img/blobs/%s' % digest)
    assert await blob.read() == sent


async def test_digest_of_the_decompressed_bytes_does_not_match(client):
    plain = b'plain layer' * 100
    response = await client.post('/v2/org/img/blobs/uploads/?digest=%s'
                                 % digest_of(plain),
                                 data=gzip.compress(plain), headers=GZIP)
    await assert_error(response, 400, 'DIGEST_INVALID')


async def test_gzip_encoded_manifest_is_not_decompressed(client):
    config = await push_blob(client, 'org/img', b'{}')
    manifest = image_manifest(config, 2, [])
    response = await client.put(
        '/v2/org/img/manifests/v1', data=gzip.compress(manifest),
        headers={'Content-Type': OCI_MANIFEST, **GZIP})
    await assert_error(response, 400, 'MANIFEST_INVALID')
    response = await client.put(
        '/v2/org/img/manifests/v1', data=manifest,
        headers={'Content-Type': OCI_MANIFEST})
    assert response.status == 201
