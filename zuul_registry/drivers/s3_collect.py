"""Collection of the S3 driver's data objects (s3_links) that no link
names: after the deletion of links (`delete`), and by prune for what is
left over (`collect`).

Collection against writers of links, with no lock:

* a writer leaves its hints, writes its link, then looks at each data
  object's directory: data gone, it takes its link back and fails; a
  ``doomed`` marker there, it waits for the collector's verdict: the
  marker taken away, or still there after s3_links.VERDICT_WAIT (a collector
  that died, or gave up), the data stays and so does the link; the data
  gone, it takes its link back and fails;
* the collector (the deletion of a link, or `collect` for data older
  than its cut-off) takes a data object whose hinted links all name
  other data, puts the ``doomed`` marker, then reads the
  hints and their links again, and again while new hints show up: a
  link naming the data removes the marker and keeps it; else the data
  goes, its hints and marker after it, unless more than half of
  VERDICT_WAIT has passed since the marker: a writer may have stopped
  waiting, so it gives up, takes the marker away and keeps the data
  for a later collection.

A writer that looked before the marker was put had written its link
before, so the collector's look after the marker finds it.  A writer
that saw the marker does not take its link back while the collector may
still decide to keep the data: another writer may have written the same
link at the same path (two completions of one blob) and already
answered, and the collector kept the data for that link.  A writer
that stops waiting keeps its link: the collector, if still deciding,
is then past half the wait and gives up (short of a stall of that long
between its look at the clock and its deletion).  A link is
replaced only after the new one is written (a move writes the
destination before deleting the source), and each new link's hint is
written before, so a chain of moves cannot slip between the collector's
reads: the source missing means the next hint is there to read.
"""

import asyncio
import logging

from zuul_registry.drivers import base, s3_links

log = logging.getLogger('zuul_registry.drivers.s3')

# Data objects examined at once.
COLLECT_PARALLEL = 8


async def _named(driver, data_id, owners):
    """Whether a link at one of the hinted paths names the data."""
    async def names(owner):
        path = await s3_links.get_small(
            driver, s3_links.data_root(driver, data_id) + owner)
        if path is None:
            return False
        segments = await s3_links.segments_of(
            driver, driver.key(path.decode()))
        return any(segment.id == data_id for segment in segments or ())
    return any(await asyncio.gather(*[names(owner) for owner in owners]))


def _owners(entries):
    return {name for name in entries if name.startswith(s3_links.OWNER)}


async def _examine(driver, data_id, *, before=None, dry_run=False):
    """Collect the data object if no link names it (and, `before` given,
    nothing next to it is more recent); its Leftover."""
    entries = await s3_links.entries(driver, data_id)
    if not entries or before is not None and any(
            entry['LastModified'].timestamp() >= before
            for entry in entries.values()):
        return None   # gone, or touched since the cut-off
    doomed_key = s3_links.data_root(driver, data_id) + s3_links.DOOMED
    if await _named(driver, data_id, _owners(entries)):
        if s3_links.DOOMED in entries and not dry_run:
            await driver.delete_keys([doomed_key])
        return None
    size = entries.get('data', {}).get('Size', 0)
    leftover = base.Leftover(
        '%s%s (data)' % (s3_links.DATA_ROOT, data_id), size)
    if dry_run:
        return leftover
    await driver.put_object(doomed_key, b'')
    doomed_at = asyncio.get_running_loop().time()
    checked = None
    while True:
        owners = _owners(await s3_links.entries(driver, data_id))
        if checked is not None and owners <= checked:
            break
        if await _named(driver, data_id, owners):
            await driver.delete_keys([doomed_key])
            return None
        checked = owners | (checked or set())
    elapsed = asyncio.get_running_loop().time() - doomed_at
    if elapsed > s3_links.VERDICT_WAIT / 2:
        # A writer that saw the marker may have stopped waiting and kept
        # a link we did not read.
        log.warning('Data %s: examined too slowly to collect; kept for '
                    'the next collection', data_id)
        await driver.delete_keys([doomed_key])
        return None
    await s3_links.forget(driver, data_id)
    return leftover


async def delete(driver, keys):
    """Delete the objects `keys`, and the data of the links among them
    that no other link names."""
    found = await asyncio.gather(*[driver.head(key) for key in keys])
    linked = [key for key, head in zip(keys, found)
              if head is not None and s3_links.is_link(head)]
    segments = await asyncio.gather(*[s3_links.segments_of(driver, key)
                                      for key in linked])
    await driver.delete_keys(keys)
    ids = dict.fromkeys(segment.id for listed in segments
                        for segment in listed or ())
    await _examine_all(driver, ids)


async def _examine_all(driver, ids, **options):
    limit = asyncio.Semaphore(COLLECT_PARALLEL)

    async def examine(data_id):
        async with limit:
            return await _examine(driver, data_id, **options)
    found = await asyncio.gather(*[examine(data_id) for data_id in ids])
    return [leftover for leftover in found if leftover is not None]


async def collect(driver, *, before, dry_run):
    """The data objects no link names, older than `before`, removed
    (unless `dry_run`): their Leftovers."""
    root = driver.prefix + s3_links.DATA_ROOT
    ids = [name[len(root):].rstrip('/') async for name, subtree in
           driver.listing(root, delimiter='/') if subtree]
    return await _examine_all(driver, ids, before=before, dry_run=dry_run)
