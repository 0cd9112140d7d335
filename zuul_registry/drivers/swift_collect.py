"""The Swift driver's `collect_leftovers`: segment sets no manifest needs.

Sets (swift_segments) no manifest refers to are left by a write a crash
interrupted, by a failed write when Swift could not be told to delete,
by objects since replaced (a read still in progress may use their old
segments for a while), and by a consumption that failed half-way.
Collection is mark and sweep:

1. Mark: list every object outside .segments/ that the listing marks as
   a manifest (``slo_etag``), read each manifest, and every manifest
   nested in it: the sets they refer to are needed.
2. Then sweep: list .segments/, group the objects into their sets, and
   delete every set that nothing marked and whose newest object is older
   than the cut-off.

The order matters: a consumption (swift_handover) claims a set, writing
into it, before the part that referred to it lets go.  So a set that was
between two owners while the mark ran is young when the sweep lists it,
and stays.  A write in progress keeps its set young with each segment.

If the listing marks no object as a manifest, every object is asked
(HEAD): should one be a manifest after all (a cluster whose listings
lack ``slo_etag``), nothing is collected, since every set would look
unneeded.
"""

import datetime
import logging

from zuul_registry.drivers import base
from zuul_registry.drivers.swift_segments import ROOT, is_manifest

log = logging.getLogger('zuul_registry.drivers.swift')


async def collect(driver, *, before, dry_run):
    needed = await _mark(driver)
    if needed is None:
        log.warning('Swift container %s: listings do not mark manifests '
                    '(no slo_etag); leftovers not collected',
                    driver.container)
        return []
    sets = {}   # set -> [names, bytes, newest]
    async for entry in driver.listing(ROOT + '/'):
        found = sets.setdefault(entry['name'].rsplit('/', 1)[0],
                                [[], 0, 0.0])
        found[0].append(entry['name'])
        found[1] += entry.get('bytes', 0)
        found[2] = max(found[2], _time(entry.get('last_modified')))
    leftovers = []
    for name, (objects, size, newest) in sorted(sets.items()):
        if name in needed or newest >= before:
            continue
        leftovers.append(base.Leftover(name + '/', size))
        if not dry_run:
            await driver.gather_limited([
                driver.delete_object(item, manifest=False)
                for item in objects])
    return leftovers


async def _mark(driver):
    """The sets the manifests outside .segments/ need; None if the
    listing cannot tell which objects are manifests."""
    roots = [entry['name'] async for entry in _objects(driver)
             if 'slo_etag' in entry]
    if not roots:
        heads = await driver.gather_limited([
            driver.head(entry['name']) async for entry in _objects(driver)])
        if any(headers and is_manifest(headers) for headers in heads):
            return None
    needed = set()

    async def mark(container, name):
        try:
            items = await driver.segments.manifest(container, name)
        except base.ObjectNotFound:
            return   # deleted meanwhile: it needs nothing
        for item in items:
            segment = driver.segments.segment_name(item['name'])
            if segment is not None:
                needed.add(segment.rsplit('/', 1)[0])
            if item.get('sub_slo'):
                nested_container, _, nested = item['name'].lstrip(
                    '/').partition('/')
                await mark(nested_container, nested)

    await driver.gather_limited([mark(driver.container, name)
                                 for name in roots])
    return needed


def _objects(driver):
    """Listing entries of every object outside .segments/."""
    # Paths start with [A-Za-z0-9_], after every name under .segments/.
    return driver.listing('', marker=ROOT + '0')


def _time(stamp):
    """Seconds since the epoch of a listing's last_modified (UTC)."""
    if not stamp:
        return float('inf')   # unknown: never old enough
    moment = datetime.datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()
