"""The quarantine: where garbage collection puts blobs before destroying.

Collection (zuul_registry/prune.py) never deletes a blob outright.  It
moves it here, and only purges it from here much later, after a fresh
mark found no manifest needing it.  Everything that makes a blob needed
again brings it back first: a manifest PUT (before and after it
commits), a mount, a HEAD or GET, a read of a manifest body.  So a blob
that some request relies on is either in the blob store or restorable
from here for as long as any request can last.

Two objects per blob, for a namespace NS::

    NS/_quarantine/ALG/HEX[:2]/HEX     the blob's bytes, moved (a rename on
                                       a filesystem, a manifest hand-over on
                                       Swift: no byte is copied)
    NS/_quarantine_since/ALG/HEX       empty; written just before the move,
                                       so its modification time says since
                                       when the blob is held

Every step is a move, and a move never loses the object to another
move, whatever their directions (the driver contract): a hold racing a
restore leaves the blob in the store or here.  On a filesystem only
one of two racing moves finds the object (a rename).  On Swift and S3,
which publish the destination before they remove the source, both can:
a restore racing a purge may then bring the blob back while the purge
takes its copy.  So the purge looks for the blob in the store before
it destroys its copy, and prune's unlinking of purged blobs leaves the
links of one it finds back in the store alone (prune.py).
"""

import logging
import time
import uuid
from typing import NamedTuple

from zuul_registry import oci
from zuul_registry.drivers import base as driver_base
from zuul_registry.storage import listing, paths

log = logging.getLogger('zuul_registry.storage.quarantine')


class Held(NamedTuple):
    """A quarantined blob: its digest, size, and since when it is held."""
    digest: oci.Digest
    size: int
    since: float


class Quarantine:

    def __init__(self, driver):
        self.driver = driver

    async def hold(self, namespace, digest):
        """Move a blob out of the blob store; whether it was there (not
        restored or collected by someone else meanwhile)."""
        # The time stamp first: a crash between the two leaves a stamp
        # without a blob, which `entries` removes.
        await self.driver.put(paths.quarantine_since(namespace, digest), b'')
        try:
            await self.driver.move(paths.blob(namespace, digest),
                                   paths.quarantined(namespace, digest))
        except driver_base.ObjectNotFound:
            return False
        log.info('Blob %s of %s quarantined', digest,
                 paths.namespace_root(namespace))
        return True

    async def restore(self, namespace, digest):
        """Bring a quarantined blob back; whether it was there."""
        source = paths.quarantined(namespace, digest)
        if await self.driver.stat(source) is None:
            return False
        try:
            await self.driver.move(source, paths.blob(namespace, digest))
        except driver_base.ObjectNotFound:
            return False   # restored or purged by someone else meanwhile
        await self.driver.delete(paths.quarantine_since(namespace, digest))
        log.info('Blob %s of %s restored from quarantine', digest,
                 paths.namespace_root(namespace))
        return True

    async def purge(self, namespace, digest, *, held_before):
        """Destroy a quarantined blob if it is held since before
        `held_before`; whether it did.

        The decision to purge was made on a stamp read earlier, and the
        blob may have been restored and held again since (by another
        prune).  So the blob is first taken to a private name, where no
        restore or hold can reach it, and only then is the stamp read
        again: a fresh or missing one puts it back.
        """
        source = paths.quarantined(namespace, digest)
        token = '%d-%s' % (time.time(), uuid.uuid4().hex[:12])
        private = paths.purging_blob(namespace, token, digest)
        try:
            await self.driver.move(source, private)
        except driver_base.ObjectNotFound:
            return False   # restored or purged meanwhile
        stamp = await self.driver.stat(paths.quarantine_since(namespace,
                                                              digest))
        if stamp is None or stamp.mtime >= held_before:
            await self._put_back(private, source)
            return False
        if await self.driver.stat(paths.blob(namespace, digest)):
            # Restored meanwhile by a copy (a driver that copies lets a
            # restore and this move both succeed): ours is a spare.
            await self.driver.delete(private)
            return False
        await self.driver.delete(private)
        await self.driver.delete(paths.quarantine_since(namespace, digest))
        log.info('Blob %s of %s purged', digest,
                 paths.namespace_root(namespace))
        return True

    async def _put_back(self, private, source):
        if await self.driver.stat(source) is None:
            try:
                await self.driver.move(private, source)
                return
            except driver_base.ObjectNotFound:
                pass
        await self.driver.delete(private)   # a copy is there already

    async def recover(self, namespace, *, before):
        """Put back into the quarantine what a purge that crashed (its
        token older than `before`) left under a private name."""
        root = paths.purging(namespace)
        for token in await self.driver.list(root):
            try:
                started = int(token.split('-', 1)[0])
            except ValueError:
                continue
            if started >= before:
                continue
            for digest in await listing.digests(self.driver,
                                                root + '/' + token, levels=1):
                await self._put_back(
                    paths.purging_blob(namespace, token, digest),
                    paths.quarantined(namespace, digest))
            await self.driver.delete(root + '/' + token)

    async def entries(self, namespace):
        """Every quarantined blob of the namespace, as Held.

        A blob without a stamp (a crash between stamp and move, in an
        older layout) is stamped now; a stamp without a blob is removed.
        """
        stamps = await listing.digests(
            self.driver, paths.quarantine_stamps(namespace), levels=1)
        held = []
        for digest in await listing.digests(
                self.driver, paths.quarantine(namespace), levels=2):
            entry = await self._entry(namespace, digest)
            if entry is not None:
                held.append(entry)
        for digest in set(stamps) - {entry.digest for entry in held}:
            if await self.driver.stat(
                    paths.quarantined(namespace, digest)) is None:
                await self.driver.delete(
                    paths.quarantine_since(namespace, digest))
        return held

    async def _entry(self, namespace, digest):
        stat = await self.driver.stat(paths.quarantined(namespace, digest))
        if stat is None:
            return None
        since = await self.driver.stat(
            paths.quarantine_since(namespace, digest))
        if since is None:
            await self.driver.put(paths.quarantine_since(namespace, digest),
                                  b'')
            since = await self.driver.stat(
                paths.quarantine_since(namespace, digest))
        return Held(digest, stat.size, since.mtime if since else 0.0)
