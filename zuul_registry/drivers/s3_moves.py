"""The S3 driver's `move`: the destination first, then the source goes.

S3 cannot rename.  A link moves as a new link naming the same data (no
byte copied, s3_links); a plain object as one CopyObject.  Then the
source is removed as copy_moves says, so that moves racing in opposite
directions (the quarantine's hold and a restore) cannot lose it:

* the keep of a link is its list of segments, nothing copied: the data
  stays meanwhile, since collection (s3_collect) spares data whose
  hints were written within its cut-off, as the move's own link just
  did, and a link put back is published as any other (s3_links);
* the keep of a plain object is a server-side copy into a data object
  no link names (collected as a leftover if a crash leaves it).
"""

from zuul_registry.drivers import base, copy_moves, s3_concat, s3_links


async def move(driver, src, dst):
    await driver.ready()
    found = await s3_links.heads(driver, [src])
    if await s3_links.concat(driver, dst, [src], found, consume=False):
        steps = _link_steps(driver, src)
    else:
        await s3_concat.concat(driver, dst, [src], found, consume=False)
        steps = _copy_steps(driver, src, found[src])

    async def exists():
        return await driver.head(driver.key(dst)) is not None
    await copy_moves.remove_source(
        src, dst, delete=lambda: driver.delete_keys([driver.key(src)]),
        exists=exists, **steps)


def _link_steps(driver, src):
    async def keep():
        segments = await s3_links.segments_of(driver, driver.key(src))
        if segments is None:
            raise base.ObjectNotFound(src)
        return segments

    async def put_back(segments):
        await s3_links.publish(driver, src, segments)
    return dict(keep=keep, put_back=put_back)


def _copy_steps(driver, src, head):
    async def keep():
        return await s3_links.copy_in(driver, src, head)

    async def put_back(segment):
        await s3_concat.copy(driver, s3_links.data_key(driver, segment.id),
                             driver.key(src))

    async def drop(segment):
        await s3_links.forget(driver, segment.id)
    return dict(keep=keep, put_back=put_back, drop=drop)
