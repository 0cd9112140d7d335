"""The running hashes of uploads, kept in memory by the process that was
fed their bytes in order (Python cannot save a hash object)."""

import asyncio
import collections

from zuul_registry import oci

# Hash states kept; the oldest are forgotten first (they are recomputed
# from storage if their upload ever completes).
MAX_STATES = 4096
# Chunks at least this large are hashed off the event loop.
THREAD_HASH_SIZE = 256 * 1024


class RunningHashes:

    def __init__(self):
        self._states = collections.OrderedDict()  # id -> (offset, hasher)

    def hasher_at(self, upload_id, offset):
        """A sha256 hasher holding bytes [0, offset), or None."""
        if offset == 0:
            return oci.Digest('sha256', '').hasher()
        state = self._states.get(upload_id)
        if state is None or state[0] != offset:
            return None
        # Hash into a copy: a failed chunk must not spoil the state.
        return state[1].copy()

    def remember(self, upload_id, offset, hasher):
        if hasher is None:
            self.forget(upload_id)
            return
        self._states[upload_id] = (offset, hasher)
        self._states.move_to_end(upload_id)
        while len(self._states) > MAX_STATES:
            self._states.popitem(last=False)

    def forget(self, upload_id):
        self._states.pop(upload_id, None)

    def finished(self, upload_id, size, digest):
        """The hex digest of the upload's `size` bytes, if known here."""
        if size == 0:
            return digest.hasher().hexdigest()
        state = self._states.get(upload_id)
        if (state is None or state[0] != size
                or state[1].name != digest.algorithm):
            return None
        return state[1].hexdigest()


async def hashing(chunks, hasher):
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
    pending = None
    try:
        async for chunk in chunks:
            if pending is not None:
                await pending
                pending = None
            if len(chunk) >= THREAD_HASH_SIZE:
                pending = loop.run_in_executor(None, hasher.update, chunk)
            else:
                hasher.update(chunk)
            yield chunk
            del chunk   # the thread has its own reference while it hashes
        if pending is not None:
            await pending
    finally:
        if pending is not None and not pending.done():
            # Stopped early: the hasher is thrown away, but let the thread
            # finish with it before anyone could look at it again.
            await asyncio.shield(pending)
