"""S3 driver: objects in one bucket of Amazon S3 or a compatible server.

Every object's key is `prefix` + its path.  The bucket is created when
missing (if the credentials allow).  How the contract (base.py) is kept
on S3, where a PUT and a multipart completion are atomic and nothing can
be renamed:

* `put` is one PutObject.  `write` buffers its chunks up to `part_size`:
  an object smaller than `link_size` (by default `part_size`) is one
  PutObject; a larger one is a *data object* under ``.zr-data/`` (a
  multipart upload of `part_size` parts, a few in flight, visible only at
  its completion and aborted on any error: s3_multipart) and, at its
  path, a small *link* naming it (s3_links).
* `write(exclusive=True)` asks the server to refuse an existing key:
  ``If-None-Match: *`` on the PutObject of the object or link.  `open`
  finds out whether the server honours it (s3_probe: SeaweedFS and
  radosgw 16.2 do).  Where it does not, the driver checks with HeadObject
  under a lock per path in this process before it publishes: two
  processes writing the same new path at the same moment could then both
  succeed, the last one's bytes winning, as on Swift.  A repeated request
  whose first attempt did succeed is told apart by a writer token in the
  object's metadata.
* `concat` of parts among which are links writes a link to their data
  objects, the small parts first copied into data objects of their own:
  no byte of a link's data is copied (s3_links).  Other concats copy on
  the server: one CopyObject for a single part (a multipart copy beyond
  5 GiB), else a multipart upload whose parts are UploadPartCopy of the
  large parts; parts under S3's 5 MiB minimum are read and joined into
  uploaded parts of their own (s3_concat).  A part is copied only while
  its ETag is the one first seen.  With `consume`, the parts are deleted
  once the object is published.  `move` is a concat of one part, whose
  source is then removed so that moves racing in opposite directions
  cannot lose it (s3_moves).
* `read` is a GetObject with ``Range``, streamed in `chunk_size` pieces
  and resumed if the connection breaks (s3_client); a link found there
  is read as its data objects.  `list` is a ListObjectsV2 with delimiter
  "/", page by page; `delete` removes the key and every key under
  ``path/`` with DeleteObjects, never a key that merely starts with the
  path, and the data of links among them that no other link names.
* Private leftovers are incomplete multipart uploads (a crash during a
  write or a concat), and data objects no link names (a crash between
  the data and its link, or during a deletion): `collect_leftovers`
  aborts the uploads under the prefix started, and last written to,
  before the cut-off, and removes such data written before it.

S3 keys are at most 1024 bytes: with a prefix, paths are that much
shorter.
"""

import asyncio
import functools
import logging
import secrets
import time

from zuul_registry.drivers import (
    base, coordination, s3_collect, s3_concat, s3_leftovers, s3_links,
    s3_listing, s3_moves, s3_multipart, s3_probe)
from zuul_registry.drivers.s3_client import (
    S3Client, S3Error, describe, is_not_found, status_of)

log = logging.getLogger('zuul_registry.drivers.s3')

_MIB = 1024 ** 2
# How long a redirect's presigned URL is valid: long enough for a client
# to start a slow pull after a wait, short enough that a URL seen in a
# log is soon useless.
REDIRECT_SECONDS = 20 * 60
# DeleteObjects: requests for the keys the server failed to delete, and
# the pause before trying those again (seconds).
DELETE_ATTEMPTS = 4
DELETE_PAUSE = 0.05


def stamp():
    """Metadata saying when an object is written, to the microsecond:
    S3's Last-Modified has whole seconds, and garbage collection compares
    modification times with moments within one."""
    return {'mtime': '%.6f' % time.time()}


def mtime(head):
    """The modification time of a HeadObject answer: our stamp, never
    before Last-Modified (a writer's clock may lag the server's)."""
    modified = head['LastModified'].timestamp()
    try:
        return max(modified, float(head.get('Metadata', {})['mtime']))
    except (KeyError, ValueError):
        return modified


class S3Driver(base.Driver):

    def __init__(self, bucket, *, prefix='', create_bucket=True,
                 part_size=8 * _MIB, min_part_size=5 * _MIB,
                 max_copy_size=5 * 1024 * _MIB, parts_in_flight=2,
                 copies_in_flight=4, conditional_put=None,
                 empty_prefixes=None,
                 page_size=1000, redirect=False, link_size=None,
                 **client_options):
        self.bucket = bucket
        # Whether download_url gives presigned GET URLs.
        self.redirect = redirect
        self.prefix = prefix
        self.create_bucket = create_bucket
        self.client = S3Client(on_retry=self.retried, **client_options)
        self.part_size = max(part_size, min_part_size)
        self.min_part_size = min_part_size
        # Writes of at least this many bytes are data objects behind a
        # link (s3_links), so that completing an upload copies nothing.
        self.link_size = min(link_size or self.part_size, self.part_size)
        self.max_copy_size = max_copy_size
        self.parts_in_flight = parts_in_flight
        self.copies_in_flight = copies_in_flight
        self.page_size = page_size
        # Whether If-None-Match: * holds on PutObject (of an object or
        # a link: every exclusive write); None: find out (s3_probe).
        self.conditional_put = conditional_put
        # Whether delimiter listings name prefixes no object has any more
        # (SeaweedFS, until it removes its empty directories); None: find
        # out.
        self.empty_prefixes = empty_prefixes
        # Awaited before the first request: creates the bucket and
        # probes the server, once.
        self.ready = coordination.Once(self._prepare)
        self._exclusive = coordination.PathLocks()

    @classmethod
    def from_config(cls, storage):
        return cls(storage.bucket, prefix=storage.prefix or '',
                   endpoint=storage.endpoint, region=storage.region,
                   access_key=storage.access_key,
                   secret_key=storage.secret_key, ca=storage.ca,
                   redirect=storage.redirect, link_size=storage.link_size)

    async def open(self):
        try:
            await self.ready()
        except Exception as e:
            raise base.DriverError('S3 bucket %s at %s: %s' % (
                self.bucket, self.client.endpoint, describe(e))) from None

    async def close(self):
        await asyncio.get_running_loop().run_in_executor(
            None, self.client.close)

    # -- plumbing ---------------------------------------------------------

    async def _prepare(self):
        try:
            await self.client.call('head_bucket', Bucket=self.bucket)
        except Exception as e:
            if not (is_not_found(e) and self.create_bucket):
                raise
            log.info('Creating S3 bucket %s', self.bucket)
            await self.client.call('create_bucket', Bucket=self.bucket,
                                   **self._location())
        if self.conditional_put is None:
            await s3_probe.conditions(self)
        if self.empty_prefixes is None:
            await s3_probe.prefixes(self)

    def _location(self):
        region = self.client.s3.meta.region_name
        if self.client.s3.meta.endpoint_url.endswith('.amazonaws.com') \
                and region and region != 'us-east-1':
            return {'CreateBucketConfiguration':
                    {'LocationConstraint': region}}
        return {}

    def key(self, path):
        return self.prefix + path

    stamp = staticmethod(stamp)

    @staticmethod
    def new_token():
        return secrets.token_hex(8)

    async def writer_of(self, key):
        """The writer token of the object `key`, or None."""
        try:
            response = await self.client.call('head_object',
                                              Bucket=self.bucket, Key=key)
        except Exception:
            return None
        return response.get('Metadata', {}).get('writer')

    async def put_object(self, key, data, *, exclusive=False, metadata=None):
        await self.ready()
        kwargs = {'Metadata': dict(stamp(), **(metadata or {}))}
        if exclusive:
            token = self.new_token()
            kwargs['Metadata']['writer'] = token
            if self.conditional_put:
                kwargs['IfNoneMatch'] = '*'
        try:
            await self.client.call('put_object', Bucket=self.bucket,
                                   Key=key, Body=data, **kwargs)
        except Exception as e:
            if exclusive and status_of(e) == 412:
                if await self.writer_of(key) == token:
                    return   # our own first attempt, answered too late
                raise base.AlreadyExists(key) from None
            raise S3Error('PutObject %s: %s' % (key, describe(e))) \
                from None

    async def head(self, key):
        await self.ready()
        try:
            return await self.client.call('head_object', Bucket=self.bucket,
                                          Key=key)
        except Exception as e:
            if is_not_found(e):
                return None
            raise S3Error('HeadObject %s: %s' % (key, describe(e))) \
                from None

    async def listing(self, prefix, *, delimiter=None):
        """(name, whether a common prefix) under `prefix`, page by page."""
        await self.ready()
        async for entry in self._listing(prefix, delimiter=delimiter):
            yield entry

    async def _listing(self, prefix, *, delimiter=None):
        kwargs = {'Bucket': self.bucket, 'Prefix': prefix,
                  'MaxKeys': self.page_size}
        if delimiter:
            kwargs['Delimiter'] = delimiter
        while True:
            try:
                page = await self.client.call('list_objects_v2', **kwargs)
            except Exception as e:
                raise S3Error('ListObjectsV2 %s: %s'
                              % (prefix, describe(e))) from None
            for entry in page.get('Contents', ()):
                # SeaweedFS lists its directories as keys ending in "/".
                if not entry['Key'].endswith('/'):
                    yield entry['Key'], False
            for entry in page.get('CommonPrefixes', ()):
                yield entry['Prefix'], True
            if not page.get('IsTruncated'):
                return
            kwargs['ContinuationToken'] = page['NextContinuationToken']

    async def holds_objects(self, prefix):
        """Whether some object's key starts with `prefix`."""
        async for _ in self.listing(prefix):
            return True
        return False

    async def delete_keys(self, keys):
        """Delete `keys`, a thousand per request; missing ones are fine.
        Keys the server failed to delete are tried again: Ceph RGW
        answers UnknownError for a key a PUT is writing at that moment,
        and deleting again is harmless."""
        for start in range(0, len(keys), 1000):
            batch = keys[start:start + 1000]
            for attempt in range(DELETE_ATTEMPTS):
                try:
                    response = await self.client.call(
                        'delete_objects', Bucket=self.bucket, Delete={
                            'Objects': [{'Key': key} for key in batch],
                            'Quiet': True})
                except Exception as e:
                    raise S3Error('DeleteObjects %s: %s'
                                  % (batch[0], describe(e))) from None
                errors = [error for error in response.get('Errors', ())
                          if error.get('Code') != 'NoSuchKey']
                if not errors:
                    break
                batch = [error.get('Key') for error in errors]
                await asyncio.sleep(DELETE_PAUSE)
            else:
                raise S3Error('DeleteObjects %s: %s' % (
                    errors[0].get('Key'), errors[0].get('Message')))

    # -- the contract -----------------------------------------------------

    async def _stat(self, path):
        response = await self.head(self.key(path))
        if response is None:
            return None
        return base.Stat(size=s3_links.size_of(response),
                         mtime=mtime(response))

    async def _get(self, path):
        return b''.join([piece async for piece in self._read(
            path, offset=0, length=None, chunk_size=self.read_chunk_size)])

    async def _put(self, path, data):
        key = self.key(path)
        await self.put_object(key, bytes(data))
        await s3_listing.keep_listed(self, key)

    async def _write(self, path, chunks, *, exclusive):
        await self.ready()
        if not exclusive or self.conditional_put:
            return await self._write_object(path, chunks, exclusive)
        # The server does not check: check here, once per path at a time.
        async with self._exclusive.hold(path):
            if await self.head(self.key(path)) is not None:
                raise base.AlreadyExists(path)
            return await self._write_object(path, chunks, True)

    async def _write_object(self, path, chunks, exclusive):
        held, rest = await s3_multipart.head_of(chunks, self.part_size)
        if held.size >= self.link_size:
            return await s3_links.write(self, path, held, rest,
                                        exclusive=exclusive)
        # Only smaller than both part_size and link_size: one request.
        size = held.size
        await self.put_object(self.key(path), held.take(),
                              exclusive=exclusive)
        return size

    async def _concat(self, path, parts, *, consume):
        await self.ready()
        found = await s3_links.heads(self, list(dict.fromkeys(parts)))
        if not await s3_links.concat(self, path, parts, found,
                                     consume=consume):
            await s3_concat.concat(self, path, parts, found,
                                   consume=consume)

    async def _read(self, path, *, offset, length, chunk_size):
        key = self.key(path)
        if length == 0:
            if await self.head(key) is None:
                raise base.ObjectNotFound(path)
            return
        await self.ready()
        if offset or length is not None:
            # A range of a link is not the range of its body: look first.
            head = await self.head(key)
            if head is None:
                raise base.ObjectNotFound(path)
            linked = s3_links.is_link(head)
        else:
            linked = False
        segments = None
        if not linked:
            pieces = self.client.get_stream(
                self.bucket, key, start=offset,
                end=None if length is None else offset + length,
                chunk_size=chunk_size, check=s3_links.refuse_link)
            try:
                async for piece in pieces:
                    yield piece
                return
            except s3_links.IsLink as found:
                segments = found.segments   # read it as a link below
            except base.ObjectNotFound:
                raise base.ObjectNotFound(path) from None
            finally:
                await pieces.aclose()
        if segments is None:
            segments = await s3_links.segments_of(self, key)
        while True:
            if segments is None:
                raise base.ObjectNotFound(path)
            started = False
            try:
                async for piece in s3_links.read(
                        self, path, segments, offset=offset, length=length,
                        chunk_size=chunk_size):
                    started = True
                    yield piece
                return
            except base.ObjectNotFound:
                # The link replaced (a blob pushed again) and its old
                # data collected since we read it: read the new one.
                replaced = None if started else \
                    await s3_links.segments_of(self, key)
                if replaced is None or replaced == segments:
                    raise
                segments = replaced

    async def _download_url(self, path):
        if not self.redirect:
            return None
        key = self.key(path)
        head = await self.head(key)
        # A plain object is presigned as it is, without reading it.
        segments = None if head is None or not s3_links.is_link(head) \
            else await s3_links.segments_of(self, key)
        if segments is not None:
            if len(segments) != 1:
                return None   # a join of several objects: streamed
            key = s3_links.data_key(self, segments[0].id)
        # Signing is local, but may first refresh credentials (an
        # instance role): in the pool.
        return await self.client.run(functools.partial(
            self.client.s3.generate_presigned_url, 'get_object',
            Params={'Bucket': self.bucket, 'Key': key},
            ExpiresIn=REDIRECT_SECONDS))

    async def _move(self, src, dst):
        await s3_moves.move(self, src, dst)

    async def _delete(self, path):
        key = self.key(path)
        # Children first: SeaweedFS keeps directories, and may refuse to
        # delete a key that names one while it still has children.
        keys = [name async for name, _ in self.listing(key + '/')]
        await s3_collect.delete(self, keys + [key])
        await s3_listing.relist(self, key)

    async def _list(self, path):
        prefix = self.key(path) + '/'
        names, subtrees = set(), []
        async for name, subtree in self.listing(prefix, delimiter='/'):
            if subtree:
                subtrees.append(name)
            else:
                names.add(name)
        if self.empty_prefixes:
            found = await asyncio.gather(*[self.holds_objects(name)
                                           for name in subtrees])
            subtrees = [name for name, held in zip(subtrees, found) if held]
        names.update(subtrees)
        return sorted(name[len(prefix):].rstrip('/') for name in names)

    async def _collect_leftovers(self, *, before, dry_run):
        await self.ready()
        return await s3_leftovers.collect(self, before=before,
                                          dry_run=dry_run) + \
            await s3_collect.collect(self, before=before, dry_run=dry_run)

