"""zuul-registry prune: expire old manifests and sweep what none needs.

For each namespace:

1. Uploads not touched for UPLOAD_EXPIRY (an hour) were abandoned; they
   go, chunks and all.
2. With `expiration` configured, a manifest whose revision is younger
   than that is a root.  A root keeps every manifest it reaches in its
   repository (the children of an index, the subject of a referrer), and
   a kept manifest keeps its own body, its config and its layers.  Every
   other manifest goes with its tags and referrer entry (as a DELETE of
   it would).
3. Then every blob that no kept manifest needs and that is older than
   UPLOAD_EXPIRY (a push stores its blobs before its manifest) goes, and
   so do the repositories' links to it.
4. Last, for the whole storage, the driver's leftovers older than
   UPLOAD_EXPIRY go (driver.collect_leftovers): storage no object needs,
   such as the Swift segments of a blob replaced by a second push.

A push may run meanwhile.  Manifests stored since pruning began are
marked again just before blobs are deleted, so their blobs stay; the
window left is one manifest PUT racing the last deletions.

With `dry_run`, everything is decided and reported, nothing deleted.
"""

import asyncio
import json
import logging
import time
from collections import Counter

from zuul_registry import oci
from zuul_registry.drivers import base as driver_base
from zuul_registry.storage import Storage, errors, manifests, paths
from zuul_registry.storage.namespaces import Namespaces

log = logging.getLogger('zuul_registry.prune')

UPLOAD_EXPIRY = 3600
_PARALLEL = 16
# Storage may stamp times by its own clock (Swift does).
_CLOCK_SKEW = 60


class Summary:
    """What was (or would be) removed: objects by kind, and bytes."""

    KINDS = ('manifests', 'tags', 'blobs', 'links', 'uploads', 'leftovers')

    def __init__(self, *, dry_run):
        self.dry_run = dry_run
        self.objects = Counter()
        self.bytes = 0

    def __str__(self):
        counts = ', '.join('%d %s' % (self.objects[kind], kind)
                           for kind in self.KINDS)
        return '%s %s; %d bytes' % (
            'Would remove' if self.dry_run else 'Removed', counts,
            self.bytes)


async def prune(config, driver, *, dry_run=False, now=None,
                upload_expiry=UPLOAD_EXPIRY, report=None):
    """Prune the storage behind `driver` as `config` says; a Summary.

    `report` is called with a line for everything removed (or, dry, to
    be removed); by default the lines are logged.
    """
    storage = Storage(driver, _namespaces(config))
    pruner = _Pruner(storage, expiration=config.expiration, dry_run=dry_run,
                     now=time.time() if now is None else now,
                     upload_expiry=upload_expiry,
                     report=report or (lambda line: log.info('%s', line)))
    for namespace, repositories in (await pruner.inventory()).items():
        await pruner.namespace(namespace, repositories)
    await pruner.leftovers()
    return pruner.summary


def _namespaces(config):
    return Namespaces(namespaced=config.namespaced,
                      default_namespace=config.default_namespace)


class _Pruner:

    def __init__(self, storage, *, expiration, dry_run, now, upload_expiry,
                 report):
        self.storage = storage
        self.driver = storage.driver
        self.expiration = expiration
        self.dry_run = dry_run
        self.now = now
        self.started = time.time()
        self.upload_expiry = upload_expiry
        self.report = report
        self.summary = Summary(dry_run=dry_run)
        self._limit = asyncio.Semaphore(_PARALLEL)

    async def inventory(self):
        """{namespace: [Repository]}, every namespace that has storage."""
        found = {}
        if self.storage.namespaces.namespaced:
            for name in await self.driver.list(paths.NAMESPACE_MARKERS):
                if oci.HOST_RE.fullmatch(name):
                    found[name] = []
        else:
            found[None] = []
        for name in await self.storage.catalog.repositories():
            repository = self.storage.namespaces.resolve(name)
            found.setdefault(repository.namespace, []).append(repository)
        return found

    async def namespace(self, namespace, repositories):
        where = paths.namespace_root(namespace)
        log.info('Pruning %s: %d repositories', where, len(repositories))
        await self._uploads(namespace)
        if self.expiration is None:
            return
        needed = set()
        for repository in repositories:
            needed |= await self._manifests(repository, self.now -
                                            self.expiration)
        for repository in repositories if not self.dry_run else ():
            # Manifests pushed meanwhile keep their blobs too.
            needed |= await self._manifests(
                repository, self.started - _CLOCK_SKEW, expire=False)
        gone = await self._blobs(namespace, needed)
        for repository in repositories:
            await self._links(repository, gone)

    # -- uploads ----------------------------------------------------------

    async def _uploads(self, namespace):
        root = paths.uploads(namespace)
        cutoff = self.now - self.upload_expiry
        for upload_id in await self.driver.list(root):
            chunks = paths.upload_chunks(namespace, upload_id)
            names = [paths.upload_info(namespace, upload_id)] + [
                chunks + '/' + name for name in await self.driver.list(chunks)]
            info, *parts = await self._gather(self.driver.stat(name)
                                              for name in names)
            stats = [stat for stat in [info] + parts if stat is not None]
            if stats and max(stat.mtime for stat in stats) >= cutoff:
                continue
            size = sum(stat.size for stat in parts if stat is not None)
            await self._remove('uploads', 'upload %s in %s (%d bytes)' % (
                upload_id, paths.namespace_root(namespace), size),
                paths.upload(namespace, upload_id), size=size)

    # -- manifests --------------------------------------------------------

    async def _manifests(self, repository, cutoff, *, expire=True):
        """Expire the manifests of `repository` older than `cutoff`; the
        digests of the blobs the others need (their bodies included)."""
        revisions = await self._revisions(repository)
        roots = [d for d, (mtime, _) in revisions.items() if mtime >= cutoff]
        kept, needed, queue = set(), set(), list(roots)
        while queue:
            digest = queue.pop()
            if digest in kept or digest not in revisions:
                continue
            kept.add(digest)
            needed.add(digest)
            parsed = await self._parse(repository, digest,
                                       revisions[digest][1])
            if parsed is None:
                continue
            needed.update(d.digest for d in parsed.blobs)
            queue.extend(d.digest for d in parsed.children)
            if parsed.subject is not None:
                queue.append(parsed.subject)
        if expire:
            for digest in sorted(set(revisions) - kept, key=str):
                await self._expire(repository, digest,
                                   self.now - revisions[digest][0])
        return needed

    async def _revisions(self, repository):
        """{digest: (mtime, media type)} of the repository's manifests."""
        root = paths.revisions(repository.namespace, repository.name)
        digests = await self._digests(root, levels=1)
        found = {}
        for digest in digests:
            path = paths.revision(repository.namespace, repository.name,
                                  digest)
            try:
                stat = await self.driver.stat(path)
                media_type = json.loads(await self.driver.get(path)).get(
                    'mediaType')
            except (driver_base.ObjectNotFound, ValueError, AttributeError):
                continue
            if stat is not None:
                found[digest] = (stat.mtime, media_type)
        return found

    async def _parse(self, repository, digest, media_type):
        try:
            body = await self.storage.blobs.get_small(repository.namespace,
                                                      digest)
            return manifests.parse(body, media_type)
        except (errors.BlobUnknown, errors.ManifestInvalid) as e:
            log.warning('Manifest %s in %s unreadable, kept alone: %s',
                        digest, repository, e)
            return None

    async def _expire(self, repository, digest, age):
        tags = await self._tags_of(repository, digest)
        self.summary.objects['tags'] += len(tags)
        line = 'manifest %s in %s, %.1f days old%s' % (
            digest, repository, age / 86400,
            ', tags %s' % ', '.join(tags) if tags else '')
        self.summary.objects['manifests'] += 1
        self.report(('would remove ' if self.dry_run else 'removed ') + line)
        if not self.dry_run:
            try:
                await self.storage.manifests.delete(repository, str(digest))
            except errors.ManifestUnknown:
                pass   # deleted meanwhile

    async def _tags_of(self, repository, digest):
        root = paths.tags(repository.namespace, repository.name)
        tags = []
        for tag in await self.driver.list(root):
            try:
                named = await self.driver.get(root + '/' + tag)
            except driver_base.ObjectNotFound:
                continue
            if named.decode('ascii', 'replace') == str(digest):
                tags.append(tag)
        return tags

    # -- blobs ------------------------------------------------------------

    async def _blobs(self, namespace, needed):
        """Delete the blobs nobody needs; the set of those gone."""
        root = '%s/_blobs' % paths.namespace_root(namespace)
        digests = await self._digests(root, levels=2)
        candidates = [d for d in digests if d not in needed]
        stats = await self._gather(self.driver.stat(paths.blob(namespace, d))
                                   for d in candidates)
        cutoff = self.now - self.upload_expiry
        gone = set()
        for digest, stat in zip(candidates, stats):
            if stat is None or stat.mtime >= cutoff:
                continue
            gone.add(digest)
            await self._remove('blobs', 'blob %s in %s (%d bytes)' % (
                digest, paths.namespace_root(namespace), stat.size),
                paths.blob(namespace, digest), size=stat.size)
        return gone

    async def _links(self, repository, gone):
        root = '%s/_layers' % paths.repository(repository.namespace,
                                               repository.name)
        for digest in await self._digests(root, levels=1):
            if digest in gone:
                self.summary.objects['links'] += 1
                if not self.dry_run:
                    await self.driver.delete(paths.layer_link(
                        repository.namespace, repository.name, digest))

    # -- leftovers --------------------------------------------------------

    async def leftovers(self):
        for name, size in await self.driver.collect_leftovers(
                before=self.now - self.upload_expiry, dry_run=self.dry_run):
            self.summary.objects['leftovers'] += 1
            self.summary.bytes += size
            self.report('%s leftover %s (%d bytes)' % (
                'would remove' if self.dry_run else 'removed', name, size))

    # -- helpers ----------------------------------------------------------

    async def _digests(self, root, *, levels):
        """The digests under root/ALG/..., `levels` directories deep."""
        found = []
        for algorithm in await self.driver.list(root):
            directories = [root + '/' + algorithm]
            for _ in range(levels - 1):
                directories = [directory + '/' + name
                               for directory in directories
                               for name in await self.driver.list(directory)]
            for directory in directories:
                for name in await self.driver.list(directory):
                    try:
                        found.append(oci.Digest.parse(algorithm + ':' + name))
                    except oci.GrammarError:
                        log.warning('Not a digest, left alone: %s/%s',
                                    directory, name)
        return found

    async def _remove(self, kind, line, path, *, size=0):
        self.summary.objects[kind] += 1
        self.summary.bytes += size
        self.report(('would remove ' if self.dry_run else 'removed ') + line)
        if not self.dry_run:
            await self.driver.delete(path)

    async def _gather(self, coroutines):
        async def limited(coroutine):
            async with self._limit:
                return await coroutine
        return await asyncio.gather(*[limited(c) for c in coroutines])
