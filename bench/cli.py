"""``python -m bench``: the options, the run, the report."""

import argparse
import os
import shutil
import sys
import tempfile

from bench import pullthrough, pullthrough_report, report, runner
from bench.certs import write_self_signed
from bench.servers import REGISTRIES


def bounded(low, high):
    def parse(text):
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError('%s is not in [%d, %d]' % (
                text, low, high))
        return value
    return parse


def worker_count(text):
    """``auto`` or a count: one worker count."""
    counts = worker_list(text)
    if len(counts) != 1:
        raise argparse.ArgumentTypeError('%r is not one worker count' % text)
    return counts[0]


def worker_list(text):
    """``1,auto`` -> [1, 'auto']: the worker counts to run ours with."""
    found = []
    for item in text.split(','):
        item = item.strip()
        value = item if item == 'auto' else None
        if value is None:
            try:
                value = int(item)
            except ValueError:
                value = 0
            if not 1 <= value <= 1024:
                raise argparse.ArgumentTypeError(
                    '%r is not a worker count (1 to 1024, or auto)' % item)
        if value not in found:
            found.append(value)
    return found


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog='python -m bench',
        description='Benchmark zuul-registry (this checkout) against '
                    'docker-registry (CNCF Distribution): large blob push '
                    'and pull, many small requests, server memory; then '
                    'pull-through: a zuul-registry mirror in front of an '
                    'upstream zuul-registry.')
    p.add_argument('--only', choices=sorted(REGISTRIES) + ['pullthrough'],
                   help='run against one registry only (ours: with the '
                        'pull-through scenarios), or only the pull-through '
                        'scenarios')
    p.add_argument('--no-pullthrough', action='store_true',
                   help='skip the pull-through scenarios (a zuul-registry '
                        'mirror in front of an upstream zuul-registry)')
    p.add_argument('--pullthrough-clients', type=bounded(1, 256),
                   default=16,
                   help='clients pulling at once in the pull-through '
                        'scenarios (default 16)')
    p.add_argument('--pullthrough-workers', type=worker_count,
                   default=None, metavar='N',
                   help='run the pull-through mirrors with workers: N (a '
                        'count or auto; default: one process)')
    p.add_argument('--workers', type=worker_list, metavar='LIST',
                   help='run zuul-registry once per worker count in LIST '
                        '(comma-separated counts or auto, e.g. 1,auto; '
                        'registry config key workers), each its own row; '
                        'default: one zuul-registry without the key')
    p.add_argument('--concurrent', action='store_true',
                   help='also measure many clients at once: '
                        '--concurrent-pulls pulls of one blob and '
                        '--concurrent-pushes pushes of different blobs')
    p.add_argument('--concurrent-pulls', type=bounded(1, 512), default=32,
                   help='clients pulling one blob at once (default 32)')
    p.add_argument('--concurrent-pushes', type=bounded(1, 512), default=16,
                   help='clients pushing a blob each at once (default 16)')
    p.add_argument('--concurrent-mib', type=bounded(1, 1024), default=16,
                   help='size of each blob of the concurrent pulls and '
                        'pushes in MiB (default 16)')
    p.add_argument('--blob-mib', type=bounded(1, 8192), default=256,
                   help='size of the large blob in MiB (default 256)')
    p.add_argument('--requests', type=bounded(1, 200000), default=2000,
                   help='requests of each small kind (default 2000)')
    p.add_argument('--concurrency', type=bounded(1, 512), default=16,
                   help='connections for the small requests (default 16)')
    p.add_argument('--small-bytes', type=bounded(8, 1 << 20), default=4096,
                   help='size of each small blob (default 4096)')
    p.add_argument('--small-push', choices=('two-step', 'monolithic'),
                   default='two-step',
                   help='small push as POST + PUT (default; every registry '
                        'supports it) or one POST ?digest= with the body '
                        '(docker-registry 2.8 answers that with 202 and '
                        'ignores the body)')
    p.add_argument('--pull-check', choices=('content', 'sha256'),
                   default='content',
                   help='verify the pulled blob by comparing it with what '
                        'was pushed (default, cheap) or by hashing it')
    p.add_argument('--repeat', type=bounded(1, 50), default=3,
                   help='runs of each measurement (default 3)')
    p.add_argument('--stat', choices=('best', 'median'), default='best',
                   help='which run the table shows (default best)')
    p.add_argument('--tls', action='store_true',
                   help='serve over TLS with a self-signed certificate')
    p.add_argument('--json', metavar='FILE',
                   help='also write every number to FILE')
    p.add_argument('--reference-bin', default=shutil.which(
        'docker-registry') or '/usr/bin/docker-registry',
        help='the docker-registry binary (default: from PATH)')
    p.add_argument('--start-timeout', type=float, default=30.0,
                   help='seconds to wait for GET /v2/ to answer 200')
    p.add_argument('--workdir', metavar='DIR',
                   help='keep configs, logs and storage in DIR (default: a '
                        'temporary directory, removed afterwards)')
    p.add_argument('-v', '--verbose', action='store_true',
                   help='also print where the CPU went during each kind')
    return p.parse_args(argv)


def make_registries(args, directory, tls):
    if args.only == 'pullthrough':
        return []
    keys = [args.only] if args.only else ['ours', 'reference']
    registries = []
    for key in keys:
        if key == 'ours' and args.workers:
            variants = [{'workers': w} for w in args.workers]
        elif key == 'reference':
            variants = [{'binary': args.reference_bin}]
        else:
            variants = [{}]
        for extra in variants:
            name = key if 'workers' not in extra else 'ours-w%s' % (
                extra['workers'])
            registries.append(REGISTRIES[key](
                os.path.join(directory, name), tls=tls,
                start_timeout=args.start_timeout, **extra))
    return registries


def main(argv=None):
    args = parse_args(argv)
    settings = {'blob_mib': args.blob_mib, 'requests': args.requests,
                'concurrency': args.concurrency,
                'small_bytes': args.small_bytes,
                'small_push': args.small_push, 'repeat': args.repeat,
                'pull_check': args.pull_check, 'tls': args.tls,
                'pullthrough_clients': args.pullthrough_clients,
                'pullthrough_workers': args.pullthrough_workers,
                'workers': args.workers, 'concurrent': args.concurrent,
                'concurrent_pulls': args.concurrent_pulls,
                'concurrent_pushes': args.concurrent_pushes,
                'concurrent_mib': args.concurrent_mib}
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
        subjects, outcome = run(args, os.path.abspath(args.workdir))
    else:
        with tempfile.TemporaryDirectory(prefix='zuul-registry-bench-') as d:
            subjects, outcome = run(args, d)
    results = {s.registry.key: report.result(s) for s in subjects}
    if results:
        print()
        print(report.table(results, args.stat, settings))
        print()
        print(report.memory_table(results, settings))
        if args.concurrent:
            print()
            print(report.concurrent_table(results, args.stat, settings))
    noisy = report.background_warning(results)
    if noisy:
        print('\n' + noisy)
    if args.verbose and results:
        print()
        print(report.cpu_table(results))
    summary = None
    if outcome is not None:
        summary = pullthrough_report.summary(outcome)
        print()
        print(pullthrough_report.table(summary, settings,
                                       verbose=args.verbose))
    if args.json:
        report.write_json(args.json, results, args.stat, settings,
                          pullthrough=summary)
    failed = [r for r in results.values() if r['error']]
    if summary is not None and summary['error']:
        failed.append({'title': 'pull-through', 'error': summary['error']})
    for result in failed:
        print('\n%s misbehaved: %s' % (result['title'], result['error']),
              file=sys.stderr)
    return 1 if failed else 0


def run(args, directory):
    """The registries side by side, then the pull-through scenarios;
    (subjects, pull-through outcome or None)."""
    tls = write_self_signed(directory) if args.tls else None
    subjects = runner.run(make_registries(args, directory, tls), args) \
        if args.only != 'pullthrough' else []
    outcome = None
    if args.only in (None, 'ours', 'pullthrough') and \
            not args.no_pullthrough:
        outcome = pullthrough.run(directory, args, tls,
                                  progress=runner.progress,
                                  settle=runner.settle)
    return subjects, outcome
