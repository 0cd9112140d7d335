"""Every route: unsupported methods are 405 UNSUPPORTED, unknown query
parameters are ignored (containerd sends ?ns=<upstream> to a mirror)."""

import json

import pytest

from zuul_registry.api import routes
from tests.api.helpers import (OCI_MANIFEST, assert_error, digest_of,
                               push_image)

METHODS = ('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS')
DIGEST = digest_of(b'x')
UPLOAD_ID = '00000000-0000-4000-8000-000000000000'


def concrete(path):
    return (path.replace('{name:.+}', 'org/img')
            .replace('{digest}', DIGEST)
            .replace('{reference}', 'v1')
            .replace('{upload_id}', UPLOAD_ID))


def unsupported():
    for path, methods in routes.ROUTES:
        allowed = set(methods) | ({'HEAD'} if 'GET' in methods else set())
        for method in METHODS:
            if method not in allowed:
                yield concrete(path), method, allowed


@pytest.mark.parametrize('path,method,allowed', list(unsupported()))
async def test_unsupported_method_is_405_unsupported(client, path, method,
                                                     allowed):
    response = await client.request(method, path)
    assert response.status == 405
    assert set(response.headers['Allow'].split(', ')) == allowed
    if method != 'HEAD':
        await assert_error(response, 405, 'UNSUPPORTED')


@pytest.mark.parametrize('path', ['/v2/', '/v2/_catalog',
                                  '/v2/org/img/tags/list',
                                  '/v2/org/img/referrers/%s' % DIGEST])
async def test_head_is_answered_wherever_get_is(client, path):
    await push_image(client, 'org/img', 'v1')
    get = await client.get(path)
    head = await client.head(path)
    assert head.status == get.status == 200
    assert await head.read() == b''


async def test_unknown_path_is_404_with_an_error_body(client):
    for path in ('/v3/', '/v2/org/img/unknown', '/v2/org/img'):
        response = await client.get(path)
        await assert_error(response, 404, 'UNSUPPORTED')


def with_ns(url):
    return url + ('&' if '?' in url else '?') + 'ns=docker.io&x-junk=1'


async def test_unknown_query_parameters_are_ignored_everywhere(client):
    """A whole push and pull, each request carrying ?ns= like containerd's."""
    name = 'library/alpine'
    config, layer = b'{"os": "linux"}', b'layer data' * 100
    digests = {}
    for data in (config, layer):
        response = await client.post(with_ns('/v2/%s/blobs/uploads/'
                                             % name))
        assert response.status == 202
        location = response.headers['Location']
        response = await client.patch(with_ns(location), data=data[:5])
        assert response.status == 202
        response = await client.get(with_ns(location))
        assert response.status == 204
        digests[data] = digest_of(data)
        response = await client.put(
            with_ns('%s?digest=%s' % (location, digests[data])),
            data=data[5:])
        assert response.status == 201, await response.text()
    manifest = json.dumps({
        'schemaVersion': 2, 'mediaType': OCI_MANIFEST,
        'config': {'mediaType': 'application/vnd.oci.image.config.v1+json',
                   'digest': digests[config], 'size': len(config)},
        'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1.tar',
                    'digest': digests[layer], 'size': len(layer)}],
    }).encode()
    response = await client.put(with_ns('/v2/%s/manifests/latest' % name),
                                data=manifest,
                                headers={'Content-Type': OCI_MANIFEST})
    assert response.status == 201
    for method in ('HEAD', 'GET'):
        response = await client.request(
            method, with_ns('/v2/%s/manifests/latest' % name))
        assert response.status == 200
        assert response.headers['Docker-Content-Digest'] == \
            digest_of(manifest)
        response = await client.request(
            method, with_ns('/v2/%s/blobs/%s' % (name, digests[layer])))
        assert response.status == 200
    response = await client.get(with_ns('/v2/%s/blobs/%s'
                                        % (name, digests[layer])))
    assert await response.read() == layer
    for path in ('/v2/', '/v2/_catalog', '/v2/%s/tags/list' % name,
                 '/v2/%s/referrers/%s' % (name, digest_of(manifest))):
        response = await client.get(with_ns(path))
        assert response.status == 200, path
    response = await client.post(with_ns(
        '/v2/other/blobs/uploads/?mount=%s&from=%s' % (digests[layer],
                                                       name)))
    assert response.status == 201
    response = await client.delete(with_ns('/v2/%s/manifests/latest'
                                           % name))
    assert response.status == 202
    response = await client.delete(with_ns('/v2/%s/blobs/%s'
                                           % (name, digests[layer])))
    assert response.status == 202
