"""Blob uploads: chunks stored as they stream in, verified on completion.

Each chunk a client sends becomes its own object, written exclusively at
its offset, so two requests racing for the same offset cannot both win
and a chunk is never half-visible.  The upload's size is the end of its
last chunk, read from storage, so any server process sharing the storage
can take the next chunk, also after a restart.

A driver that can append (the filesystem) grows the last chunk in place
instead of adding one: appends to a chunk exclude each other across
processes, so of two requests racing for one offset one wins as above,
and completion hands the one file over with a rename, never copying the
bytes again.  Before the digest is checked the completion freezes that
chunk (made durable, closed to appends): no byte can join it between the
check and the hand-over.

Python cannot save a hash object, so each process keeps the running hash
of the uploads it has been fed in order.  When a process completes an
upload whose hash it does not hold (another process took some chunks, or
it restarted), it re-reads the stored chunks.  Correct everywhere, fast
in the common case.

Completing an upload checks that its chunks follow each other from
offset 0, hands them over to the blob store (the driver consumes them
instead of copying their bytes where it can), then deletes the rest of
the upload.  A completion that fails half-way may have consumed some
chunks: the upload is then lost, which the check reports to a retry.
Two completions of one upload racing (a client retrying) both find its
chunks; the one whose chunks vanish under it answers that the upload is
unknown, as if it came second.

Garbage collection removes uploads untouched for an hour.  A chunk that
streams in for longer keeps its upload alive: every ALIVE_INTERVAL it
rewrites the upload's _alive object.  Should the upload be removed
anyway while a chunk streams in, the chunk is dropped and the client told
the upload is unknown, never that its bytes were taken.
"""

import asyncio
import bisect
import json
import logging
import time
import uuid

from zuul_registry.drivers import base as driver_base
from zuul_registry.storage import errors, paths, upload_hashes

log = logging.getLogger('zuul_registry.storage.uploads')

# Seconds between two rewrites of _alive while a chunk streams in.
ALIVE_INTERVAL = 60
# How long a completion waits for a chunk being appended to: tries and
# the pause between them, seconds.
_FREEZE_ATTEMPTS = 20
_FREEZE_PAUSE = 0.05


class Uploads:

    def __init__(self, driver, blobs):
        self.driver = driver
        self.blobs = blobs
        self._hashes = upload_hashes.RunningHashes()

    async def start(self, repository):
        # 122 random bits from os.urandom: unguessable.
        upload_id = str(uuid.uuid4())
        info = {'repository': repository.name, 'started': time.time()}
        if self.blobs.catalog is not None:
            # Garbage collection finds namespaces through their markers.
            await self.blobs.catalog.remember(repository.namespace)
        await self.driver.put(paths.upload_info(repository.namespace,
                                                upload_id),
                              json.dumps(info).encode('utf8'))
        log.info('Upload %s started for %s', upload_id, repository)
        return upload_id

    async def size(self, repository, upload_id):
        """The upload's current size; BlobUploadUnknown if not ours."""
        await self._check_owner(repository, upload_id)
        return await self._size(repository.namespace, upload_id)

    async def stored_size(self, namespace, upload_id):
        """How many bytes of the upload are stored; None once it is
        completed or cancelled (for readers of a fill of another
        process, which own no upload)."""
        if await self.driver.stat(paths.upload_info(namespace,
                                                    upload_id)) is None:
            return None
        try:
            return await self._size(namespace, upload_id)
        except errors.UploadUnknown:
            return None

    async def append(self, repository, upload_id, body, *, offset=None,
                     final=False):
        """Store the `body` chunks at the end of the upload; return size.

        `offset`, when the client gave one, must be the current size.
        `final`: the body ends the upload (a completion's last chunk); a
        chunk grown in place is frozen with it, so that a twin request
        cannot add the same bytes again before the completion checks.
        """
        await self._check_owner(repository, upload_id)
        namespace = repository.namespace
        size, last, last_start = await self._end(namespace, upload_id)
        if offset is not None and offset != size:
            raise errors.UploadOffsetMismatch(
                'chunk starts at %d but upload %s has %d bytes'
                % (offset, upload_id, size), size=size)
        hasher = self._hashes.hasher_at(upload_id, size)
        alive = asyncio.create_task(self._keep_alive(namespace, upload_id))
        try:
            body = await _skip_if_empty(body)
            if body is None:
                return size
            if last is not None and self.driver.can_append:
                # Grow the last chunk in place: completion is a rename.
                written = await self.driver.append(
                    last, upload_hashes.hashing(body, hasher),
                    offset=size - last_start, freeze=final) \
                    - (size - last_start)
            else:
                written = await self.driver.write(
                    paths.upload_chunk(namespace, upload_id, size),
                    upload_hashes.hashing(body, hasher), exclusive=True,
                    frozen=final)
        except (driver_base.AlreadyExists, driver_base.AppendConflict):
            current = await self._size(namespace, upload_id)
            raise errors.UploadOffsetMismatch(
                'another request wrote at offset %d first, or the upload '
                'is being completed' % size, size=current) from None
        except driver_base.ObjectNotFound:
            raise errors.UploadUnknown('upload %s completed or cancelled '
                                       'meanwhile' % upload_id) from None
        finally:
            alive.cancel()
        if await self.driver.stat(paths.upload_info(namespace,
                                                    upload_id)) is None:
            # Collected or cancelled while the chunk streamed in.
            await self.driver.delete(paths.upload(namespace, upload_id))
            raise errors.UploadUnknown('upload %s was removed while a '
                                       'chunk was written' % upload_id)
        self._hashes.remember(upload_id, size + written, hasher)
        log.debug('Upload %s of %s: %d bytes at offset %d', upload_id,
                  repository, written, size)
        return size + written

    async def complete(self, repository, upload_id, digest, body=None, *,
                       on_verified=None):
        """Append a final chunk, verify `digest`, publish the blob.

        `on_verified` is called once the digest is found right, before
        the blob is committed.
        """
        if body is not None:
            await self.append(repository, upload_id, body, final=True)
        else:
            await self._check_owner(repository, upload_id)
        namespace = repository.namespace
        await self._freeze(namespace, upload_id)
        parts, size = await self._parts(namespace, upload_id)
        try:
            actual = self._hashes.finished(upload_id, size, digest)
            if actual is None:
                actual = await self._rehash(parts, digest)
        except driver_base.ObjectNotFound:
            actual = None
        if actual != digest.hex:
            # Chunks that vanished while we hashed were taken by a
            # completion racing this one: it won, this one is unknown.
            if actual is None or await self.driver.stat(paths.upload_info(
                    namespace, upload_id)) is None or \
                    (await self._parts(namespace, upload_id))[0] != parts:
                raise errors.UploadUnknown('upload %s completed or '
                                           'cancelled meanwhile' % upload_id)
            await self.cancel(repository, upload_id)
            log.info('Upload %s of %s: digest mismatch, discarded',
                     upload_id, repository)
            raise errors.DigestMismatch(
                'upload has digest %s:%s, not %s'
                % (digest.algorithm, actual, digest))
        if on_verified is not None:
            on_verified()
        # Even a failed commit may consume chunks: a retry must not trust
        # the hash of what it finds then.
        self._hashes.forget(upload_id)
        # Its _info goes first: a completion racing this one that finds
        # the chunks gone then knows it lost, and is not a digest error.
        await self.driver.delete(paths.upload_info(namespace, upload_id))
        try:
            await self.blobs.commit(repository, digest, parts)
        except driver_base.ObjectNotFound:
            raise errors.UploadUnknown('upload %s completed or cancelled '
                                       'meanwhile' % upload_id) from None
        await self.driver.delete(paths.upload(namespace, upload_id))
        log.info('Upload %s of %s completed as %s (%d bytes)', upload_id,
                 repository, digest, size)
        return size

    async def read(self, namespace, upload_id, *, offset, length):
        """Yield the upload's stored bytes [offset, offset + length),
        for a fill reading back what it stored while it goes on.
        ObjectNotFound if they are not all there (any more)."""
        chunks = paths.upload_chunks(namespace, upload_id)
        names = await self.driver.list(chunks)
        starts = [paths.chunk_offset(name) for name in names]
        index = bisect.bisect_right(starts, offset) - 1
        position, end = offset, offset + length
        while position < end:
            if index < 0 or index >= len(names):
                raise driver_base.ObjectNotFound('upload %s bytes at %d'
                                                 % (upload_id, position))
            start = starts[index]
            stop = end if index + 1 == len(names) \
                else min(end, starts[index + 1])
            async for data in self.driver.read(
                    chunks + '/' + names[index], offset=position - start,
                    length=stop - position):
                position += len(data)
                yield data
            if position < stop:   # the chunk was shorter
                raise driver_base.ObjectNotFound('upload %s bytes at %d'
                                                 % (upload_id, position))
            index += 1

    async def cancel(self, repository, upload_id):
        await self._check_owner(repository, upload_id)
        await self.driver.delete(paths.upload(repository.namespace,
                                              upload_id))
        self._hashes.forget(upload_id)
        log.info('Upload %s of %s cancelled', upload_id, repository)

    # -- internals --------------------------------------------------------

    async def _keep_alive(self, namespace, upload_id):
        """Rewrite _alive every ALIVE_INTERVAL while a chunk streams in
        (slowly, perhaps: the driver may see no byte for a long time)."""
        while True:
            await asyncio.sleep(ALIVE_INTERVAL)
            try:
                await self.driver.put(
                    paths.upload_alive(namespace, upload_id), b'')
            except driver_base.DriverError as e:
                log.warning('Upload %s: cannot mark it alive: %s',
                            upload_id, e)

    async def _freeze(self, namespace, upload_id):
        """Stop appends to the last chunk before it is verified and
        handed over: no byte may be added to it after the hash."""
        if not self.driver.can_append:
            return
        for attempt in range(_FREEZE_ATTEMPTS):
            size, last, _ = await self._end(namespace, upload_id)
            if last is None:
                return
            try:
                await self.driver.freeze(last)
                return
            except driver_base.AppendConflict:
                # Another completion freezing it holds the lock for an
                # instant; an append, for as long as its body lasts.
                await asyncio.sleep(_FREEZE_PAUSE)
            except driver_base.ObjectNotFound:
                raise errors.UploadUnknown(
                    'upload %s completed or cancelled meanwhile'
                    % upload_id) from None
        raise errors.UploadOffsetMismatch(
            'upload %s is still being written to' % upload_id, size=size)

    async def _check_owner(self, repository, upload_id):
        try:
            data = await self.driver.get(
                paths.upload_info(repository.namespace, upload_id))
            owner = json.loads(data)['repository']
        except (driver_base.ObjectNotFound, ValueError, KeyError):
            owner = None
        if owner != repository.name:
            raise errors.UploadUnknown('upload %s unknown to %s'
                                       % (upload_id, repository))

    async def _size(self, namespace, upload_id):
        return (await self._end(namespace, upload_id))[0]

    async def _end(self, namespace, upload_id):
        """The upload's size, its last chunk and where that starts (None
        and 0 when it has none)."""
        chunks = paths.upload_chunks(namespace, upload_id)
        names = await self.driver.list(chunks)
        if not names:
            return 0, None, 0
        last = chunks + '/' + names[-1]
        found = await self.driver.stat(last)
        if found is None:   # completed or cancelled meanwhile
            raise errors.UploadUnknown('upload %s is gone' % upload_id)
        start = paths.chunk_offset(names[-1])
        return start + found.size, last, start

    async def _parts(self, namespace, upload_id):
        """The paths of the upload's chunks and its size, once checked
        that the chunks follow each other from offset 0."""
        chunks = paths.upload_chunks(namespace, upload_id)
        names = await self.driver.list(chunks)
        parts = [chunks + '/' + name for name in names]
        stats = await asyncio.gather(*[self.driver.stat(part)
                                       for part in parts])
        size = 0
        for name, stat in zip(names, stats):
            if stat is None or paths.chunk_offset(name) != size:
                # Completed, cancelled, or consumed by a failed completion.
                raise errors.UploadUnknown('upload %s lost chunks at %d'
                                           % (upload_id, size))
            size += stat.size
        return parts, size

    async def _rehash(self, parts, digest):
        hasher = digest.hasher()
        for part in parts:
            async for data in self.driver.read(part):
                hasher.update(data)
        return hasher.hexdigest()


async def _skip_if_empty(body):
    """`body` again, or None when it yields no bytes at all."""
    iterator = body.__aiter__()
    async for first in iterator:
        if first:
            return _prepend(first, iterator)
    return None


async def _prepend(first, rest):
    yield first
    del first   # no chunk is held while the next one arrives
    async for chunk in rest:
        yield chunk
        del chunk
