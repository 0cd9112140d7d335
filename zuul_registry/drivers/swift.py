"""Swift driver: objects in one OpenStack Swift container.

The container is created when missing.  How the contract (base.py) is
kept on Swift, where a PUT is atomic but nothing can be renamed:

* `put` is one PUT.  `write` streams its chunks into segment objects (a
  new one every `segment_size` bytes, each a chunked PUT sent once), then
  publishes the path as a Static Large Object manifest over them with one
  more PUT.  A failing body leaves no partial segment (Swift keeps only a
  complete PUT) and the segments already written are deleted.
* `write(exclusive=True)` sends the manifest with ``If-None-Match: *`` and
  holds a lock per path in this process.  Swift checks the condition when
  a PUT starts, so two manifest PUTs from two processes overlapping by
  milliseconds could both succeed: Swift has no compare-and-swap.
* `concat` without `consume` leaves the parts in place and the caller
  may delete them at once, so the new object must not refer to them:
  their bytes are copied into segments of its own (server-side COPY;
  small pieces joined), see swift_segments.  With `consume` the parts'
  segments are handed over and referred to where they lie: no byte is
  copied (swift_handover).  `move` publishes the destination as a
  manifest over the source's segments, or a server-side copy of a plain
  object, and only then removes the source, so that moves racing in
  opposite directions cannot lose it (swift_moves).
* Segments lie in sets named at random under .segments/, not under the
  object's path: a set belongs to the one manifest that refers to it,
  wherever that is, and goes with it.  `delete(P)` removes P and every
  object under P/, a manifest with ``multipart-manifest=delete``, which
  takes its segments too; it sweeps no prefix, so deleting an upload
  area never touches segments a blob took over.
* Sets no manifest refers to (an object replaced: a read in progress may
  still use its old segments; a write a crash interrupted) stay until
  `collect_leftovers` (swift_collect), which `zuul-registry prune` runs,
  finds them unneeded and an hour old.
* `list` is a delimiter listing, paged with markers.  `read` is a GET
  with ``Range``, streamed in `chunk_size` pieces, resumed if it breaks.

Every swiftclient call runs in a thread of swift_client.SwiftClient,
`concurrency` at most, with retries where a request may be repeated.
Segments are at most `segment_size` (256 MiB) so that a server-side COPY
of one ends well within the HTTP read timeout even on a slow cluster:
Swift answers a COPY only when it is done.
"""

import asyncio
import logging
import time

from swiftclient.exceptions import ClientException

from zuul_registry.drivers import (
    base, coordination, swift_auth, swift_collect, swift_handover,
    swift_moves)
from zuul_registry.drivers.swift_client import (
    SwiftClient, connection_factory)
from zuul_registry.drivers.swift_segments import (
    Segments, SwiftError, is_manifest)
from zuul_registry.drivers.swift_streams import Splitter, exactly

log = logging.getLogger('zuul_registry.drivers.swift')


class SwiftDriver(base.Driver):

    def __init__(self, container, connect, *, concurrency=64, retries=4,
                 backoff=0.5, segment_size=256 * 1024 ** 2, page_size=10000,
                 **segment_options):
        self.container = container
        self.client = SwiftClient(connect, concurrency=concurrency,
                                  retries=retries, backoff=backoff,
                                  on_retry=self.retried)
        self.segments = Segments(self, **segment_options)
        self.segment_size = segment_size
        self.page_size = page_size
        self.max_segments = 1000
        self.max_name_length = 1024
        self._limit = asyncio.Semaphore(max(1, concurrency // 2))
        # Awaited before the first request: reads the cluster's limits
        # and creates the container, once.
        self.ready = coordination.Once(self._prepare)
        self._exclusive = coordination.PathLocks()

    @classmethod
    def from_config(cls, storage):
        return cls(storage.container, connection_factory(
            swift_auth.connection_options(storage)))

    async def open(self):
        try:
            await self.ready()
        except Exception as e:
            raise base.DriverError('Swift container %s: %s'
                                   % (self.container, e)) from None

    async def close(self):
        await asyncio.get_running_loop().run_in_executor(
            None, self.client.close)

    # -- plumbing used here and by swift_segments -------------------------

    async def _prepare(self):
        try:
            info = await self.client.call('get_capabilities')
        except ClientException:
            info = {}   # /info is switched off: keep the defaults
        swift = info.get('swift', {})
        self.max_segments = info.get('slo', {}).get('max_manifest_segments',
                                                    self.max_segments)
        self.max_name_length = swift.get('max_object_name_length',
                                         self.max_name_length)
        self.page_size = min(self.page_size, swift.get(
            'container_listing_limit', self.page_size))
        self.segment_size = min(self.segment_size, swift.get(
            'max_file_size', self.segment_size))
        try:
            await self.client.call('head_container', self.container)
        except ClientException as e:
            if e.http_status != 404:
                raise
            log.info('Creating Swift container %s', self.container)
            await self.client.call('put_container', self.container)

    async def call(self, method, *args, **kwargs):
        await self.ready()
        return await self.client.call(method, *args, **kwargs)

    async def head(self, name):
        try:
            return await self.call('head_object', self.container, name)
        except ClientException as e:
            if e.http_status == 404:
                return None
            raise SwiftError('HEAD %s: %s' % (name, e)) from None

    async def listing(self, prefix, *, delimiter=None, marker=''):
        """Every listing entry under `prefix` (after `marker`), page by
        page."""
        await self.ready()   # which sets the page size
        while True:
            _, page = await self.call(
                'get_container', self.container, prefix=prefix,
                delimiter=delimiter, marker=marker, limit=self.page_size)
            for entry in page:
                yield entry
            if len(page) < self.page_size:
                return
            marker = page[-1].get('subdir') or page[-1]['name']

    async def delete_object(self, name, *, manifest=None):
        """Delete one object; a manifest with its segments."""
        if manifest is None:
            headers = await self.head(name)
            if headers is None:
                return
            manifest = is_manifest(headers)
        try:
            await self.call('delete_object', self.container, name,
                            query_string='multipart-manifest=delete'
                            if manifest else None)
        except ClientException as e:
            if e.http_status != 404:
                raise SwiftError('DELETE %s: %s' % (name, e)) from None

    async def gather_limited(self, coroutines):
        async def limited(coroutine):
            async with self._limit:
                return await coroutine
        return await asyncio.gather(*[limited(c) for c in coroutines])

    # -- the contract -----------------------------------------------------

    async def _stat(self, path):
        headers = await self.head(path)
        if headers is None:
            return None
        return base.Stat(size=int(headers['content-length']),
                         mtime=float(headers.get('x-timestamp') or
                                     time.time()))

    async def _get(self, path):
        try:
            _, data = await self.call('get_object', self.container, path)
        except ClientException as e:
            if e.http_status == 404:
                raise base.ObjectNotFound(path) from None
            raise SwiftError('GET %s: %s' % (path, e)) from None
        return data

    async def _put(self, path, data, *, exclusive=False):
        headers = {'If-None-Match': '*'} if exclusive else {}
        try:
            await self.call('put_object', self.container, path, bytes(data),
                            headers=headers)
        except ClientException as e:
            if e.http_status == 412:
                raise base.AlreadyExists(path) from None
            raise SwiftError('PUT %s: %s' % (path, e)) from None

    async def _write(self, path, chunks, *, exclusive):
        if not exclusive:
            return await self._write_segments(path, chunks, exclusive=False)
        async with self._exclusive.hold(path):
            if await self.head(path) is not None:
                raise base.AlreadyExists(path)
            return await self._write_segments(path, chunks,
                                              exclusive=True)

    async def _write_segments(self, path, chunks, *, exclusive):
        await self.ready()
        source = Splitter(chunks)
        if not await source.more():
            await self._put(path, b'', exclusive=exclusive)
            return 0
        segment_set = self.segments.new_set()
        entries = []
        try:
            while await source.more():
                name = '%s/%06d' % (segment_set, len(entries))
                etag, size = await self.client.put_stream(
                    self.container, name, source.take(self.segment_size),
                    headers={})
                entries.append(self.segments.entry(name, etag, size))
            await self.segments.publish(path, segment_set, entries,
                                        exclusive=exclusive)
        except BaseException:
            await self.segments.discard(segment_set)
            raise
        return sum(entry['size_bytes'] for entry in entries)

    async def _concat(self, path, parts, *, consume):
        if consume:
            return await swift_handover.consume(self.segments, path, parts)
        leaves = await asyncio.gather(*[self.segments.leaves(part)
                                        for part in parts])
        await self.segments.assemble(path, [leaf for part_leaves in leaves
                                            for leaf in part_leaves])

    async def _read(self, path, *, offset, length, chunk_size):
        if length == 0:
            if await self.head(path) is None:
                raise base.ObjectNotFound(path)
            return
        await self.ready()
        pieces = self.client.get_stream(
            self.container, path, start=offset,
            end=None if length is None else offset + length,
            chunk_size=chunk_size)
        try:
            async for piece in exactly(pieces, chunk_size):
                yield piece
        except ClientException as e:
            # 409: a manifest whose segments went, as when a concurrent
            # hand-over consumed this part: it is gone as a whole.
            if e.http_status in (404, 409):
                raise base.ObjectNotFound(path) from None
            raise SwiftError('GET %s: %s' % (path, e)) from None
        finally:
            await pieces.aclose()

    async def _move(self, src, dst):
        await swift_moves.move(self, src, dst)

    async def _delete(self, path):
        await self.delete_object(path)
        entries = [entry async for entry in self.listing(path + '/')]
        await self.gather_limited([
            self.delete_object(entry['name'], manifest='slo_etag' in entry)
            for entry in entries])

    async def _collect_leftovers(self, *, before, dry_run):
        return await swift_collect.collect(self, before=before,
                                           dry_run=dry_run)

    async def _list(self, path):
        prefix = path + '/'
        names = set()
        async for entry in self.listing(prefix, delimiter='/'):
            name = entry.get('subdir') or entry['name']
            names.add(name[len(prefix):].rstrip('/'))
        return sorted(names)
