"""Fetch manifests and stream blobs from one upstream registry.

:class:`UpstreamRegistry` speaks the pull side of the OCI Distribution
API to one registry (``https://registry-1.docker.io``, ``https://quay.io``,
...).  ``repository`` is the name in the upstream (``library/alpine``),
``reference`` a tag or a digest, both strings already checked by the
caller.  Manifests are read whole under ``manifest_size_limit``; blobs are
streamed in pieces of at most ``CHUNK_SIZE`` and never buffered.

Errors: 404 is :class:`UpstreamNotFound`; everything else that keeps us
from an answer is :class:`UpstreamUnavailable` (see ``errors``).  Blob
GETs follow redirects (to a CDN or object store, possibly another host),
which never receive the registry's Authorization header.
"""

import asyncio
import contextlib
import dataclasses
import json
import logging
from typing import AsyncIterator, Optional

import aiohttp
import yarl

from zuul_registry import oci
from zuul_registry.upstream import auth as auth_module
from zuul_registry.upstream import transport as transport_module
from zuul_registry.upstream.errors import UpstreamNotFound
from zuul_registry.upstream.errors import UpstreamUnavailable

log = logging.getLogger('zuul_registry.upstream.client')

CHUNK_SIZE = 1024 * 1024
MANIFEST_ACCEPT = ', '.join(oci.MANIFEST_TYPES)


@dataclasses.dataclass(frozen=True)
class UpstreamManifest:
    body: bytes
    media_type: str
    digest: Optional[str]   # Docker-Content-Digest, if the upstream sent it


@dataclasses.dataclass(frozen=True)
class ManifestHead:
    digest: Optional[str]
    media_type: str
    size: Optional[int]


@dataclasses.dataclass(frozen=True)
class BlobStream:
    size: Optional[int]               # Content-Length, if sent
    chunks: AsyncIterator[bytes]      # raises UpstreamUnavailable if cut


class UpstreamRegistry:
    def __init__(self, url, *, username=None, password=None, ca=None,
                 connect_timeout=10.0, read_timeout=60.0, retries=3,
                 manifest_size_limit=4 * 1024 * 1024):
        self._url = url
        self._base = url.rstrip('/')
        self.manifest_size_limit = manifest_size_limit
        self._transport = transport_module.Transport(
            url, ca=ca, connect_timeout=connect_timeout,
            read_timeout=read_timeout, retries=retries)
        self._auth = auth_module.Authenticator(
            self._transport, username=username, password=password)

    @property
    def url(self):
        return self._url

    def __repr__(self):
        return '<UpstreamRegistry %s>' % self._url

    async def close(self):
        await self._transport.close()

    # -- manifests ---------------------------------------------------------

    async def get_manifest(self, repository, reference):
        what = 'manifest %s:%s' % (repository, reference)
        response = await self._request(
            'GET', repository, 'manifests', reference, what=what,
            headers={'Accept': MANIFEST_ACCEPT})
        try:
            body = await self._read_manifest(response, what)
        finally:
            response.release()
        media_type = _media_type(response) or _declared_type(body)
        log.debug('Upstream %s: got %s (%s, %d bytes)', self._url, what,
                  media_type, len(body))
        return UpstreamManifest(body=body, media_type=media_type,
                                digest=_digest(response))

    async def head_manifest(self, repository, reference):
        what = 'manifest %s:%s' % (repository, reference)
        response = await self._request(
            'HEAD', repository, 'manifests', reference, what=what,
            headers={'Accept': MANIFEST_ACCEPT})
        response.release()
        return ManifestHead(digest=_digest(response),
                            media_type=_media_type(response),
                            size=response.content_length)

    async def _read_manifest(self, response, what):
        limit = self.manifest_size_limit
        length = response.content_length
        if length is not None and length > limit:
            raise UpstreamUnavailable('%s is %d bytes, over the limit of %d'
                                      % (what, length, limit), url=self._url)
        body = bytearray()
        try:
            while True:
                piece = await response.content.read(CHUNK_SIZE)
                if not piece:
                    break
                body += piece
                if len(body) > limit:
                    raise UpstreamUnavailable(
                        '%s is over the limit of %d bytes' % (what, limit),
                        url=self._url)
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            raise UpstreamUnavailable('%s: reading the body failed: %s'
                                      % (what, _reason(e)),
                                      url=self._url) from None
        if length is not None and len(body) != length:
            raise UpstreamUnavailable('%s: body of %d bytes, Content-Length '
                                      'said %d' % (what, len(body), length),
                                      url=self._url)
        return bytes(body)

    # -- blobs -------------------------------------------------------------

    async def head_blob(self, repository, digest):
        what = 'blob %s@%s' % (repository, digest)
        response = await self._request('HEAD', repository, 'blobs', digest,
                                       what=what)
        response.release()
        if response.content_length is None:
            raise UpstreamUnavailable('%s: HEAD answered without '
                                      'Content-Length' % what, url=self._url)
        return response.content_length

    @contextlib.asynccontextmanager
    async def open_blob(self, repository, digest):
        """``async with`` a :class:`BlobStream`; leaving releases it."""
        what = 'blob %s@%s' % (repository, digest)
        response = await self._request('GET', repository, 'blobs', digest,
                                       what=what)
        try:
            yield BlobStream(size=response.content_length,
                             chunks=self._chunks(response, what))
        finally:
            if response.content.at_eof():
                response.release()
            else:
                response.close()   # never reuse a half-read connection

    async def _chunks(self, response, what):
        expected = response.content_length
        received = 0
        try:
            while True:
                piece = await response.content.read(CHUNK_SIZE)
                if not piece:
                    break
                received += len(piece)
                yield piece
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            log.warning('Upstream %s: %s broke off after %d bytes: %s',
                        self._url, what, received, _reason(e))
            raise UpstreamUnavailable(
                '%s broke off after %d of %s bytes: %s'
                % (what, received, expected if expected is not None
                   else 'unknown', _reason(e)), url=self._url) from None
        if expected is not None and received != expected:
            raise UpstreamUnavailable(
                '%s ended after %d of %d bytes' % (what, received, expected),
                url=self._url)
        log.debug('Upstream %s: read %s (%d bytes)', self._url, what,
                  received)

    # -- requests ----------------------------------------------------------

    async def _request(self, method, repository, kind, reference, *, what,
                       headers=None):
        """The 200 response to ``/v2/REPOSITORY/KIND/REFERENCE``,
        authenticating as the upstream's challenge asks."""
        url = '%s/v2/%s/%s/%s' % (self._base, repository, kind, reference)
        label = '%s %s' % (method, what)
        scope = auth_module.repository_scope(repository)
        headers = dict(headers or {})
        authorization = self._auth.header(scope)
        for attempt in (1, 2):
            if authorization is not None:
                headers['Authorization'] = authorization
            response = await self._transport.request(
                method, url, headers=headers, what=label)
            if response.status != 401 or not _from_registry(response, url):
                break
            if attempt == 2:
                response.release()
                raise self._auth.refused(label, response)
            try:
                authorization = await self._auth.answer(
                    response, scope, stale=authorization, what=label)
            finally:
                response.release()
        status = response.status
        if status == 200:
            return response
        response.release()
        if status == 404:
            raise UpstreamNotFound('%s not found (404)' % what,
                                   url=self._url)
        if status == 401:
            raise UpstreamUnavailable('%s: refused (401) by %s'
                                      % (label, response.url.origin()),
                                      url=self._url)
        if status == 403:
            raise UpstreamUnavailable('%s: access denied (403)' % label,
                                      url=self._url)
        if status in transport_module.RETRY_STATUSES:
            raise UpstreamUnavailable(
                '%s: answered %d after %d attempts'
                % (label, status, self._transport.retries + 1),
                url=self._url)
        raise UpstreamUnavailable('%s: unexpected answer %d'
                                  % (label, status), url=self._url)


def _from_registry(response, url):
    """Whether the answer came from the registry itself (not from where a
    redirect led, whose 401 is not the registry's challenge)."""
    return response.url.origin() == yarl.URL(url).origin()


def _media_type(response):
    value = response.headers.get('Content-Type', '')
    return value.split(';', 1)[0].strip().lower()


def _declared_type(body):
    """The mediaType a manifest declares, when no Content-Type was sent."""
    try:
        value = json.loads(body).get('mediaType')
    except (ValueError, AttributeError):
        return ''
    return value if isinstance(value, str) else ''


def _digest(response):
    return response.headers.get(oci.CONTENT_DIGEST_HEADER) or None


def _reason(error):
    return (str(error) or type(error).__name__)[:300]
