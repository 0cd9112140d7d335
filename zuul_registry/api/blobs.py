"""GET, HEAD and DELETE /v2/<name>/blobs/<digest>."""

import functools

from aiohttp import web

from zuul_registry import oci
from zuul_registry.api import base
from zuul_registry.storage import fills

# A blob sent over TLS is read in TLS_PIECE bytes and written in
# TLS_WRITE: each write is held several times over until sent (the
# piece, its ciphertext in the SSL buffer, what the socket has not taken
# yet), so small writes keep that small with many clients.  Measured with
# 32 concurrent TLS pulls: peak RSS 140 MiB with 1 MiB reads and writes,
# 83 with these, one large pull as fast.
TLS_PIECE = 512 * 1024
TLS_WRITE = 64 * 1024


class _SentFile(web.FileResponse):
    """FileResponse (for its sendfile) answering like the streamed path.

    FileResponse would act on Range, conditional and Accept-Encoding
    headers by its own rules (416 without our body for a range we
    ignore); it sees only the range get_blob validated, and sends no
    validators from the file's mtime, which the streamed path lacks.
    """

    def __init__(self, opened, span, *, headers):
        # FileResponse opens a path when it is prepared; the name of our
        # open descriptor reaches the very file we looked up, even if a
        # prune moved it into the quarantine since (Linux's /proc).
        super().__init__('/proc/self/fd/%d' % opened.fileno(),
                         headers=headers)
        self._opened = opened
        self._span = span

    async def prepare(self, request):
        headers = request.headers.copy()
        for name in _FILE_RESPONSE_HEADERS:
            headers.popall(name, None)
        if self._span:
            offset, length = self._span
            headers['Range'] = 'bytes=%d-%d' % (offset, offset + length - 1)
        try:
            return await super().prepare(request.clone(headers=headers))
        finally:
            self._opened.close()

    @property
    def etag(self):
        return None

    @etag.setter
    def etag(self, value):
        pass

    @property
    def last_modified(self):
        return None

    @last_modified.setter
    def last_modified(self, value):
        pass


_FILE_RESPONSE_HEADERS = (
    'Range', 'If-Range', 'If-Match', 'If-None-Match', 'If-Modified-Since',
    'If-Unmodified-Since', 'Accept-Encoding')


def _headers(digest, length):
    return {
        oci.CONTENT_DIGEST_HEADER: str(digest),
        'Content-Type': 'application/octet-stream',
        'Content-Length': str(length),
        'Accept-Ranges': 'bytes',
    }


async def head_blob(request):
    repository = base.repository(request)
    digest = base.digest(request.match_info['digest'])
    storage = base.storage(request)
    if storage.pullthrough is not None:
        size = await storage.pullthrough.blob_size(repository, digest)
    else:
        size = await storage.blobs.size_in(repository, digest)
    return web.Response(headers=_headers(digest, size))


async def get_blob(request):
    repository = base.repository(request)
    digest = base.digest(request.match_info['digest'])
    storage = base.storage(request)
    blobs = storage.blobs
    if storage.pullthrough is not None:
        source = await storage.pullthrough.blob(repository, digest)
        if isinstance(source, fills.IncomingBlob):
            return await _send_fill(request, digest, source)
    else:
        source = await blobs.source(repository, digest)
    span = base.byte_range(request.headers.get('Range'), source.size)
    url = await blobs.download_url(source)
    if url is not None:
        # The storage sends the bytes (clients send their Range there
        # again).  Found just now, or restored from the quarantine.
        return web.Response(status=307, headers={
            'Location': url, oci.CONTENT_DIGEST_HEADER: str(digest)})
    tls = _over_tls(request)
    if source.local_file and request.transport is not None and not tls:
        # Plain HTTP: sendfile.
        headers = _headers(digest, source.size)
        del headers['Content-Length']
        return _SentFile(await blobs.open_local(source), span,
                         headers=headers)
    # TLS or a remote driver: large writes from our own reads, which
    # measured several times faster over TLS than FileResponse.
    offset, length = span if span else (0, source.size)
    response = web.StreamResponse(
        status=206 if span else 200, headers=_headers(digest, length))
    if span:
        response.headers['Content-Range'] = 'bytes %d-%d/%d' % (
            offset, offset + length - 1, source.size)
    chunks = blobs.read(source, offset=offset, length=length,
                        chunk_size=TLS_PIECE if tls else None)
    return await _stream(request, response, chunks)


async def _send_fill(request, digest, fill):
    """A blob coming in from an upstream, sent as it arrives."""
    span = None
    if fill.size is not None:
        span = base.byte_range(request.headers.get('Range'), fill.size)
    offset, length = span if span else (0, fill.size)
    headers = _headers(digest, length)
    if length is None:
        del headers['Content-Length']   # unknown: sent chunked
    response = web.StreamResponse(status=206 if span else 200,
                                  headers=headers)
    if span:
        response.headers['Content-Range'] = 'bytes %d-%d/%d' % (
            offset, offset + length - 1, fill.size)
    return await _stream(request, response,
                         fill.read(offset=offset, length=length))


async def _stream(request, response, chunks):
    chunks = chunks.__aiter__()
    # The first piece before the headers: a blob gone by now is still a
    # clean 404 (error_middleware cannot answer once the 200 is out).
    first = await anext(chunks, b'')
    await response.prepare(request)
    write = response.write
    if _over_tls(request):
        write = functools.partial(_write_in_pieces, response)
    await write(first)
    # Hold no piece longer than its write: many clients at once each
    # keep one piece, not three.
    del first
    async for chunk in chunks:
        await write(chunk)
        del chunk
    await response.write_eof()
    return response


def _over_tls(request):
    return request.transport is not None and \
        request.transport.get_extra_info('sslcontext') is not None


async def _write_in_pieces(response, chunk):
    view = memoryview(chunk)
    for start in range(0, len(view), TLS_WRITE):
        await response.write(view[start:start + TLS_WRITE])


async def delete_blob(request):
    """Unlink the blob from the repository; its bytes wait for GC."""
    base.require_deletion(request)
    repository = base.repository(request)
    digest = base.digest(request.match_info['digest'])
    await base.storage(request).blobs.unlink(repository, digest)
    return web.Response(status=202)
