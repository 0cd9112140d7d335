"""Start the disk writes of a file being written, without waiting.

A blob is fsynced once, when it is complete.  Left alone, the kernel
holds its pages until that fsync (or its own flusher, seconds later), so
the fsync of a 256 MiB push waits for all of it.  Asking for writeback
of every STEP bytes as they are written (sync_file_range with
SYNC_FILE_RANGE_WRITE: start, do not wait) overlaps the disk with the
network, and leaves the final fsync little to do.

Measured (2 cores, ext4 on a virtio disk, 256 MiB, 8 rounds
interleaved, medians): a monolithic push 510 -> 600 MiB/s, a push in
8 MiB PATCHes 411 -> 462.

Where libc has no sync_file_range, or the file system refuses it
(tmpfs does nothing, some answer EINVAL), writes go on as before: it is
only a hint, and the fsync is what makes a blob durable.
"""

import ctypes
import ctypes.util

from zuul_registry.drivers import filesystem_append

SYNC_FILE_RANGE_WRITE = 2
# Bytes written between two requests for writeback.
STEP = 8 * 1024 * 1024


def _load():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6',
                           use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64,
                     ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


sync_file_range = _load()


class Writeback:
    """Writes to the file `fd` from `offset` on (`write`, off the event
    loop), asking for the writeback of every STEP bytes."""

    def __init__(self, fd, offset=0):
        self.fd = fd
        self.started = offset
        self.written = offset

    def write(self, data):
        filesystem_append.write(self.fd, data)
        self.wrote(len(data))

    def wrote(self, count):
        self.written += count
        if sync_file_range is not None and \
                self.written - self.started >= STEP:
            # The answer does not matter: a refusal leaves it to fsync.
            sync_file_range(self.fd, self.started,
                            self.written - self.started,
                            SYNC_FILE_RANGE_WRITE)
            self.started = self.written
