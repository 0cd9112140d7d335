"""Fills shared by the worker processes of one server.

Within a process, requests for a blob being filled read the one Fill
(storage/fills.py).  Each worker has its own event loop and memory, so
without more every worker would fetch the same blob once.  The workers
of one server share a directory, made by the supervisor, in which:

- ``KEY.lock``: the worker filling the blob holds an exclusive flock on
  it from before it asks the upstream until the fill has ended.  The
  kernel releases a flock when its process dies, so no lock outlives
  its holder;
- ``KEY.json``: that worker's pid and the fill's upload id and announced
  size, written once the upload exists and removed when the fill ends
  (committed or discarded), before the lock is released.

A worker asking for a blob whose lock another one holds follows that
fill: it reads the fill's upload from storage as it grows, holds back
the upload's last stored byte until the blob is committed (the commit
comes only after the digest was verified), and reads the rest from the
blob.  If the fill's record goes away (or its process dies) and no blob
was committed, the fill failed and the follower raises FillFailed: a
client whose answer began sees its connection cut, as with a fill of
its own process.  A follower is at most one upload chunk (fills.SEGMENT)
behind the fill where the driver writes chunks whole (Swift, S3); on the
filesystem the chunk grows in place and the follower keeps close.

The lock file is unlinked by its holder before release; whoever then
locks the unlinked file notices (its inode is no longer the path's) and
tries again, so two workers never both lead.
"""

import asyncio
import errno
import fcntl
import hashlib
import json
import logging
import os

from zuul_registry.drivers import base as driver_base
from zuul_registry.storage import errors
from zuul_registry.storage.fills import FillFailed, IncomingBlob

log = logging.getLogger('zuul_registry.storage.fill_sharing')

# Seconds between two looks at a followed fill that did not grow: the
# first, and the longest (object stores count list requests).
POLL_FIRST = 0.005
POLL_LONGEST = 0.1


class FillDirectory:
    """The directory the workers of one server share their fills in."""

    def __init__(self, path):
        self.path = path

    def _file(self, key, suffix):
        name = hashlib.sha256(repr(key).encode('utf8')).hexdigest()
        return os.path.join(self.path, name + suffix)

    def lead(self, key):
        """A Leadership if this process may fill `key` now, else None
        (another one is filling it)."""
        path = self._file(key, '.lock')
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    return None
                raise
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(fd).st_ino:
                return Leadership(self, key, fd)
            os.close(fd)   # a released leader's unlinked file: again

    def announced(self, key):
        """The record of the fill of `key` if its process lives."""
        try:
            with open(self._file(key, '.json'), 'rb') as f:
                record = json.load(f)
            os.kill(record['pid'], 0)
        except (OSError, ValueError, KeyError, TypeError):
            # Not written yet, removed, unreadable, or left by a dead
            # process (a new leader overwrites it).
            return None
        return record


class Leadership:
    """This process fills the blob: its record and its lock."""

    def __init__(self, directory, key, fd):
        self.directory = directory
        self.key = key
        self.handed_over = False   # to the fill that releases it
        self._fd = fd

    def announce(self, upload_id, size):
        """Tell the other workers where the fill's bytes are."""
        path = self.directory._file(self.key, '.json')
        temporary = '%s.%d' % (path, os.getpid())
        with open(temporary, 'w') as f:
            json.dump({'pid': os.getpid(), 'upload': upload_id,
                       'size': size}, f)
        os.replace(temporary, path)

    def release(self):
        if self._fd is None:
            return
        for suffix in ('.json', '.lock'):
            try:
                os.unlink(self.directory._file(self.key, suffix))
            except FileNotFoundError:
                pass
        os.close(self._fd)   # releases the flock
        self._fd = None


class FollowedFill(IncomingBlob):
    """A blob another worker is filling, read as it arrives."""

    def __init__(self, storage, directory, key, repository, digest, record):
        self.storage = storage
        self.directory = directory
        self.key = key
        self.repository = repository
        self.digest = digest
        self.size = record['size']
        self.upload_id = record['upload']
        self.source = 'worker %d' % record['pid']

    async def read(self, *, offset=0, length=None):
        position = offset
        end = None if length is None else offset + length
        uploads = self.storage.uploads
        namespace = self.repository.namespace
        pause = POLL_FIRST
        while True:
            stored = await uploads.stored_size(namespace, self.upload_id)
            # The last stored byte waits for the commit: it may be the
            # blob's last, and the digest is not verified yet.
            stop = -1 if stored is None else stored - 1
            if end is not None:
                stop = min(stop, end)
            if stop > position:
                try:
                    async for data in uploads.read(
                            namespace, self.upload_id, offset=position,
                            length=stop - position):
                        position += len(data)
                        yield data
                except driver_base.ObjectNotFound:
                    pass   # consumed by the commit, or discarded
                pause = POLL_FIRST
                continue
            # Nothing new in the upload: committed, failed, or slow.
            committed = await self._committed()
            if committed is not None:
                if end is None or position < end:
                    async for data in self.storage.blobs.read(
                            committed, offset=position,
                            length=None if end is None else end - position):
                        yield data
                return
            record = self.directory.announced(self.key)
            if record is None or record['upload'] != self.upload_id:
                # The fill ended; not committed (just looked), unless it
                # was in between.
                if await self._committed() is None:
                    raise FillFailed('blob %s: the fill of %s broke off'
                                     % (self.digest, self.source))
                continue
            await asyncio.sleep(pause)
            pause = min(pause * 2, POLL_LONGEST)

    async def _committed(self):
        try:
            return await self.storage.blobs.source(self.repository,
                                                   self.digest)
        except errors.BlobUnknown:
            return None


async def follow_or_lead(storage, directory, key, repository, digest):
    """Join another worker's fill of `key`, or lead one.

    Returns ('follow', FollowedFill) or ('lead', Leadership); waits
    while another worker holds the lock and has not announced its
    upload yet (it is asking the upstream).
    """
    pause = POLL_FIRST
    while True:
        leadership = directory.lead(key)
        if leadership is not None:
            return 'lead', leadership
        record = directory.announced(key)
        if record is not None:
            log.info('Blob %s of %s: following the fill of worker %d',
                     digest, repository, record['pid'])
            return 'follow', FollowedFill(storage, directory, key,
                                          repository, digest, record)
        await asyncio.sleep(pause)
        pause = min(pause * 2, POLL_LONGEST)
