"""Pull-through: a zuul-registry mirror in front of an upstream registry.

The upstream is a zuul-registry process holding one large blob; the
mirror is another with ``upstreams`` pointing at it (namespaces off, one
entry without ``namespace``; over ``--tls`` both serve HTTPS and the
mirror trusts the bench's certificate with ``ca``). Each run measures,
one right after the other:

``direct``         GET of the blob from the upstream itself;
``first``          the same GET through a mirror with empty storage (a
                   fresh process on a fresh directory): the fill streams
                   the blob to the client while it stores it. Before it,
                   untimed here, the mirror is asked for the image's
                   manifest by tag, as a client pulling the image would
                   (so the blob GET is what such a client's layer pull
                   sees: the mirror has already talked to the upstream);
``cached``         the same GET again through that mirror, now from its
                   storage;
``direct_many``    ``--pullthrough-clients`` (16) GETs of the blob from
                   the upstream at once: what the machine can move;
``first_many``     as many GETs at once through another fresh mirror
                   (its manifest fetched first too): one fill, every
                   client reading along (with ``--pullthrough-workers``,
                   those of the other workers from storage).

For each: the time until the last byte, the time to the first body byte
(TTFB; both from just before the request's connection is made), CPU used
by the client, mirror, upstream and the rest of the machine, the
mirror's VmHWM, and how many fills the mirror ran (its log's "filled
from" lines: one per upstream blob GET). Bodies are checked as in the
large pull (``--pull-check``).
"""

import contextlib
import json
import os
import shutil
import threading
import time

from bench.large import LargeBlob, push_large
from bench.connections import Connection
from bench.measure import machine_busy_seconds
from bench.pulls import pulls_at_once, timed_pull
from bench.servers import Ours, StartError
from bench.small import (OCI_CONFIG, OCI_LAYER, OCI_MANIFEST,
                         push_blob_two_step, sha256)
from bench.wire import ProtocolError, check_digest_header, expect

REPOSITORY = 'bench/pullthrough'
TAG = 'latest'
CONFIG = b'{}'
FILL_WAIT = 60.0
FAILURES = (StartError, ProtocolError, OSError, threading.BrokenBarrierError)


class Mirror(Ours):
    """zuul-registry with the upstream as its only upstream registry."""

    key = 'mirror'
    title = 'zuul-registry mirror'

    def __init__(self, directory, *, upstream, **kw):
        super().__init__(directory, **kw)
        self.key, self.title = Mirror.key, Mirror.title
        self.upstream = upstream

    def config(self):
        config = super().config()
        entry = {'url': self.upstream.endpoint.url}
        if self.tls:
            entry['ca'] = self.tls.cert
        config['registry']['upstreams'] = [entry]
        return config

    def fills(self, *, since=0, wait=FILL_WAIT):
        """Fills finished since the log was ``since`` bytes long, waiting
        up to ``wait`` seconds for one: a fill is committed (and logs it)
        only after its last byte went to the clients."""
        deadline = time.monotonic() + wait
        while True:
            with open(self.log_path, 'rb') as f:
                f.seek(since)
                text = f.read()
            found = text.count(b' filled from ')
            if found or b' failed: ' in text or \
                    time.monotonic() > deadline:
                return found
            time.sleep(0.05)


class Usage:
    """CPU seconds of client, mirror, upstream and the rest, over a span."""

    def __init__(self, upstream, mirror=None):
        self.upstream, self.mirror = upstream, mirror
        self.before = self._now()

    def _now(self):
        return (time.process_time(),
                self.mirror.cpu_seconds() if self.mirror else 0.0,
                self.upstream.cpu_seconds(), machine_busy_seconds())

    def spent(self):
        client, mirror, upstream, busy = (
            b - a for a, b in zip(self.before, self._now()))
        return {'client_cpu': client, 'mirror_cpu': mirror,
                'upstream_cpu': upstream,
                'other_cpu': max(0.0, busy - client - mirror - upstream)}


def sample(blob, seconds, pulls, usage, mirror=None, fills_since=0, *,
           fill=False):
    found = {'bytes': blob.size * len(pulls), 'seconds': seconds,
             'ttfb': min(p.first_byte - p.start for p in pulls),
             'ttfb_max': max(p.first_byte - p.start for p in pulls),
             **usage.spent()}
    if mirror is not None:
        found['fills'] = mirror.fills(since=fills_since,
                                      wait=FILL_WAIT if fill else 0)
        found['mirror_rss_mib'] = mirror.memory_kib().get('VmHWM', 0) / 1024
    return found


def image_manifest(blob):
    """An image whose one layer is ``blob``."""
    return json.dumps({
        'schemaVersion': 2, 'mediaType': OCI_MANIFEST,
        'config': {'mediaType': OCI_CONFIG, 'digest': sha256(CONFIG),
                   'size': len(CONFIG)},
        'layers': [{'mediaType': OCI_LAYER, 'digest': blob.digest,
                    'size': blob.size}],
    }, sort_keys=True, separators=(',', ':')).encode()


def push_image(endpoint, blob):
    """The blob (one PATCH), the config and the manifest, tagged."""
    push_large(endpoint, REPOSITORY, blob)
    manifest = image_manifest(blob)
    with Connection(endpoint, timeout=30.0) as conn:
        push_blob_two_step(conn, REPOSITORY, CONFIG, sha256(CONFIG))
        what = 'push manifest %s:%s' % (REPOSITORY, TAG)
        response = expect(conn.request(
            'PUT', '/v2/%s/manifests/%s' % (REPOSITORY, TAG),
            {'Content-Type': OCI_MANIFEST}, manifest), 201, what)
        check_digest_header(response, sha256(manifest), what)
    return manifest


def get_manifest(endpoint, manifest):
    """GET the manifest by tag, as a client pulling the image starts;
    the seconds it took."""
    what = 'GET manifest %s:%s' % (REPOSITORY, TAG)
    start = time.perf_counter()
    with Connection(endpoint, timeout=30.0) as conn:
        response = expect(conn.request(
            'GET', '/v2/%s/manifests/%s' % (REPOSITORY, TAG),
            {'Accept': OCI_MANIFEST}), 200, what)
    seconds = time.perf_counter() - start
    if response.body != manifest:
        raise ProtocolError('%s: not the pushed manifest: %s' % (
            what, response.describe()))
    return seconds


@contextlib.contextmanager
def fresh_mirror(directory, upstream, args, tls):
    """A mirror on empty storage; its storage removed after (not its log)."""
    mirror = Mirror(directory, upstream=upstream, tls=tls,
                    start_timeout=args.start_timeout,
                    workers=args.pullthrough_workers)
    try:
        with mirror:
            yield mirror
    finally:
        shutil.rmtree(mirror.storage, ignore_errors=True)


def measure_run(upstream, blob, manifest, args, tls, directory, run,
                progress, settle):
    """One run of every kind; {kind: sample}."""
    samples = {}
    check, clients = args.pull_check, args.pullthrough_clients
    endpoint = upstream.endpoint

    def note(kind, label):
        s = samples[kind]
        progress('pull-through: %s, run %d: %.0f MiB/s, %.3f s, TTFB %.1f ms'
                 % (label, run, s['bytes'] / s['seconds'] / (1 << 20),
                    s['seconds'], s['ttfb'] * 1000))

    settle()
    usage = Usage(upstream)
    pull = timed_pull(endpoint, REPOSITORY, blob, check)
    samples['direct'] = sample(blob, pull.end - pull.start, [pull], usage)
    note('direct', 'direct pull')

    with fresh_mirror(os.path.join(directory, 'mirror%d-one' % run),
                      upstream, args, tls) as mirror:
        manifest_seconds = get_manifest(mirror.endpoint, manifest)
        for kind, label in (('first', 'first pull through the mirror'),
                            ('cached', 'cached pull through the mirror')):
            settle()
            mark = mirror.log_size()
            usage = Usage(upstream, mirror)
            pull = timed_pull(mirror.endpoint, REPOSITORY, blob, check)
            samples[kind] = sample(blob, pull.end - pull.start, [pull],
                                   usage, mirror, mark, fill=kind == 'first')
            mirror.check_alive()
            note(kind, label)
        samples['first']['manifest'] = manifest_seconds

    settle()
    usage = Usage(upstream)
    seconds, pulls = pulls_at_once(endpoint, REPOSITORY, blob, check,
                                   clients)
    samples['direct_many'] = sample(blob, seconds, pulls, usage)
    note('direct_many', '%d direct pulls at once' % clients)

    with fresh_mirror(os.path.join(directory, 'mirror%d-many' % run),
                      upstream, args, tls) as mirror:
        get_manifest(mirror.endpoint, manifest)
        settle()
        mark = mirror.log_size()
        usage = Usage(upstream, mirror)
        seconds, pulls = pulls_at_once(mirror.endpoint, REPOSITORY, blob,
                                       check, clients)
        samples['first_many'] = sample(blob, seconds, pulls, usage, mirror,
                                       mark, fill=True)
        mirror.check_alive()
        note('first_many', '%d first pulls at once through a mirror'
             % clients)
    return samples


def run(directory, args, tls, *, progress, settle):
    """Start the upstream, push the blob, measure ``--repeat`` runs.

    Returns {'runs': [{kind: sample}], 'error': text or None,
    'load': [1-minute load average before, after]}.
    """
    directory = os.path.join(directory, 'pullthrough')
    os.makedirs(directory, exist_ok=True)
    outcome = {'runs': [], 'error': None, 'load': [os.getloadavg()[0]]}
    blob = LargeBlob.make(args.blob_mib, seed=4242)
    upstream = Ours(os.path.join(directory, 'upstream'), tls=tls,
                    start_timeout=args.start_timeout)
    mirror_log = None
    try:
        with upstream:
            progress('pull-through: upstream on %s, pushing %d MiB' % (
                upstream.endpoint.url, blob.count))
            manifest = push_image(upstream.endpoint, blob)
            for number in range(1, args.repeat + 1):
                outcome['runs'].append(measure_run(
                    upstream, blob, manifest, args, tls, directory, number,
                    progress, settle))
    except FAILURES as error:
        mirrors = [os.path.join(directory, name) for name in
                   os.listdir(directory) if name.startswith('mirror')]
        if mirrors:
            mirror_log = Mirror(max(mirrors, key=os.path.getmtime),
                                upstream=upstream).log_tail()
        outcome['error'] = '%s: %s\nupstream %s%s' % (
            type(error).__name__, error, upstream.log_tail(),
            '\nlast mirror ' + mirror_log if mirror_log else '')
        progress('pull-through: FAILED (details at the end)')
    outcome['load'].append(os.getloadavg()[0])
    return outcome
