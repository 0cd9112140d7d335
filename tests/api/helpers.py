"""Helpers for the HTTP tests: configs, pushes, error checks."""

import base64
import hashlib
import json

from zuul_registry import config as config_module

OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'


def digest_of(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def basic_auth(name, password):
    """An Authorization header value for Basic credentials."""
    return 'Basic ' + base64.b64encode(
        ('%s:%s' % (name, password)).encode()).decode()


def make_config(root, **kwargs):
    return config_module.Config(
        storage=config_module.StorageConfig(driver='filesystem',
                                            root=str(root)),
        **kwargs)


async def assert_error(response, status, code):
    assert response.status == status, await response.text()
    assert response.content_type == 'application/json'
    body = await response.json()
    assert body['errors'][0]['code'] == code, body
    assert 'message' in body['errors'][0]
    return body


async def push_blob(client, name, data, *, headers=None):
    digest = digest_of(data)
    response = await client.post('/v2/%s/blobs/uploads/?digest=%s'
                                 % (name, digest), data=data,
                                 headers=headers)
    assert response.status == 201, await response.text()
    return digest


def image_manifest(config_digest, config_size, layers, *,
                   media_type=OCI_MANIFEST):
    """A manifest body; layers is a list of (digest, size)."""
    layer_type = ('application/vnd.oci.image.layer.v1.tar+gzip'
                  if media_type == OCI_MANIFEST else
                  'application/vnd.docker.image.rootfs.diff.tar.gzip')
    config_type = ('application/vnd.oci.image.config.v1+json'
                   if media_type == OCI_MANIFEST else
                   'application/vnd.docker.container.image.v1+json')
    return json.dumps({
        'schemaVersion': 2,
        'mediaType': media_type,
        'config': {'mediaType': config_type, 'digest': config_digest,
                   'size': config_size},
        'layers': [{'mediaType': layer_type, 'digest': d, 'size': s}
                   for d, s in layers],
    }).encode()


async def push_image(client, name, tag, *, layer=b'layer-bytes',
                     media_type=OCI_MANIFEST, headers=None):
    """Push config, one layer and a manifest; return the manifest digest."""
    config = json.dumps({'architecture': 'amd64', 'os': 'linux',
                         'layer': layer.decode('latin1')}).encode()
    config_digest = await push_blob(client, name, config, headers=headers)
    layer_digest = await push_blob(client, name, layer, headers=headers)
    body = image_manifest(config_digest, len(config),
                          [(layer_digest, len(layer))],
                          media_type=media_type)
    response = await client.put('/v2/%s/manifests/%s' % (name, tag),
                                data=body,
                                headers={'Content-Type': media_type,
                                         **(headers or {})})
    assert response.status == 201, await response.text()
    return digest_of(body), body
