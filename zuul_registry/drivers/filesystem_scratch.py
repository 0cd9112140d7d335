"""The filesystem driver's scratch area, ROOT/.tmp, shared by every
driver on one root (worker processes, several servers on one host).

Each driver writes its scratch files in a directory of its own,
ROOT/.tmp/<id>/, and holds an exclusive flock on ROOT/.tmp/<id>.lock for
its whole life.  The kernel releases a flock when its process dies,
however it dies, so a lock that can be taken means the directory's owner
is gone: the directory is removed at once, whatever its age.  Nothing is
left that a crashed process could go on holding.  The scratch of a live
owner is only removed file by file, when older than the cut-off (a write
stalled that long is given up), as are the loose files older versions
wrote directly in ROOT/.tmp.

So that no collector ever takes a live owner's directory, the owner
creates and locks <id>.lock before it makes <id>/, and collectors judge
directories only, by their lock.  A lock file without its directory (its
owner died between the two steps) is removed once the fixed cut-off has
passed, which no owner takes to make its directory.
"""

import errno
import fcntl
import logging
import os
import shutil
import time
import uuid

from zuul_registry.drivers import base

log = logging.getLogger('zuul_registry.drivers.filesystem')

LOCK = '.lock'
# Scratch files of a live owner older than this are left from a stalled
# write; so are loose files and lock files without a directory.
STALE_SECONDS = 3600


class Scratch:
    """This driver's scratch directory, locked while the driver lives."""

    def __init__(self, area):
        """Remove what dead processes left (first: a full disk may need
        the space), then make this driver's directory."""
        self.area = area             # ROOT/.tmp
        self.id = uuid.uuid4().hex
        self.directory = os.path.join(area, self.id)
        self._lock = None
        try:
            os.makedirs(area, exist_ok=True)
            self.collect(time.time() - STALE_SECONDS, dry_run=False)
            self._lock = os.open(self.directory + LOCK,
                                 os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self._hold_lock()
            os.mkdir(self.directory)
        except OSError as e:
            self.close()
            raise base.DriverError('cannot make scratch space in %s: %s' % (
                area, e.strerror or e)) from e

    def _hold_lock(self):
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            # Others cannot take it either, so they treat this scratch
            # as live; only the cut-off removes it after a crash.
            log.warning('Cannot lock %s (%s); scratch files of crashed '
                        'processes will be removed only by age',
                        self.directory + LOCK, os.strerror(e.errno))

    def close(self):
        """Remove the directory, then unlock: called once no write runs."""
        if self._lock is None:
            return
        shutil.rmtree(self.directory, ignore_errors=True)
        _unlink_quietly(self.directory + LOCK)
        os.close(self._lock)
        self._lock = None

    def collect(self, before, *, dry_run):
        """Remove dead owners' scratch, and scratch files written before
        `before`; return the Leftovers."""
        found = []
        for entry in _entries(self.area):
            if entry.is_dir(follow_symlinks=False):
                found.extend(self._collect_directory(entry, before,
                                                     dry_run))
            elif entry.name.endswith(LOCK):
                found.extend(self._collect_lock(entry, dry_run))
            else:
                found.extend(_collect_files(self.area, [entry], before,
                                            dry_run))
        return found

    def _collect_directory(self, entry, before, dry_run):
        lock = None if entry.name == self.id else _take(entry.path + LOCK)
        if lock is None:
            # A live owner, this driver included: stale files only.
            return _collect_files(self.area, _entries(entry.path), before,
                                  dry_run)
        try:
            size = _tree_size(entry.path)
            if not dry_run:
                shutil.rmtree(entry.path, ignore_errors=True)
                _unlink_quietly(entry.path + LOCK)
                log.info('Removed the scratch of a process that died: '
                         '%s (%d bytes)', entry.path, size)
        finally:
            os.close(lock)
        return [base.Leftover(_name(self.area, entry.path) + '/', size)]

    def _collect_lock(self, entry, dry_run):
        directory = entry.path[:-len(LOCK)]
        if os.path.lexists(directory) or not _older(
                entry, time.time() - STALE_SECONDS):
            return []
        lock = _take(entry.path)
        if lock is None:
            return []
        try:
            if not dry_run:
                _unlink_quietly(entry.path)
        finally:
            os.close(lock)
        return [base.Leftover(_name(self.area, entry.path), 0)]


def _entries(directory):
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except FileNotFoundError:
        return []


def _collect_files(area, entries, before, dry_run):
    found = []
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
            if st.st_mtime < before:
                if not dry_run:
                    os.unlink(entry.path)
                found.append(base.Leftover(_name(area, entry.path),
                                           st.st_size))
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            pass   # not ours to judge
    return found


def _take(path):
    """An open descriptor holding the flock of `path`, or None while
    another holds it (or it cannot be locked, or is gone)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            log.debug('Cannot lock %s: %s', path, os.strerror(e.errno))
        return None
    return fd


def _older(entry, before):
    try:
        return entry.stat(follow_symlinks=False).st_mtime < before
    except FileNotFoundError:
        return False


def _tree_size(directory):
    size = 0
    for parent, _, files in os.walk(directory):
        for name in files:
            try:
                size += os.lstat(os.path.join(parent, name)).st_size
            except FileNotFoundError:
                pass
    return size


def _name(area, path):
    """A leftover's name: its path from ROOT, as '.tmp/...'."""
    return os.path.relpath(path, os.path.dirname(area)).replace(os.sep, '/')


def _unlink_quietly(name):
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass
