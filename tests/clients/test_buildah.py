"""buildah builds an image, pushes it to the registry and pulls it back.

buildah gets ``--tls-verify=false`` because the test server speaks plain
HTTP; its storage is vfs under the test's temp dir (see tools.py).
"""

import json

import pytest

from tests import images
from tests.clients.tools import registry_get
from tests.clients.tools import require_tools

DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip'


@pytest.fixture
def buildah(containers):
    require_tools('buildah')
    return containers


def _build(tools, tmp_path, content):
    """``buildah from scratch`` + copy + commit; returns the image ID."""
    source = tmp_path / 'hello.txt'
    source.write_bytes(content)
    container = tools.buildah('from', 'scratch').stdout.strip()
    tools.buildah('copy', container, source, '/hello.txt')
    tools.buildah('config', '--label', 'built.by=zuul-registry-tests',
                  container)
    image_id = tools.buildah('commit', '--quiet', container,
                             'localhost/built:1').stdout.strip()
    tools.buildah('rm', container)
    return 'sha256:' + image_id


def _read_files_from_image(tools, reference, paths):
    """{path: content} of files in a local image, via buildah mount."""
    container = tools.buildah('from', '--pull-never', reference).stdout.strip()
    mountpoint = tools.buildah('mount', container).stdout.strip()
    try:
        contents = {}
        for path in paths:
            with open('%s/%s' % (mountpoint, path.lstrip('/')), 'rb') as f:
                contents[path] = f.read()
        return contents
    finally:
        tools.buildah('umount', container)
        tools.buildah('rm', container)


@pytest.mark.parametrize('push_format,manifest_type,layer_type', [
    ('oci', images.OCI_MANIFEST, images.OCI_LAYER_GZIP),
    ('v2s2', images.DOCKER_MANIFEST, DOCKER_LAYER),
], ids=['oci', 'docker-v2s2'])
def test_buildah_push_then_pull_gives_back_the_built_image(
        buildah, registry, tmp_path, push_format, manifest_type, layer_type):
    content = b'built by buildah, pushed as %s\n' % push_format.encode()
    built_id = _build(buildah, tmp_path, content)
    reference = 'docker://%s/built/image:1' % registry.host_port
    buildah.buildah('push', '--tls-verify=false', '--format', push_format,
                    'localhost/built:1', reference)

    status, headers, body = registry_get(
        '%s/v2/built/image/manifests/1' % registry.url)
    assert status == 200
    manifest = json.loads(body)
    assert headers['Content-Type'] == manifest_type
    assert headers['Docker-Content-Digest'] == images.sha256_digest(body)
    assert [layer['mediaType'] for layer in manifest['layers']] == \
        [layer_type]
    pushed_config = manifest['config']['digest']
    if push_format == 'oci':
        # buildah stores OCI configs: pushed as they are, same image ID.
        assert pushed_config == built_id

    # Forget everything local, then pull from the registry alone.
    buildah.buildah('rmi', '--all', '--force')
    assert buildah.buildah('images', '--quiet').stdout.strip() == ''
    pulled_id = buildah.buildah('pull', '--quiet', '--tls-verify=false',
                                reference).stdout.strip()
    assert 'sha256:' + pulled_id == pushed_config
    assert _read_files_from_image(buildah, reference, ['hello.txt']) == \
        {'hello.txt': content}


def test_buildah_pull_of_oci_layout_pushed_by_buildah(
        buildah, registry, oci_image):
    """An image buildah did not build: from an OCI layout, through the
    registry, into buildah's storage with every file intact."""
    image = oci_image.image
    reference = 'docker://%s/layout/image:v1' % registry.host_port
    local_id = buildah.buildah('pull', '--quiet',
                               oci_image.ref).stdout.strip()
    buildah.buildah('push', '--tls-verify=false', local_id, reference)
    buildah.buildah('rmi', '--all', '--force')

    pulled_id = buildah.buildah('pull', '--quiet', '--tls-verify=false',
                                reference).stdout.strip()
    assert 'sha256:' + pulled_id == image.config.digest
    expected = {}
    for layer in image.layers:
        expected.update(layer.files)
    assert _read_files_from_image(buildah, reference, expected) == expected
