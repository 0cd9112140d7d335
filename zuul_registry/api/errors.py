"""OCI error codes as exceptions, and the middleware that renders them.

Handlers (and storage) raise; `error_middleware` turns every failure into
the spec's body ``{"errors": [{"code", "message", "detail"}]}`` with the
code's status.  Anything unexpected becomes 500 UNKNOWN, logged with its
traceback; but storage that is full (ENOSPC or EDQUOT, however wrapped)
is 507 Insufficient Storage, logged in one line.  The spec has no code
for it, nor has CNCF Distribution, so the code is UNKNOWN.

A request aiohttp refuses in its parser (a broken request line, TLS on
the plain port, an invalid or too long header) reaches no middleware:
`answer_refused_in_json` gives it the same JSON body.
"""

import errno
import json
import logging
import os

from aiohttp import web, web_protocol

from zuul_registry import oci
from zuul_registry.api import metrics
from zuul_registry.storage import errors as storage_errors
from zuul_registry.storage import fills

log = logging.getLogger('zuul_registry.api.errors')


class RegistryError(Exception):
    code = 'UNKNOWN'
    status = 500
    message = 'unknown error'

    def __init__(self, detail=None, *, headers=None):
        super().__init__(detail or self.message)
        self.detail = detail
        self.headers = headers or {}

    def body(self):
        error = {'code': self.code, 'message': self.message}
        if self.detail is not None:
            error['detail'] = self.detail
        return {'errors': [error]}


def _error(code, status, message):
    return type(code.title().replace('_', ''), (RegistryError,),
                {'code': code, 'status': status, 'message': message})


BlobUnknown = _error('BLOB_UNKNOWN', 404, 'blob unknown to registry')
BlobUploadInvalid = _error('BLOB_UPLOAD_INVALID', 400, 'blob upload invalid')
BlobUploadUnknown = _error('BLOB_UPLOAD_UNKNOWN', 404,
                           'blob upload unknown to registry')
DigestInvalid = _error('DIGEST_INVALID', 400,
                       'provided digest did not match uploaded content')
ManifestBlobUnknown = _error('MANIFEST_BLOB_UNKNOWN', 400,
                             'manifest references a blob unknown to registry')
ManifestInvalid = _error('MANIFEST_INVALID', 400, 'manifest invalid')
ManifestUnknown = _error('MANIFEST_UNKNOWN', 404, 'manifest unknown')
NameInvalid = _error('NAME_INVALID', 400, 'invalid repository name')
NameUnknown = _error('NAME_UNKNOWN', 404,
                     'repository name not known to registry')
SizeInvalid = _error('SIZE_INVALID', 400,
                     'provided length did not match content length')
Unauthorized = _error('UNAUTHORIZED', 401, 'authentication required')
Denied = _error('DENIED', 403, 'requested access to the resource is denied')
Unsupported = _error('UNSUPPORTED', 405, 'the operation is unsupported')
NotFound = _error('UNSUPPORTED', 404, 'no such endpoint')
ParameterInvalid = _error('UNSUPPORTED', 400, 'invalid query parameter')
FormInvalid = _error('UNSUPPORTED', 400, 'malformed form body')
RequestInvalid = _error('UNSUPPORTED', 400, 'malformed HTTP request')
TagInvalid = _error('TAG_INVALID', 400, 'manifest tag did not match URI')
TooLarge = _error('SIZE_INVALID', 413, 'request body too large')
# Pull-through could not get what the client asked for from the upstream.
UpstreamUnavailable = _error('UNAVAILABLE', 502,
                             'upstream registry unavailable')


class StorageFull(RegistryError):
    """507: the disk is full or the quota exceeded; retrying later, once
    space is freed, may succeed."""
    code = 'UNKNOWN'
    status = 507
    message = 'storage is full'


class RangeInvalid(RegistryError):
    """416: a chunk that does not start where the upload ends."""
    code = 'BLOB_UPLOAD_INVALID'
    status = 416
    message = 'requested range not satisfiable'


# Storage raises these without knowing HTTP; map them once, here.
_STORAGE_ERRORS = {
    storage_errors.BlobUnknown: BlobUnknown,
    storage_errors.UploadUnknown: BlobUploadUnknown,
    storage_errors.ManifestUnknown: ManifestUnknown,
    storage_errors.NameUnknown: NameUnknown,
    storage_errors.DigestMismatch: DigestInvalid,
    storage_errors.UploadOffsetMismatch: RangeInvalid,
    storage_errors.ManifestInvalid: ManifestInvalid,
    storage_errors.ManifestBlobUnknown: ManifestBlobUnknown,
    storage_errors.SizeInvalid: SizeInvalid,
    storage_errors.UpstreamUnavailable: UpstreamUnavailable,
    fills.FillFailed: UpstreamUnavailable,
}


def to_registry_error(exc):
    cls = _STORAGE_ERRORS.get(type(exc))
    if cls is None:
        return None
    headers = {}
    if isinstance(exc, storage_errors.UploadOffsetMismatch):
        # Tell the client where the upload really ends.
        headers['Range'] = '0-%d' % max(exc.size - 1, 0)
    return cls(str(exc), headers=headers)


_FULL = frozenset((errno.ENOSPC, errno.EDQUOT))


def storage_full(exc):
    """The OSError saying storage is full behind `exc`, or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno in _FULL:
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _failure(request, exc, what, detail):
    """The error for an exception nothing else maps; call it in the
    `except` block, so the traceback is logged."""
    metrics.note_failure(request, exc)
    full = storage_full(exc)
    if full is not None:
        reason = os.strerror(full.errno)
        log.warning('Storage is full (%s) on %s %s', reason,
                    request.method, request.path)
        return StorageFull(reason)
    log.exception('%s on %s %s', what, request.method, request.path)
    return RegistryError(detail)


def render(error):
    return web.Response(
        status=error.status,
        text=json.dumps(error.body()),
        content_type='application/json',
        headers=error.headers)


@web.middleware
async def error_middleware(request, handler):
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed as exc:
        allowed = ', '.join(sorted(exc.allowed_methods))
        return render(Unsupported(
            'method %s not allowed; allowed: %s' % (request.method, allowed),
            headers={'Allow': allowed}))
    except web.HTTPNotFound:
        return render(NotFound('no endpoint at %s' % request.path))
    except (web.HTTPException, ConnectionResetError):
        raise
    except Exception as exc:
        if request.writer.output_size > 0:
            # An answer was under way (a blob went while it was sent): a
            # second one would be read as its body.  Let aiohttp cut the
            # connection, so the client sees the body end short.
            log.warning('%s %s failed after its answer began: %s; '
                        'closing the connection', request.method,
                        request.path, exc)
            raise ConnectionResetError(str(exc)) from None
        return _answer(request, exc)


def _answer(request, exc):
    """The JSON error answer to a failed request."""
    if isinstance(exc, RegistryError):
        return render(exc)
    if isinstance(exc, storage_errors.StorageError):
        return render(to_registry_error(exc) or _failure(
            request, exc, 'Storage failure', 'storage failure'))
    return render(_failure(request, exc, 'Unexpected failure',
                           'internal error; see server log'))


async def add_api_version(request, response):
    """on_response_prepare hook: every answer names the API version."""
    response.headers[oci.API_VERSION_HEADER] = oci.API_VERSION


class _RequestHandler(web_protocol.RequestHandler):
    """aiohttp's handler of a connection, but the answers it makes itself
    (to a request its parser refused, or a failure that escaped the
    middlewares) are the spec's JSON errors."""

    __slots__ = ()

    def handle_error(self, request, status=500, exc=None, message=None):
        # aiohttp's own logs, and refuses once an answer has begun; only
        # its text answer is replaced.
        super().handle_error(request, status, exc, message)
        if status < 500:
            error = RequestInvalid(message or None)
        else:
            error = RegistryError('internal error; see server log')
        error.status = status   # the one aiohttp chose
        # A refused request has no route, whose on_response_prepare hook
        # would name the version.
        error.headers[oci.API_VERSION_HEADER] = oci.API_VERSION
        response = render(error)
        response.force_close()
        return response


class _Server(web.Server):
    def __call__(self):
        handler = super().__call__()
        handler.__class__ = _RequestHandler   # same slots: a safe swap
        return handler


def answer_refused_in_json(app):
    """Every server of `app` (aiohttp's run_app, an AppRunner of the
    workers, a test server) answers the requests aiohttp refuses before
    routing with the spec's JSON error body, at aiohttp's status.

    aiohttp has no hook for these answers (aio-libs/aiohttp#3287):
    `RequestHandler.handle_error` writes them, and every runner gets its
    server, which makes the handlers, from `app._make_handler`.  Its
    servers are made to hand out the subclass above.
    """
    make_server = app._make_handler

    def make_handler(**kwargs):
        server = make_server(**kwargs)
        server.__class__ = _Server
        return server

    app._make_handler = make_handler
