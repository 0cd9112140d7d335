"""containerd pulls through a hosts.toml mirror with override_path.

The mirror is ``http://HOST/v2/docker.io`` with ``override_path = true``,
so containerd asks for ``/v2/docker.io/library/x/manifests/...?ns=docker.io``:
the namespace in the path, and ``ns`` (which the registry ignores) on
every request.  The upstream server in hosts.toml is a closed loopback
port, so a pull can only succeed through the mirror.

containerd runs as a child of the test (tests/clients/containerd.py);
it needs root.
"""

import http.client
import json
import os

import pytest

from tests import images
from tests.clients.containerd import SNAPSHOTTER, Containerd
from tests.clients.tools import require_tools
from tests.server_process import free_port


def write_mirror_hosts_toml(hosts_dir, upstream, mirror_url):
    """``upstream`` is pulled through ``mirror_url`` only (override_path)."""
    directory = os.path.join(hosts_dir, upstream)
    os.makedirs(directory, exist_ok=True)
    # Nothing listens on the server port: no fallback past the mirror.
    server = 'http://127.0.0.1:%d' % free_port()
    with open(os.path.join(directory, 'hosts.toml'), 'w') as f:
        f.write('server = %s\n\n[host.%s]\n  capabilities = %s\n'
                '  override_path = true\n' % (
                    json.dumps(server), json.dumps(mirror_url),
                    json.dumps(['pull', 'resolve'])))
    return hosts_dir


@pytest.fixture
def containerd(tmp_path):
    require_tools('containerd', 'ctr')
    if os.geteuid() != 0:
        pytest.skip('containerd needs root')
    with Containerd(tmp_path / 'containerd') as daemon:
        yield daemon


def push_image(server, repository, tag, image):
    conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=30)
    try:
        for blob in image.blobs:
            conn.request('POST', '/v2/%s/blobs/uploads/?digest=%s'
                         % (repository, blob.digest), body=blob.data)
            response = conn.getresponse()
            assert response.status == 201, response.read()
            response.read()
        conn.request('PUT', '/v2/%s/manifests/%s' % (repository, tag),
                     body=image.manifest.data,
                     headers={'Content-Type': image.manifest.media_type})
        response = conn.getresponse()
        assert response.status == 201, response.read()
        response.read()
    finally:
        conn.close()


def test_ctr_pulls_through_an_override_path_mirror_sending_ns(
        containerd, namespaced_registry, tmp_path):
    registry = namespaced_registry
    image = images.make_image([{'hello': b'hello from containerd\n'}])
    push_image(registry, 'docker.io/library/zr-hello', 'latest', image)
    hosts_dir = write_mirror_hosts_toml(tmp_path / 'certs.d', 'docker.io',
                                        '%s/v2/docker.io' % registry.url)
    offset = registry.log_offset()

    containerd.ctr('images', 'pull', '--hosts-dir', hosts_dir,
                   '--snapshotter', SNAPSHOTTER, '--platform', 'linux/amd64',
                   'docker.io/library/zr-hello:latest')

    assert containerd.image_digests() == {
        'docker.io/library/zr-hello:latest': image.digest}
    registry.wait_for_log_lines(offset, *(
        ['/v2/docker.io/library/zr-hello/manifests/latest?ns=docker.io'] +
        ['/v2/docker.io/library/zr-hello/blobs/%s?ns=docker.io' % blob.digest
         for blob in image.blobs]))
