"""The Swift driver's segments: Static Large Objects it builds.

What lies in the container besides the objects themselves::

    .segments/SET/NNNNNN        a segment
    .segments/SET/mLNNNNNN      a nested manifest (level L)
    .segments/SET/claim         a set handed over (swift_handover) or
                                moved (swift_moves): kept young then

SET is random, one per `write` or `concat`.  Paths never start with "."
(the driver contract refuses them), so nothing here collides with an
object.  A set belongs to whichever manifest refers to it: deleting that
manifest with ``multipart-manifest=delete`` deletes its segments.  Sets
no manifest refers to (a write a crash interrupted, an object since
replaced) are collected by swift_collect.

Assembling an object from sources (plain objects, as SLO entries):

* a source of at least `join_under` bytes is referred to where it lies
  when the caller hands it over (`in_place`), else copied server-side
  (COPY) into a segment of its own;
* consecutive smaller sources are joined, read and written again through
  this process, into segments of about `join_target` bytes: Swift serves
  an SLO's segments under 1 MiB at one per second after the tenth
  (rate_limit_under_size, rate_limit_after_segment), and a blob pushed in
  many small chunks must not read that slowly;
* one resulting segment that is not in place is written straight to the
  path as a plain object; otherwise a manifest, nested past the cluster's
  max_manifest_segments.
"""

import asyncio
import json
import logging
import secrets
from typing import NamedTuple

from swiftclient.exceptions import ClientException

from zuul_registry.drivers import base

log = logging.getLogger('zuul_registry.drivers.swift')

ROOT = '.segments'


class SwiftError(base.DriverError):
    pass


class Segments:

    def __init__(self, driver, *, join_under=1024 ** 2,
                 join_target=64 * 1024 ** 2):
        self.driver = driver
        self.container = driver.container
        self.join_under = join_under
        self.join_target = join_target

    # -- names ------------------------------------------------------------

    @staticmethod
    def new_set():
        return '%s/%s' % (ROOT, secrets.token_hex(12))

    def entry(self, name, etag, size):
        return {'path': '/%s/%s' % (self.container, name),
                'etag': etag.strip('"') if etag else None,
                'size_bytes': size}

    def segment_name(self, entry_path):
        """The object name of an entry's path in this container, if it is
        a segment; else None."""
        prefix = '/%s/%s/' % (self.container, ROOT)
        if entry_path.startswith(prefix):
            return entry_path[len(self.container) + 2:]
        return None

    # -- reading manifests ------------------------------------------------

    async def leaves(self, path):
        """The plain objects holding the bytes of `path`, as entries."""
        return (await self.describe(path)).leaves

    async def describe(self, path):
        """What `path` is made of: a Parts."""
        headers = await self.driver.head(path)
        if headers is None:
            raise base.ObjectNotFound(path)
        if not is_manifest(headers):
            return Parts(False, [self.entry(
                path, headers.get('etag'), int(headers['content-length']))],
                [])
        leaves, nested = [], []
        await self._walk(self.container, path, leaves, nested)
        return Parts(True, leaves, nested)

    async def manifest(self, container, name):
        """The items of the manifest `name` (multipart-manifest=get);
        ObjectNotFound if it is gone or no manifest (any more)."""
        try:
            headers, data = await self.driver.call(
                'get_object', container, name,
                query_string='multipart-manifest=get')
        except ClientException as e:
            if e.http_status == 404:
                raise base.ObjectNotFound(name) from None
            raise SwiftError('GET %s: %s' % (name, e)) from None
        if not is_manifest(headers):
            raise base.ObjectNotFound('%s: no manifest' % name)
        return json.loads(data)

    async def _walk(self, container, name, leaves, nested):
        for item in await self.manifest(container, name):
            if 'range' in item:
                raise SwiftError('%s: ranged segments are not supported'
                                 % name)
            if item.get('sub_slo'):
                nested.append(item['name'])
                source_container, _, source = item['name'].lstrip(
                    '/').partition('/')
                await self._walk(source_container, source, leaves, nested)
            else:
                leaves.append({'path': item['name'], 'etag': item['hash'],
                               'size_bytes': item['bytes']})

    # -- building objects -------------------------------------------------

    async def assemble(self, path, sources, *, handover=None):
        """Create `path` from the bytes of `sources` (entries), in order.

        A large source marked `in_place` is referred to, not copied.
        `handover`, if given, is awaited once the copies are made and
        before `path` is published.
        """
        groups = self._plan([s for s in sources if s['size_bytes']])
        if len(groups) <= 1 and not any(
                group[0].get('in_place') for group in groups):
            if handover is not None:
                await handover()
            if groups:
                await self._make(path, groups[0])
            else:
                await self.driver.put(path, b'')
            return
        segment_set = self.new_set()
        try:
            entries = await self.driver.gather_limited([
                self._make('%s/%06d' % (segment_set, index), group)
                for index, group in enumerate(groups)])
            if handover is not None:
                await handover()
            await self.publish(path, segment_set, entries)
        except BaseException:
            await self.discard(segment_set)
            raise

    def _plan(self, sources):
        """Group the sources: alone when large, joined when small."""
        groups, small, small_size = [], [], 0
        for source in sources:
            if source['size_bytes'] >= self.join_under:
                if small:
                    groups.append(small)
                    small, small_size = [], 0
                groups.append([source])
                continue
            small.append(source)
            small_size += source['size_bytes']
            if small_size >= self.join_target:
                groups.append(small)
                small, small_size = [], 0
        if small:
            groups.append(small)
        return groups

    async def _make(self, name, group):
        """Write the sources of `group` as the plain object `name`; its
        entry.  A source in place is its own entry, nothing written."""
        if group[0].get('in_place'):
            return {key: group[0][key]
                    for key in ('path', 'etag', 'size_bytes')}
        if len(group) == 1:
            await self.copy(group[0]['path'], name)
            return self.entry(name, group[0]['etag'],
                              group[0]['size_bytes'])
        client = self.driver.client

        async def join():
            # The sources can be read again: so can the join.
            return await client.put_stream(
                self.container, name, self._join(group), headers={})
        etag, size = await client.retrying('PUT %s' % name, join)
        return self.entry(name, etag, size)

    async def _join(self, group):
        for source in group:
            container, _, obj = source['path'].lstrip('/').partition('/')
            try:
                async for chunk in self.driver.client.get_stream(
                        container, obj, start=0, end=None,
                        chunk_size=1024 * 1024):
                    yield chunk
            except ClientException as e:
                # Consumed by a concurrent hand-over of the same part.
                if e.http_status == 404:
                    raise base.ObjectNotFound(obj) from None
                raise

    async def copy(self, source, name):
        """Server-side copy of `source` ("/container/object") to `name`."""
        container, _, obj = source.lstrip('/').partition('/')
        try:
            await self.driver.call(
                'copy_object', container, obj,
                destination='/%s/%s' % (self.container, name),
                fresh_metadata=True)
        except ClientException as e:
            if e.http_status == 404:
                raise base.ObjectNotFound(obj) from None
            raise SwiftError('COPY %s: %s' % (obj, e)) from None

    async def publish(self, path, segment_set, entries, *, exclusive=False):
        """PUT the manifest over `entries`, nesting it where too long."""
        limit = self.driver.max_segments
        level = 0
        while len(entries) > limit:
            level += 1
            groups = [entries[start:start + limit]
                      for start in range(0, len(entries), limit)]
            names = ['%s/m%d%06d' % (segment_set, level, index)
                     for index in range(len(groups))]
            await asyncio.gather(*[self.put_manifest(name, group)
                                   for name, group in zip(names, groups)])
            entries = [self.entry(name, None, None) for name in names]
        await self.put_manifest(path, entries, exclusive=exclusive)

    async def put_manifest(self, name, entries, *, exclusive=False):
        token = secrets.token_hex(8)
        headers = {'X-Object-Meta-Writer': token}
        if exclusive:
            headers['If-None-Match'] = '*'
        try:
            await self.driver.call(
                'put_object', self.container, name, json.dumps(entries),
                headers=headers, query_string='multipart-manifest=put')
        except ClientException as e:
            if e.http_status != 412:
                raise SwiftError('PUT %s: %s' % (name, e)) from None
            # Refused, unless by our own first attempt answered too late.
            current = await self.driver.head(name) or {}
            if current.get('x-object-meta-writer') != token:
                raise base.AlreadyExists(name) from None

    # -- removing ---------------------------------------------------------

    async def discard(self, segment_set):
        """Delete what a failed write wrote, if Swift lets us now.

        What stays (Swift is down) is collected later (swift_collect).
        """
        try:
            await asyncio.shield(self.sweep(segment_set + '/'))
        except Exception as e:
            log.warning('Could not delete the segments %s/: %s',
                        segment_set, e)

    async def sweep(self, prefix):
        """Delete every object whose name starts with `prefix`."""
        names = [entry['name']
                 async for entry in self.driver.listing(prefix)]
        await self.driver.gather_limited([
            self.driver.delete_object(name, manifest=False)
            for name in names])


class Parts(NamedTuple):
    """An object as its segments: whether it is a manifest, the entries
    of its plain objects in order, and the names of nested manifests."""
    manifest: bool
    leaves: list
    nested: list


def is_manifest(headers):
    return headers.get('x-static-large-object', '').lower() == 'true'
