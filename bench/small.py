"""Many small requests over a few persistent connections.

``HEAD`` of a blob, ``GET`` of a manifest by tag, and small blob pushes,
each ``count`` times over ``concurrency`` connections. A small push is
``POST`` then ``PUT ?digest=`` with the body (what every registry
supports), or with ``monolithic`` one ``POST ?digest=`` with the body.
Bodies and digests are made before the clock starts. Any unexpected status,
length or body raises ProtocolError naming the request and the answer.
"""

import asyncio
import dataclasses
import hashlib
import json
import random
import time

from bench.connections import AsyncConnection, Connection
from bench.wire import (OCTETS, ProtocolError, check_digest_header, expect,
                        location_target, with_query)

OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar'


def sha256(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


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
