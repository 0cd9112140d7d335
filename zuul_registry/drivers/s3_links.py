"""Large S3 objects written once and named by links.

S3 cannot rename, and servers such as SeaweedFS copy every byte of a
CopyObject: completing an upload or quarantining a blob by copy costs as
much as writing it again.  So a write of at least `link_size` bytes puts
its bytes under a key of their own, a *data object*
``.zr-data/<id>/data`` (a name no storage path can take: paths never
start with a dot), and at its path a *link*: a small object flagged in
its metadata, which also holds the size, whose body lists the data
objects it joins (its segments).  A concat whose parts are links, and a
move of a link, write a new link naming the same segments: no byte is
copied.  Small parts among them are copied into data objects of their
own first; with too many of those, the caller copies as before
(s3_concat).

Deleting a link deletes the data objects no other link names.  The
data of a link written over (a blob pushed again) is not touched then:
a reader may have read the old link a moment before.  That data, and
what a crash leaves (data whose link was never written, or whose
deletion was cut short), is removed by s3_collect.collect (the
driver's `collect_leftovers`, run by prune) once older than its
cut-off.  A read whose data is gone before its first byte reads the
link again.

To find the links that may name a data object without reading every
link, each link writer first leaves an *owner hint* next to the data,
``.zr-data/<id>/owner-<hash>``, holding the link's path.  Hints are
never removed while the data lives: a path can name the data again
later (a blob quarantined and restored).

Collection (s3_collect) takes the data no link names, with no lock
against the writers of links: `publish` is the writer's side of that
protocol, described there.
"""

import asyncio
import hashlib
import json
import logging
import secrets
from typing import NamedTuple

from zuul_registry.drivers import base, s3_multipart
from zuul_registry.drivers.s3_client import (
    S3Error, describe, is_not_found)

log = logging.getLogger('zuul_registry.drivers.s3')

DATA_ROOT = '.zr-data/'
LINK_FLAG = 'zr-link'
LINK_SIZE = 'zr-size'
DOOMED = 'doomed'
OWNER = 'owner-'
# A link joins at most this many data objects; a concat that would need
# more is copied into one object instead (reads stay few).
MAX_SEGMENTS = 1000
# Small parts of a concat of links, copied each into a data object: at
# most this many, else the concat is copied whole.
MAX_SMALL_COPIES = 16
# How long a writer that found its data doomed waits for the collector's
# verdict (an examination takes a few requests), and how often it looks.
VERDICT_WAIT = 10.0
VERDICT_POLL = 0.05


class IsLink(Exception):
    """A read found a link where it expected the bytes: its segments."""

    def __init__(self, segments):
        super().__init__()
        self.segments = segments


class Withdrawn(base.ObjectNotFound):
    """A link was taken back: collection took its data meanwhile."""


class Segment(NamedTuple):
    id: str
    size: int


def is_link(head):
    """Whether a HeadObject or GetObject answer is a link's."""
    return head.get('Metadata', {}).get(LINK_FLAG) == '1'


def size_of(head):
    """The size of the object of a HeadObject answer, link or not."""
    if is_link(head):
        return int(head['Metadata'][LINK_SIZE])
    return head['ContentLength']


def refuse_link(response):
    """get_stream's check (blocking): a link raises IsLink, its body read
    to the end, which keeps the connection for the next request."""
    if is_link(response):
        raise IsLink(_parse(response['Body'].read()))


def _parse(body):
    try:
        record = json.loads(body)
        return [Segment(data_id, size)
                for data_id, size in record['segments']]
    except (ValueError, KeyError, TypeError):
        raise S3Error('a link without a readable body') from None


def data_root(driver, data_id):
    return '%s%s%s/' % (driver.prefix, DATA_ROOT, data_id)


def data_key(driver, data_id):
    return data_root(driver, data_id) + 'data'


def _owner_key(driver, data_id, path):
    return data_root(driver, data_id) + OWNER + \
        hashlib.sha256(path.encode()).hexdigest()[:32]


# -- reading links ------------------------------------------------------------

async def get_small(driver, key, *, wanted=None):
    """The body of the small object `key`; None if it is missing, or if
    `wanted` refuses its answer (the body then unread)."""
    try:
        response = await driver.client.call('get_object', Bucket=driver.bucket,
                                            Key=key)
    except Exception as e:
        if is_not_found(e):
            return None
        raise S3Error('GetObject %s: %s' % (key, describe(e))) from None
    body = response['Body']
    try:
        if wanted is not None and not wanted(response):
            return None
        return await driver.client.run(body.read)
    finally:
        body.close()


async def segments_of(driver, key):
    """The segments of the link `key`; None if `key` is missing or holds
    bytes of its own."""
    body = await get_small(driver, key, wanted=is_link)
    return None if body is None else _parse(body)


async def read(driver, path, segments, *, offset, length, chunk_size):
    """Yield the bytes [offset, offset + length) of the link `path` made
    of `segments` (length None: to its end)."""
    end = sum(segment.size for segment in segments)
    if length is not None:
        end = min(end, offset + length)
    start = 0
    for segment in segments:
        stop = start + segment.size
        if stop > offset and start < end:
            first, last = max(offset, start), min(end, stop)
            got = 0
            try:
                async for piece in driver.client.get_stream(
                        driver.bucket, data_key(driver, segment.id),
                        start=first - start, end=last - start,
                        chunk_size=chunk_size):
                    got += len(piece)
                    yield piece
            except base.ObjectNotFound:
                raise base.ObjectNotFound(path) from None
            if got != last - first:
                raise S3Error('%s: data %s is shorter than its link says'
                              % (path, segment.id))
        start = stop
        if start >= end:
            return


# -- writing links ------------------------------------------------------------

def new_id():
    return secrets.token_hex(16)


async def write(driver, path, held, rest, *, exclusive):
    """Write `held` (s3_multipart.Pieces), then what the iterator `rest`
    yields (None: nothing), as a data object and link `path` to it; the
    size."""
    data_id = new_id()
    key = data_key(driver, data_id)
    try:
        if rest is None:
            size = held.size
            await driver.put_object(key, held.take())
        else:
            size = await s3_multipart.write(driver, key, held, rest)
        await publish(driver, path, [Segment(data_id, size)],
                      exclusive=exclusive)
    except BaseException:
        # Nobody else knows the id: its objects can go at once.
        await asyncio.shield(forget(driver, data_id))
        raise
    return size


async def publish(driver, path, segments, *, exclusive=False):
    """Make `path` a link to `segments`: hints, link, then the check
    against collection (Withdrawn if it took the data meanwhile).

    The data of a link it replaces is left to `collect`: a reader may
    have just read that link (a blob pushed again) and be streaming its
    data."""
    key = driver.key(path)
    ids = list(dict.fromkeys(segment.id for segment in segments))
    await asyncio.gather(*[driver.put_object(
        _owner_key(driver, data_id, path), path.encode()) for data_id in ids])
    body = json.dumps({'segments': [list(segment) for segment in segments]})
    await driver.put_object(
        key, body.encode(), exclusive=exclusive, metadata={
            LINK_FLAG: '1',
            LINK_SIZE: str(sum(segment.size for segment in segments))})
    directories = await _verdicts(driver, ids)
    if all('data' in found for found in directories):
        return
    if await segments_of(driver, key) == segments:
        await driver.delete_keys([key])
    # Where the data is gone, our hints are all that is left of it.
    await asyncio.gather(*[forget(driver, data_id) for data_id, found
                           in zip(ids, directories) if 'data' not in found])
    raise Withdrawn('%s: its data was collected meanwhile' % path)


async def _verdicts(driver, ids):
    """The directory entries of each data object of `ids`, once no
    collector is deciding on one (or VERDICT_WAIT has passed: a
    collector still deciding then gives up)."""
    directories = await asyncio.gather(*[entries(driver, data_id)
                                         for data_id in ids])
    deadline = asyncio.get_running_loop().time() + VERDICT_WAIT
    while True:
        waiting = [n for n, found in enumerate(directories)
                   if DOOMED in found and 'data' in found]
        if not waiting or asyncio.get_running_loop().time() >= deadline:
            return directories
        await asyncio.sleep(VERDICT_POLL)
        again = await asyncio.gather(*[entries(driver, ids[n])
                                       for n in waiting])
        for n, found in zip(waiting, again):
            directories[n] = found


async def heads(driver, names):
    """{name: HeadObject answer} of the paths `names`; ObjectNotFound
    for a missing one."""
    found = await asyncio.gather(*[driver.head(driver.key(name))
                                   for name in names])
    for name, head in zip(names, found):
        if head is None:
            raise base.ObjectNotFound(name)
    return dict(zip(names, found))


async def concat(driver, path, parts, found, *, consume):
    """Make `path` a link joining `parts` (their heads `found`), if at
    least one is a link and the rest allow; whether it did.  With
    `consume`, the parts' own objects are deleted afterwards."""
    if not any(is_link(head) for head in found.values()):
        return False
    small = [name for name in dict.fromkeys(parts)
             if not is_link(found[name]) and found[name]['ContentLength']]
    if len(small) > MAX_SMALL_COPIES:
        return False
    linked = {}
    for name in dict.fromkeys(parts):
        if is_link(found[name]):
            segments = await segments_of(driver, driver.key(name))
            if segments is None:
                raise base.ObjectNotFound('%s: changed meanwhile' % name)
            linked[name] = segments
    if sum(len(linked.get(name, [None])) for name in parts) > MAX_SEGMENTS:
        return False
    copied = {}
    try:
        for name in small:
            copied[name] = await copy_in(driver, name, found[name])
        segments = []
        for name in parts:
            if name in linked:
                segments += linked[name]
            elif name in copied:
                segments.append(copied[name])
        await publish(driver, path, [s for s in segments if s.size])
    except BaseException:
        await asyncio.shield(asyncio.gather(*[
            forget(driver, segment.id) for segment in copied.values()]))
        raise
    if consume:
        try:
            await driver.delete_keys([driver.key(name) for name in
                                      dict.fromkeys(parts) if name != path])
        except S3Error as e:
            log.warning('Could not delete the parts consumed by %s: '
                               '%s', path, e)
    return True


async def copy_in(driver, name, head):
    """Copy the small object `name` into a new data object; its
    Segment."""
    data_id = new_id()
    try:
        await driver.client.call(
            'copy_object', Bucket=driver.bucket, Key=data_key(driver, data_id),
            CopySource={'Bucket': driver.bucket, 'Key': driver.key(name)},
            CopySourceIfMatch=head['ETag'], MetadataDirective='REPLACE',
            Metadata=driver.stamp())
    except Exception as e:
        raise s3_multipart.source_error(driver.key(name), e) from None
    return Segment(data_id, head['ContentLength'])


# -- a data object's directory ------------------------------------------------

async def entries(driver, data_id):
    """{name: listing entry} of the data object's directory."""
    root = data_root(driver, data_id)
    kwargs = {'Bucket': driver.bucket, 'Prefix': root}
    found = {}
    while True:
        try:
            page = await driver.client.call('list_objects_v2', **kwargs)
        except Exception as e:
            raise S3Error('ListObjectsV2 %s: %s' % (root, describe(e))) \
                from None
        for entry in page.get('Contents', ()):
            if not entry['Key'].endswith('/'):
                found[entry['Key'][len(root):]] = entry
        if not page.get('IsTruncated'):
            return found
        kwargs['ContinuationToken'] = page['NextContinuationToken']


async def forget(driver, data_id):
    """Delete a data object and everything next to it; best effort."""
    try:
        await driver.delete_keys([data_key(driver, data_id)])
        await driver.delete_keys([data_root(driver, data_id) + name
                                  for name in await entries(driver,
                                                            data_id)])
    except S3Error as e:
        log.warning('Could not delete the data %s: %s', data_id, e)
