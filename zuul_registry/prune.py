"""zuul-registry prune: garbage collection that is safe while serving.

Any number of server processes, on one filesystem root or one Swift
container, may serve while prune runs (or while several prunes run);
nothing takes a lock that a crashed process could leave behind.

The invariant
-------------
A blob or manifest acknowledged with 201, and not deleted by a client
since, stays complete whatever prune does.  Prune never destroys a blob
outright; it destroys only what it has held in quarantine for longer
than GRACE and that a mark made after that found unneeded:

1. Sweeping moves a blob no manifest needs out of the blob store into
   the quarantine (storage/quarantine.py), with a time stamp.
2. Every request that may rely on a blob looks it up through
   storage.Blobs, which restores a quarantined blob on the spot: a HEAD,
   a GET, a mount, a manifest PUT's check of its references, the read of
   a manifest body.
3. A manifest PUT checks its blobs again after its revision and tag are
   written (Manifests._settle), restoring what was quarantined meanwhile.
   A PUT acknowledged before a mark started is seen by that mark.
4. Purging, for each namespace: a mark started now reads every manifest
   stored now; quarantined blobs it needs are restored, the others go if
   held longer than GRACE.  A PUT racing the purge either restored the
   blob first or finds it gone and fails: restoring and purging each take
   the one quarantined object by a move, and moves never lose it.  (On
   Swift and S3 both moves can succeed: the purge finds the blob back in
   the store and destroys only its spare copy; a restore ending after
   that look leaves a blob whose links the unlinking below leaves
   alone.)  The purge moves it to a private name first and reads its
   stamp again there, out of reach of any restore or hold: a blob
   restored and held again since the purge was decided (by another
   prune) has a fresh stamp and is put back.  GRACE (hours) is far
   longer than any request, so a client's HEAD that found a blob comes
   long before that blob can be purged.

Manifests expire when their revision is older than `expiration` (or,
for one pull-through fetched from an upstream, `upstream-expiration`)
and no kept manifest reaches them.  Expiring removes the revision first and the
tags after, as a client DELETE does, and then looks again: a tag written
since the decision (a re-push under any tag rewrites its tag object)
brings the revision back, and the re-push's own check after writing its
tag (rule 3) restores a revision removed under it and then looks at its
tag again.  A re-push under the same tag that lands between prune's last
look at that tag and its deletion is seen afterwards (the revision is
back): prune puts the tags it removed back, unless written anew.  What
remains unguarded is a PUT *moving* such a tag to another manifest in
those microseconds: the move is lost (the driver contract has no
conditional delete to close it).

Uploads untouched for UPLOAD_EXPIRY go; a chunk streaming in rewrites
its upload's _alive object every minute (storage/uploads.py), and a chunk
whose upload was collected under it is refused, never acknowledged.

With `dry_run`, everything is decided and reported, nothing changed.
"""

import asyncio
import json
import logging
import time

from zuul_registry.drivers import base as driver_base
from zuul_registry.gc.mark import Marker
from zuul_registry.gc.summary import Summary
from zuul_registry.storage import Storage, listing, paths
from zuul_registry.storage.namespaces import Namespaces, Repository

log = logging.getLogger('zuul_registry.prune')

UPLOAD_EXPIRY = 3600
GRACE = 6 * 3600
_PARALLEL = 16

__all__ = ['GRACE', 'Summary', 'UPLOAD_EXPIRY', 'prune']


async def prune(config, driver, *, dry_run=False, now=None,
                upload_expiry=UPLOAD_EXPIRY, grace=GRACE, report=None):
    """Prune the storage behind `driver` as `config` says; a Summary.

    `report` is called with a line for everything removed, quarantined
    or restored (or, dry, that would be); by default the lines are
    logged.
    """
    storage = Storage(driver, Namespaces(
        namespaced=config.namespaced,
        default_namespace=config.default_namespace))
    pruner = _Pruner(storage, expiration=config.expiration,
                     upstream_expiration=config.upstream_expiration,
                     dry_run=dry_run,
                     now=time.time() if now is None else now,
                     upload_expiry=upload_expiry, grace=grace,
                     report=report or (lambda line: log.info('%s', line)))
    for namespace in await storage.catalog.namespaces_stored():
        await pruner.namespace(namespace)
    await pruner.leftovers()
    return pruner.summary


class _Pruner:

    def __init__(self, storage, *, expiration, dry_run, now, upload_expiry,
                 grace, report, upstream_expiration=None):
        self.storage = storage
        self.driver = storage.driver
        self.expiration = expiration
        self.upstream_expiration = upstream_expiration
        self.dry_run = dry_run
        self.now = now
        self.upload_expiry = upload_expiry
        self.grace = grace
        self.report = report
        self.summary = Summary(dry_run=dry_run)
        self._limit = asyncio.Semaphore(_PARALLEL)

    def _say(self, line):
        self.report(('would %s' if self.dry_run else '%s') % line)

    async def namespace(self, namespace):
        log.info('Pruning %s', paths.namespace_root(namespace))
        await self._uploads(namespace)
        if self.expiration is None and self.upstream_expiration is None:
            return   # without expiration, blobs are left alone
        expired = set()
        for repository in await self._repositories(namespace):
            expired |= await self._expire_manifests(repository)
        # The mark starts after expiry, on a fresh listing: it sees every
        # manifest stored before it began (the invariant, rule 4).
        marker = Marker(self.storage, namespace, skip=expired)
        needed = await marker.mark(await self._repositories(namespace))
        purged = await self._quarantine(namespace, needed)
        await self._sweep(namespace, needed)
        if purged:
            await self._links(namespace, purged)

    async def _repositories(self, namespace):
        names = await self.storage.catalog.names_in(namespace)
        return [Repository(namespace, name) for name in names]

    # -- uploads ----------------------------------------------------------

    async def _uploads(self, namespace):
        cutoff = self.now - self.upload_expiry
        for upload_id in await self.driver.list(paths.uploads(namespace)):
            chunks = paths.upload_chunks(namespace, upload_id)
            names = [paths.upload_info(namespace, upload_id),
                     paths.upload_alive(namespace, upload_id)] + [
                chunks + '/' + name for name in await self.driver.list(chunks)]
            found = await self._gather(self.driver.stat(name)
                                       for name in names)
            stats = [stat for stat in found if stat is not None]
            if not stats or max(stat.mtime for stat in stats) >= cutoff:
                continue   # completed meanwhile, or in use
            size = sum(stat.size for stat in found[2:] if stat is not None)
            self.summary.count('uploads', size)
            self._say('remove upload %s in %s (%d bytes)' % (
                upload_id, paths.namespace_root(namespace), size))
            if not self.dry_run:
                await self.driver.delete(paths.upload(namespace, upload_id))

    # -- manifests --------------------------------------------------------

    def _cutoff(self, record):
        """Manifests written before this time expire (-inf: never).

        A manifest fetched from an upstream (its revision names it)
        follows `upstream-expiration`, one pushed here `expiration`.
        """
        expiration = self.upstream_expiration if record.get('upstream') \
            else self.expiration
        return float('-inf') if expiration is None \
            else self.now - expiration

    async def _expire_manifests(self, repository):
        """Expire what is due in `repository`; the digests expired."""
        revisions = await _revisions(self.driver, repository)
        roots = [d for d, (mtime, record) in revisions.items()
                 if mtime >= self._cutoff(record)]
        kept = await Marker(self.storage, repository.namespace).reach(
            repository, roots, within=revisions)
        expired = set()
        for digest in sorted(set(revisions) - kept, key=str):
            if await self._expire(repository, digest, revisions[digest]):
                expired.add(digest)
        return expired

    async def _expire(self, repository, digest, revision):
        mtime, record = revision
        cutoff = self._cutoff(record)
        tags = await self._tag_ages(repository, digest)
        if any(age >= cutoff for age in tags.values()):
            return False   # tagged since we listed: pushed again
        line = 'manifest %s in %s, %.1f days old%s' % (
            digest, repository, (self.now - mtime) / 86400,
            ', tags %s' % ', '.join(sorted(tags)) if tags else '')
        if self.dry_run:
            self.summary.count('manifests')
            self.summary.count('tags', number=len(tags))
            self._say('remove ' + line)
            return True
        path = paths.revision(repository.namespace, repository.name, digest)
        stat = await self.driver.stat(path)
        if stat is None or stat.mtime >= cutoff:
            return False
        subject = await self.storage.manifests.stored_subject(
            repository.namespace, digest)
        # As a DELETE: the revision first, then the tags (see the
        # module's docstring and Manifests.delete).
        await self.driver.delete(path)
        tags = await self._tag_ages(repository, digest)
        removed = []
        if not any(age >= cutoff for age in tags.values()):
            for tag in tags:
                await self.driver.delete(paths.tag(
                    repository.namespace, repository.name, tag))
                removed.append(tag)
        if await self.driver.stat(path) is not None or any(
                age >= cutoff for age in
                (await self._tag_ages(repository, digest)).values()):
            # Pushed again meanwhile, perhaps under a tag we had just
            # looked at: put back the revision and the tags we removed,
            # unless a tag was written anew since.
            await self.driver.put(path, json.dumps(record).encode('utf8'))
            for tag in removed:
                await self._put_back_tag(repository, tag, digest)
            self.report('kept manifest %s in %s: pushed again while it was '
                        'expired' % (digest, repository))
            return False
        if subject is not None:
            await self.storage.referrers.remove(repository, subject, digest)
        self.summary.count('manifests')
        self.summary.count('tags', number=len(removed))
        self._say('remove ' + line)
        return True

    async def _put_back_tag(self, repository, tag, digest):
        async def named():
            yield str(digest).encode('ascii')
        try:
            await self.driver.write(
                paths.tag(repository.namespace, repository.name, tag),
                named(), exclusive=True)
        except driver_base.AlreadyExists:
            pass   # written anew since: the newer one stays

    async def _tag_ages(self, repository, digest):
        """{tag: time its object was written} of the tags naming digest."""
        names = await self.storage.manifests.tags_naming(repository, digest)
        stats = await self._gather(self.driver.stat(paths.tag(
            repository.namespace, repository.name, tag)) for tag in names)
        return {tag: stat.mtime for tag, stat in zip(names, stats)
                if stat is not None}

    # -- blobs ------------------------------------------------------------

    async def _quarantine(self, namespace, needed):
        """Restore the held blobs needed, purge the others held longer
        than the grace period; the digests purged."""
        quarantine = self.storage.blobs.quarantine
        if not self.dry_run:
            await quarantine.recover(namespace,
                                     before=time.time() - self.upload_expiry)
        purged = set()
        where = paths.namespace_root(namespace)
        for held in await quarantine.entries(namespace):
            if held.digest in needed:
                self.summary.count('restored')
                self._say('restore blob %s in %s' % (held.digest, where))
                if not self.dry_run:
                    await quarantine.restore(namespace, held.digest)
            elif held.since < self.now - self.grace:
                if self.dry_run or await quarantine.purge(
                        namespace, held.digest,
                        held_before=self.now - self.grace):
                    purged.add(held.digest)
                    self.summary.count('purged', held.size)
                    self._say('purge blob %s in %s (%d bytes)' % (
                        held.digest, where, held.size))
            else:
                self.summary.count('held')
        return purged

    async def _sweep(self, namespace, needed):
        """Quarantine the blobs no manifest needs, once an upload's age
        old (a push stores its blobs before its manifest)."""
        root = '%s/_blobs' % paths.namespace_root(namespace)
        digests = await listing.digests(self.driver, root, levels=2)
        stats = await self._gather(self.driver.stat(paths.blob(namespace, d))
                                   for d in digests)
        cutoff = self.now - self.upload_expiry
        for digest, stat in zip(digests, stats):
            if stat is None:
                continue
            if digest in needed or stat.mtime >= cutoff:
                self.summary.count('kept')
                continue
            self._say('quarantine blob %s in %s (%d bytes)' % (
                digest, paths.namespace_root(namespace), stat.size))
            if self.dry_run or await self.storage.blobs.quarantine.hold(
                    namespace, digest):
                self.summary.count('quarantined', stat.size)

    async def _links(self, namespace, purged):
        """Unlink purged blobs from the repositories that linked them,
        unless pushed again or restored meanwhile."""
        back = set()
        for digest in purged:
            # A restore racing the purge, where moves copy, can bring the
            # blob back after the purge looked (quarantine.purge).
            if await self.driver.stat(paths.blob(namespace, digest)):
                back.add(digest)
        for repository in await self._repositories(namespace):
            root = '%s/_layers' % paths.repository(namespace, repository.name)
            for digest in await listing.digests(self.driver, root, levels=1):
                if digest not in purged or digest in back:
                    continue
                self.summary.count('links')
                if self.dry_run:
                    continue
                link = paths.layer_link(namespace, repository.name, digest)
                await self.driver.delete(link)
                # Pushed again meanwhile: its upload's link check may
                # have come before our delete, so put the link back.
                if await self.storage.blobs.stat(namespace,
                                                 digest) is not None:
                    await self.driver.put(link, b'')
                    self.summary.count('links', number=-1)

    # -- leftovers --------------------------------------------------------

    async def leftovers(self):
        for name, size in await self.driver.collect_leftovers(
                before=self.now - self.upload_expiry, dry_run=self.dry_run):
            self.summary.count('leftovers', size)
            self._say('remove leftover %s (%d bytes)' % (name, size))

    async def _gather(self, coroutines):
        async def limited(coroutine):
            async with self._limit:
                return await coroutine
        return await asyncio.gather(*[limited(c) for c in coroutines])


async def _revisions(driver, repository):
    """{digest: (mtime, revision record)} of the repository's manifests."""
    root = paths.revisions(repository.namespace, repository.name)
    found = {}
    for digest in await listing.digests(driver, root, levels=1):
        path = paths.revision(repository.namespace, repository.name, digest)
        try:
            stat = await driver.stat(path)
            record = json.loads(await driver.get(path))
        except (driver_base.ObjectNotFound, ValueError):
            continue
        if stat is not None and isinstance(record, dict):
            found[digest] = (stat.mtime, record)
    return found
