"""Artifacts: any artifactType, the empty config, layers of any type."""

import json

from tests.api.helpers import (OCI_INDEX, OCI_MANIFEST, assert_error,
                               digest_of, push_blob)

EMPTY = 'application/vnd.oci.empty.v1+json'
EMPTY_DIGEST = digest_of(b'{}')


def artifact_manifest(layers, *, artifact_type='application/vnd.example+x',
                      annotations=None):
    doc = {
        'schemaVersion': 2,
        'mediaType': OCI_MANIFEST,
        'artifactType': artifact_type,
        'config': {'mediaType': EMPTY, 'digest': EMPTY_DIGEST, 'size': 2,
                   'data': 'e30='},
        'layers': layers,
    }
    if annotations:
        doc['annotations'] = annotations
    # Unusual spacing: the registry must keep the bytes as they are.
    return json.dumps(doc, indent=3, sort_keys=True).encode()


async def put(client, name, reference, body, media_type=OCI_MANIFEST):
    return await client.put('/v2/%s/manifests/%s' % (name, reference),
                            data=body, headers={'Content-Type': media_type})


async def test_artifact_with_any_layer_types_is_served_unchanged(client):
    await push_blob(client, 'org/art', b'{}')
    layers = []
    for media_type, data in (('application/vnd.example.sbom+json', b'{"a":1}'),
                             ('text/plain', b'hello'),
                             ('application/octet-stream', b'\0\1\2'),
                             (EMPTY, b'{}')):
        digest = await push_blob(client, 'org/art', data)
        layers.append({'mediaType': media_type, 'digest': digest,
                       'size': len(data)})
    body = artifact_manifest(layers, annotations={'k': 'v'})
    response = await put(client, 'org/art', 'v1', body)
    assert response.status == 201, await response.text()
    for reference in ('v1', digest_of(body)):
        response = await client.get('/v2/org/art/manifests/%s' % reference,
                                    headers={'Accept': OCI_MANIFEST})
        assert response.status == 200
        assert response.headers['Content-Type'] == OCI_MANIFEST
        assert response.headers['Docker-Content-Digest'] == digest_of(body)
        assert await response.read() == body
    for layer in layers:
        response = await client.get('/v2/org/art/blobs/%s' % layer['digest'])
        assert response.status == 200


async def test_artifact_without_layers_is_accepted(client):
    await push_blob(client, 'org/art', b'{}')
    body = artifact_manifest([])
    response = await put(client, 'org/art', 'empty', body)
    assert response.status == 201
    response = await client.get('/v2/org/art/manifests/empty')
    assert await response.read() == body


async def test_empty_config_need_not_be_pushed_first(client):
    """Its bytes are known ("{}"), so the registry stores them itself."""
    body = artifact_manifest([])
    response = await put(client, 'org/art', 'v1', body)
    assert response.status == 201, await response.text()
    response = await client.get('/v2/org/art/blobs/%s' % EMPTY_DIGEST)
    assert response.status == 200
    assert await response.read() == b'{}'


async def test_other_unknown_config_is_still_manifest_blob_unknown(client):
    doc = json.loads(artifact_manifest([]))
    doc['config'] = {'mediaType': 'application/vnd.example.config+json',
                     'digest': digest_of(b'{"x": 1}'), 'size': 8}
    response = await put(client, 'org/art', 'v1', json.dumps(doc).encode())
    await assert_error(response, 400, 'MANIFEST_BLOB_UNKNOWN')


async def test_index_with_artifact_type_is_served_unchanged(client):
    child = artifact_manifest([])
    response = await put(client, 'org/art', digest_of(child), child)
    assert response.status == 201
    index = json.dumps({
        'schemaVersion': 2, 'mediaType': OCI_INDEX,
        'artifactType': 'application/vnd.example.bundle',
        'manifests': [{'mediaType': OCI_MANIFEST, 'digest': digest_of(child),
                       'size': len(child),
                       'artifactType': 'application/vnd.example+x'}],
    }).encode()
    response = await put(client, 'org/art', 'bundle', index, OCI_INDEX)
    assert response.status == 201, await response.text()
    response = await client.get('/v2/org/art/manifests/bundle')
    assert response.headers['Content-Type'] == OCI_INDEX
    assert await response.read() == index


async def test_a_4_mib_manifest_is_accepted(client):
    body = artifact_manifest([], annotations={'pad': ''})
    padding = 4 * 1024 * 1024 - len(body)
    body = artifact_manifest([], annotations={'pad': 'x' * padding})
    assert len(body) == 4 * 1024 * 1024
    response = await put(client, 'org/art', 'big', body)
    assert response.status == 201, await response.text()
    response = await client.get('/v2/org/art/manifests/big')
    assert await response.read() == body
