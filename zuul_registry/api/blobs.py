"""GET, HEAD and DELETE /v2/<name>/blobs/<digest>."""

from aiohttp import web

from zuul_registry import oci
from zuul_registry.api import base


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
    size = await base.storage(request).blobs.size_in(repository, digest)
    return web.Response(headers=_headers(digest, size))


async def get_blob(request):
    repository = base.repository(request)
    digest = base.digest(request.match_info['digest'])
    blobs = base.storage(request).blobs
    source = await blobs.source(repository, digest)
    span = base.byte_range(request.headers.get('Range'), source.size)
    if source.local_file and request.transport is not None and \
            request.transport.get_extra_info('sslcontext') is None:
        # Plain HTTP: sendfile.  FileResponse answers the (already
        # validated) Range header itself.
        headers = _headers(digest, source.size)
        del headers['Content-Length']
        return web.FileResponse(source.local_file, headers=headers)
    # TLS or a remote driver: large writes from our own reads, which
    # measured several times faster over TLS than FileResponse.
    offset, length = span if span else (0, source.size)
    response = web.StreamResponse(
        status=206 if span else 200, headers=_headers(digest, length))
    if span:
        response.headers['Content-Range'] = 'bytes %d-%d/%d' % (
            offset, offset + length - 1, source.size)
    await response.prepare(request)
    async for chunk in blobs.read(source, offset=offset, length=length):
        await response.write(chunk)
    await response.write_eof()
    return response


async def delete_blob(request):
    """Unlink the blob from the repository; its bytes wait for GC."""
    base.require_deletion(request)
    repository = base.repository(request)
    digest = base.digest(request.match_info['digest'])
    await base.storage(request).blobs.unlink(repository, digest)
    return web.Response(status=202)
