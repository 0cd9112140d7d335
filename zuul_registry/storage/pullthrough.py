"""Pull-through: what was pushed here first, then the namespace's upstream.

A namespace with an upstream registry (configuration `upstreams`) serves
what nobody pushed here from that upstream, and keeps a copy:

- Manifests by tag: a tag pushed here always wins.  Otherwise the tag the
  upstream named is remembered in the repository's _upstream_tags, apart
  from pushed tags, so a push never races a fill for the same object.
  With the tag policy 'pin' the first digest is served for the lifetime
  of the storage (every job of a buildset sees the same image); with a
  duration, the tag is checked upstream (HEAD) once it is older, and
  followed if it moved.  An upstream that cannot be reached then is not
  an error: the last digest is served, with a warning.
- Manifests by digest never change: fetched once, verified, stored.
- Blobs (storage/pullthrough_blobs.py): local first.  Otherwise a fill
  (storage/fills.py) copies the blob in while every client asking for
  it reads along.

Concurrent requests of one process for the same manifest or blob share
one upstream request, and so do the workers of one server
(storage/fill_sharing.py): for a blob one fetches and the others read
along; for a manifest the others wait, then find it stored.  Separate
servers on one storage may each fetch the same object; their copies are
equal and content-addressed, so either may win.

What is fetched is verified before anyone relies on it: a manifest's
digest before it is stored or served, a blob's when its fill completes
(a client reading along has its connection cut if it turns out wrong).
"""

import asyncio
import collections
import json
import logging
import time
import urllib.parse

from zuul_registry import oci
from zuul_registry.drivers import base as driver_base
from zuul_registry.storage import errors, fill_sharing, paths
from zuul_registry.storage.pullthrough_blobs import BlobPullThrough
from zuul_registry.upstream import errors as upstream_errors

log = logging.getLogger('zuul_registry.storage.pullthrough')

PIN = 'pin'
_DOCKER_HUB_HOSTS = ('registry-1.docker.io', 'index.docker.io', 'docker.io')


def upstream_name(url, name):
    """The repository name in the upstream: Docker Hub keeps its
    official images under library/."""
    host = urllib.parse.urlsplit(url).hostname
    if host in _DOCKER_HUB_HOSTS and '/' not in name:
        return 'library/' + name
    return name


class UpstreamSource:
    """An upstream registry client with the policy of its namespace."""

    def __init__(self, client, *, tags=PIN):
        self.client = client
        self.tags = tags      # PIN, or seconds between checks of a tag

    @property
    def url(self):
        return self.client.url

    def name(self, repository):
        return upstream_name(self.client.url, repository.name)


class PullThrough(BlobPullThrough):

    def __init__(self, storage, upstreams, *, clock=time.time,
                 fill_directory=None):
        self.storage = storage
        self.upstreams = dict(upstreams)   # namespace -> UpstreamSource
        self.clock = clock
        # A fill_sharing.FillDirectory shared with the other workers.
        self.fill_directory = fill_directory
        # (event, kind) -> count: fetches, hits, errors of manifests and
        # blobs; and on_event(event, kind), called with each (metrics).
        self.events = collections.Counter()
        self.on_event = None
        self._fetches = {}    # key -> Task, manifests being fetched
        self._fills = {}      # (namespace, name, digest) -> Fill
        self._tasks = set()

    def count(self, event, kind):
        self.events[event, kind] += 1
        if self.on_event is not None:
            self.on_event(event, kind)

    def upstream(self, repository):
        return self.upstreams.get(repository.namespace)

    async def close(self):
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for upstream in self.upstreams.values():
            await upstream.client.close()

    # -- manifests ------------------------------------------------------------

    async def manifest(self, repository, reference):
        """The manifest `reference` names: pushed, remembered or fetched."""
        manifests = self.storage.manifests
        try:
            manifest = await manifests.get(repository, reference)
            if self.upstream(repository) is not None:
                self.count('hits', 'manifest')
            return manifest
        except errors.ManifestUnknown:
            upstream = self.upstream(repository)
            if upstream is None:
                raise
        if oci.is_digest(reference):
            return await self._shared(('digest', repository, reference),
                                      self._once_per_server, reference,
                                      self._by_digest, repository,
                                      reference, upstream)
        return await self._shared(('tag', repository, reference),
                                  self._once_per_server, reference,
                                  self._tag, repository, reference, upstream)

    async def _once_per_server(self, reference, function, repository, *args):
        """`function(repository, *args)`, while no other worker of this
        server runs it for the same manifest: the one that waited then
        finds what the other stored."""
        if self.fill_directory is None:
            return await function(repository, *args)
        key = ('manifest', repository.namespace, repository.name, reference)
        pause = fill_sharing.POLL_FIRST
        while True:
            leadership = self.fill_directory.lead(key)
            if leadership is not None:
                break
            await asyncio.sleep(pause)
            pause = min(pause * 2, fill_sharing.POLL_LONGEST)
        try:
            return await function(repository, *args)
        finally:
            leadership.release()

    async def _by_digest(self, repository, digest, upstream):
        try:   # stored since the caller looked (by another worker)
            manifest = await self.storage.manifests.get(repository, digest)
            self.count('hits', 'manifest')
            return manifest
        except errors.ManifestUnknown:
            return await self._fetch(repository, digest, upstream)

    async def _tag(self, repository, tag, upstream):
        record = await self._record(repository, tag)
        if record is None:
            return await self._follow(repository, tag, upstream)
        digest, checked = record
        if upstream.tags != PIN and self.clock() - checked >= upstream.tags:
            try:
                head = await upstream.client.head_manifest(
                    upstream.name(repository), tag)
            except upstream_errors.UpstreamNotFound:
                await self.storage.driver.delete(paths.upstream_tag(
                    repository.namespace, repository.name, tag))
                raise errors.ManifestUnknown(
                    'tag %s of %s is gone from %s' % (
                        tag, repository, upstream.url)) from None
            except upstream_errors.UpstreamError as e:
                log.warning('Tag %s of %s not checked, serving %s: %s',
                            tag, repository, digest, e)
                head = None
            if head is not None and head.digest != digest:
                log.info('Tag %s of %s moved upstream from %s to %s', tag,
                         repository, digest, head.digest or 'unsaid')
                return await self._follow(repository, tag, upstream)
            if head is not None:
                await self._remember(repository, tag, digest)
        try:
            manifest = await self.storage.manifests.get(repository, digest)
            self.count('hits', 'manifest')
            return manifest
        except errors.ManifestUnknown:
            # Expired or deleted here since: the tag still means it.
            return await self._fetch(repository, digest, upstream)

    async def _follow(self, repository, tag, upstream):
        """Fetch the manifest the upstream's tag names; remember it."""
        manifest = await self._fetch(repository, tag, upstream)
        await self._remember(repository, tag, str(manifest.digest))
        return manifest

    async def _fetch(self, repository, reference, upstream):
        self.count('fetches', 'manifest')
        try:
            fetched = await upstream.client.get_manifest(
                upstream.name(repository), reference)
        except upstream_errors.UpstreamNotFound:
            raise errors.ManifestUnknown('manifest %s unknown to %s and to '
                                         '%s' % (reference, repository,
                                                 upstream.url)) from None
        except upstream_errors.UpstreamError as e:
            self.count('errors', 'manifest')
            raise errors.UpstreamUnavailable(str(e)) from None
        claimed = reference if oci.is_digest(reference) else fetched.digest
        if claimed:
            algorithm = claimed.partition(':')[0]
            actual = oci.Digest.of(fetched.body, algorithm) \
                if algorithm in oci.DIGEST_ALGORITHMS else None
            if actual is None or str(actual) != claimed:
                raise errors.UpstreamUnavailable(
                    '%s sent a manifest for %s:%s whose digest is not %s'
                    % (upstream.url, repository, reference, claimed))
        try:
            stored = await self.storage.manifests.put(
                repository, str(oci.Digest.of(fetched.body)) if not claimed
                else claimed, fetched.body, fetched.media_type,
                upstream=upstream.url)
        except errors.ManifestInvalid as e:
            raise errors.UpstreamUnavailable(
                '%s sent an unusable manifest for %s:%s: %s'
                % (upstream.url, repository, reference, e)) from None
        log.info('Manifest %s of %s fetched from %s', stored.digest,
                 repository, upstream.url)
        return await self.storage.manifests.get(repository,
                                                str(stored.digest))

    async def _record(self, repository, tag):
        try:
            data = await self.storage.driver.get(paths.upstream_tag(
                repository.namespace, repository.name, tag))
            record = json.loads(data)
            return str(oci.Digest.parse(record['digest'])), \
                float(record['checked'])
        except driver_base.ObjectNotFound:
            return None
        except (ValueError, KeyError, TypeError, oci.GrammarError):
            log.warning('Upstream tag record %s of %s unreadable, fetched '
                        'again', tag, repository)
            return None

    async def _remember(self, repository, tag, digest):
        await self.storage.driver.put(
            paths.upstream_tag(repository.namespace, repository.name, tag),
            json.dumps({'digest': digest,
                        'checked': self.clock()}).encode('utf8'))

    async def _shared(self, key, function, *args):
        """Run `function(*args)` once for everyone asking for `key` at
        the same time."""
        task = self._fetches.get(key)
        if task is None:
            task = asyncio.ensure_future(function(*args))
            self._fetches[key] = task
            task.add_done_callback(lambda _: self._fetches.pop(key, None))
        # A client going away must not cancel the others' fetch.
        return await asyncio.shield(task)
