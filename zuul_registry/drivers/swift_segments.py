"""The Swift driver's segments: Static Large Objects it builds and sweeps.

What lies in the container besides the objects themselves::

    .segments/PATH/.SET/NNNNNN        a segment of the manifest at PATH
    .segments/PATH/.SET/mLNNNNNN      a nested manifest (level L)

SET is random per version of PATH.  A PATH too long to prefix its
segments (Swift names are at most 1024 bytes) uses
.segments/_long/SHA256(PATH) instead.  Paths never start with "." (the
driver contract refuses them), so nothing here collides with an object;
the segment sets of PATH itself are the names under .segments/PATH/.,
and those of PATH and everything under PATH/ all lie under .segments/PATH/.

Assembling an object from sources (plain objects, as SLO entries):

* a source of at least `join_under` bytes is copied server-side (COPY)
  into a segment of its own;
* consecutive smaller sources are joined, read and written again through
  this process, into segments of about `join_target` bytes: Swift serves
  an SLO's segments under 1 MiB at one per second after the tenth
  (rate_limit_under_size, rate_limit_after_segment), and a blob pushed in
  many small chunks must not read that slowly;
* one resulting segment is written straight to PATH as a plain object;
  several get a manifest, nested past the cluster's max_manifest_segments.
"""

import asyncio
import hashlib
import json
import logging
import secrets

from swiftclient.exceptions import ClientException

from zuul_registry.drivers import base
from zuul_registry.drivers.swift_client import is_transient

log = logging.getLogger('zuul_registry.drivers.swift')

ROOT = '.segments'
_SUFFIX_LENGTH = len('/.0123456789abcdef/m1000000')


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

    def root(self, path):
        root = '%s/%s' % (ROOT, path)
        if len(root) + _SUFFIX_LENGTH > self.driver.max_name_length:
            root = '%s/_long/%s' % (
                ROOT, hashlib.sha256(path.encode()).hexdigest())
        return root

    def new_set(self, path):
        return '%s/.%s' % (self.root(path), secrets.token_hex(8))

    def entry(self, name, etag, size):
        return {'path': '/%s/%s' % (self.container, name),
                'etag': etag.strip('"') if etag else None,
                'size_bytes': size}

    # -- reading manifests ------------------------------------------------

    async def leaves(self, path):
        """The plain objects holding the bytes of `path`, as entries."""
        headers = await self.driver.head(path)
        if headers is None:
            raise base.ObjectNotFound(path)
        if not is_manifest(headers):
            return [self.entry(path, headers.get('etag'),
                               int(headers['content-length']))]
        return await self._manifest_leaves(self.container, path)

    async def _manifest_leaves(self, container, name):
        try:
            _, data = await self.driver.call(
                'get_object', container, name,
                query_string='multipart-manifest=get')
        except ClientException as e:
            if e.http_status == 404:
                raise base.ObjectNotFound(name) from None
            raise SwiftError('GET %s: %s' % (name, e)) from None
        leaves = []
        for item in json.loads(data):
            if 'range' in item:
                raise SwiftError('%s: ranged segments are not supported'
                                 % name)
            if item.get('sub_slo'):
                source_container, _, source = item['name'].lstrip(
                    '/').partition('/')
                leaves += await self._manifest_leaves(source_container,
                                                      source)
            else:
                leaves.append({'path': item['name'], 'etag': item['hash'],
                               'size_bytes': item['bytes']})
        return leaves

    # -- building objects -------------------------------------------------

    async def assemble(self, path, sources):
        """Create `path` from the bytes of `sources` (entries), in order."""
        groups = self._plan([s for s in sources if s['size_bytes']])
        if not groups:
            return await self.driver.put(path, b'')
        if len(groups) == 1:
            await self._make(path, groups[0])
            return
        segment_set = self.new_set(path)
        try:
            entries = await self.driver.gather_limited([
                self._make('%s/%06d' % (segment_set, index), group)
                for index, group in enumerate(groups)])
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
        """Write the sources of `group` as the plain object `name`."""
        if len(group) == 1:
            await self._copy(group[0]['path'], name)
            return self.entry(name, group[0]['etag'],
                              group[0]['size_bytes'])
        attempt = 0
        while True:   # the sources can be read again: so can the join
            try:
                etag, size = await self.driver.client.put_stream(
                    self.container, name, self._join(group), headers={})
                return self.entry(name, etag, size)
            except Exception as error:
                if attempt >= self.driver.client.retries or \
                        not is_transient(error):
                    raise
                attempt += 1

    async def _join(self, group):
        for source in group:
            container, _, obj = source['path'].lstrip('/').partition('/')
            async for chunk in self.driver.client.get_stream(
                    container, obj, start=0, end=None,
                    chunk_size=1024 * 1024):
                yield chunk

    async def _copy(self, source, name):
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
            await asyncio.gather(*[self._put_manifest(name, group)
                                   for name, group in zip(names, groups)])
            entries = [self.entry(name, None, None) for name in names]
        await self._put_manifest(path, entries, exclusive=exclusive)

    async def _put_manifest(self, name, entries, *, exclusive=False):
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

        What stays (Swift is down) goes when the path is deleted.
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


def is_manifest(headers):
    return headers.get('x-static-large-object', '').lower() == 'true'


class Splitter:
    """Cut an async iterable of bytes into consecutive sub-streams."""

    def __init__(self, chunks):
        self._iterator = chunks.__aiter__()
        self._pending = b''

    async def more(self):
        while not self._pending:
            try:
                self._pending = await self._iterator.__anext__()
            except StopAsyncIteration:
                return False
        return True

    async def take(self, limit):
        """Yield the next `limit` bytes (fewer at the end)."""
        while limit > 0 and await self.more():
            piece = self._pending[:limit]
            self._pending = self._pending[len(piece):]
            limit -= len(piece)
            yield piece
