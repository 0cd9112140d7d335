"""skopeo and docker pull from zuul-registry on S3 with `redirect:
true`: the registry answers each blob GET with a 307 to a presigned URL,
the client follows it to the S3 server (on another port: the registry's
token must not go along, S3 would refuse two kinds of authentication),
and the pulled image is the pushed one.  On both test S3 servers."""

import re

import pytest
import requests

from tests.clients import swift_cluster
from tests.clients.test_s3_cluster import skopeo_copy, storage_config
from tests.clients.test_skopeo import _assert_layout_holds
from tests.clients.test_swift_cluster import bearer, token
from tests.drivers import s3_fixtures, s3_server
from tests.server_process import ServerProcess

DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'


@pytest.fixture(params=s3_fixtures.KINDS)
def registry(request, tmp_path):
    s3 = s3_server.server(request.param)
    bucket = s3_server.new_bucket(request.param)
    storage = dict(storage_config(s3, bucket), redirect=True)
    server = ServerProcess(tmp_path / 'registry',
                           registry=swift_cluster.shared_config(storage))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def blob_gets(registry, repository):
    """(digest, status) of every blob GET in the registry's log."""
    return re.findall(r'"GET /v2/%s/blobs/(sha256:[0-9a-f]{64}) '
                      r'HTTP/1\.1" (\d+) ' % repository,
                      registry.log_text())


def assert_blobs_redirected(registry, repository, digests):
    """Every blob of `digests` was GET, and every blob GET answered with
    a redirect: no blob's bytes came from the registry."""
    gets = blob_gets(registry, repository)
    assert set(digests) <= {digest for digest, _ in gets}, gets
    assert {status for _, status in gets} == {'307'}, gets


def test_skopeo_follows_the_redirects_to_s3(skopeo, registry, oci_image,
                                            tmp_path):
    ref = 'docker://%s/redirect/image:v1' % registry.host_port
    skopeo_copy(skopeo, oci_image.ref, ref)
    out = tmp_path / 'pulled'
    skopeo_copy(skopeo, ref, 'oci:%s:pulled' % out)
    _assert_layout_holds(out, 'pulled', oci_image.image)
    image = oci_image.image
    assert_blobs_redirected(
        registry, 'redirect/image',
        [layer.blob.digest for layer in image.layers] + [
            image.config.digest])


def test_docker_follows_the_redirects_to_s3(docker_engines, docker_archive,
                                            registry):
    engine = docker_engines('docker').start()
    engine.login(registry.host_port, swift_cluster.USER,
                 swift_cluster.PASSWORD)
    [loaded] = engine.load(docker_archive)
    image_id = engine.image_id(loaded)
    reference = '%s/redirect/docker:v1' % registry.host_port
    engine.run('tag', loaded, reference)
    engine.run('push', reference)
    engine.run('rmi', reference, loaded)
    assert engine.image_id(reference) is None
    engine.run('pull', reference)
    assert engine.image_id(reference) == image_id
    # The config and both layers, as docker pushed them (it compresses
    # the layers again: their digests are not the archive's).
    response = requests.get(
        '%s/v2/redirect/docker/manifests/v1' % registry.url, timeout=30,
        headers=dict(bearer(token(registry.url,
                                  'repository:redirect/docker:pull')),
                     Accept=DOCKER_MANIFEST))
    assert response.status_code == 200, response.text
    pushed = response.json()
    assert_blobs_redirected(
        registry, 'redirect/docker',
        [pushed['config']['digest']] + [
            layer['digest'] for layer in pushed['layers']])
