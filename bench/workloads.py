"""The measurements, each against one running registry.

Large blob: pushed as one upload session (``POST``, one ``PATCH`` with the
whole body, ``PUT ?digest=``) and pulled with one ``GET``. The body is a
random 1 MiB buffer sent over and over, so the client holds 1 MiB, not the
blob; its digest is computed before the clock starts. The pull checks the
length, ``Docker-Content-Digest`` and the content (see ContentCheck).

Small requests: ``HEAD`` of a blob, ``GET`` of a manifest by tag, and
small blob pushes, each ``count`` times over ``concurrency`` persistent
connections. A small push is ``POST`` then ``PUT ?digest=`` with the body
(what every registry supports), or with ``monolithic`` one
``POST ?digest=`` with the body.

Any unexpected status, length or digest raises ProtocolError naming the
request and the answer.
"""

import asyncio
import dataclasses
import hashlib
import json
import random
import time

from bench.servers import RssSampler
from bench.wire import (AsyncConnection, Connection, ProtocolError, expect,
                        location_target, with_query)

MIB = 1 << 20
OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar'
OCTETS = {'Content-Type': 'application/octet-stream'}


def sha256(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


@dataclasses.dataclass(frozen=True)
class Sample:
    """One timed run: how much work, how long, and who spent the CPU."""

    amount: float          # bytes or requests
    seconds: float
    client_cpu: float      # seconds of CPU this process used
    server_cpu: float      # seconds of CPU the server process used
    peak_rss_kib: int = 0  # sampled during the run (large blobs only)

    @property
    def rate(self):
        return self.amount / self.seconds


def measure(registry, amount, work, *, sample_rss=False):
    """Run ``work()`` once and time it. ``work`` may return the seconds it
    measured itself (to leave its setup out); otherwise the call is timed."""
    sampler = RssSampler(registry) if sample_rss else None
    cpu0, server0 = time.process_time(), registry.cpu_seconds()
    start = time.perf_counter()
    if sampler:
        with sampler:
            seconds = work()
    else:
        seconds = work()
    wall = time.perf_counter() - start
    cpu, server = time.process_time() - cpu0, registry.cpu_seconds() - server0
    registry.check_alive()
    return Sample(amount, seconds or wall, cpu, server,
                  sampler.peak_kib if sampler else 0)


# -- the large blob -----------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class LargeBlob:
    unit: bytes            # 1 MiB of random bytes, repeated ``count`` times
    count: int
    digest: str

    @classmethod
    def make(cls, mib, *, seed):
        unit = random.Random(seed).randbytes(MIB)
        hasher = hashlib.sha256()
        for _ in range(mib):
            hasher.update(unit)
        return cls(unit, mib, 'sha256:' + hasher.hexdigest())

    @property
    def size(self):
        return self.count * MIB

    def chunks(self):
        view = memoryview(self.unit)
        return (view for _ in range(self.count))


def push_large(endpoint, repository, blob):
    with Connection(endpoint) as conn:
        what = 'start upload'
        response = expect(conn.request(
            'POST', '/v2/%s/blobs/uploads/' % repository), 202, what)
        target = location_target(response, what)
        what = 'upload %d MiB in one PATCH' % blob.count
        response = expect(conn.request_streaming(
            'PATCH', target, OCTETS, blob.size, blob.chunks()), 202, what)
        target = location_target(response, what)
        what = 'finish upload'
        response = expect(conn.request(
            'PUT', with_query(target, digest=blob.digest)), 201, what)
        check_digest_header(response, blob.digest, what)


class ContentCheck:
    """Compare the pulled body with the blob, one aligned MiB at a time.

    The blob is ``unit`` repeated, so each MiB that arrives is copied into
    one buffer and compared with ``unit`` (a memcpy and a memcmp): the body
    is byte for byte what was pushed, hence it has the pushed digest. Much
    cheaper than hashing, which would cap the pull at the client's SHA-256
    speed (about 1.6 GB/s on one core here, most of the client's budget).
    """

    def __init__(self, blob):
        self.blob = blob
        self.block = bytearray(MIB)
        self.filled = 0
        self.block_start = 0        # offset of the block in the body
        self.received = 0
        self.first_difference = None

    def __call__(self, piece):
        start, end = 0, len(piece)
        while start < end:
            take = min(end - start, MIB - self.filled)
            filled = self.filled
            self.block[filled:filled + take] = piece[start:start + take]
            self.filled += take
            start += take
            if self.filled == MIB:
                self._compare(MIB)
        self.received += end

    def _compare(self, size):
        block = self.block if size == MIB else self.block[:size]
        if block != self.blob.unit[:size] and self.first_difference is None:
            for i in range(size):       # only on the error path
                if block[i] != self.blob.unit[i]:
                    self.first_difference = self.block_start + i
                    break
        self.block_start += size
        self.filled = 0

    def problem(self):
        """None if the body was the blob, else what was wrong."""
        if self.filled:
            self._compare(self.filled)
        if self.first_difference is not None:
            return 'received content differs from the pushed blob from byte ' \
                '%d on, so its digest is not %s' % (self.first_difference,
                                                      self.blob.digest)
        return None


class DigestCheck:
    """Hash the pulled body (``--pull-check sha256``)."""

    def __init__(self, blob):
        self.blob = blob
        self.hasher = hashlib.sha256()
        self.received = 0

    def __call__(self, piece):
        self.hasher.update(piece)
        self.received += len(piece)

    def problem(self):
        digest = 'sha256:' + self.hasher.hexdigest()
        if digest != self.blob.digest:
            return 'received content has digest %s, pushed %s' % (
                digest, self.blob.digest)
        return None


PULL_CHECKS = {'content': ContentCheck, 'sha256': DigestCheck}


def pull_large(endpoint, repository, blob, *, check='content'):
    checker = PULL_CHECKS[check](blob)
    target = '/v2/%s/blobs/%s' % (repository, blob.digest)
    with Connection(endpoint) as conn:
        conn.send_head('GET', target)
        response = conn.read_response('GET', target, sink=checker)
    what = 'pull %d MiB' % blob.count
    expect(response, 200, what)
    check_digest_header(response, blob.digest, what)
    length = response.headers.get('content-length')
    if length is not None and int(length) != blob.size:
        raise ProtocolError('%s: Content-Length %s, pushed %d bytes: %s' % (
            what, length, blob.size, response.describe()))
    if checker.received != blob.size:
        raise ProtocolError('%s: received %d bytes, pushed %d: %s' % (
            what, checker.received, blob.size, response.describe()))
    problem = checker.problem()
    if problem:
        raise ProtocolError('%s: %s: %s' % (what, problem,
                                            response.describe()))


def check_digest_header(response, digest, what):
    header = response.headers.get('docker-content-digest')
    if header is not None and header != digest:
        raise ProtocolError('%s: Docker-Content-Digest %s, expected %s: %s' % (
            what, header, digest, response.describe()))


# -- small requests -----------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SmallImage:
    config: bytes
    layer: bytes
    manifest: bytes

    @classmethod
    def make(cls, layer_size, *, seed):
        config = b'{}'
        layer = random.Random(seed).randbytes(layer_size)
        manifest = json.dumps({
            'schemaVersion': 2,
            'mediaType': OCI_MANIFEST,
            'config': {'mediaType': OCI_CONFIG, 'digest': sha256(config),
                       'size': len(config)},
            'layers': [{'mediaType': OCI_LAYER, 'digest': sha256(layer),
                        'size': len(layer)}],
        }, sort_keys=True, separators=(',', ':')).encode()
        return cls(config, layer, manifest)


def push_small_image(endpoint, repository, image, tag):
    with Connection(endpoint, timeout=30.0) as conn:
        for blob in (image.config, image.layer):
            push_blob_two_step(conn, repository, blob, sha256(blob))
        what = 'push manifest %s:%s' % (repository, tag)
        response = expect(conn.request(
            'PUT', '/v2/%s/manifests/%s' % (repository, tag),
            {'Content-Type': OCI_MANIFEST}, image.manifest), 201, what)
        check_digest_header(response, sha256(image.manifest), what)


def push_blob_two_step(conn, repository, body, digest):
    what = 'start upload of %s' % digest
    response = expect(conn.request(
        'POST', '/v2/%s/blobs/uploads/' % repository), 202, what)
    target = with_query(location_target(response, what), digest=digest)
    expect(conn.request('PUT', target, OCTETS, body), 201,
           'upload %d bytes' % len(body))


async def run_requests(endpoint, count, concurrency, operation, *,
                       timeout=600.0):
    """Call ``await operation(conn, i)`` for i in range(count) over
    ``concurrency`` connections; return the seconds it took (connecting
    is done before the clock starts)."""
    connections = [AsyncConnection(endpoint)
                   for _ in range(max(1, min(concurrency, count)))]
    await asyncio.gather(*(c.connect() for c in connections))
    indexes = iter(range(count))

    async def worker(conn):
        for i in indexes:       # shared: each index is taken once
            await operation(conn, i)

    try:
        start = time.perf_counter()
        await asyncio.wait_for(
            asyncio.gather(*(worker(c) for c in connections)), timeout)
        return time.perf_counter() - start
    except asyncio.TimeoutError:
        raise ProtocolError('%d requests did not finish within %.0f s' % (
            count, timeout)) from None
    finally:
        await asyncio.gather(*(c.close() for c in connections))


def head_blob_op(repository, body):
    target = '/v2/%s/blobs/%s' % (repository, sha256(body))
    length = str(len(body))

    async def operation(conn, i):
        response = await conn.request('HEAD', target)
        if response.status != 200:
            expect(response, 200, 'HEAD blob')
        if response.headers.get('content-length', length) != length:
            raise ProtocolError('HEAD blob: Content-Length should be %s: %s'
                                % (length, response.describe()))
    return operation


def get_manifest_op(repository, tag, manifest):
    target = '/v2/%s/manifests/%s' % (repository, tag)
    headers = {'Accept': OCI_MANIFEST}

    async def operation(conn, i):
        response = await conn.request('GET', target, headers)
        if response.status != 200:
            expect(response, 200, 'GET manifest')
        if response.body != manifest:
            raise ProtocolError('GET manifest: body differs from the %d bytes '
                                'pushed: %s' % (len(manifest),
                                                response.describe()))
    return operation


def small_blobs(count, size, *, seed):
    """``count`` distinct bodies of ``size`` bytes with their digests."""
    prefix = random.Random(seed).randbytes(max(0, size - 8))
    bodies = [prefix + i.to_bytes(8, 'big') for i in range(count)]
    return [(body, sha256(body)) for body in bodies]


def push_small_op(repository, blobs, *, monolithic=False):
    start = '/v2/%s/blobs/uploads/' % repository

    async def two_step(conn, i):
        body, digest = blobs[i]
        response = await conn.request('POST', start)
        if response.status != 202:
            expect(response, 202, 'start upload')
        target = with_query(location_target(response, 'start upload'),
                            digest=digest)
        response = await conn.request('PUT', target, OCTETS, body)
        if response.status != 201:
            expect(response, 201, 'upload %d bytes' % len(body))

    async def one_request(conn, i):
        body, digest = blobs[i]
        response = await conn.request('POST', with_query(start, digest=digest),
                                      OCTETS, body)
        if response.status != 201:
            expect(response, 201, 'monolithic upload of %d bytes' % len(body))
    return one_request if monolithic else two_step
