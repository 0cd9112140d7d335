"""Moves on stores that cannot rename: the source's removal, guarded.

Swift and S3 move an object by publishing it at the destination (a
copy, or a manifest or link naming the same bytes) and then deleting
the source.  Two such moves in opposite
directions can each delete the copy the other has just published: the
quarantine holding a blob (A to Q) while a request restores it (Q to A)
did exactly that, and the blob was nowhere.  So once the destination is
published, the source is removed by `remove_source`:

K. keep: a private copy of the source, or where the source names its
   bytes (a Swift manifest, an S3 link) just that list: nothing copied.
   The source gone already means another move took it: nothing is
   deleted then;
D. delete the source;
V. look at the destination;
B. if it is gone, put the source back from the keep;
   and last, drop the keep.

Why the object cannot end up nowhere, with a move H from A to Q and a
move R from Q to A.  A move that puts back (B) leaves its source there
for good: only its own D deletes it, and that came before.  So for both
paths to end empty neither put back: H's V found Q, and R's V found A.
The last deletion of A is D_H, after R published A (else A would stay),
and A was there at V_R, which is after R published it: so V_R < D_H.
Likewise V_H < D_R.  With D_H < V_H and D_R < V_R, that is a cycle.

A destination gone for another reason (prune's purge took it to a
private name) gets its source back too: keeping a blob is always safe,
a later collection decides again.  A crash between D and B, while a
move in the other direction deletes the destination, loses the object
to the keep, which leftover collection removes in the end; the window
is a few requests long and needs both the race and the crash.
"""

import logging

from zuul_registry.drivers import base

log = logging.getLogger('zuul_registry.drivers.copy_moves')


async def remove_source(source, destination, *, keep, delete, exists,
                        put_back, drop=None):
    """Remove the moved object's `source` once `destination` is published.

    The steps are coroutine functions: `keep()` makes the keep (raises
    ObjectNotFound if the source is gone), `delete()` deletes the source,
    `exists()` says whether the destination is there, `put_back(kept)`
    writes the source again from the keep, `drop(kept)` removes it (None:
    the keep is only a list, nothing to remove).
    """
    try:
        kept = await keep()
    except base.ObjectNotFound:
        log.info('Move of %s to %s: the source went meanwhile', source,
                 destination)
        return
    await delete()
    if not await exists():
        log.warning('Move of %s to %s: the destination went meanwhile '
                    '(a move back?); the source is put back', source,
                    destination)
        await put_back(kept)
    if drop is not None:
        await drop(kept)
