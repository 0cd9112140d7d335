"""podman pulls docker.io images through a registries.conf mirror.

The machine has no network, so ``podman pull docker.io/...`` can only
succeed through the mirror; still, each test checks that our server logged
the manifest request and that podman stored the image whose config digest
and manifest digest we pushed (an image's ID is its config digest).

The mirror entry carries ``insecure = true`` because the test server speaks
plain HTTP; podman gets no ``--tls-verify=false`` here, so the registries.conf
entry alone has to be enough, as it is on a CI node.
"""

import pytest

from tests import images
from tests.clients.tools import Layout
from tests.clients.tools import require_tools

NO_TLS_DEST = '--dest-tls-verify=false'


@pytest.fixture
def podman(containers):
    require_tools('podman', 'skopeo')
    return containers


def _push(tools, layout, reference):
    tools.skopeo('copy', NO_TLS_DEST, layout.ref, 'docker://' + reference)


def _requested(log, path):
    """Whether the log has a GET request line for ``path``."""
    return any(path in line and 'GET' in line for line in log.splitlines())


def _wait_for_requests(server, since, *paths):
    """The log since offset ``since``, once it shows GETs of all paths."""
    return server.wait_for_log(
        lambda log: all(_requested(log, path) for path in paths),
        since=since)


def _image_id_and_digest(tools, reference):
    result = tools.podman('image', 'inspect', '--format',
                          '{{.Id}} {{.Digest}}', reference)
    image_id, digest = result.stdout.split()
    return 'sha256:' + image_id, digest


def test_podman_pull_through_namespaced_mirror_comes_from_registry(
        podman, namespaced_registry, oci_image):
    server = namespaced_registry
    image = oci_image.image
    _push(podman, oci_image, '%s/docker.io/test/image:tag' % server.host_port)
    podman.write_mirror_conf('docker.io', server.host_port + '/docker.io')

    mark = server.log_offset()
    podman.podman('pull', 'docker.io/test/image:tag')

    _wait_for_requests(
        server, mark, '/v2/docker.io/test/image/manifests/tag',
        '/v2/docker.io/test/image/blobs/%s' % image.layers[0].blob.digest)
    assert _image_id_and_digest(podman, 'docker.io/test/image:tag') == \
        (image.config.digest, image.digest)


def test_podman_pull_through_bare_mirror_uses_default_namespace(
        podman, namespaced_registry, oci_image, tmp_path):
    server = namespaced_registry
    image = oci_image.image
    # Pushed bare: the first component "test" has no '.' or ':', so the
    # namespaced server files it under its default namespace, docker.io.
    _push(podman, oci_image, '%s/test/image:bare' % server.host_port)
    assert podman.inspect_raw(
        'docker://%s/docker.io/test/image:bare' % server.host_port) == \
        image.manifest.data
    # ... and the other way round: pushed with the namespace, seen bare.
    other_path = tmp_path / 'other-image'
    other = Layout(other_path, 'v1', images.build_layout(
        other_path, 'v1', label='second image'))
    _push(podman, other, '%s/docker.io/test/image:namespaced'
          % server.host_port)

    # The mirror has no namespace in its location: docker.io/test/image
    # becomes HOST/test/image.
    podman.write_mirror_conf('docker.io', server.host_port)
    mark = server.log_offset()
    podman.podman('pull', 'docker.io/test/image:bare')
    podman.podman('pull', 'docker.io/test/image:namespaced')

    log = _wait_for_requests(server, mark, '/v2/test/image/manifests/bare',
                             '/v2/test/image/manifests/namespaced')
    assert not _requested(log, '/v2/docker.io/'), log
    assert _image_id_and_digest(podman, 'docker.io/test/image:bare') == \
        (image.config.digest, image.digest)
    assert _image_id_and_digest(podman, 'docker.io/test/image:namespaced') \
        == (other.image.config.digest, other.image.digest)
