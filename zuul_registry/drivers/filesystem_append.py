"""Appending to a file in place, safely across processes (blocking calls,
run in the filesystem driver's threads).

An append holds an exclusive flock on the file from start to end; the
kernel drops it when the process dies, so no lock outlives a crash.  With
the lock held it checks that the path still names the file it opened (a
completion may have renamed it into the blob store meanwhile: no byte
may land there) and that the file is not frozen, then writes at the end.
A frozen file has its write permission bits cleared: the mark lives with
the file, in every process, also after a restart.
"""

import errno
import fcntl
import os

from zuul_registry.drivers import base

_WRITE_BITS = 0o222


def _open_locked(full, flags):
    """An fd of `full` holding its exclusive lock, and its fstat."""
    try:
        fd = os.open(full, flags)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise base.ObjectNotFound(full) from None
    except PermissionError:
        # Not root: a frozen file cannot be opened for writing.
        raise base.AppendConflict('%s is frozen' % full) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise base.AppendConflict('%s: another append or freeze is '
                                      'under way' % full) from None
        opened = os.fstat(fd)
        try:
            named = os.stat(full)
        except FileNotFoundError:
            named = None
        if named is None or (named.st_dev, named.st_ino) != \
                (opened.st_dev, opened.st_ino):
            # Renamed or removed while we waited: not ours to touch.
            raise base.ObjectNotFound(full)
        return fd, opened
    except BaseException:
        os.close(fd)
        raise


def start(full, offset):
    """Open `full` for an append at `offset`: a locked fd at its end."""
    fd, opened = _open_locked(full, os.O_WRONLY)
    try:
        if not opened.st_mode & _WRITE_BITS:
            raise base.AppendConflict('%s is frozen' % full)
        if opened.st_size != offset:
            raise base.AppendConflict('%s holds %d bytes, not %d'
                                      % (full, opened.st_size, offset))
        os.lseek(fd, offset, os.SEEK_SET)
        return fd
    except BaseException:
        os.close(fd)
        raise


def write(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def finish(fd, offset, *, stored, freeze, sync):
    """End the append: cut back to `offset` unless `stored`, else frozen
    if asked, still under the lock.  Closing the fd releases the lock.
    No fsync otherwise: the freeze makes the file durable once, instead
    of every append waiting for the disk."""
    try:
        if not stored:
            os.ftruncate(fd, offset)
        elif freeze:
            _freeze(fd, sync)
    finally:
        os.close(fd)


def freeze(full, *, sync):
    """Freeze the file under its lock; its Stat."""
    fd, _ = _open_locked(full, os.O_RDONLY)
    try:
        return _freeze(fd, sync)
    finally:
        os.close(fd)


def _freeze(fd, sync):
    """Make the file durable (with `sync`), then clear its write bits."""
    if sync:
        os.fsync(fd)
    found = os.fstat(fd)
    os.fchmod(fd, found.st_mode & ~_WRITE_BITS & 0o7777)
    return base.Stat(size=found.st_size, mtime=found.st_mtime)


def clear_write_bits(f):
    """Freeze the file object `f` (its data already durable)."""
    found = os.fstat(f.fileno())
    os.fchmod(f.fileno(), found.st_mode & ~_WRITE_BITS & 0o7777)
