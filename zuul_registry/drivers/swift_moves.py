"""The Swift driver's `move`: manifests re-pointed, plain objects copied.

A manifest over segments of this driver moves without a byte copied:
its sets are claimed (swift_handover says why a claim stays), the
destination is published as a manifest over the very same items
(segments and nested manifests), and then the source's manifest goes,
without its segments.  A plain object (or a manifest over segments not
of this driver) is copied by the server (COPY), and then the source
goes.  In both cases the source is removed as copy_moves says, so that
moves racing in opposite directions cannot lose the object: the keep of
a manifest is its list of items, put back as a manifest; that of a
plain object a COPY into a set of its own.

The destination is published before the source goes: a reader, or a
crash, finds the object at one of the paths at every moment.  A move
never deletes segments: a source's manifest is removed alone, since the
destination may share them (a source replaced meanwhile by a move in
the other direction may too); what nothing needs then is collected.
"""

from zuul_registry.drivers import base, copy_moves
from zuul_registry.drivers.swift_segments import SwiftError, is_manifest


async def move(driver, src, dst):
    segments = driver.segments
    headers = await driver.head(src)
    if headers is None:
        raise base.ObjectNotFound(src)
    if is_manifest(headers):
        items = await segments.manifest(driver.container, src)
        if all(segments.segment_name(item['name']) for item in items):
            return await _repoint(driver, src, dst, items)
    await _copy(driver, src, dst)


def _whole(driver, name):
    return '/%s/%s' % (driver.container, name)


def _entry(item):
    """A manifest PUT's entry for an item of a manifest GET."""
    if item.get('sub_slo'):
        # A nested manifest's listed hash is not the one a PUT checks.
        return {'path': item['name'], 'etag': None, 'size_bytes': None}
    return {'path': item['name'], 'etag': item['hash'],
            'size_bytes': item['bytes']}


async def _repoint(driver, src, dst, items):
    segments = driver.segments
    described = await segments.describe(src)
    names = [segments.segment_name(path) for path in
             [leaf['path'] for leaf in described.leaves] + described.nested]
    claims = sorted({name.rsplit('/', 1)[0] + '/claim'
                     for name in names if name})
    await driver.gather_limited([driver._put(claim, b'')
                                 for claim in claims])
    entries = [_entry(item) for item in items]
    await _publish(driver, dst, entries, source=src)

    async def keep():
        if await driver.head(src) is None:
            raise base.ObjectNotFound(src)
        return entries

    async def put_back(kept):
        await _publish(driver, src, kept)
    await _remove(driver, src, dst, keep=keep, put_back=put_back)


async def _publish(driver, name, entries, *, source=None):
    """PUT the manifest `name` over `entries`; ObjectNotFound if Swift
    refuses it because `source`, whose items they are, went meanwhile
    with its segments."""
    try:
        await driver.segments.put_manifest(name, entries)
    except SwiftError:
        if source is not None and await driver.head(source) is None:
            raise base.ObjectNotFound('%s: removed meanwhile' % source) \
                from None
        raise


async def _copy(driver, src, dst):
    segments = driver.segments
    await segments.copy(_whole(driver, src), dst)

    async def keep():
        name = segments.new_set() + '/keep'
        await segments.copy(_whole(driver, src), name)
        return name

    async def put_back(kept):
        await segments.copy(_whole(driver, kept), src)

    async def drop(kept):
        await driver.delete_object(kept, manifest=False)
    await _remove(driver, src, dst, keep=keep, put_back=put_back, drop=drop)


async def _remove(driver, src, dst, **steps):
    async def exists():
        return await driver.head(dst) is not None
    await copy_moves.remove_source(
        src, dst, delete=lambda: driver.delete_object(src, manifest=False),
        exists=exists, **steps)
