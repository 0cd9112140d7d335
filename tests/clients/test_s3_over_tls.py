"""skopeo pushes an image to zuul-registry, and pulls it back, with the
storage an S3 server over TLS that the registry trusts through the
storage's `ca` (a SeaweedFS with a CA of its own)."""

import pytest

from tests.clients import swift_cluster
from tests.clients.test_s3_cluster import skopeo_copy, storage_config
from tests.clients.test_skopeo import _assert_layout_holds
from tests.drivers import s3_server
from tests.drivers.s3_seaweedfs import SeaweedFS
from tests.server_process import ServerProcess


@pytest.fixture(scope='module')
def tls_s3():
    with SeaweedFS(tls=True) as server:
        yield server


def test_skopeo_pushes_and_pulls_through_a_registry_on_it(
        skopeo, oci_image, tls_s3, tmp_path):
    assert tls_s3.endpoint.startswith('https://')
    storage = dict(storage_config(tls_s3, s3_server.new_bucket()),
                   ca=tls_s3.ca)
    server = ServerProcess(tmp_path / 'registry',
                           registry=swift_cluster.shared_config(storage))
    server.start()
    try:
        ref = 'docker://%s/tls/image:v1' % server.host_port
        skopeo_copy(skopeo, oci_image.ref, ref)
        out = tmp_path / 'pulled'
        skopeo_copy(skopeo, ref, 'oci:%s:pulled' % out)
        _assert_layout_holds(out, 'pulled', oci_image.image)
    finally:
        server.stop()
