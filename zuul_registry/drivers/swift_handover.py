"""The Swift driver's `concat(consume=True)`: parts handed over, not copied.

A part written by `write` is a manifest over segments of its own set
(swift_segments).  Consuming it publishes the new object as a manifest
over those very segments, so no byte is copied; only segments under
`join_under` are still joined into new ones (Swift rate-limits reading
tiny segments), and plain parts (from `put`) are copied.  The order is
what keeps every guarantee:

1. Read every part's manifest (a missing part: ObjectNotFound, nothing
   changed) and make the copies and joins, into a new set.
2. Claim each set whose segments stay in place: PUT SET/claim.  The
   claim makes the set young, so that collection (swift_collect), which
   spares sets touched within its cut-off, cannot take it in step 3's
   short window when neither the part nor the new object refers to it.
3. Detach the parts that keep segments in place: a plain DELETE of the
   part's manifest, without multipart-manifest=delete, so its segments
   stay.  From here on only the new object may delete them: deleting the
   part's path (the upload area) finds no manifest there.  A part some
   other request already removed (404) stops the consumption: its
   segments may be going.
4. Publish the new object's manifest (Swift checks that every segment
   exists).  The segments now belong to it and go when it is deleted with
   multipart-manifest=delete.
5. Remove, best effort, what it does not need: the parts' nested
   manifests and segments that were joined, and the parts whose bytes
   were all copied (with their segments).  The claims stay: a
   collection whose mark listed the manifests before step 4 and read the
   parts' after step 3 finds the set needed by nothing, and only a claim
   still there when it lists the sets keeps it young.  Nor does a
   failure remove them: another consumption of the same parts may be
   in its window.  A claim is an empty object, left in its set when the
   manifest is deleted with its segments, and collected with the set
   once nothing needs it and it is older than the cut-off.

A failure in 1 or 2 leaves the parts unchanged (their sets claimed).  A
failure or crash after 3 began leaves the object unchanged and the
detached parts gone; their sets, which nothing refers to, are collected
after the cut-off.
"""

import asyncio
import logging

from swiftclient.exceptions import ClientException

from zuul_registry.drivers import base
from zuul_registry.drivers.swift_segments import SwiftError

log = logging.getLogger('zuul_registry.drivers.swift')


async def consume(segments, path, parts):
    """Create or replace `path` with `parts` joined, handing them over."""
    driver = segments.driver
    names = list(dict.fromkeys(parts))
    described = dict(zip(names, await asyncio.gather(
        *[segments.describe(name) for name in names])))
    sources = []
    for part in parts:
        for leaf in described[part].leaves:
            in_place = (described[part].manifest and
                        leaf['size_bytes'] >= segments.join_under and
                        segments.segment_name(leaf['path']) is not None)
            sources.append(dict(leaf, in_place=in_place))
    kept = {source['path'] for source in sources if source['in_place']}
    handed = [name for name in names if name != path and any(
        leaf['path'] in kept for leaf in described[name].leaves)]
    copied = [name for name in names if name != path and name not in handed]
    claims = sorted({segments.segment_name(leaf).rsplit('/', 1)[0] + '/claim'
                     for leaf in kept})
    junk = [segments.segment_name(item) for name in handed
            for item in described[name].nested + [
                leaf['path'] for leaf in described[name].leaves
                if leaf['path'] not in kept]]

    async def handover():
        await driver.gather_limited([driver._put(claim, b'')
                                     for claim in claims])
        detached = await driver.gather_limited([_detach(driver, name)
                                                for name in handed])
        gone = [name for name, done in zip(handed, detached) if not done]
        if gone:
            raise base.ObjectNotFound('%s: removed meanwhile' % gone[0])

    await segments.assemble(path, sources, handover=handover)
    await _quietly(driver.gather_limited(
        [driver.delete_object(name, manifest=False)
         for name in junk if name] +
        [driver.delete_object(name) for name in copied]))


async def _detach(driver, name):
    """Delete the manifest `name`, keeping its segments; whether it was
    there."""
    try:
        await driver.call('delete_object', driver.container, name)
    except ClientException as e:
        if e.http_status == 404:
            return False
        raise SwiftError('DELETE %s: %s' % (name, e)) from None
    return True


async def _quietly(coroutine):
    try:
        await asyncio.shield(coroutine)
    except Exception as e:
        log.warning('Could not remove what a consumed part left: %s', e)
