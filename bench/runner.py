"""The run: every registry started at once, measurements interleaved.

The machine may be shared, and its load changes over minutes. So all
registries under test run side by side (idle when not measured) and each
measurement is taken from one registry right after the other: run 1 push
ours, push reference, pull ours, pull reference, ..., run 2 .... A change
in background load then hits both, not one. Before each measurement the
page cache is written back (``sync``), so one registry's writes are not
flushed on the other's time.

A registry that misbehaves is dropped from the rest of the run; its error
(the request and the answer) is kept for the report.
"""

import asyncio
import contextlib
import os
import sys
import threading

from bench import concurrent
from bench.servers import StartError
from bench.wire import ProtocolError
from bench.large import LargeBlob, pull_large, push_chunked, push_large
from bench.measure import measure
from bench.small import (SmallImage, get_manifest_op, head_blob_op,
                         push_small_image, push_small_op, run_requests,
                         small_blobs)

SMALL_REPOSITORY = 'bench/small'
TAG = 'latest'
MIB = 1 << 20
SYNC_TIMEOUT = 60.0
FAILURES = (StartError, ProtocolError, OSError, threading.BrokenBarrierError)


def progress(text):
    print(text, file=sys.stderr, flush=True)


class Subject:
    """One registry under test and what was measured on it so far.

    A failure stops that kind of measurement (and the kinds that need it:
    the pull needs the push, HEAD and manifest GET need the small image);
    the others go on. A registry that did not start or exited stops all.
    """

    NEEDS = {'pull': 'push', 'head': 'setup', 'manifest': 'setup',
             'many_pull': 'concurrent_setup'}

    def __init__(self, registry):
        self.registry = registry
        self.title = registry.title
        self.samples = {}           # kind -> [Sample]
        self.failures = {}          # kind -> what went wrong, first time
        self.peak_rss_kib = 0
        self.memory = {'main': 0, 'workers': []}    # see memory_roles
        self.dead = False
        self.log_mark = 0           # where the log was when the step began

    @property
    def error(self):
        return '\n\n'.join(self.failures.values()) or None

    def can(self, kind):
        return not self.dead and kind not in self.failures and \
            self.NEEDS.get(kind) not in self.failures

    def fail(self, kind, doing, error):
        text = '%s: %s: %s' % (doing, type(error).__name__, error)
        process = self.registry.process
        if isinstance(error, StartError):
            self.dead = True
        else:
            if process is not None and process.poll() is not None:
                self.dead = True
                text += '\n%s exited with status %s' % (
                    self.title, process.returncode)
            text += '\n' + self.registry.log_tail(since=self.log_mark)
        self.failures[kind] = text
        progress('%s: FAILED %s (details at the end)' % (self.title, doing))


def settle():
    """Write dirty pages back, bounded in time (a hung sync is not ours)."""
    thread = threading.Thread(target=os.sync, daemon=True)
    thread.start()
    thread.join(SYNC_TIMEOUT)


def run(registries, args):
    """Start ``registries``, measure, stop them; return the Subjects."""
    progress('preparing %d blob(s) of %d MiB' % (args.repeat, args.blob_mib))
    large = [LargeBlob.make(args.blob_mib, seed=run)
             for run in range(args.repeat)]
    image = SmallImage.make(args.small_bytes, seed=7)
    shared = concurrent.shared_blob(args.concurrent_mib) \
        if args.concurrent else None
    subjects = [Subject(r) for r in registries]
    with contextlib.ExitStack() as stack:
        for subject in subjects:
            progress('%s: starting' % subject.title)
            try:
                stack.enter_context(subject.registry)
            except FAILURES as error:
                subject.fail('start', 'start', error)
                subject.dead = True
                continue
            progress('%s: listening on %s (pid %d)' % (
                subject.title, subject.registry.endpoint.url,
                subject.registry.pid))
            step(subject, 'setup', 'push the small image',
                 lambda r: push_small_image(r.endpoint, SMALL_REPOSITORY,
                                            image, TAG))
            if shared is not None:
                step(subject, 'concurrent_setup',
                     'push the %d MiB blob for the concurrent pulls' %
                     shared.count,
                     lambda r: push_large(r.endpoint, concurrent.REPOSITORY,
                                          shared))
        for run in range(1, args.repeat + 1):
            measure_run(subjects, args, run, large[run - 1], image)
        # After every run of the other kinds, so that what a server keeps
        # of these (allocator, Go heap) is not in their peaks.
        for run in range(1, args.repeat + 1) if shared is not None else ():
            measure_concurrent(subjects, args, run, shared)
        for subject in subjects:
            subject.memory = read_memory(subject.registry)
            subject.peak_rss_kib = max([subject.memory['main']] +
                                       subject.memory['workers'])
    return subjects


def read_memory(registry):
    """The largest VmHWM of each server process (see memory_roles), also
    of a registry that failed, if it still runs."""
    if registry.process is None or registry.process.poll() is not None:
        return {'main': max(registry.peaks.values(), default=0),
                'workers': []}
    try:
        return registry.memory_roles()
    except OSError:
        return {'main': 0, 'workers': []}


def step(subject, kind, doing, action):
    """``action(registry)`` if ``kind`` may still run; None if it fails."""
    if not subject.can(kind):
        return None
    subject.log_mark = subject.registry.log_size()
    try:
        return action(subject.registry)
    except FAILURES as error:
        subject.fail(kind, doing, error)
        return None


def measure_run(subjects, args, run, blob, image):
    n, c = args.requests, args.concurrency
    repository = 'bench/large%d' % run
    pushes = small_blobs(n, args.small_bytes, seed=1000 + run)
    monolithic = args.small_push == 'monolithic'
    kinds = [
        ('push', 'push %d MiB' % blob.count, blob.size, True,
         lambda r: push_large(r.endpoint, repository, blob)),
        ('chunked_push', 'push %d MiB in 8 MiB PATCHes' % blob.count,
         blob.size, True,
         lambda r: push_chunked(r.endpoint, 'bench/chunked%d' % run, blob)),
        ('pull', 'pull %d MiB' % blob.count, blob.size, True,
         lambda r: pull_large(r.endpoint, repository, blob,
                              check=args.pull_check)),
        ('head', 'HEAD blob x%d' % n, n, False,
         lambda r: asyncio.run(run_requests(
             r.endpoint, n, c, head_blob_op(SMALL_REPOSITORY, image.layer)))),
        ('manifest', 'GET manifest x%d' % n, n, False,
         lambda r: asyncio.run(run_requests(
             r.endpoint, n, c, get_manifest_op(SMALL_REPOSITORY, TAG,
                                               image.manifest)))),
        ('small_push', 'small push x%d' % n, n, False,
         lambda r: asyncio.run(run_requests(
             r.endpoint, n, c, push_small_op(SMALL_REPOSITORY, pushes,
                                             monolithic=monolithic)))),
    ]
    measure_kinds(subjects, run, kinds)


def measure_concurrent(subjects, args, run, shared):
    """The --concurrent kinds: many pulls of ``shared``, many pushes."""
    clients, pushers = args.concurrent_pulls, args.concurrent_pushes
    blobs = concurrent.push_blobs(args.concurrent_mib, pushers, run)
    measure_kinds(subjects, run, [
        ('many_pull', '%d pulls of %d MiB at once' % (
            clients, shared.count), clients * shared.size, True,
         lambda r: concurrent.pull_many(r.endpoint, shared, clients,
                                        args.pull_check)),
        ('many_push', '%d pushes of %d MiB at once' % (
            pushers, args.concurrent_mib),
         pushers * args.concurrent_mib * MIB, True,
         lambda r: concurrent.push_many(r.endpoint, blobs)),
    ])


def measure_kinds(subjects, run, kinds):
    """Each of ``kinds`` on every subject in turn: (kind, label, amount,
    large (MiB/s, RSS sampled) or not (requests/s), work(registry))."""
    for kind, label, amount, large, work in kinds:
        for subject in subjects:
            if not subject.can(kind):
                continue
            settle()
            sample = step(subject, kind, '%s (run %d)' % (label, run),
                          lambda r: measure(r, amount, lambda: work(r),
                                            sample_rss=large))
            if sample is None:
                continue
            subject.samples.setdefault(kind, []).append(sample)
            rate = sample.rate / MIB if large else sample.rate
            extra = ''
            if sample.latencies:
                extra += ', p99 %.2f s' % concurrent.percentile(
                    sample.latencies, 0.99)
            if sample.process_peaks_kib:
                extra += ', peak RSS %.0f MiB' % (
                    sample.process_peaks_kib[0] / 1024)
            progress('%s: %s, run %d: %.0f %s%s' % (
                subject.title, label, run, rate,
                'MiB/s' if large else '/s', extra))
