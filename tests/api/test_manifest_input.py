"""Manifests the spec calls invalid get 400, never a 500 or a pass."""

import json

from tests.api.helpers import OCI_MANIFEST, assert_error, digest_of, \
    image_manifest, push_blob

LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip'
FOREIGN = 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip'


async def put(client, body):
    return await client.put('/v2/org/img/manifests/v1', data=body,
                            headers={'Content-Type': OCI_MANIFEST})


async def test_deeply_nested_json_is_manifest_invalid(client):
    for body in (b'[' * 100000, b'{"a":' * 100000):
        await assert_error(await put(client, body), 400, 'MANIFEST_INVALID')


async def test_urls_do_not_excuse_a_distributable_blob_never_pushed(client):
    layer = await push_blob(client, 'org/img', b'layer')
    config = b'{"never": "pushed"}'
    doc = json.loads(image_manifest(digest_of(config), len(config),
                                    [(layer, 5)]))
    doc['config']['urls'] = ['https://example.com/config']
    response = await put(client, json.dumps(doc).encode())
    await assert_error(response, 400, 'MANIFEST_BLOB_UNKNOWN')


async def test_a_foreign_layer_need_not_be_pushed(client):
    config = await push_blob(client, 'org/img', b'{}')
    foreign = b'windows base layer'
    doc = json.loads(image_manifest(config, 2, []))
    doc['layers'] = [{'mediaType': FOREIGN, 'digest': digest_of(foreign),
                      'size': len(foreign),
                      'urls': ['https://example.com/layer']}]
    response = await put(client, json.dumps(doc).encode())
    assert response.status == 201, await response.text()
