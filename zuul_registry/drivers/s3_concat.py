"""The S3 driver's `concat`: copies made by the server.

One CopyObject for a single part (a multipart copy beyond `max_copy_size`,
5 GiB), else a multipart upload whose parts are planned from ranges of the
sources (`plan`):

* a range of at least `min_part_size` bytes is copied by the server
  (UploadPartCopy), in pieces of at most `max_copy_size`: its bytes never
  pass through this process;
* smaller sources are read and joined into one uploaded part, flushed once
  it holds `part_size` bytes, so a join never holds much more than
  `part_size` + `min_part_size` bytes in memory;
* a join smaller than the minimum that is followed by a large source takes
  the bytes it lacks from the head of that source (a ranged read of less
  than `min_part_size`), and the rest of the source is copied.

A part is copied or read only while its ETag is the one first seen: one
replaced or removed meanwhile (a concurrent consumption) raises
ObjectNotFound.  With `consume`, the parts are deleted once the object is
published: S3 objects share nothing, so it never depends on them.
"""

import asyncio
import logging
import math
from typing import NamedTuple

from zuul_registry.drivers import base, s3_collect, s3_links
from zuul_registry.drivers.s3_client import S3Error
from zuul_registry.drivers.s3_multipart import (
    MAX_PARTS, Upload, gather, source_error)

log = logging.getLogger('zuul_registry.drivers.s3')


async def concat(driver, path, parts, heads, *, consume):
    """Make `path` the joined `parts`, whose HeadObject answers are
    `heads`: links among them are read as the data objects they join."""
    key = driver.key(path)
    names = list(dict.fromkeys(parts))
    expanded = await asyncio.gather(*[_sources(driver, name, heads[name])
                                      for name in names])
    found = dict(zip(names, expanded))
    sources = [source for part in parts for source in found[part]
               if source.size]
    total = sum(source.size for source in sources)
    if not sources:
        await driver.put_object(key, b'')
    elif len(sources) == 1 and sources[0].size <= driver.max_copy_size:
        if sources[0].key != key:
            await _copy(driver, sources[0], key)
    elif total < driver.min_part_size:
        await driver.put_object(key, await read_sources(
            driver.client, driver.bucket, sources))
    else:
        await _multipart(driver, key, sources)
    if consume:
        try:
            # The data of links among them is not needed any more.
            await s3_collect.delete(driver, [
                driver.key(name) for name in names if name != path])
        except S3Error as e:
            log.warning('Could not delete the parts consumed by %s: %s',
                        path, e)


async def _sources(driver, name, head):
    """The Sources holding the bytes of `name`."""
    if not s3_links.is_link(head):
        return [Source(driver.key(name), head['ETag'], 0,
                       head['ContentLength'])]
    segments = await s3_links.segments_of(driver, driver.key(name))
    if segments is None:
        raise base.ObjectNotFound('%s: changed meanwhile' % name)
    keys = [s3_links.data_key(driver, segment.id) for segment in segments]
    data_heads = await asyncio.gather(*[driver.head(key) for key in keys])
    if None in data_heads:
        raise base.ObjectNotFound('%s: its data is gone' % name)
    return [Source(key, data_head['ETag'], 0, segment.size)
            for key, data_head, segment in zip(keys, data_heads, segments)]


async def _copy(driver, source, key):
    await copy(driver, source.key, key, etag=source.etag)


async def copy(driver, source_key, key, *, etag=None):
    """One CopyObject of `source_key` (if its ETag is still `etag`, when
    given) to `key`."""
    conditions = {} if etag is None else {'CopySourceIfMatch': etag}
    try:
        await driver.client.call(
            'copy_object', Bucket=driver.bucket, Key=key,
            CopySource={'Bucket': driver.bucket, 'Key': source_key},
            MetadataDirective='REPLACE', Metadata=driver.stamp(),
            **conditions)
    except Exception as e:
        raise source_error(source_key, e) from None


class Source(NamedTuple):
    """The bytes [start, end) of the object `key` whose ETag is `etag`."""
    key: str
    etag: str
    start: int
    end: int

    @property
    def size(self):
        return self.end - self.start


def plan(sources, *, min_part_size, part_size, max_copy_size):
    """The parts of a multipart upload joining `sources` (Sources), in
    order: each a Source to copy, or a list of Sources to read and join."""
    parts, joined = [], []

    def joined_size():
        return sum(source.size for source in joined)

    def flush():
        parts.append(list(joined))
        joined.clear()

    for source in sources:
        if source.size >= min_part_size and joined:
            if joined_size() < min_part_size:
                lack = min_part_size - joined_size()
                joined.append(source._replace(end=source.start + lack))
                source = source._replace(start=source.start + lack)
            flush()
        if source.size >= min_part_size:
            count = math.ceil(source.size / max_copy_size)
            step = math.ceil(source.size / count)
            for start in range(source.start, source.end, step):
                parts.append(source._replace(
                    start=start, end=min(start + step, source.end)))
        elif source.size:
            joined.append(source)
            if joined_size() >= part_size:
                flush()
    if joined:
        flush()
    return parts


async def read_sources(client, bucket, sources):
    """The bytes of `sources` joined (each checked against its ETag)."""
    data = bytearray()
    for source in sources:
        expected = len(data) + source.size
        async for piece in client.get_stream(
                bucket, source.key, start=source.start, end=source.end,
                chunk_size=1024 * 1024, etag=source.etag):
            data += piece
        if len(data) != expected:
            raise base.ObjectNotFound('%s: changed meanwhile' % source.key)
    return bytes(data)


async def _multipart(driver, key, sources):
    """Make `key` the joined `sources` (Sources, whole objects) with a
    multipart upload; the caller handles the single-request cases."""
    parts = plan(sources, min_part_size=driver.min_part_size,
                 part_size=driver.part_size,
                 max_copy_size=driver.max_copy_size)
    if len(parts) > MAX_PARTS:
        raise S3Error('%s: more than %d parts' % (key, MAX_PARTS))
    upload = Upload(driver, key)
    copies = asyncio.Semaphore(driver.copies_in_flight)
    joins = asyncio.Semaphore(driver.parts_in_flight)

    async def make(number, part):
        async with copies:
            if isinstance(part, Source):
                return await upload.copy(number, part)
            async with joins:
                data = await read_sources(driver.client, driver.bucket, part)
                return await upload.upload(number, data)

    try:
        await upload.start()
        etags = await gather([asyncio.ensure_future(make(number, part))
                              for number, part in enumerate(parts, 1)])
        await upload.complete(etags)
    except BaseException:
        await upload.abort()
        raise
