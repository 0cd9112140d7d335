"""Provenance: which manifests the registry served, by which reference,
from where, first and last.

Every manifest a client gets by tag or digest (GET or HEAD) is noted in
its repository: the reference, the digest, the source ("local" for what
was pushed here, or the URL of the upstream it was fetched from), and
the first and last time it was served.  A tag that resolved to several
digests over time has a note for each.  `zuul-registry report` prints
them, so a buildset's exact inputs can be checked afterwards.

Notes are written in the background, after the answer: a client never
waits for one.  A process rewrites a note at most every INTERVAL
seconds, so "last" is exact to that interval and a busy tag costs one
small write a minute.  Processes sharing a storage each keep the
earliest "first" they read.
"""

import asyncio
import collections
import json
import logging
import time

from zuul_registry import oci
from zuul_registry.drivers import base as driver_base
from zuul_registry.storage import listing, paths

log = logging.getLogger('zuul_registry.storage.provenance')

INTERVAL = 60
LOCAL = 'local'
_REMEMBERED = 65536   # notes whose last write a process remembers


class Provenance:

    def __init__(self, driver, *, clock=time.time):
        self.driver = driver
        self.clock = clock
        self._written = collections.OrderedDict()  # key -> (source, time)
        self._tasks = set()

    def served(self, repository, reference, digest, source):
        """Note in the background that `reference` served `digest`."""
        key = (repository.namespace, repository.name, reference, str(digest))
        now = self.clock()
        written = self._written.get(key)
        if written is not None and written[0] == source and \
                now - written[1] < INTERVAL:
            return
        self._written[key] = (source, now)
        self._written.move_to_end(key)
        while len(self._written) > _REMEMBERED:
            self._written.popitem(last=False)
        task = asyncio.ensure_future(
            self._write(repository, reference, digest, source, now))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, repository, reference, digest, source, now):
        path = paths.served_record(repository.namespace, repository.name,
                                   reference, digest)
        first = now
        try:
            first = min(first, float(json.loads(
                await self.driver.get(path))['first']))
        except driver_base.ObjectNotFound:
            pass
        except (ValueError, KeyError, TypeError):
            log.warning('Provenance note %s unreadable, rewritten', path)
        try:
            await self.driver.put(path, json.dumps({
                'source': source, 'first': first, 'last': now,
            }).encode('utf8'))
        except Exception as e:   # a note is never worth a failed pull
            log.warning('Provenance of %s:%s not noted: %s', repository,
                        reference, e)

    async def close(self):
        """Let the notes under way finish."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def report(self, catalog):
        """Every note, as dicts sorted by repository and reference."""
        entries = []
        for namespace in await catalog.namespaces_stored():
            for name in await catalog.names_in(namespace):
                repository = name if namespace is None \
                    else '%s/%s' % (namespace, name)
                entries.extend(await self._notes(namespace, name,
                                                 repository))
        entries.sort(key=lambda e: (e['repository'], e['reference'],
                                    e['first']))
        return entries

    async def _notes(self, namespace, name, repository):
        base = paths.served(namespace, name)
        found = []
        for digest in await listing.digests(self.driver, base + '/_digests',
                                            levels=1):
            found.append((str(digest), digest))
        for tag in await self.driver.list(base + '/_tags'):
            for digest in await listing.digests(
                    self.driver, '%s/_tags/%s' % (base, tag), levels=1):
                found.append((tag, digest))
        notes = []
        for reference, digest in found:
            path = paths.served_record(namespace, name, reference, digest)
            try:
                note = json.loads(await self.driver.get(path))
                notes.append({
                    'repository': repository, 'reference': reference,
                    'digest': str(digest), 'source': str(note['source']),
                    'first': float(note['first']),
                    'last': float(note['last'])})
            except (driver_base.ObjectNotFound, ValueError, KeyError,
                    TypeError):
                continue
        return notes


def format_report(entries):
    """The report as aligned text lines, times in UTC."""
    def when(seconds):
        return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(seconds))
    rows = [('REPOSITORY', 'REFERENCE', 'DIGEST', 'SOURCE', 'FIRST', 'LAST')]
    for e in entries:
        reference = e['reference']
        if oci.is_digest(reference):
            reference = '@' + reference[:19]
        rows.append((e['repository'], reference, e['digest'], e['source'],
                     when(e['first']), when(e['last'])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ['  '.join(value.ljust(width) for value, width in
                      zip(row, widths)).rstrip() for row in rows]
