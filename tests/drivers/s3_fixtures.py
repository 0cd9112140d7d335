"""S3 drivers for the tests, on the shared real S3 servers (s3_server):
a new bucket per test, so that paths keep their full length (S3 keys are
at most 1024 bytes: a prefix would shorten them).  The servers start
on first use."""

import importlib

KINDS = ('ceph', 'seaweedfs')
# What the driver's probes find on each server (test_s3 checks it), given
# to the drivers of other tests to spare them the probes' requests.
PROBED = {
    'ceph': dict(conditional_put=True, empty_prefixes=False),
    # SeaweedFS lists emptied directories until it removes them.
    'seaweedfs': dict(conditional_put=True, empty_prefixes=True),
}


def s3_server():
    return importlib.import_module('tests.drivers.s3_server')


def client_options(server):
    return dict(endpoint=server.endpoint, region=server.region,
                access_key=server.access_key, secret_key=server.secret_key)


def make_driver(kind, bucket=None, **kwargs):
    """A driver on a new (or the given) bucket of the `kind` server, quick
    to give up."""
    from zuul_registry.drivers.s3 import S3Driver
    server = s3_server().server(kind)
    options = dict(client_options(server), retries=2, **PROBED[kind])
    options.update(kwargs)
    return S3Driver(bucket or s3_server().new_bucket(kind), **options)


def incomplete_uploads(server, bucket):
    """The keys of the bucket's multipart uploads neither completed nor
    aborted: what a failed or refused write must not leave behind."""
    client = server.client()
    try:
        uploads = client.list_multipart_uploads(Bucket=bucket).get(
            'Uploads', [])
        return sorted(upload['Key'] for upload in uploads)
    finally:
        client.close()


def contract_driver(kind, **options):
    """The contract suite's factory for the `kind` server."""
    def make(tmp_path):
        driver = make_driver(kind, **options)
        server = s3_server().server(kind)
        return driver, lambda: incomplete_uploads(server, driver.bucket)
    return make
