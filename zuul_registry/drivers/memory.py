"""In-memory driver: objects are bytes in a dict, keyed by path.

For tests.  The tree exists only in the keys: a sub-tree is there while
some object lies under it, so deleting its last object removes it.
"""

import time

from zuul_registry.drivers import base


class MemoryDriver(base.Driver):

    can_append = True

    def __init__(self):
        self.objects = {}   # path -> bytes
        self._mtimes = {}   # path -> time of publication
        self._frozen = set()
        self._appending = set()

    def _publish(self, path, data, *, exclusive=False):
        if exclusive and path in self.objects:
            raise base.AlreadyExists(path)
        self.objects[path] = data
        self._mtimes[path] = time.time()
        self._frozen.discard(path)   # a new object

    def _object(self, path):
        try:
            return self.objects[path]
        except KeyError:
            raise base.ObjectNotFound(path) from None

    async def _stat(self, path):
        if path not in self.objects:
            return None
        return base.Stat(size=len(self.objects[path]),
                         mtime=self._mtimes[path])

    async def _get(self, path):
        return self._object(path)

    async def _put(self, path, data):
        self._publish(path, bytes(data))

    async def _write(self, path, chunks, *, exclusive, frozen=False):
        buffer = bytearray()
        async for chunk in chunks:
            buffer += chunk
        self._publish(path, bytes(buffer), exclusive=exclusive)
        if frozen:
            self._frozen.add(path)
        return len(buffer)

    async def _append(self, path, chunks, *, offset, freeze):
        data = self._object(path)
        if path in self._frozen or path in self._appending or \
                len(data) != offset:
            raise base.AppendConflict(path)
        self._appending.add(path)
        try:
            buffer = bytearray(data)
            async for chunk in chunks:
                buffer += chunk
            if path in self.objects:   # else deleted meanwhile: dropped
                self.objects[path] = bytes(buffer)
                self._mtimes[path] = time.time()
                if freeze:
                    self._frozen.add(path)
            return len(buffer)
        finally:
            self._appending.discard(path)

    async def _freeze(self, path):
        if path in self._appending:
            raise base.AppendConflict(path)
        stat = await self._stat(path)
        if stat is None:
            raise base.ObjectNotFound(path)
        self._frozen.add(path)
        return stat

    async def _concat(self, path, parts, *, consume):
        self._publish(path, b''.join([self._object(part) for part in parts]))
        for part in set(parts) - {path} if consume else ():
            del self.objects[part], self._mtimes[part]

    async def _read(self, path, *, offset, length, chunk_size):
        data = self._object(path)
        end = len(data)
        if length is not None:
            end = min(end, offset + length)
        for start in range(offset, end, chunk_size):
            yield data[start:min(start + chunk_size, end)]

    async def _move(self, src, dst):
        data, mtime = self._object(src), self._mtimes[src]
        del self.objects[src], self._mtimes[src]
        self.objects[dst], self._mtimes[dst] = data, mtime
        self._frozen.discard(src)
        self._frozen.discard(dst)

    async def _delete(self, path):
        prefix = path + '/'
        for key in [key for key in self.objects
                    if key == path or key.startswith(prefix)]:
            del self.objects[key], self._mtimes[key]
            self._frozen.discard(key)

    async def _list(self, path):
        prefix = path + '/'
        return sorted({key[len(prefix):].split('/', 1)[0]
                       for key in self.objects if key.startswith(prefix)})
