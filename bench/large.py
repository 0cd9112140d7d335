"""The large blob: one push as a single upload session, one pull.

Push: ``POST /v2/<repository>/blobs/uploads/`` (202, ``Location``), one
``PATCH`` with the whole body (202, new ``Location``), ``PUT ?digest=``
(201). The body is a random 1 MiB buffer sent over and over, so the client
holds 1 MiB, not the blob; its digest is computed before the clock starts.

Chunked push: the same in PATCHes of 8 MiB, each with ``Content-Range``.

Pull: ``GET /v2/<repository>/blobs/<digest>``, checking the status,
``Content-Length``, ``Docker-Content-Digest`` and the content while it
arrives (see ContentCheck). Anything unexpected raises ProtocolError
naming the request and the answer.
"""

import dataclasses
import hashlib
import random

from bench.connections import Connection
from bench.wire import (OCTETS, ProtocolError, check_digest_header, expect,
                        location_endpoint, location_target, with_query)

MIB = 1 << 20


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


def push_chunked(endpoint, repository, blob, *, chunk_mib=8):
    """The same upload in PATCHes of ``chunk_mib`` MiB, each with its
    ``Content-Range``, as clients that upload in chunks send it."""
    with Connection(endpoint) as conn:
        what = 'start upload'
        response = expect(conn.request(
            'POST', '/v2/%s/blobs/uploads/' % repository), 202, what)
        target = location_target(response, what)
        chunks = blob.chunks()
        for start in range(0, blob.count, chunk_mib):
            count = min(chunk_mib, blob.count - start)
            first, last = start * MIB, (start + count) * MIB - 1
            what = 'PATCH bytes %d-%d' % (first, last)
            headers = dict(OCTETS, **{'Content-Range': '%d-%d' % (first,
                                                                   last)})
            response = expect(conn.request_streaming(
                'PATCH', target, headers, count * MIB,
                (next(chunks) for _ in range(count))), 202, what)
            target = location_target(response, what)
        what = 'finish upload'
        response = expect(conn.request(
            'PUT', with_query(target, digest=blob.digest)), 201, what)
        check_digest_header(response, blob.digest, what)


class ContentCheck:
    """Compare the pulled body with the blob, one aligned MiB at a time.

    The blob is ``unit`` repeated: the body is received straight into a
    1 MiB buffer (see Connection.read_response) and each full buffer is
    compared with ``unit``, one memcmp. A body that is byte for byte what
    was pushed has the pushed digest. Much cheaper than hashing, which
    would cap the pull at the client's SHA-256 speed (about 1.6 GB/s on one
    core here: ``--pull-check sha256``).
    """

    def __init__(self, blob):
        self.blob = blob
        self.block = bytearray(MIB)
        self.view = memoryview(self.block)
        self.filled = 0
        self.block_start = 0        # offset of the block in the body
        self.received = 0
        self.first_difference = None

    def window(self, limit):
        return self.view[self.filled:self.filled + min(limit,
                                                       MIB - self.filled)]

    def advance(self, count):
        self.filled += count
        self.received += count
        if self.filled == MIB:
            self._compare(MIB)

    def __call__(self, piece):
        start, end = 0, len(piece)
        while start < end:
            take = min(end - start, MIB - self.filled)
            self.view[self.filled:self.filled + take] = piece[
                start:start + take]
            start += take
            self.advance(take)

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
            return ('received content differs from the pushed blob from '
                    'byte %d on, so its digest is not %s' % (
                        self.first_difference, self.blob.digest))
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


def _get(endpoint, target, checker):
    with Connection(endpoint) as conn:
        conn.send_head('GET', target)
        return conn.read_response('GET', target, sink=checker)


def pull_large(endpoint, repository, blob, *, check='content',
               checker=None):
    """GET the blob and check it; ``checker`` (made from ``check`` when
    not given) receives the body, see ContentCheck."""
    checker = checker or PULL_CHECKS[check](blob)
    target = '/v2/%s/blobs/%s' % (repository, blob.digest)
    what = 'pull %d MiB' % blob.count
    response = _get(endpoint, target, checker)
    if response.status == 307:
        # Sent to the storage (S3 with redirect): the bytes are there.
        check_digest_header(response, blob.digest, what)
        response = _get(*location_endpoint(response, what), checker)
        expect(response, 200, what)
    else:
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
