"""The S3 servers the S3 driver is tested on do what the driver needs.

Found on Ceph RGW 16.2.15 and SeaweedFS 4.48 with boto3 1.44; the tests
pin the differences, so that a new version that changes one shows up:

- PutObject with If-None-Match: * is honoured by both (412
  PreconditionFailed on an existing key).  Racing writers were tried by
  hand (30 rounds of 8 threads on one key): one winner every time, on
  both.
- If-None-Match: * on CopyObject and on CompleteMultipartUpload: SeaweedFS
  honours it; Ceph ignores it and overwrites.  So on Ceph an exclusive
  write can only be a PutObject.
- CompleteMultipartUpload answers with an empty ETag on Ceph (HEAD has
  the right "<md5>-N"); SeaweedFS answers with it.
- UploadPartCopy works on both, whole or with CopySourceRange.  Every
  part but the last must be 5 MiB or more (EntityTooSmall at completion,
  on both).  SeaweedFS's ETag for a copied 5 MiB part has the multipart
  form "<md5>-2" (it stores 4 MiB chunks): hand part ETags back as given,
  never compare them with an MD5.
- CreateBucket of a bucket one already owns: Ceph 200, SeaweedFS 409
  BucketAlreadyOwnedByYou.
- Keys "p" and "p/q" coexist on both, but SeaweedFS keeps keys in a
  directory tree: HEAD "r/" answers with the object "r".  Do not use keys
  that end in "/".
- A ranged GET of an empty object is 416 InvalidRange on both (as AWS).
- DeleteBucket of a non-empty bucket: Ceph 409 BucketNotEmpty, SeaweedFS
  deletes everything in it.
- ListObjectsV2: MaxKeys counts common prefixes together with keys.
- While the S3 front is down a client gets EndpointConnectionError; it
  comes back in about 0.15 s (radosgw) or 0.8 s (`weed mini` restarted on
  its directory), with the data.
"""

import os

import botocore.exceptions
import pytest

from tests.drivers import s3_server

MIB = 1 << 20
# What each server does with If-None-Match: * on CopyObject and on
# CompleteMultipartUpload (PutObject: refused on both).
EXCLUSIVE_COPY_AND_COMPLETE = {'ceph': False, 'seaweedfs': True}


@pytest.fixture(params=sorted(s3_server.KINDS))
def kind(request):
    return request.param


@pytest.fixture
def s3(kind):
    """A client of the shared `kind` server and a new bucket on it."""
    client = s3_server.server(kind).client()
    bucket = s3_server.new_bucket(kind)
    client.create_bucket(Bucket=bucket)
    return client, bucket


def _error_code(call, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(**kwargs)
    return raised.value.response['Error']['Code']


def _read(client, bucket, key, **kwargs):
    return client.get_object(Bucket=bucket, Key=key, **kwargs)['Body'].read()


def test_put_get_ranges_and_exclusive_put(s3):
    client, bucket = s3
    client.put_object(Bucket=bucket, Key='a/x', Body=b'hello')
    assert _read(client, bucket, 'a/x') == b'hello'
    assert _read(client, bucket, 'a/x', Range='bytes=1-3') == b'ell'
    assert _error_code(client.put_object, Bucket=bucket, Key='a/x',
                       Body=b'other', IfNoneMatch='*') == 'PreconditionFailed'
    client.put_object(Bucket=bucket, Key='a/y', Body=b'new', IfNoneMatch='*')
    assert _read(client, bucket, 'a/x') == b'hello'
    assert _read(client, bucket, 'a/y') == b'new'


def test_multipart_upload_of_part_copies(kind, s3):
    client, bucket = s3
    first = os.urandom(5 * MIB)
    client.put_object(Bucket=bucket, Key='first', Body=first)
    client.put_object(Bucket=bucket, Key='last', Body=b'tail')
    upload = client.create_multipart_upload(Bucket=bucket, Key='joined')
    parts = []
    for number, source in enumerate(('first', 'last'), start=1):
        copied = client.upload_part_copy(
            Bucket=bucket, Key='joined', UploadId=upload['UploadId'],
            PartNumber=number, CopySource={'Bucket': bucket, 'Key': source})
        parts.append({'PartNumber': number,
                      'ETag': copied['CopyPartResult']['ETag']})
    done = client.complete_multipart_upload(
        Bucket=bucket, Key='joined', UploadId=upload['UploadId'],
        MultipartUpload={'Parts': parts})
    assert (done['ETag'] == '') == (kind == 'ceph')
    assert client.head_object(Bucket=bucket, Key='joined')['ETag'] \
        .endswith('-2"')
    assert _read(client, bucket, 'joined') == first + b'tail'


def test_parts_under_5_mib_are_refused(s3):
    client, bucket = s3
    client.put_object(Bucket=bucket, Key='small', Body=b'small')
    upload = client.create_multipart_upload(Bucket=bucket, Key='joined')
    parts = []
    for number in (1, 2):
        copied = client.upload_part_copy(
            Bucket=bucket, Key='joined', UploadId=upload['UploadId'],
            PartNumber=number, CopySource={'Bucket': bucket, 'Key': 'small'})
        parts.append({'PartNumber': number,
                      'ETag': copied['CopyPartResult']['ETag']})
    assert _error_code(
        client.complete_multipart_upload, Bucket=bucket, Key='joined',
        UploadId=upload['UploadId'],
        MultipartUpload={'Parts': parts}) == 'EntityTooSmall'
    client.abort_multipart_upload(Bucket=bucket, Key='joined',
                                  UploadId=upload['UploadId'])


def test_if_none_match_on_copy_and_complete(kind, s3):
    client, bucket = s3
    client.put_object(Bucket=bucket, Key='target', Body=b'old')
    client.put_object(Bucket=bucket, Key='source', Body=b'new')
    upload = client.create_multipart_upload(Bucket=bucket, Key='target')
    etag = client.upload_part(Bucket=bucket, Key='target', PartNumber=1,
                              UploadId=upload['UploadId'], Body=b'new')['ETag']
    attempts = {
        'copy': lambda: client.copy_object(
            Bucket=bucket, Key='target', IfNoneMatch='*',
            CopySource={'Bucket': bucket, 'Key': 'source'}),
        'complete': lambda: client.complete_multipart_upload(
            Bucket=bucket, Key='target', UploadId=upload['UploadId'],
            IfNoneMatch='*', MultipartUpload={
                'Parts': [{'PartNumber': 1, 'ETag': etag}]}),
    }
    refused = {}
    for name, attempt in attempts.items():
        client.put_object(Bucket=bucket, Key='target', Body=b'old')
        try:
            attempt()
            refused[name] = False
        except botocore.exceptions.ClientError as error:
            assert error.response['Error']['Code'] == 'PreconditionFailed'
            refused[name] = True
        assert _read(client, bucket, 'target') == \
            (b'old' if refused[name] else b'new')
    expected = EXCLUSIVE_COPY_AND_COMPLETE[kind]
    assert refused == {'copy': expected, 'complete': expected}


def test_listing_with_delimiter_in_pages(s3):
    client, bucket = s3
    keys = ['l/%d' % i for i in range(5)] + ['l/d%d/f' % i for i in range(3)]
    for key in keys + ['other']:
        client.put_object(Bucket=bucket, Key=key, Body=b'x')
    found, prefixes, pages = [], [], 0
    request = dict(Bucket=bucket, Prefix='l/', Delimiter='/', MaxKeys=2)
    while True:
        page = client.list_objects_v2(**request)
        entries = page.get('Contents', []) + page.get('CommonPrefixes', [])
        assert 0 < len(entries) <= 2
        found += [item['Key'] for item in page.get('Contents', [])]
        prefixes += [item['Prefix'] for item in page.get('CommonPrefixes', [])]
        pages += 1
        if not page['IsTruncated']:
            break
        request['ContinuationToken'] = page['NextContinuationToken']
    assert found == keys[:5]
    assert prefixes == ['l/d0/', 'l/d1/', 'l/d2/']
    assert pages == 4


def test_s3_front_restart_keeps_the_data(s3, kind):
    client, bucket = s3
    server = s3_server.server(kind)
    client.put_object(Bucket=bucket, Key='kept', Body=b'kept')
    pid = server.pid
    server.stop_s3()
    try:
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            client.head_object(Bucket=bucket, Key='kept')
    finally:
        server.start_s3()
    assert server.pid != pid
    assert _read(client, bucket, 'kept') == b'kept'
