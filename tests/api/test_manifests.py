"""Manifests: PUT, GET and HEAD by tag and by digest, and validation."""

import json

import pytest

from tests.api.helpers import (
    DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, assert_error,
    digest_of, image_manifest, push_blob, push_image)


@pytest.mark.parametrize('media_type', [OCI_MANIFEST, DOCKER_MANIFEST])
async def test_manifest_by_tag_and_digest_returns_exact_bytes(client,
                                                              media_type):
    digest, body = await push_image(client, 'org/img', 'v1',
                                    media_type=media_type)
    for reference in ('v1', digest):
        response = await client.get('/v2/org/img/manifests/%s' % reference,
                                    headers={'Accept': media_type})
        assert response.status == 200
        assert await response.read() == body
        assert response.headers['Content-Type'] == media_type
        assert response.headers['Docker-Content-Digest'] == digest


async def test_put_manifest_answers_201_with_location_and_digest(client):
    config = await push_blob(client, 'org/img', b'{}')
    body = image_manifest(config, 2, [])
    response = await client.put('/v2/org/img/manifests/latest', data=body,
                                headers={'Content-Type': OCI_MANIFEST})
    assert response.status == 201
    assert response.headers['Docker-Content-Digest'] == digest_of(body)
    assert response.headers['Location'] == \
        '/v2/org/img/manifests/%s' % digest_of(body)


async def test_head_manifest_has_length_and_no_body(client):
    digest, body = await push_image(client, 'org/img', 'v1')
    response = await client.head('/v2/org/img/manifests/v1')
    assert response.status == 200
    assert response.headers['Content-Length'] == str(len(body))
    assert response.headers['Docker-Content-Digest'] == digest
    assert await response.read() == b''


@pytest.mark.parametrize('accept', [None, '*/*', 'application/json',
                                    'text/html'])
async def test_manifest_get_works_with_any_or_no_accept_header(client,
                                                               accept):
    digest, body = await push_image(client, 'org/img', 'v1')
    headers = {'Accept': accept} if accept else {}
    response = await client.get('/v2/org/img/manifests/v1',
                                headers=headers, skip_auto_headers=['Accept'])
    assert response.status == 200
    assert await response.read() == body


async def test_put_by_digest_must_match_the_body(client):
    config = await push_blob(client, 'org/img', b'{}')
    body = image_manifest(config, 2, [])
    response = await client.put(
        '/v2/org/img/manifests/%s' % digest_of(body), data=body,
        headers={'Content-Type': OCI_MANIFEST})
    assert response.status == 201
    response = await client.put(
        '/v2/org/img/manifests/%s' % digest_of(b'other'), data=body,
        headers={'Content-Type': OCI_MANIFEST})
    await assert_error(response, 400, 'DIGEST_INVALID')


async def test_index_and_manifest_list_with_known_children(client):
    child_digest, child = await push_image(client, 'org/img', 'amd64')
    for media_type, child_type in ((OCI_INDEX, OCI_MANIFEST),
                                   (DOCKER_LIST, OCI_MANIFEST)):
        index = json.dumps({
            'schemaVersion': 2, 'mediaType': media_type,
            'manifests': [{'mediaType': child_type, 'digest': child_digest,
                           'size': len(child),
                           'platform': {'architecture': 'amd64',
                                        'os': 'linux'}}]}).encode()
        response = await client.put('/v2/org/img/manifests/multi',
                                    data=index,
                                    headers={'Content-Type': media_type})
        assert response.status == 201, await response.text()
        response = await client.get('/v2/org/img/manifests/multi')
        assert response.headers['Content-Type'] == media_type
        assert await response.read() == index


async def test_index_with_unknown_child_is_manifest_blob_unknown(client):
    index = json.dumps({
        'schemaVersion': 2, 'mediaType': OCI_INDEX,
        'manifests': [{'mediaType': OCI_MANIFEST, 'size': 10,
                       'digest': digest_of(b'absent')}]}).encode()
    response = await client.put('/v2/org/img/manifests/multi', data=index,
                                headers={'Content-Type': OCI_INDEX})
    await assert_error(response, 400, 'MANIFEST_BLOB_UNKNOWN')


async def test_manifest_with_unknown_layer_is_manifest_blob_unknown(client):
    config = await push_blob(client, 'org/img', b'{}')
    body = image_manifest(config, 2, [(digest_of(b'missing'), 7)])
    response = await client.put('/v2/org/img/manifests/v1', data=body,
                                headers={'Content-Type': OCI_MANIFEST})
    await assert_error(response, 400, 'MANIFEST_BLOB_UNKNOWN')
    response = await client.get('/v2/org/img/manifests/v1')
    await assert_error(response, 404, 'MANIFEST_UNKNOWN')


async def test_manifest_with_wrong_layer_size_is_invalid(client):
    config = await push_blob(client, 'org/img', b'{}')
    layer = await push_blob(client, 'org/img', b'12345')
    body = image_manifest(config, 2, [(layer, 6)])
    response = await client.put('/v2/org/img/manifests/v1', data=body,
                                headers={'Content-Type': OCI_MANIFEST})
    await assert_error(response, 400, 'MANIFEST_INVALID')


@pytest.mark.parametrize('body', [
    b'not json', b'[]', b'{"schemaVersion": 1}',
    b'{"schemaVersion": 2, "layers": []}',
    b'{"schemaVersion": 2, "config": {"digest": "sha256:x", "size": 1,'
    b' "mediaType": "a"}, "layers": []}',
    b'{"schemaVersion": 2, "manifests": "nope"}',
    # A descriptor's digest that is no string (was a 500).
    b'{"schemaVersion": 2, "config": {"digest": 5, "size": 1,'
    b' "mediaType": "a"}, "layers": []}',
    b'{"schemaVersion": 2, "manifests": [], "subject": {"digest": [],'
    b' "size": 1, "mediaType": "a"}}',
    # Not JSON as RFC 8259 and clients have it (json.loads took them).
    '{"schemaVersion": 2, "manifests": []}'.encode('utf-16'),
    b'{"schemaVersion": 2, "manifests": [], "annotations": {"a": NaN}}',
    b'\xff\xfe',
])
async def test_malformed_manifest_is_400_manifest_invalid(client, body):
    response = await client.put('/v2/org/img/manifests/v1', data=body,
                                headers={'Content-Type': OCI_MANIFEST})
    await assert_error(response, 400, 'MANIFEST_INVALID')


async def test_content_type_disagreeing_with_media_type_is_invalid(client):
    config = await push_blob(client, 'org/img', b'{}')
    body = image_manifest(config, 2, [])   # says OCI manifest
    response = await client.put('/v2/org/img/manifests/v1', data=body,
                                headers={'Content-Type': DOCKER_MANIFEST})
    await assert_error(response, 400, 'MANIFEST_INVALID')


async def test_unsupported_manifest_type_is_invalid(client):
    body = json.dumps({'schemaVersion': 1, 'name': 'org/img'}).encode()
    response = await client.put(
        '/v2/org/img/manifests/v1', data=body, headers={
            'Content-Type':
                'application/vnd.docker.distribution.manifest.v1+prettyjws'})
    await assert_error(response, 400, 'MANIFEST_INVALID')


async def test_manifest_body_is_capped(client):
    response = await client.put('/v2/org/img/manifests/v1',
                                data=b' ' * (4 * 1024 * 1024 + 1),
                                headers={'Content-Type': OCI_MANIFEST})
    await assert_error(response, 413, 'SIZE_INVALID')


async def test_unknown_manifest_is_404_manifest_unknown(client):
    for reference in ('nope', digest_of(b'nope')):
        response = await client.get('/v2/org/img/manifests/%s' % reference)
        await assert_error(response, 404, 'MANIFEST_UNKNOWN')


async def test_invalid_tag_in_put_is_400(client):
    response = await client.put('/v2/org/img/manifests/-bad', data=b'{}',
                                headers={'Content-Type': OCI_MANIFEST})
    await assert_error(response, 400, 'MANIFEST_INVALID')


async def test_retagging_moves_the_tag(client):
    first, _ = await push_image(client, 'org/img', 'latest', layer=b'one')
    second, _ = await push_image(client, 'org/img', 'latest', layer=b'two')
    response = await client.get('/v2/org/img/manifests/latest')
    assert response.headers['Docker-Content-Digest'] == second
    # The old manifest stays reachable by digest.
    response = await client.get('/v2/org/img/manifests/%s' % first)
    assert response.status == 200


async def test_manifest_may_reference_blobs_of_its_namespace(client):
    """Layers pushed to another repository of the namespace are linked."""
    digest, body = await push_image(client, 'org/one', 'v1')
    response = await client.put('/v2/org/two/manifests/v1', data=body,
                                headers={'Content-Type': OCI_MANIFEST})
    assert response.status == 201
    layers = json.loads(body)['layers']
    response = await client.get('/v2/org/two/blobs/%s'
                                % layers[0]['digest'])
    assert response.status == 200
