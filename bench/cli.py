"""``python -m bench``: options, the run against each registry, the report."""

import argparse
import asyncio
import os
import shutil
import sys
import tempfile

from bench import report
from bench.certs import write_self_signed
from bench.servers import REGISTRIES, StartError
from bench.wire import ProtocolError
from bench.workloads import (LargeBlob, SmallImage, get_manifest_op,
                             head_blob_op, measure, pull_large, push_large,
                             push_small_image, push_small_op, run_requests,
                             small_blobs)

SMALL_REPOSITORY = 'bench/small'
TAG = 'latest'


def bounded(low, high):
    def parse(text):
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError('%s is not in [%d, %d]' % (
                text, low, high))
        return value
    return parse


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog='python -m bench',
        description='Benchmark zuul-registry (this checkout) against '
                    'docker-registry (CNCF Distribution): large blob push '
                    'and pull, many small requests, server memory.')
    p.add_argument('--only', choices=sorted(REGISTRIES),
                   help='run against one registry only')
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
                        '(docker-registry 2.8 does not support that)')
    p.add_argument('--repeat', type=bounded(1, 50), default=3,
                   help='runs of each measurement (default 3)')
    p.add_argument('--stat', choices=('best', 'median'), default='best',
                   help='which run the table shows (default best)')
    p.add_argument('--pull-check', choices=('content', 'sha256'),
                   default='content',
                   help='verify the pulled blob by comparing it with what '
                        'was pushed (default, cheap) or by hashing it')
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
                   help='also print client and server CPU use per kind')
    return p.parse_args(argv)


def progress(text):
    print(text, file=sys.stderr, flush=True)


def benchmark(registry, args, large_blobs, image, samples):
    """Run every measurement against a started registry, filling
    ``samples`` ({kind: [Sample]}) as it goes; return VmHWM in KiB."""
    endpoint = registry.endpoint
    title = registry.title

    def record(kind, sample, label, *, divisor=1, unit='/s'):
        samples.setdefault(kind, []).append(sample)
        progress('%s: %s: %.0f %s' % (title, label, sample.rate / divisor,
                                      unit))

    for run, blob in enumerate(large_blobs, 1):
        repository = 'bench/large%d' % run
        record('push', measure(
            registry, blob.size, lambda: push_large(endpoint, repository,
                                                    blob), sample_rss=True),
            'push %d MiB, run %d' % (blob.count, run),
            divisor=1 << 20, unit='MiB/s')
        record('pull', measure(
            registry, blob.size, lambda: pull_large(
                endpoint, repository, blob, check=args.pull_check),
            sample_rss=True),
            'pull %d MiB, run %d' % (blob.count, run),
            divisor=1 << 20, unit='MiB/s')

    push_small_image(endpoint, SMALL_REPOSITORY, image, TAG)
    n, c = args.requests, args.concurrency
    for run in range(1, args.repeat + 1):
        operations = [
            ('head', 'HEAD blob', head_blob_op(SMALL_REPOSITORY, image.layer)),
            ('manifest', 'GET manifest', get_manifest_op(
                SMALL_REPOSITORY, TAG, image.manifest)),
            ('small_push', 'small push', push_small_op(
                SMALL_REPOSITORY, small_blobs(n, args.small_bytes,
                                              seed=1000 + run),
                monolithic=args.small_push == 'monolithic')),
        ]
        for kind, name, operation in operations:
            record(kind, measure(registry, n, lambda: asyncio.run(
                run_requests(endpoint, n, c, operation))),
                '%s x%d, run %d' % (name, n, run))
    return registry.memory_kib().get('VmHWM', 0)


def run(args, directory):
    tls = write_self_signed(directory) if args.tls else None
    progress('preparing %d blob(s) of %d MiB' % (args.repeat, args.blob_mib))
    large_blobs = [LargeBlob.make(args.blob_mib, seed=run)
                   for run in range(args.repeat)]
    image = SmallImage.make(args.small_bytes, seed=7)
    keys = [args.only] if args.only else ['ours', 'reference']
    results = {}
    for key in keys:
        cls = REGISTRIES[key]
        extra = {'binary': args.reference_bin} if key == 'reference' else {}
        registry = cls(os.path.join(directory, key), tls=tls,
                       start_timeout=args.start_timeout, **extra)
        samples, peak, error = {}, 0, None
        progress('%s: starting' % registry.title)
        try:
            with registry:
                progress('%s: listening on %s (pid %d)' % (
                    registry.title, registry.endpoint.url, registry.pid))
                peak = benchmark(registry, args, large_blobs, image, samples)
        except (StartError, ProtocolError, OSError) as e:
            error = '%s: %s' % (type(e).__name__, e)
            if not isinstance(e, StartError):
                error += '\n' + registry.log_tail()
            progress('%s: FAILED: %s' % (registry.title, error))
        results[key] = {'title': registry.title, 'error': error,
                        'samples': samples,
                        'metrics': report.summarize(samples, peak)}
    return results


def main(argv=None):
    args = parse_args(argv)
    settings = {'blob_mib': args.blob_mib, 'requests': args.requests,
                'concurrency': args.concurrency,
                'small_bytes': args.small_bytes,
                'small_push': args.small_push, 'repeat': args.repeat,
                'pull_check': args.pull_check,
                'tls': args.tls}
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
        results = run(args, os.path.abspath(args.workdir))
    else:
        with tempfile.TemporaryDirectory(prefix='zuul-registry-bench-') as d:
            results = run(args, d)
    print()
    print(report.table(results, args.stat, settings))
    if args.verbose:
        print()
        print(report.cpu_table(results))
    if args.json:
        report.write_json(args.json, results, args.stat, settings)
    failed = [r for r in results.values() if r['error']]
    for result in failed:
        print('\n%s misbehaved: %s' % (result['title'], result['error']),
              file=sys.stderr)
    return 1 if failed else 0
