"""Namespaces over HTTP: isolation and the default namespace rule."""

import json

from tests.api.helpers import OCI_MANIFEST, assert_error, push_image


async def test_same_name_in_two_namespaces_is_two_images(make_client):
    client = await make_client(namespaced=True)
    quay, _ = await push_image(client, 'quay.io/org/img', 'v1', layer=b'q')
    docker, _ = await push_image(client, 'docker.io/org/img', 'v1',
                                 layer=b'd')
    assert quay != docker
    for name, digest in (('quay.io/org/img', quay),
                         ('docker.io/org/img', docker)):
        response = await client.get('/v2/%s/manifests/v1' % name)
        assert response.headers['Docker-Content-Digest'] == digest


async def test_blobs_do_not_cross_namespaces(make_client):
    client = await make_client(namespaced=True)
    digest, body = await push_image(client, 'quay.io/org/img', 'v1')
    layer = json.loads(body)['layers'][0]['digest']
    response = await client.get('/v2/docker.io/org/img/blobs/%s' % layer)
    await assert_error(response, 404, 'BLOB_UNKNOWN')
    # Nor can a manifest in one namespace claim the other's blobs.
    response = await client.put('/v2/docker.io/org/img/manifests/v1',
                                data=body,
                                headers={'Content-Type': OCI_MANIFEST})
    await assert_error(response, 400, 'MANIFEST_BLOB_UNKNOWN')


async def test_bare_name_belongs_to_the_default_namespace(make_client):
    """docker's mirror form and podman's namespaced form meet."""
    client = await make_client(namespaced=True)
    digest, body = await push_image(client, 'library/alpine', 'latest')
    response = await client.get('/v2/docker.io/library/alpine/manifests/'
                                'latest')
    assert response.status == 200
    assert await response.read() == body
    response = await client.get('/v2/quay.io/library/alpine/manifests/'
                                'latest')
    await assert_error(response, 404, 'MANIFEST_UNKNOWN')


async def test_configured_default_namespace(make_client):
    client = await make_client(namespaced=True,
                               default_namespace='registry.example.com')
    await push_image(client, 'org/img', 'v1')
    response = await client.get('/v2/registry.example.com/org/img/'
                                'manifests/v1')
    assert response.status == 200


async def test_namespace_with_port_and_localhost(make_client):
    client = await make_client(namespaced=True)
    for name in ('localhost/org/img', 'localhost:5000/org/img',
                 'registry.example.com:5000/img'):
        await push_image(client, name, 'v1')
        response = await client.get('/v2/%s/tags/list' % name)
        assert (await response.json())['tags'] == ['v1']


async def test_invalid_namespace_is_name_invalid(make_client):
    client = await make_client(namespaced=True)
    for name in ('bad_host.io/img', 'Quay.io/img', 'quay.io:port/img'):
        response = await client.get('/v2/%s/tags/list' % name)
        await assert_error(response, 400, 'NAME_INVALID')


async def test_without_namespaces_host_is_part_of_the_name(client):
    await push_image(client, 'docker.io/library/alpine', 'v1')
    response = await client.get('/v2/library/alpine/manifests/v1')
    await assert_error(response, 404, 'MANIFEST_UNKNOWN')
