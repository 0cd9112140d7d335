"""Filesystem driver: objects are files under a root directory.

New objects are written in the driver's scratch directory under
ROOT/.tmp and published with link() or rename(), which are atomic on one
filesystem; file data is fsynced first, so even after a machine crash a
published object is never truncated.  `concat(consume=True)` of one part
renames it; of several, copies them and removes them.  `append` writes
in place under an flock (filesystem_append), so an upload grows in one
file and its completion is a rename.  Scratch a killed
process left behind is removed at startup and by `collect_leftovers`,
at once; that of live processes sharing the root only when an hour old
(filesystem_scratch tells them apart).
Blocking calls run in the driver's own thread pool, except reads the
page cache can answer at once (filesystem_reads).  A large file replaced
is freed in that pool afterwards (filesystem_release).
"""

import asyncio
import concurrent.futures
import errno
import functools
import logging
import os
import shutil
import stat
import uuid

from zuul_registry.drivers import (
    base, filesystem_append, filesystem_reads, filesystem_release,
    filesystem_scratch, filesystem_writeback)

log = logging.getLogger('zuul_registry.drivers.filesystem')

_TMP_DIR = '.tmp'


class FilesystemDriver(base.Driver):

    can_append = True

    def __init__(self, root, *, threads=16, fsync=True):
        self.root = os.path.abspath(root)
        self._scratch = filesystem_scratch.Scratch(
            os.path.join(self.root, _TMP_DIR))
        self.tmp = self._scratch.directory   # this driver's own
        self.fsync = fsync
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix='fs-driver')
        self._reads = filesystem_reads.CachedReads(self._run)
        self._release = filesystem_release.Release(self._new_tmp,
                                                   self._pool.submit)

    def _run(self, func, *args):
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._pool, func, *args)

    def _full(self, path):
        return os.path.join(self.root, *path.split('/'))

    def _new_tmp(self):
        return os.path.join(self.tmp, uuid.uuid4().hex)

    async def close(self):
        self._pool.shutdown(wait=True)
        self._scratch.close()

    # -- implementation ---------------------------------------------------

    async def _stat(self, path):
        return await self._run(self._stat_sync, self._full(path))

    @staticmethod
    def _stat_sync(full):
        try:
            st = os.stat(full)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISDIR(st.st_mode):
            return None   # a sub-tree, not an object
        return base.Stat(size=st.st_size, mtime=st.st_mtime)

    async def _get(self, path):
        return await self._run(self._get_sync, self._full(path))

    @staticmethod
    def _get_sync(full):
        try:
            with open(full, 'rb') as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise base.ObjectNotFound(full) from None

    async def _put(self, path, data):
        await self._run(self._put_sync, self._full(path), data)

    def _put_sync(self, full, data):
        tmp = self._new_tmp()
        try:
            with open(tmp, 'wb') as f:
                f.write(data)
                self._sync(f)
            self._publish(tmp, full, exclusive=False)
        finally:
            _unlink_quietly(tmp)

    async def _write(self, path, chunks, *, exclusive, frozen=False):
        full = self._full(path)
        tmp = self._new_tmp()
        f = await self._run(open, tmp, 'wb', 0)
        writeback = filesystem_writeback.Writeback(f.fileno())
        try:
            size = 0
            async for chunk in chunks:
                await self._run(writeback.write, chunk)
                size += len(chunk)
                del chunk   # not held while the next one arrives
            await self._run(self._sync, f)
            if frozen:
                await self._run(filesystem_append.clear_write_bits, f)
            await self._run(f.close)
            await self._run(self._publish, tmp, full, exclusive)
            return size
        finally:
            try:
                f.close()   # a full disk may fail the flush again
            finally:
                await self._run(_unlink_quietly, tmp)

    async def _append(self, path, chunks, *, offset, freeze):
        fd = await self._run(filesystem_append.start, self._full(path),
                             offset)
        size, stored = offset, False
        writeback = filesystem_writeback.Writeback(fd, offset)
        try:
            async for chunk in chunks:
                await self._run(writeback.write, chunk)
                size += len(chunk)
                del chunk
            stored = True
        finally:
            # Even if this task is cancelled: the fd and its lock must go.
            await asyncio.shield(self._run(functools.partial(
                filesystem_append.finish, fd, offset, stored=stored,
                freeze=freeze, sync=self.fsync)))
        return size

    async def _freeze(self, path):
        return await self._run(functools.partial(
            filesystem_append.freeze, self._full(path), sync=self.fsync))

    async def _concat(self, path, parts, *, consume):
        await self._run(self._concat_sync, self._full(path),
                        [self._full(part) for part in parts], consume)

    def _concat_sync(self, full, parts, consume):
        if consume and len(parts) == 1:
            # Hand the one part over: rename it.
            if not os.path.isfile(parts[0]):
                raise base.ObjectNotFound(parts[0])
            try:
                os.utime(parts[0])   # the object is new, whatever its age
                self._publish(parts[0], full, exclusive=False)
            except FileNotFoundError:
                raise base.ObjectNotFound(parts[0]) from None
            self._prune_empty_parents(parts[0])
            return
        tmp = self._new_tmp()
        try:
            if len(parts) == 1:
                # One part: share its inode instead of copying the bytes.
                try:
                    os.link(parts[0], tmp)
                except FileNotFoundError:
                    raise base.ObjectNotFound(parts[0]) from None
                os.utime(tmp)   # the blob is new, whatever the part's age
            else:
                with open(tmp, 'wb') as out:
                    for part in parts:
                        try:
                            with open(part, 'rb') as source:
                                _copy(source, out)
                        except FileNotFoundError:
                            raise base.ObjectNotFound(part) from None
                    self._sync(out)
            self._publish(tmp, full, exclusive=False)
        finally:
            _unlink_quietly(tmp)
        for part in set(parts) - {full} if consume else ():
            _unlink_quietly(part)
            self._prune_empty_parents(part)

    async def _read(self, path, *, offset, length, chunk_size):
        full = self._full(path)
        try:
            f = await self._run(open, full, 'rb')
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise base.ObjectNotFound(path) from None
        try:
            position = offset
            end = None if length is None else offset + length
            while end is None or position < end:
                size = chunk_size if end is None \
                    else min(chunk_size, end - position)
                data = await self._reads.read(f.fileno(), position, size)
                if not data:
                    break
                position += len(data)
                yield data
                # Not held while the next piece is read: with many
                # clients, each one piece less in memory.
                del data
        finally:
            f.close()

    def _local_file(self, path):
        return self._full(path)

    async def _collect_leftovers(self, *, before, dry_run):
        return await self._run(functools.partial(
            self._scratch.collect, before, dry_run=dry_run))

    async def _move(self, src, dst):
        await self._run(self._move_sync, self._full(src), self._full(dst))

    def _move_sync(self, src, dst):
        if not os.path.isfile(src):
            raise base.ObjectNotFound(src)
        try:
            self._publish(src, dst, exclusive=False)
        except FileNotFoundError:
            if os.path.exists(src):
                raise
            # Moved or removed by another process since the check.
            raise base.ObjectNotFound(src) from None

    async def _delete(self, path):
        await self._run(self._delete_sync, self._full(path))

    def _delete_sync(self, full):
        try:
            os.unlink(full)
        except IsADirectoryError:
            shutil.rmtree(full, ignore_errors=True)
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError as e:
            # Linux answers EISDIR; some systems EPERM for directories.
            if e.errno != errno.EPERM or not os.path.isdir(full):
                raise
            shutil.rmtree(full, ignore_errors=True)
        self._prune_empty_parents(full)

    def _prune_empty_parents(self, full):
        """Remove directories left empty, so a sub-tree whose objects are
        all gone is not listed (as on object stores, which have none)."""
        parent = os.path.dirname(full)
        while parent != self.root and parent.startswith(self.root + os.sep):
            try:
                os.rmdir(parent)
            except OSError:
                return   # not empty (or gone): stop here
            parent = os.path.dirname(parent)

    async def _list(self, path):
        return await self._run(self._list_sync, self._full(path))

    @staticmethod
    def _list_sync(full):
        try:
            return sorted(name for name in os.listdir(full)
                          if not name.startswith('.'))
        except (FileNotFoundError, NotADirectoryError):
            return []

    # -- helpers ----------------------------------------------------------

    def _sync(self, f):
        if self.fsync:
            f.flush()
            os.fsync(f.fileno())

    def _publish(self, tmp, full, exclusive):
        # A concurrent delete may remove a parent as we make it; retry.
        for attempt in range(5):
            try:
                os.makedirs(os.path.dirname(full), exist_ok=True)
            except (FileExistsError, FileNotFoundError):
                # makedirs found a parent made by another process, then
                # not as a directory: removed again, left empty by a
                # delete.  Not our object existing: try again.
                if attempt == 4:
                    raise
                continue
            try:
                if exclusive:
                    os.link(tmp, full)
                else:
                    self._replace(tmp, full)
                return
            except FileExistsError:
                raise base.AlreadyExists(full) from None
            except FileNotFoundError:
                if attempt == 4 or not os.path.exists(tmp):
                    raise

    def _replace(self, tmp, full):
        # Whatever `full` held is freed later, not in this rename.
        aside = self._release.set_aside(full)
        try:
            os.replace(tmp, full)
        finally:
            self._release.free(aside)


def _copy(source, out):
    """Copy a whole file, in the kernel where possible."""
    try:
        while os.copy_file_range(source.fileno(), out.fileno(),
                                 64 * 1024 * 1024):
            pass
    except (AttributeError, OSError):
        shutil.copyfileobj(source, out, 1024 * 1024)


_unlink_quietly = filesystem_release.unlink_quietly
