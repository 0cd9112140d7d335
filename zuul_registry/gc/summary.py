"""What a prune did (or, dry, would do): counts by kind, and bytes."""

from collections import Counter


class Summary:
    """Counts of what prune removed, quarantined, restored and kept.

    `freed` counts the bytes removed for good (purged blobs, uploads,
    leftovers); `held` the bytes moved into the quarantine this run.
    """

    REMOVED = ('manifests', 'tags', 'uploads', 'links', 'leftovers')
    BLOBS = ('kept', 'quarantined', 'restored', 'purged', 'held')
    _FREEING = ('uploads', 'leftovers', 'purged')

    def __init__(self, *, dry_run):
        self.dry_run = dry_run
        self.objects = Counter()
        self.freed = 0
        self.held = 0

    def count(self, kind, size=0, *, number=1):
        self.objects[kind] += number
        if kind in self._FREEING:
            self.freed += size
        elif kind == 'quarantined':
            self.held += size

    @property
    def bytes(self):
        return self.freed

    def __str__(self):
        removed = ', '.join('%d %s' % (self.objects[kind], kind)
                            for kind in self.REMOVED)
        blobs = ', '.join('%d %s' % (self.objects[kind], kind)
                          for kind in self.BLOBS)
        return '%s %s; blobs: %s; %d bytes quarantined, %d bytes freed' % (
            'Would remove' if self.dry_run else 'Removed', removed, blobs,
            self.held, self.freed)
