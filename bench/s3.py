"""S3 storage next to direct S3: push and pull of one large blob.

    python -m bench.s3 [--kind ceph|seaweedfs] [--blob-mib 256] [--repeat 3]
                       [--tls]

For each S3 server (started on loopback by tests.drivers.s3_server) and
in the same run, interleaved, the best of `--repeat`:

- **direct**: boto3 PutObject of the blob as one body, then GetObject read
  in 1 MiB pieces (what the server and boto3 can do at best), with the
  driver's own boto3 settings;
- **driver**: the S3 driver's `write` fed 1 MiB chunks, then its `read`;
- **registry**: `zuul-registry serve` on that server and bucket: the blob
  pushed in one PATCH and pulled (bench.large), as `python -m bench` does;
- **redirect**: the same with `redirect: true`: the pull follows the 307
  to a presigned URL, and the S3 server sends the bytes.

With `--tls`, a SeaweedFS whose S3 port speaks TLS only (a CA of its own,
trusted through the storage's `ca`) replaces both servers, and there is
no redirect row (this client follows redirects to plain http only).

It prints MiB/s and the ratio to direct.  The blob is one random MiB
repeated, so no side holds it whole (boto3's direct PutObject gets it as
one bytes object: that is what it needs).
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time

from bench.large import LargeBlob, pull_large, push_large
from bench.servers import Ours

MIB = 1 << 20


def _direct(server, bucket, blob):
    from tests.drivers.s3_fixtures import client_options
    from zuul_registry.drivers.s3_client import S3Client
    # boto3 set up as the driver sets it up (checksums only where
    # required, bodies signed over http only): measured a little faster
    # than boto3's defaults on every server here.
    owner = S3Client(ca=server.ca, **client_options(server))
    client = owner.s3
    body = blob.unit * blob.count
    started = time.monotonic()
    client.put_object(Bucket=bucket, Key='direct', Body=body)
    push = time.monotonic() - started
    del body
    started = time.monotonic()
    stream = client.get_object(Bucket=bucket, Key='direct')['Body']
    size = 0
    while True:
        piece = stream.read(MIB)
        if not piece:
            break
        size += len(piece)
    pull = time.monotonic() - started
    assert size == blob.size, size
    client.delete_object(Bucket=bucket, Key='direct')
    owner.close()
    return push, pull


def _driver(server, bucket, blob):
    from tests.drivers.s3_fixtures import client_options
    from zuul_registry.drivers.s3 import S3Driver

    async def chunks():
        for piece in blob.chunks():
            yield bytes(piece)

    async def measure():
        driver = S3Driver(bucket, ca=server.ca, **client_options(server))
        await driver.open()
        try:
            started = time.monotonic()
            assert await driver.write('driver', chunks()) == blob.size
            push = time.monotonic() - started
            started = time.monotonic()
            size = 0
            async for piece in driver.read('driver'):
                size += len(piece)
            pull = time.monotonic() - started
            assert size == blob.size, size
            await driver.delete('driver')
            return push, pull
        finally:
            await driver.close()
    return asyncio.run(measure())


class OursOnS3(Ours):
    key = 'ours-s3'

    def __init__(self, directory, server, bucket, *, redirect=False):
        super().__init__(directory)
        self.server, self.bucket = server, bucket
        self.redirect = redirect

    def config(self):
        config = super().config()
        config['registry']['storage'] = {
            'driver': 's3', 'endpoint': self.server.endpoint,
            'region': self.server.region, 'bucket': self.bucket,
            'access-key': self.server.access_key,
            'secret-key': self.server.secret_key,
            'redirect': self.redirect}
        if self.server.ca:
            config['registry']['storage']['ca'] = self.server.ca
        return config


def _registry(registry, blob, run):
    repository = 'bench/s3-%s-%d' % (
        'redirect' if registry.redirect else 'stream', run)
    started = time.monotonic()
    push_large(registry.endpoint, repository, blob)
    push = time.monotonic() - started
    started = time.monotonic()
    pull_large(registry.endpoint, repository, blob)
    return push, time.monotonic() - started


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m bench.s3')
    parser.add_argument('--kind', action='append',
                        choices=['ceph', 'seaweedfs'])
    parser.add_argument('--blob-mib', type=int, default=256)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--tls', action='store_true',
                        help='a SeaweedFS over TLS only (Ceph has none here)')
    args = parser.parse_args(argv)
    from tests.drivers import s3_server
    kinds = args.kind or ['ceph', 'seaweedfs']
    if args.tls:
        if kinds != ['seaweedfs'] and args.kind:
            parser.error('--tls: SeaweedFS only')
        kinds = ['seaweedfs']
        from tests.drivers.s3_seaweedfs import SeaweedFS
        tls_server = SeaweedFS(tls=True).start()
    # The bench's client follows redirects to plain http only.
    paths = ('direct', 'driver', 'registry') + (
        () if args.tls else ('redirect',))
    rows = []
    for kind in kinds:
        server = tls_server if args.tls else s3_server.server(kind)
        bucket = s3_server.new_bucket(kind)
        server.client().create_bucket(Bucket=bucket)
        best = {}
        with tempfile.TemporaryDirectory(prefix='zr-bench-s3-') as tmp, \
                OursOnS3(os.path.join(tmp, 'streams'), server,
                         bucket) as registry, \
                OursOnS3(os.path.join(tmp, 'redirects'), server, bucket,
                         redirect=True) as redirecting:
            for run in range(args.repeat):
                blob = LargeBlob.make(args.blob_mib, seed=run)
                for name, measure in (
                        ('direct', lambda: _direct(server, bucket, blob)),
                        ('driver', lambda: _driver(server, bucket, blob)),
                        ('registry', lambda: _registry(registry, blob, run)),
                        ('redirect', lambda: _registry(redirecting, blob,
                                                       run))):
                    if name not in paths:
                        continue
                    times = measure()
                    previous = best.get(name, (float('inf'),) * 2)
                    best[name] = tuple(map(min, previous, times))
        for name in paths:
            push, pull = (args.blob_mib / t for t in best[name])
            ratio = [(args.blob_mib / t) / (args.blob_mib / d) for t, d
                     in zip(best[name], best['direct'])]
            rows.append((kind, name, push, pull, *ratio))
    if args.tls:
        tls_server.stop()
    print('%-10s %-9s %10s %10s %8s %8s' % (
        'server', 'path', 'push MiB/s', 'pull MiB/s', 'push/dir', 'pull/dir'))
    for row in rows:
        print('%-10s %-9s %10.0f %10.0f %8.2f %8.2f' % row)
    return 0


if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    sys.exit(main())
