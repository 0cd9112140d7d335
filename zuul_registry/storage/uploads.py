"""Blob uploads: chunks stored as they stream in, verified on completion.

Each chunk a client sends becomes its own object, written exclusively at
its offset, so two requests racing for the same offset cannot both win
and a chunk is never half-visible.  The upload's size is the end of its
last chunk, read from storage, so any server process sharing the storage
can take the next chunk, also after a restart.

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
import collections
import json
import logging
import time
import uuid

from zuul_registry import oci
from zuul_registry.drivers import base as driver_base
from zuul_registry.storage import errors, paths

log = logging.getLogger('zuul_registry.storage.uploads')

# Running hashes kept per process; the oldest are forgotten first (they
# are recomputed from storage if their upload ever completes).
_MAX_HASH_STATES = 4096
# Seconds between two rewrites of _alive while a chunk streams in.
ALIVE_INTERVAL = 60
# Chunks at least this large are hashed off the event loop.
_THREAD_HASH_SIZE = 256 * 1024


class Uploads:

    def __init__(self, driver, blobs):
        self.driver = driver
        self.blobs = blobs
        self._hashes = collections.OrderedDict()  # id -> (offset, hasher)

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

    async def append(self, repository, upload_id, body, *, offset=None):
        """Store the `body` chunks at the end of the upload; return size.

        `offset`, when the client gave one, must be the current size.
        """
        size = await self.size(repository, upload_id)
        if offset is not None and offset != size:
            raise errors.UploadOffsetMismatch(
                'chunk starts at %d but upload %s has %d bytes'
                % (offset, upload_id, size), size=size)
        hasher = self._hasher_at(upload_id, size)
        namespace = repository.namespace
        alive = asyncio.create_task(self._keep_alive(namespace, upload_id))
        try:
            body = await _skip_if_empty(body)
            if body is None:
                return size
            written = await self.driver.write(
                paths.upload_chunk(namespace, upload_id, size),
                _hashing(body, hasher), exclusive=True)
        except driver_base.AlreadyExists:
            current = await self._size(namespace, upload_id)
            raise errors.UploadOffsetMismatch(
                'another chunk at offset %d won the race' % size,
                size=current) from None
        finally:
            alive.cancel()
        if await self.driver.stat(paths.upload_info(namespace,
                                                    upload_id)) is None:
            # Collected or cancelled while the chunk streamed in.
            await self.driver.delete(paths.upload(namespace, upload_id))
            raise errors.UploadUnknown('upload %s was removed while a '
                                       'chunk was written' % upload_id)
        self._remember(upload_id, size + written, hasher)
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
            await self.append(repository, upload_id, body)
        else:
            await self._check_owner(repository, upload_id)
        namespace = repository.namespace
        parts, size = await self._parts(namespace, upload_id)
        try:
            actual = self._finished_hash(upload_id, size, digest)
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
        self._hashes.pop(upload_id, None)
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

    async def cancel(self, repository, upload_id):
        await self._check_owner(repository, upload_id)
        await self.driver.delete(paths.upload(repository.namespace,
                                              upload_id))
        self._hashes.pop(upload_id, None)
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
        chunks = paths.upload_chunks(namespace, upload_id)
        names = await self.driver.list(chunks)
        if not names:
            return 0
        last = await self.driver.stat(chunks + '/' + names[-1])
        if last is None:   # completed or cancelled meanwhile
            raise errors.UploadUnknown('upload %s is gone' % upload_id)
        return paths.chunk_offset(names[-1]) + last.size

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

    def _hasher_at(self, upload_id, offset):
        """A sha256 hasher holding bytes [0, offset), or None."""
        if offset == 0:
            return oci.Digest('sha256', '').hasher()
        state = self._hashes.get(upload_id)
        if state is None or state[0] != offset:
            return None
        # Hash into a copy: a failed chunk must not spoil the state.
        return state[1].copy()

    def _remember(self, upload_id, offset, hasher):
        if hasher is None:
            self._hashes.pop(upload_id, None)
            return
        self._hashes[upload_id] = (offset, hasher)
        self._hashes.move_to_end(upload_id)
        while len(self._hashes) > _MAX_HASH_STATES:
            self._hashes.popitem(last=False)

    def _finished_hash(self, upload_id, size, digest):
        if size == 0:
            return digest.hasher().hexdigest()
        state = self._hashes.get(upload_id)
        if (state is None or state[0] != size
                or state[1].name != digest.algorithm):
            return None
        return state[1].hexdigest()

    async def _rehash(self, parts, digest):
        hasher = digest.hasher()
        for part in parts:
            async for data in self.driver.read(part):
                hasher.update(data)
        return hasher.hexdigest()


async def _hashing(chunks, hasher):
    """Pass `chunks` through, hashing them on the way.

    A large chunk is hashed in a thread (hashlib lets go of the GIL) while
    the driver stores it, so hashing costs the event loop nothing; the
    next chunk waits for it, as the hash must see the bytes in order.
    """
    if hasher is None:
        async for chunk in chunks:
            yield chunk
        return
    loop = asyncio.get_running_loop()
    hashing = None
    try:
        async for chunk in chunks:
            if hashing is not None:
                await hashing
                hashing = None
            if len(chunk) >= _THREAD_HASH_SIZE:
                hashing = loop.run_in_executor(None, hasher.update, chunk)
            else:
                hasher.update(chunk)
            yield chunk
        if hashing is not None:
            await hashing
    finally:
        if hashing is not None and not hashing.done():
            # Stopped early: the hasher is thrown away, but let the thread
            # finish with it before anyone could look at it again.
            await asyncio.shield(hashing)


async def _skip_if_empty(body):
    """`body` again, or None when it yields no bytes at all."""
    iterator = body.__aiter__()
    async for first in iterator:
        if first:
            return _prepend(first, iterator)
    return None


async def _prepend(first, rest):
    yield first
    async for chunk in rest:
        yield chunk
