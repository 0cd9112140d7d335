"""A push to zuul-registry on S3 while the S3 server goes away: the
client gets an error (not a hang, not a success), nothing of the blob
shows, and once the server is back the push is retried and succeeds.
S3 goes away before a chunk, while a chunk streams in (its multipart
upload begun: the abort cannot reach S3 either, so that upload stays,
private, until prune's leftover collection) and before the completion.

The S3 front of the session's shared server is stopped and started again
with its data kept (radosgw alone; SeaweedFS's whole `weed mini`): the
fixture starts it again whatever happens, for the tests after this one.
"""

import time

import pytest
import requests

from tests.clients import swift_cluster
from tests.clients.test_s3_cluster import PREFIX, blob_key, storage_config
from tests.clients.test_swift_cluster import bearer, digest_of, token
from tests.clients.test_swift_faults import patch, start_upload, stored_size
from tests.drivers import s3_fixtures, s3_server
from tests.server_process import ServerProcess

REPOSITORY = 'faults/blob'
MIB = 1024 ** 2


class Registry:
    def __init__(self, s3, bucket, server):
        self.s3 = s3
        self.bucket = bucket
        self.server = server
        self.url = server.url

    def blob_objects(self, digest):
        """The keys of the bucket named after the blob `digest` (an
        upload's chunks are named by their offset)."""
        client = self.s3.client()
        try:
            pages = client.get_paginator('list_objects_v2').paginate(
                Bucket=self.bucket)
            return [item['Key'] for page in pages
                    for item in page.get('Contents', [])
                    if digest.split(':')[1] in item['Key']]
        finally:
            client.close()


@pytest.fixture(params=s3_fixtures.KINDS)
def registry(request, tmp_path):
    s3 = s3_server.server(request.param)
    bucket = s3_server.new_bucket(request.param)
    config = swift_cluster.shared_config(storage_config(s3, bucket))
    server = ServerProcess(tmp_path / 'registry', registry=config).start()
    try:
        yield Registry(s3, bucket, server)
    finally:
        server.stop()
        if s3.pid is None:
            s3.start_s3()


def assert_storage_failure(response):
    """A JSON error answer, 5xx UNKNOWN, as Swift's outage test expects
    (a driver failure's detail is "internal error; see server log")."""
    assert response.status_code >= 500, response.text
    assert response.headers['Content-Type'].startswith('application/json')
    [error] = response.json()['errors']
    assert error['code'] == 'UNKNOWN', error
    assert 'Traceback' not in response.text


def assert_not_there(registry, headers, digest, *, stranded=0):
    """No blob, no link, no object named after it; no multipart upload
    left but the `stranded` ones of chunks whose abort found S3 away."""
    response = requests.head('%s/v2/%s/blobs/%s' % (
        registry.url, REPOSITORY, digest), headers=headers, timeout=30)
    assert response.status_code == 404
    assert registry.blob_objects(digest) == []
    uploads = s3_fixtures.incomplete_uploads(registry.s3, registry.bucket)
    assert len(uploads) == stranded, uploads
    # A chunk of part_size or more streams into a data object of its own
    # (s3_links), a smaller one into its place in the upload.
    assert all(key.startswith((PREFIX + '_default/_uploads/',
                               PREFIX + '.zr-data/'))
               for key in uploads), uploads


def push(url, headers, pieces):
    """A chunked push of `pieces`; the completion's answer."""
    location = start_upload(url, headers)
    offset = 0
    for piece in pieces:
        response = patch(url, location, headers, piece, offset)
        assert response.status_code == 202, response.text
        location = response.headers['Location']
        offset += len(piece)
    return requests.put(url + location, params={
        'digest': digest_of(b''.join(pieces))}, headers=headers, timeout=60)


def cut_off(registry, data):
    """Stream `data`, stopping the S3 front once the chunk's multipart
    upload has begun on the server.  Sent first: a part (8 MiB) and two
    MiB more, so that the registry holds a part whatever the size of the
    blocks it reads the body in."""
    half = 10 * MIB
    assert len(data) > half
    yield data[:half]
    deadline = time.monotonic() + 30
    while not s3_fixtures.incomplete_uploads(registry.s3, registry.bucket):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    registry.s3.stop_s3()
    yield data[half:]


def test_an_s3_outage_fails_the_push_then_a_retry_succeeds(registry):
    s3, url = registry.s3, registry.url
    headers = bearer(token(url, 'repository:%s:pull,push' % REPOSITORY))
    # The second chunk is a multipart upload of its own (over the driver's
    # 8 MiB parts), a data object behind a link; the completion links to
    # the large chunks' data and copies the small last one.
    pieces = [b'a' * (6 * MIB), b'b' * (17 * MIB), b'c' * 1000]
    data = b''.join(pieces)
    digest = digest_of(data)
    location = start_upload(url, headers)
    response = patch(url, location, headers, pieces[0], 0)
    assert response.status_code == 202, response.text
    location = response.headers['Location']
    offset = len(pieces[0])

    # S3 gone before the next chunk, then while it streams in.
    s3.stop_s3()
    started = time.monotonic()
    response = patch(url, location, headers, pieces[1], offset)
    failed_after = time.monotonic() - started
    assert_storage_failure(response)
    assert failed_after < 60    # an answer, not a hang (the timeout is 60)
    s3.start_s3()
    assert_not_there(registry, headers, digest)
    response = patch(url, location, headers, cut_off(registry, pieces[1]))
    assert_storage_failure(response)
    s3.start_s3()
    assert_not_there(registry, headers, digest, stranded=1)
    # The failed chunks left nothing: the upload goes on where it was.
    assert stored_size(url, location, headers) == offset
    for piece in pieces[1:]:
        response = patch(url, location, headers, piece, offset)
        assert response.status_code == 202, response.text
        location = response.headers['Location']
        offset += len(piece)

    # S3 gone before the completion.
    s3.stop_s3()
    response = requests.put(url + location, params={'digest': digest},
                            headers=headers, timeout=60)
    assert_storage_failure(response)
    s3.start_s3()
    assert_not_there(registry, headers, digest, stranded=1)

    # The client pushes again, from the start.
    response = push(url, headers, pieces)
    assert response.status_code == 201, response.text
    # The blob, and its link into the repository.
    assert sorted(registry.blob_objects(digest)) == [
        PREFIX + blob_key(digest), PREFIX + '_default/_repositories/%s/'
        '_layers/%s' % (REPOSITORY, digest.replace(':', '/'))]
    pulled = requests.get('%s/v2/%s/blobs/%s' % (url, REPOSITORY, digest),
                          headers=headers, timeout=60)
    assert pulled.status_code == 200
    assert pulled.content == data
