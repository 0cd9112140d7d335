"""Blob uploads: POST, PATCH, PUT, GET and DELETE on upload sessions."""

import asyncio
import functools
import logging
import re

from aiohttp import web

from zuul_registry import oci
from zuul_registry.api import access, base, errors
from zuul_registry.storage import errors as storage_errors

log = logging.getLogger('zuul_registry.api.uploads')
# Discards of sessions whose client left while they were made.
_ORPHANS = set()

# ASCII digits, at most 20 of them (int() refuses thousands; no upload is
# that large).
_CONTENT_RANGE_RE = re.compile(
    r'(?:bytes[ =])?(\d{1,20})-(\d{1,20})(?:/\d+|/\*)?', re.ASCII)


def _upload_url(repository_name, upload_id):
    return '/v2/%s/blobs/uploads/%s' % (repository_name, upload_id)


def _progress(request, upload_id, size, *, status=202):
    """The answer that tells a client where an upload stands."""
    return web.Response(status=status, headers={
        'Location': _upload_url(request.match_info['name'], upload_id),
        'Range': '0-%d' % max(size - 1, 0),
        oci.UPLOAD_UUID_HEADER: upload_id,
        'Content-Length': '0',
    })


def _created(request, digest):
    return web.Response(status=201, headers={
        'Location': '/v2/%s/blobs/%s' % (request.match_info['name'], digest),
        oci.CONTENT_DIGEST_HEADER: str(digest),
        'Content-Length': '0',
    })


async def start_upload(request):
    """POST: a new session, a monolithic upload, or a mount."""
    repository = base.repository(request)
    storage = base.storage(request)
    query = request.query
    if 'mount' in query:
        digest = base.digest(query['mount'])
        source = query.get('from')
        # Mount only from where this request may read; else upload.
        # Without `from` the blob may come from any repository of the
        # namespace, so the request must be able to read them all.
        readable = access.may_pull(request, source) if source \
            else access.may_pull_everywhere(request)
        if readable and await _mount(storage, repository, digest, source):
            return _created(request, digest)
    # Validated before the session exists: a 400 must leave nothing.
    digest = base.digest(query['digest']) if 'digest' in query else None
    upload_id = await _start_session(storage, repository)
    if digest is None:
        return _progress(request, upload_id, 0)
    try:
        await storage.uploads.complete(repository, upload_id, digest,
                                       base.body_blocks(request))
    except BaseException:
        await _discard(storage, repository, upload_id)
        raise
    return _created(request, digest)


async def _start_session(storage, repository):
    """A new upload id.  If the client leaves while the session is being
    made (aiohttp then cancels the handler), it is removed once made:
    nobody could ever learn its id."""
    starting = asyncio.ensure_future(storage.uploads.start(repository))
    try:
        return await asyncio.shield(starting)
    except asyncio.CancelledError:
        starting.add_done_callback(functools.partial(
            _discard_orphan, storage, repository))
        raise


def _discard_orphan(storage, repository, starting):
    if not starting.cancelled() and starting.exception() is None:
        task = asyncio.ensure_future(_discard(storage, repository,
                                              starting.result()))
        _ORPHANS.add(task)   # a reference until it is done
        task.add_done_callback(_ORPHANS.discard)


async def _discard(storage, repository, upload_id):
    """Cancel a monolithic upload that failed (bad digest, client gone).

    Its id was never told to the client, so nobody else ever could.
    """
    try:
        await asyncio.shield(storage.uploads.cancel(repository, upload_id))
    except storage_errors.UploadUnknown:
        pass   # already gone: a digest mismatch discards it itself
    except Exception:
        log.exception('Could not cancel failed upload %s of %s',
                      upload_id, repository)


async def _mount(storage, repository, digest, source_name):
    """Link a blob from `source_name` (or anywhere in the namespace)."""
    if source_name:
        try:
            source = storage.namespaces.resolve(source_name)
        except oci.GrammarError:
            return False
        if source.namespace != repository.namespace:
            return False
        try:
            await storage.blobs.size_in(source, digest)
        except storage_errors.BlobUnknown:
            return False
    elif await storage.blobs.stat(repository.namespace, digest) is None:
        return False
    await storage.blobs.link(repository, digest)
    log.info('Blob %s mounted into %s from %s', digest, repository,
             source_name or 'its namespace')
    return True


async def patch_upload(request):
    """PATCH: append a chunk, streamed or with Content-Range."""
    repository = base.repository(request)
    upload_id = base.upload_id(request)
    offset = None
    content_range = request.headers.get('Content-Range')
    if content_range:
        match = _CONTENT_RANGE_RE.fullmatch(content_range.strip())
        if not match:
            raise errors.RangeInvalid('malformed Content-Range %r'
                                      % content_range[:100])
        offset, last = int(match.group(1)), int(match.group(2))
        length = request.content_length
        if last < offset or (length is not None
                             and length != last - offset + 1):
            raise errors.RangeInvalid(
                'Content-Range %s does not match Content-Length %s'
                % (content_range, length))
    size = await base.storage(request).uploads.append(
        repository, upload_id, base.body_blocks(request), offset=offset)
    return _progress(request, upload_id, size)


async def finish_upload(request):
    """PUT ?digest=: the optional last chunk, then verify and publish."""
    repository = base.repository(request)
    upload_id = base.upload_id(request)
    if 'digest' not in request.query:
        raise errors.DigestInvalid('digest query parameter required')
    digest = base.digest(request.query['digest'])
    await base.storage(request).uploads.complete(
        repository, upload_id, digest, base.body_blocks(request))
    return _created(request, digest)


async def upload_status(request):
    repository = base.repository(request)
    upload_id = base.upload_id(request)
    size = await base.storage(request).uploads.size(repository, upload_id)
    return _progress(request, upload_id, size, status=204)


async def cancel_upload(request):
    repository = base.repository(request)
    upload_id = base.upload_id(request)
    await base.storage(request).uploads.cancel(repository, upload_id)
    return web.Response(status=204)
