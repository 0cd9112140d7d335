"""The mark: which blobs the manifests of a namespace need.

A manifest needs its own body, its config and layers; an index needs its
children (their bodies, configs and layers in turn); a referrer needs
its subject.  Bodies are read through storage.Blobs, which restores a
quarantined one: a manifest being marked is needed, and so is its body.
"""

import logging

from zuul_registry.storage import errors, listing, manifests, paths

log = logging.getLogger('zuul_registry.gc.mark')


class Marker:

    def __init__(self, storage, namespace, *, skip=()):
        self.storage = storage
        self.namespace = namespace
        self.skip = set(skip)   # manifests expired, though still stored
        self._parsed = {}

    async def mark(self, repositories):
        """The digests of every blob the repositories' manifests need."""
        needed = set()
        for repository in repositories:
            stored = await listing.digests(
                self.storage.driver,
                paths.revisions(repository.namespace, repository.name),
                levels=1)
            roots = [digest for digest in stored if digest not in self.skip]
            await self.reach(repository, roots, needed=needed)
        return needed

    async def reach(self, repository, roots, *, within=None, needed=None):
        """The manifests reachable from `roots` (limited to those in
        `within` when given); adds the blobs they need to `needed`."""
        reached = set()
        queue = list(roots)
        while queue:
            digest = queue.pop()
            if digest in reached or (within is not None and
                                     digest not in within):
                continue
            reached.add(digest)
            if needed is not None:
                needed.add(digest)
            parsed = await self._parse(repository, digest)
            if parsed is None:
                continue
            if needed is not None:
                needed.update(d.digest for d in parsed.blobs)
            queue.extend(d.digest for d in parsed.children)
            if parsed.subject is not None:
                queue.append(parsed.subject)
        return reached

    async def _parse(self, repository, digest):
        if digest in self._parsed:
            return self._parsed[digest]
        parsed = None
        try:
            body = await self.storage.blobs.get_small(self.namespace, digest)
            parsed = manifests.parse(body, None)
        except errors.BlobUnknown:
            pass   # a subject never pushed, or a body lost
        except errors.ManifestInvalid as e:
            log.warning('Manifest %s in %s unreadable, kept alone: %s',
                        digest, repository, e)
        self._parsed[digest] = parsed
        return parsed

