"""Blobs: content-addressed bytes per namespace, linked into repositories.

A blob's bytes are stored once per namespace; a repository sees a blob
only through its link, written when the blob was pushed or mounted into
that repository (the spec wants 404 for a blob the repository never got).

Garbage collection may have moved a blob into the quarantine
(storage/quarantine.py); every lookup here brings it back on demand, so
a blob a client can still reach is never lost to a collection that ran
meanwhile.
"""

import asyncio
import logging
from typing import NamedTuple, Optional

from zuul_registry.drivers import base as driver_base
from zuul_registry.storage import errors, paths
from zuul_registry.storage.quarantine import Quarantine

log = logging.getLogger('zuul_registry.storage.blobs')


class BlobSource(NamedTuple):
    """Where to read a blob from: a local file, or the driver."""
    size: int
    local_file: Optional[str]
    path: str
    namespace: Optional[str]
    digest: object   # oci.Digest


class Blobs:

    def __init__(self, driver, *, catalog=None):
        self.driver = driver
        self.catalog = catalog
        self.quarantine = Quarantine(driver)

    async def stat(self, namespace, digest):
        """Size of the blob in the namespace, or None.

        A quarantined blob is restored first: whoever asks may be about
        to rely on it.
        """
        path = paths.blob(namespace, digest)
        st = await self.driver.stat(path)
        if st is None and await self.quarantine.restore(namespace, digest):
            st = await self.driver.stat(path)
        return None if st is None else st.size

    async def size_in(self, repository, digest):
        """Size of a blob visible in `repository`; raise BlobUnknown."""
        link = await self.driver.stat(
            paths.layer_link(repository.namespace, repository.name, digest))
        size = await self.stat(repository.namespace, digest) \
            if link is not None else None
        if size is None:
            raise errors.BlobUnknown('blob %s unknown to %s'
                                     % (digest, repository))
        return size

    async def source(self, repository, digest):
        size = await self.size_in(repository, digest)
        path = paths.blob(repository.namespace, digest)
        return BlobSource(size, self.driver.local_file(path), path,
                          repository.namespace, digest)

    async def open_local(self, source):
        """The blob's local file, open for reading (for sendfile);
        restored from the quarantine if it went since the lookup."""
        for attempt in range(2):
            try:
                return await asyncio.to_thread(open, source.local_file, 'rb')
            except FileNotFoundError:
                if attempt or not await self.quarantine.restore(
                        source.namespace, source.digest):
                    raise errors.BlobUnknown('blob %s vanished'
                                             % source.digest) from None

    async def download_url(self, source):
        """A URL at which clients may fetch the blob from the storage
        itself, if the driver gives them (S3 with `redirect`); or None."""
        return await self.driver.download_url(source.path)

    def read(self, source, *, offset=0, length=None, chunk_size=None):
        return self._read(source, offset, length, chunk_size)

    async def _read(self, source, offset, length, chunk_size):
        # Quarantined between the lookup and the read: bring it back and
        # read again, as long as no byte was given out yet.
        started = False
        for attempt in range(2):
            try:
                async for chunk in self.driver.read(
                        source.path, offset=offset, length=length,
                        chunk_size=chunk_size):
                    started = True
                    yield chunk
                    del chunk   # not kept while the next one is read
                return
            except driver_base.ObjectNotFound:
                if started or attempt or not await self.quarantine.restore(
                        source.namespace, source.digest):
                    raise errors.BlobUnknown(
                        'blob %s vanished while reading'
                        % source.digest) from None

    async def link(self, repository, digest):
        """Make a stored blob visible in `repository`.

        Every manifest push links all its layers again; a stat spares
        the (fsynced) write when the link is already there.
        """
        if self.catalog is not None:
            await self.catalog.remember(repository.namespace)
        path = paths.layer_link(repository.namespace, repository.name, digest)
        if await self.driver.stat(path) is None:
            await self.driver.put(path, b'')

    async def unlink(self, repository, digest):
        """Make a blob invisible in `repository`; BlobUnknown if it was.

        The bytes stay in the namespace: other repositories may link
        them, and reclaiming them is garbage collection's job.
        """
        link = paths.layer_link(repository.namespace, repository.name,
                                digest)
        if await self.driver.stat(link) is None:
            raise errors.BlobUnknown('blob %s unknown to %s'
                                     % (digest, repository))
        await self.driver.delete(link)
        log.info('Blob %s unlinked from %s', digest, repository)

    async def commit(self, repository, digest, parts):
        """Publish the concatenated `parts` as the blob, then link it.

        The parts are consumed (driver.concat): the blob takes over their
        storage where the driver can, and they are gone afterwards.  If
        this raises, the blob is as it was and the parts may be lost.
        """
        await self.driver.concat(paths.blob(repository.namespace, digest),
                                 parts, consume=True)
        await self.link(repository, digest)
        log.info('Blob %s committed to %s', digest, repository)

    async def put_small(self, repository, digest, data):
        """Store a small blob (a manifest body) and link it."""
        path = paths.blob(repository.namespace, digest)
        if await self.driver.stat(path) is None:
            await self.driver.put(path, data)
        await self.link(repository, digest)

    async def get_small(self, namespace, digest):
        path = paths.blob(namespace, digest)
        for attempt in range(2):
            try:
                return await self.driver.get(path)
            except driver_base.ObjectNotFound:
                if attempt or not await self.quarantine.restore(namespace,
                                                                digest):
                    break
        raise errors.BlobUnknown('blob %s missing' % digest)
