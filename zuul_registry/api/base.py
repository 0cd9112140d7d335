"""What every handler shares: parsing names, digests and bodies."""

import re

from aiohttp import web

from zuul_registry import oci, tls_reads
from zuul_registry.api import errors

STORAGE = web.AppKey('storage', object)
CONFIG = web.AppKey('config', object)
AUTH = web.AppKey('auth', object)

#: Request bodies are handed to storage in blocks of this size at most;
BODY_BLOCK_SIZE = 1024 * 1024
#: smaller when many stream in at once, so that the blocks of all the
#: bodies of a process (each gathered, then joined: twice its size at
#: most) take about this much memory; never smaller than the minimum.
BODY_BLOCKS_BUDGET = 16 * 1024 * 1024
BODY_BLOCK_MINIMUM = 64 * 1024
#: A body's first block: storing and hashing start once it is read, so
#: a small one starts them sooner.  Each block after it is as large as
#: all before it until the full size, so block edges fall on multiples
#: of the full size (8 MiB S3 parts are whole blocks).  For a push in
#: 8 MiB PATCHes, each one a new body, that is worth 3%.
BODY_BLOCK_FIRST = 128 * 1024
_bodies_streaming = 0


def storage(request):
    return request.app[STORAGE]


def repository_name(request):
    """The repository name the request means.

    containerd asks a mirror for "library/alpine" with "?ns=docker.io"
    (the registry it is mirroring) when hosts.toml does not override
    the path: with namespaces on, such a name belongs to that namespace.
    """
    name = request.match_info['name']
    namespace = request.query.get('ns')
    namespaces = storage(request).namespaces
    if namespace and namespaces.namespaced:
        first, sep, _ = name.partition('/')
        if not (sep and oci.is_host(first)):
            if not (oci.HOST_RE.fullmatch(namespace)
                    and oci.is_host(namespace)):
                raise errors.NameInvalid('invalid ns parameter %r'
                                         % namespace[:100])
            return '%s/%s' % (namespace, name)
    return name


def repository(request):
    """The Repository the URL names; NAME_INVALID if it is malformed."""
    try:
        return storage(request).namespaces.resolve(repository_name(request))
    except oci.GrammarError as e:
        raise errors.NameInvalid(str(e)) from None


def digest(text):
    try:
        return oci.Digest.parse(text)
    except oci.GrammarError as e:
        raise errors.DigestInvalid(str(e)) from None


def reference(request):
    """A manifest reference from the URL: a tag or a digest."""
    ref = request.match_info['reference']
    if oci.is_digest(ref):
        return str(digest(ref))
    try:
        return oci.check_tag(ref)
    except oci.GrammarError as e:
        raise errors.ManifestInvalid(str(e)) if request.method == 'PUT' \
            else errors.ManifestUnknown(str(e)) from None


def upload_id(request):
    try:
        return oci.check_upload_id(request.match_info['upload_id'])
    except oci.GrammarError:
        raise errors.BlobUploadUnknown('invalid upload id') from None


def require_deletion(request):
    """405 UNSUPPORTED unless the configuration allows deleting, with the
    Allow header RFC 9110 asks of every 405: the route's other methods."""
    if not request.app[CONFIG].delete_enabled:
        allowed = sorted({route.method for route in
                          request.match_info.route.resource} - {'DELETE'})
        raise errors.Unsupported('deletion is disabled on this registry',
                                 headers={'Allow': ', '.join(allowed)})


def body_block_size():
    """The block size for a body now: BODY_BLOCK_SIZE shared out."""
    share = BODY_BLOCKS_BUDGET // (2 * max(_bodies_streaming, 1))
    return max(BODY_BLOCK_MINIMUM, min(BODY_BLOCK_SIZE, share))


async def body_blocks(request):
    """Yield the request body in blocks of `body_block_size()` bytes.

    Large blocks keep per-write overhead in the driver low; memory stays
    bounded by one block per body whatever its size, and by about
    BODY_BLOCKS_BUDGET however many bodies stream in at once.
    """
    global _bodies_streaming
    _bodies_streaming += 1
    tls_reads.fit_upload(request.transport, _bodies_streaming)
    try:
        pending = []
        pending_size = 0
        handed = 0
        block_size = min(BODY_BLOCK_FIRST, body_block_size())
        while True:
            data = await request.content.readany()
            if not data:
                break
            pending.append(data)
            pending_size += len(data)
            del data
            if pending_size >= block_size:
                # The pieces go before the block is handed on, and the
                # block before the next pieces come: one block's worth
                # at a time.
                block = b''.join(pending)
                pending = []
                pending_size = 0
                handed += len(block)
                yield block
                del block
                block_size = min(handed, body_block_size())
                tls_reads.fit_upload(request.transport, _bodies_streaming)
        if pending:
            yield b''.join(pending)
    finally:
        _bodies_streaming -= 1
        tls_reads.fit_upload(request.transport, None)


async def read_capped(request, limit):
    """The whole body, for manifests; 413 beyond `limit` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise errors.TooLarge('body exceeds %d bytes' % limit)
    chunks = []
    size = 0
    async for data in request.content.iter_chunked(64 * 1024):
        size += len(data)
        if size > limit:
            raise errors.TooLarge('body exceeds %d bytes' % limit)
        chunks.append(data)
    return b''.join(chunks)


# One byte range: "bytes=FIRST-[LAST]" or "bytes=-SUFFIX", positions of
# at most 20 digits (int() refuses thousands; no blob is that large).
_RANGE_RE = re.compile(r'bytes=(?:(\d{1,20})-(\d{0,20})|-(\d{1,20}))',
                       re.ASCII)


def byte_range(header, size):
    """(start, length) of a single-range Range header, or None for all.

    RFC 9110 lets a server ignore a Range header it does not understand
    (another unit, "BYTES" too, bad syntax, an invalid range such as 5-2,
    absurdly long numbers) and answer several ranges with the whole
    representation: all of those get the whole blob.  A valid but
    unsatisfiable range raises RangeInvalid with `Content-Range: bytes
    */SIZE`.
    """
    match = _RANGE_RE.fullmatch((header or '').strip())
    if not match:
        return None
    first, last, suffix = match.groups()
    if suffix is not None:
        suffix = int(suffix)
        start, end = max(size - suffix, 0), size - 1
        satisfiable = suffix > 0 and size > 0
    else:
        start = int(first)
        if last and int(last) < start:
            return None
        end = min(int(last), size - 1) if last else size - 1
        satisfiable = start < size
    if not satisfiable:
        raise errors.RangeInvalid(
            'range %s not satisfiable for %d bytes' % (header[:100], size),
            headers={'Content-Range': 'bytes */%d' % size})
    return start, end - start + 1


async def api_version(request):
    """GET /v2/: the API base; 200 says this is a v2 registry."""
    return web.json_response({})
