"""Three zuul-registry processes on one S3 bucket behave as one registry:
a chunked upload whose PATCHes go to each process in turn completes on
another one, skopeo pushes and pulls an image through a round-robin
haproxy in front of them, and prune on the bucket keeps every pushed
image.

On both test S3 servers (tests/drivers/s3_server), each module's cluster
on a bucket of its own, with the keys under a prefix as in
examples/s3.yaml: radosgw ignores If-None-Match on multipart completion
(the driver checks first), SeaweedFS lists emptied prefixes.
"""

import json
import os
import re
import subprocess
import sys

import pytest
import requests
import yaml

from tests.clients import swift_cluster
from tests.clients.test_skopeo import _assert_layout_holds
from tests.clients.test_swift_cluster import bearer, digest_of, token
from tests.drivers import s3_fixtures, s3_server
from tests.server_process import REPO_ROOT

PREFIX = 'cluster/'
MIB = 1024 ** 2
CREDS = '%s:%s' % (swift_cluster.USER, swift_cluster.PASSWORD)


class Cluster:
    def __init__(self, s3, bucket, servers, balancer):
        self.s3 = s3
        self.bucket = bucket
        self.servers = servers
        self.balancer = balancer

    def keys(self, under=''):
        """Every key of the bucket under PREFIX + `under`, with its size."""
        client = self.s3.client()
        try:
            pages = client.get_paginator('list_objects_v2').paginate(
                Bucket=self.bucket, Prefix=PREFIX + under)
            return {item['Key'][len(PREFIX):]: item['Size']
                    for page in pages for item in page.get('Contents', [])}
        finally:
            client.close()


def storage_config(s3, bucket):
    return {'driver': 's3', 'endpoint': s3.endpoint, 'region': s3.region,
            'bucket': bucket, 'prefix': PREFIX, 'access-key': s3.access_key,
            'secret-key': s3.secret_key}


@pytest.fixture(scope='module', params=s3_fixtures.KINDS)
def cluster(request, tmp_path_factory):
    s3 = s3_server.server(request.param)
    bucket = s3_server.new_bucket(request.param)
    directory = tmp_path_factory.mktemp('s3-cluster')
    servers = swift_cluster.start_servers(
        directory, 3, storage=storage_config(s3, bucket))
    balancer = swift_cluster.Balancer(directory / 'haproxy',
                                      [server.port for server in servers])
    try:
        balancer.start()
        yield Cluster(s3, bucket, servers, balancer)
    finally:
        balancer.stop()
        for server in servers:
            server.stop()


def blob_key(digest, area='_blobs'):
    algorithm, hexdigest = digest.split(':')
    return '_default/%s/%s/%s/%s' % (area, algorithm, hexdigest[:2],
                                     hexdigest)


def test_a_chunked_upload_alternating_between_processes_completes(cluster):
    servers = cluster.servers
    repository = 'cluster/blob'
    headers = bearer(token(servers[0].url,
                           'repository:%s:pull,push' % repository))
    # Chunks over and under S3's 5 MiB part minimum: completion copies the
    # large ones on the server and joins the small ones.
    sizes = [6 * MIB, 100 * 1024, 5 * MIB + 77, MIB + 5]
    data = os.urandom(sum(sizes))
    digest = digest_of(data)
    response = requests.post(servers[0].url + '/v2/%s/blobs/uploads/'
                             % repository, headers=headers, timeout=10)
    assert response.status_code == 202, response.text
    location = response.headers['Location']
    offset = 0
    for n, size in enumerate(sizes):
        server = servers[(n + 1) % 3]   # 1, 2, 0, 1: never the same twice
        response = requests.patch(
            server.url + location, data=data[offset:offset + size],
            timeout=60, headers=dict(headers, **{
                'Content-Range': '%d-%d' % (offset, offset + size - 1),
                'Content-Type': 'application/octet-stream'}))
        assert response.status_code == 202, response.text
        offset += size
        assert response.headers['Range'] == '0-%d' % (offset - 1)
        location = response.headers['Location']
        status = requests.get(servers[n % 3].url + location,
                              headers=headers, timeout=10)
        assert status.status_code == 204
        assert status.headers['Range'] == '0-%d' % (offset - 1)
    assert requests.head(servers[0].url + '/v2/%s/blobs/%s' % (
        repository, digest), headers=headers, timeout=10).status_code == 404
    # Completed by a process that took none of the last two chunks.
    response = requests.put(servers[2].url + location,
                            params={'digest': digest}, headers=headers,
                            timeout=60)
    assert response.status_code == 201, response.text
    for server in servers:
        pulled = requests.get(server.url + '/v2/%s/blobs/%s' % (
            repository, digest), headers=headers, timeout=60)
        assert pulled.status_code == 200
        assert pulled.headers['Docker-Content-Digest'] == digest
        assert pulled.content == data
        assert '/v2/%s/blobs/uploads/' % repository in server.log_text()
    # A range across the boundary of the first two chunks.
    start = 6 * MIB - 10
    ranged = requests.get(servers[1].url + '/v2/%s/blobs/%s' % (
        repository, digest), timeout=30, headers=dict(
            headers, Range='bytes=%d-%d' % (start, start + 19)))
    assert ranged.status_code == 206
    assert ranged.content == data[start:start + 20]
    # One object holds the blob; the upload left nothing behind.
    assert cluster.keys(blob_key(digest)) == {blob_key(digest): len(data)}
    assert [key for key in cluster.keys('_default/_uploads/')
            if location.split('/')[-1] in key] == []
    assert s3_fixtures.incomplete_uploads(cluster.s3, cluster.bucket) == []


def skopeo_copy(skopeo, src, dest):
    skopeo.skopeo('copy', '--src-tls-verify=false',
                  '--dest-tls-verify=false', '--src-creds', CREDS,
                  '--dest-creds', CREDS, src, dest)


def test_skopeo_pushes_and_pulls_through_the_balancer(
        skopeo, cluster, oci_image, tmp_path):
    ref = 'docker://%s/cluster/image:v1' % cluster.balancer.host_port
    skopeo_copy(skopeo, oci_image.ref, ref)
    out = tmp_path / 'pulled'
    skopeo_copy(skopeo, ref, 'oci:%s:pulled' % out)
    _assert_layout_holds(out, 'pulled', oci_image.image)
    # Every process took part.
    for server in cluster.servers:
        assert '/v2/cluster/image/' in server.log_text()


def prune_config(cluster, tmp_path):
    """The servers' config, manifests expiring after an hour."""
    config = cluster.servers[0].config()
    config['registry']['expiration'] = 3600
    path = tmp_path / 'prune.yaml'
    path.write_text(yaml.safe_dump(config))
    return str(path)


def run(command):
    result = subprocess.run(command, capture_output=True, text=True,
                            timeout=120, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_prune_keeps_every_pushed_image(skopeo, cluster, oci_image,
                                        tmp_path):
    image = oci_image.image
    balancer = cluster.balancer
    ref = 'docker://%s/cluster/pruned:v1' % balancer.host_port
    skopeo_copy(skopeo, oci_image.ref, ref)
    # A blob no manifest needs: what prune must take, and only that.
    repository = 'cluster/loose'
    headers = bearer(token(balancer.url,
                           'repository:%s:pull,push' % repository))
    loose = os.urandom(1000)
    loose_url = balancer.url + '/v2/%s/blobs/%s' % (repository,
                                                    digest_of(loose))
    response = requests.post(
        balancer.url + '/v2/%s/blobs/uploads/' % repository,
        params={'digest': digest_of(loose)}, data=loose, timeout=30,
        headers=dict(headers, **{'Content-Type': 'application/octet-stream'}))
    assert response.status_code == 201, response.text
    config = prune_config(cluster, tmp_path)

    def blobs_of_the_image_stay():
        # A pull would restore a quarantined blob: look at the bucket.
        blobs = cluster.keys('_default/_blobs/')
        for blob in (image.manifest,) + image.blobs:
            assert blobs.get(blob_key(blob.digest)) == len(blob.data)
        return blobs

    # The command keeps blobs younger than an upload's expiry (an hour):
    # here it only walks the bucket.
    summary = run([sys.executable, '-m', 'zuul_registry', '-c', config,
                   'prune'])
    kept = re.search(r' 0 manifests, 0 tags, .* blobs: (\d+) kept, '
                     r'0 quarantined', summary)
    assert kept and int(kept.group(1)) >= len(image.blobs) + 2, summary
    blobs_of_the_image_stay()
    # The same prune with no expiry or grace for blobs: the first run
    # quarantines the loose blob, the second destroys it.
    for objects in ('quarantined', 'purged'):
        summary = json.loads(run([
            sys.executable, '-m', 'tests.clients.prune_loop', config,
            str(tmp_path / 'stop'), '--once', '--grace', '0',
            '--upload-expiry', '0']))
        assert 'error' not in summary, summary['error']
        assert summary['objects'].get(objects, 0) >= 1, summary
        assert summary['objects'].get('manifests', 0) == 0, summary
        assert blob_key(digest_of(loose)) not in blobs_of_the_image_stay()
    assert cluster.keys(blob_key(digest_of(loose), '_quarantine')) == {}
    assert requests.head(loose_url, headers=headers,
                         timeout=10).status_code == 404
    out = tmp_path / 'pulled'
    skopeo_copy(skopeo, ref, 'oci:%s:pulled' % out)
    _assert_layout_holds(out, 'pulled', image)
