"""A fill: one blob copied from an upstream registry into storage, read
by any number of clients while it arrives.

The fill stores the upstream's bytes as an ordinary upload (so garbage
collection, keep-alive and digest verification are the ones every push
gets), in segments of SEGMENT bytes: each segment is one upload chunk,
visible once written whole.  The pieces of the segment being written are
also kept in memory (as received, never copied), so a reader never waits
for a segment to finish:

- bytes of finished segments are read back from the upload;
- bytes of the current segment come from memory;
- past the end of what has arrived, the reader waits for more.

Once every byte is in, the upload is completed: the digest verified and
the blob committed.  A reader gets the blob's last byte once the digest
is verified (the commit, a copy and an fsync, need not delay it), and
finishes from the blob once committed.  If the
upstream breaks off, the size or the digest is wrong, or storage fails,
the upload is cancelled, nothing is committed and every reader raises:
a client whose answer began sees its connection cut, never a body that
looks complete.

Memory stays bounded: one segment per fill, whatever the blob's size and
however many clients read it.  The fill runs on its own, whether or not
the client that started it stays.
"""

import asyncio
import bisect
import logging

from zuul_registry.drivers import base as driver_base
from zuul_registry.storage import errors

log = logging.getLogger('zuul_registry.storage.fills')

SEGMENT = 4 * 1024 * 1024


class FillFailed(errors.StorageError):
    """The fill broke off; what was read of it must not be trusted."""


class IncomingBlob:
    """A blob still coming in: `size` (None when unknown) and
    `read(offset=, length=)`, which yields its bytes as they arrive and
    raises FillFailed if they turn out wrong or stop."""


class Fill(IncomingBlob):

    def __init__(self, storage, repository, digest, size, *, source,
                 on_started=None):
        self.storage = storage
        self.repository = repository
        self.digest = digest
        self.size = size          # from the upstream; None when unknown
        self.source = source      # str: where the bytes come from, for logs
        # Called with the upload id and size once the upload exists.
        self._on_started = on_started
        self.finished = False
        self.error = None
        self.verified = False     # all bytes in, and the digest right
        self._upload_id = None
        self._tail = []           # pieces of the segment being written
        self._tail_starts = []    # the blob offset of each piece
        self._tail_offset = 0
        self._tail_size = 0
        self._eof = False
        self._changed = asyncio.Event()

    # -- the writer ---------------------------------------------------------

    async def run(self, chunks):
        """Store `chunks` (the upstream's body) and commit the blob."""
        uploads = self.storage.uploads
        repository = self.repository
        upload_id = None
        chunks = chunks.__aiter__()
        try:
            upload_id = self._upload_id = await uploads.start(repository)
            if self._on_started is not None:
                self._on_started(upload_id, self.size)
            while not self._eof:
                end = await uploads.append(repository, upload_id,
                                           self._segment(chunks))
                self._tail_offset = end
                self._tail, self._tail_starts = [], []
                self._tail_size = 0
                self._notify()
            total = self._tail_offset
            if self.size is not None and total != self.size:
                raise FillFailed('%s sent %d bytes of blob %s, not the %d '
                                 'it announced' % (self.source, total,
                                                   self.digest, self.size))
            self.size = total
            await uploads.complete(repository, upload_id, self.digest,
                                   on_verified=self._verified)
            upload_id = None
            self.finished = True
            log.info('Blob %s of %s filled from %s (%d bytes)', self.digest,
                     repository, self.source, total)
        except Exception as e:
            self.error = e
            log.warning('Blob %s of %s: fill from %s failed: %s',
                        self.digest, repository, self.source, e)
            if upload_id is not None:
                await self._discard(upload_id)
        except BaseException as e:   # cancelled: the server stops
            self.error = e
            raise
        finally:
            self._notify()

    async def _segment(self, chunks):
        """The next SEGMENT bytes of `chunks`, remembered as they pass."""
        length = 0
        while length < SEGMENT:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                self._eof = True
                return
            if not chunk:
                continue
            self._tail_starts.append(self._tail_offset + self._tail_size)
            self._tail.append(chunk)
            self._tail_size += len(chunk)
            length += len(chunk)
            self._notify()
            yield chunk

    async def _discard(self, upload_id):
        try:
            await self.storage.uploads.cancel(self.repository, upload_id)
        except Exception as e:   # garbage collection takes it later
            log.info('Fill upload %s not removed: %s', upload_id, e)

    def _verified(self):
        self.verified = True
        self._notify()

    def _notify(self):
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # -- the readers --------------------------------------------------------

    async def read(self, *, offset=0, length=None):
        """Yield the blob's bytes from `offset`, as they arrive."""
        position = offset
        end = None if length is None else offset + length
        if end is not None and position >= end:
            # No byte to hold back (an empty blob): no answer before the
            # fill is verified, so a wrong one is never an empty 200.
            while not self.finished and self.error is None:
                await self._changed.wait()
            if self.error is not None:
                raise FillFailed('blob %s from %s broke off: %s'
                                 % (self.digest, self.source, self.error))
            return
        while end is None or position < end:
            changed = self._changed
            if self.error is not None:
                raise FillFailed('blob %s from %s broke off: %s'
                                 % (self.digest, self.source, self.error))
            if self.finished:
                async for data in self._read_blob(position, end):
                    yield data
                return
            stored = position < self._tail_offset
            if stored:
                stop = self._readable(self._tail_offset, end)
                if stop > position:
                    try:
                        async for data in self.storage.uploads.read(
                                self.repository.namespace, self._upload_id,
                                offset=position, length=stop - position):
                            position += len(data)
                            yield data
                    except driver_base.ObjectNotFound:
                        # Consumed by the completion, or discarded: wait
                        # until the fill says which.
                        if not self.finished and self.error is None:
                            await changed.wait()
                    continue
            tail_end = self._tail_offset + self._tail_size
            if not stored and position < tail_end:
                stop = self._readable(tail_end, end)
                if stop > position:
                    data = self._tail_piece(position, stop)
                    position += len(data)
                    yield data
                    continue
            # Past what arrived, or at the blob's last byte (or all
            # arrived, and the completion is under way).
            await changed.wait()

    def _readable(self, stop, end):
        """How far a reader may read now: to `stop` (what arrived), not
        past `end`, and never the blob's last byte before the fill is
        verified and committed: a client must not get a body that looks
        complete from a fill that then fails (wrong digest, short)."""
        if end is not None:
            stop = min(stop, end)
        if self.size is not None and not self.verified:
            stop = min(stop, self.size - 1)
        return stop

    def _tail_piece(self, position, stop):
        """The received bytes from `position` on, up to `stop`, within
        one piece: a view of it, not a copy."""
        index = bisect.bisect_right(self._tail_starts, position) - 1
        piece, start = self._tail[index], self._tail_starts[index]
        return memoryview(piece)[position - start:stop - start]

    async def _read_blob(self, position, end):
        blobs = self.storage.blobs
        source = await blobs.source(self.repository, self.digest)
        if position >= source.size:
            return
        length = None if end is None else end - position
        async for data in blobs.read(source, offset=position, length=length):
            yield data
