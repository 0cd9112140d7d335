"""skopeo pulls from zuul-registry on S3 with `redirect: true`: the
registry answers each layer GET with a 307 to a presigned URL, skopeo
follows it to the S3 server (on another port: the registry's token must
not go along, S3 would refuse two kinds of authentication), and the
pulled image is the pushed one.  On both test S3 servers."""

import re

import pytest

from tests.clients import swift_cluster
from tests.clients.test_s3_cluster import skopeo_copy, storage_config
from tests.clients.test_skopeo import _assert_layout_holds
from tests.drivers import s3_fixtures, s3_server
from tests.server_process import ServerProcess


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


def test_skopeo_follows_the_redirects_to_s3(skopeo, registry, oci_image,
                                            tmp_path):
    ref = 'docker://%s/redirect/image:v1' % registry.host_port
    skopeo_copy(skopeo, oci_image.ref, ref)
    out = tmp_path / 'pulled'
    skopeo_copy(skopeo, ref, 'oci:%s:pulled' % out)
    _assert_layout_holds(out, 'pulled', oci_image.image)
    log = registry.log_text()
    redirected = set(re.findall(
        r'"GET /v2/redirect/image/blobs/(sha256:[0-9a-f]{64}) HTTP/1\.1" '
        r'307 ', log))
    image = oci_image.image
    blobs = {layer.blob.digest for layer in image.layers}
    blobs.add(image.config.digest)
    assert blobs <= redirected, log
    # No blob GET got its bytes from the registry.
    assert not re.search(r'"GET /v2/redirect/image/blobs/\S+ HTTP/1\.1" '
                         r'200 ', log), log
