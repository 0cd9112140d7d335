"""Prune runs again and again while many clients push, pull and delete
through two server processes on one storage root; afterwards every image
acknowledged with 201 and not deleted by a client is complete.

The set-up: two ``zuul-registry serve`` processes share a filesystem
root.  A few base images are pushed through the API and then aged two
hours (every file's mtime), so that their manifests are past
`expiration` (an hour) and their blobs old, while nothing pushed during
the test expires.  Two loops of ``prune(..., upload_expiry=5,
grace=3)``, each in a process of its own (tests/clients/prune_loop.py),
run during the whole workload, overlapping each other: the bases
expire, their blobs are quarantined, restored on demand, and purged a
few seconds later when nothing needs them.

The workload (tests/clients/prune_workload.py): several asyncio
clients, each request sent to either server at random (so an upload's
chunks land in both processes):

a. push a new image into a new repository, reusing layers of a base:
   by HEAD in the target (404) and a mount from the base repository,
   by a mount without `from`, or by uploading the layer again
   (monolithic, or POST/PATCH/PUT in pieces); plus a fresh config and
   layer; then PUT the manifest (under a tag, or by digest);
b. push a base manifest again into its repository, under a new tag,
   after a HEAD of each blob (uploading those that went);
c. pull an acknowledged image (manifest by tag or digest, every blob,
   digests verified);
d. delete an acknowledged image by digest;
e. delete an image by digest while the same manifest is PUT under a new
   tag, then look at what won.

Answers 4xx are allowed where a race explains them (a blob purged
before the manifest PUT, a mount that found nothing, an upload
collected), and counted by code; an answer 5xx, a lost connection or a
prune that raises fails the test at once or at the end.

Afterwards: every image acknowledged with 201 and not deleted is
complete (manifest by digest and by each tag, the same bytes, on both
servers; every blob with its digest); again after two more prunes with
grace 0 and upload expiry 0; and every tag listed resolves.

Two in-process tests at the end pin down interleavings this kind of
run can hit: two processes moving one blob at once (it found that one),
and a purge decided on a stale quarantine stamp (found by reading the
code, while looking at what the run could miss).

The Swift variant runs the same workload on one container of the test
Swift (tests/drivers/swift_server): two ``serve`` processes and the two
prune loops with ``storage: driver: swift``; the S3 variants the same on
a bucket of the test Ceph RGW and SeaweedFS, every chunk written as data
behind a link (``link-size: 1``).  Swift (and S3) sets an object's
time itself, so the bases cannot be aged; they are pushed and then left
alone for longer than the loops' `expiration` (SWIFT_EXPIRATION, a
little longer than the workload) before the workload starts.  The bases
are then past `expiration`, while no image acknowledged during the
workload reaches that age before the last loop prune starts (the test
checks this, and fails saying so if the workload ran too long).  As
Swift's prunes take seconds, the cold bases are pushed SWIFT_HEAD_START
before the warm ones and the loops start as soon as the cold ones are
past `expiration`: by the end of the cold spell their blobs have been
quarantined and purged, as in the filesystem variants.  The two prunes
with grace 0 afterwards use an expiration of an hour, as in the
filesystem variants: they are there to purge every quarantined blob,
not to expire what the workload pushed.

Run with -s to see the counts.  ZUUL_REGISTRY_PRUNE_ONLINE_SECONDS sets
the length of the workload (ZUUL_REGISTRY_PRUNE_ONLINE_SWIFT_SECONDS on
Swift), ZUUL_REGISTRY_PRUNE_ONLINE_SEED the seed; with
ZUUL_REGISTRY_PRUNE_ONLINE_DEBUG set the servers log at debug level.
"""

import asyncio
import collections
import json
import os
import random
import subprocess
import sys
import time

import aiohttp
import pytest
import yaml

from tests.clients import swift_cluster
from tests.clients.prune_workload import OCI_MANIFEST, Registry, age, \
    digest_of, push_bases
from tests.drivers import s3_fixtures, s3_server, swift_server
from tests.server_process import REPO_ROOT, ServerProcess

GRACE = 3            # seconds a quarantined blob waits before a purge
UPLOAD_EXPIRY = 5    # seconds; also the age a blob must have to go
EXPIRATION = 3600    # nothing pushed during the test expires...
AGE = 2 * 3600       # ...but the bases, aged this much, do
CLIENTS = 6
PRUNE_LOOPS = 2
SECONDS = float(os.environ.get('ZUUL_REGISTRY_PRUNE_ONLINE_SECONDS', 20))
# On Swift: a shorter workload, and an expiration a little longer than
# it (the bases wait that long before it starts; see the docstring).
SWIFT_SECONDS = float(os.environ.get(
    'ZUUL_REGISTRY_PRUNE_ONLINE_SWIFT_SECONDS', 15))
SWIFT_EXPIRATION = int(SWIFT_SECONDS) + 10
SWIFT_COLD = 0.4     # Swift's prunes are slower: a longer cold spell...
SWIFT_HEAD_START = 8  # ...and they start on the cold bases this early
# Servers with -d (the access log, with the bytes each response sent).
DEBUG = bool(os.environ.get('ZUUL_REGISTRY_PRUNE_ONLINE_DEBUG'))

# Repositories of the base images; in the namespaced run, names with a
# host part live in that namespace, the others in docker.io.
# The first half (warm) are used from the start: (b) pushes them again,
# racing their expiry.  The others (cold) are left alone for the first
# COLD of the workload, long enough to expire and have their blobs
# quarantined and purged, and then used like the warm ones: their
# blobs come back from the quarantine, or must be uploaded again.
COLD = 0.3
BASES_PLAIN = ('base/alpha', 'base/beta', 'base/gamma', 'base/delta',
               'base/epsilon', 'base/zeta')
BASES_NAMESPACED = ('base/alpha', 'example.com/base/beta',
                    'example.com/base/gamma', 'base/delta',
                    'example.com/base/epsilon', 'base/zeta')


def prune_command(config_path, stop, *, grace, upload_expiry, once=False):
    return [sys.executable, '-m', 'tests.clients.prune_loop', config_path,
            stop, '--grace', str(grace), '--upload-expiry',
            str(upload_expiry)] + (['--once'] if once else [])


def prune_environment():
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [REPO_ROOT] + [p for p in [env.get('PYTHONPATH')] if p])
    return env


def summaries(text):
    return [json.loads(line) for line in text.splitlines()
            if line.startswith('{')]


def server_errors(servers, *, limit=20000):
    """The log lines around every error in the servers' logs."""
    parts = []
    for server in servers:
        lines = server.log_text().splitlines()
        marks = [i for i, line in enumerate(lines)
                 if ' ERROR ' in line or 'Traceback' in line]
        shown = set()
        for i in marks:
            shown.update(range(max(0, i - 5), min(len(lines), i + 40)))
        text = '\n'.join(lines[i] for i in sorted(shown))
        parts.append('---- %s (%s) ----\n%s' % (
            server.url, server.log_path,
            text or '\n'.join(lines[-40:])))
    return '\n'.join(parts)[-limit:]


@pytest.mark.parametrize('namespaced', [False, True],
                         ids=['plain', 'namespaced'])
def test_acknowledged_images_survive_online_prune(tmp_path, namespaced):
    seconds = SECONDS if not namespaced else SECONDS / 2
    root = str(tmp_path / 'storage')
    servers = [ServerProcess(tmp_path / name, storage_root=root,
                             namespaced=namespaced, debug=DEBUG)
               for name in ('one', 'two')]
    registry = {'storage': {'driver': 'filesystem', 'root': root},
                'expiration': EXPIRATION}
    if namespaced:
        registry['namespaced'] = True
    config_path = _write_config(tmp_path / 'prune.yaml', registry)

    async def prepare_bases(registry, start_loops):
        await push_bases(registry,
                         BASES_NAMESPACED if namespaced else BASES_PLAIN)
        age(root, AGE)
        start_loops()

    _online(tmp_path, servers, seconds=seconds, config_path=config_path,
            final_config_path=config_path, prepare_bases=prepare_bases,
            cold=COLD * seconds)


def test_acknowledged_images_survive_online_prune_on_swift(tmp_path):
    _online_stamped(tmp_path, swift_cluster.registry_config(
        swift_server.new_container())['storage'])


@pytest.mark.parametrize('kind', s3_fixtures.KINDS)
def test_acknowledged_images_survive_online_prune_on_s3(tmp_path, kind):
    # Every chunk of a byte or more is data behind a link (s3_links), so
    # that completions, quarantine moves, purges and deletions all take
    # and free links while the prunes collect what no link names.
    server = s3_server.server(kind)
    bucket = s3_server.new_bucket(kind)
    storage = {'driver': 's3', 'endpoint': server.endpoint,
               'region': server.region, 'bucket': bucket,
               'access-key': server.access_key,
               'secret-key': server.secret_key, 'link-size': 1}
    _online_stamped(tmp_path, storage)
    client = server.client()
    try:
        listed = client.list_objects_v2(Bucket=bucket, Prefix='.zr-data/',
                                        MaxKeys=1)
    finally:
        client.close()
    assert listed.get('KeyCount'), 'no data object: links were not used'


def _online_stamped(tmp_path, storage):
    """The workload on `storage`, which stamps objects itself (Swift,
    S3): the bases cannot be aged, they wait (see the docstring)."""
    servers = [ServerProcess(tmp_path / name, registry={'storage': storage},
                             debug=DEBUG)
               for name in ('one', 'two')]
    config_path = _write_config(tmp_path / 'prune.yaml', {
        'storage': storage, 'expiration': SWIFT_EXPIRATION})
    final_config_path = _write_config(tmp_path / 'prune-final.yaml', {
        'storage': storage, 'expiration': EXPIRATION})

    async def prepare_bases(registry, start_loops):
        # The storage stamps objects itself: wait until the bases are
        # past the loops' expiration; the cold ones (the second half of
        # registry.bases, see Registry.usable_bases) come first.
        half = len(BASES_PLAIN) // 2
        await push_bases(registry, BASES_PLAIN[half:])
        cold_pushed = time.monotonic()
        await asyncio.sleep(SWIFT_HEAD_START)
        await push_bases(registry, BASES_PLAIN[:half])
        warm_pushed = time.monotonic()
        registry.bases = registry.bases[half:] + registry.bases[:half]
        await _sleep_until(cold_pushed + SWIFT_EXPIRATION + 1)
        start_loops()
        await _sleep_until(warm_pushed + SWIFT_EXPIRATION + 1)

    _online(tmp_path, servers, seconds=SWIFT_SECONDS,
            config_path=config_path, final_config_path=final_config_path,
            prepare_bases=prepare_bases, cold=SWIFT_COLD * SWIFT_SECONDS,
            expiration=SWIFT_EXPIRATION)


async def _sleep_until(moment):
    await asyncio.sleep(max(0, moment - time.monotonic()))


def _write_config(path, registry):
    with open(path, 'w') as f:
        yaml.safe_dump({'registry': registry}, f)
    return str(path)


def _online(tmp_path, servers, *, seconds, config_path, final_config_path,
            prepare_bases, cold, expiration=None):
    """The workload against `servers` with the prune loops on
    `config_path`, then the checks; fails on any failure.

    prepare_bases(registry, start_loops) pushes the bases, makes them
    old, and starts the prune loops.  With `expiration`, the loops'
    expiration, the workload must end (the loops stop) within it of its
    start."""
    seed = int(os.environ.get('ZUUL_REGISTRY_PRUNE_ONLINE_SEED',
                              random.randrange(1 << 32)))
    stop = str(tmp_path / 'stop-pruning')
    loops = []
    try:
        for server in servers:
            server.start()
        report, registry = asyncio.run(_run(
            servers, seed, seconds, prepare_bases, config_path,
            final_config_path, stop, loops, tmp_path, cold=cold,
            expiration=expiration))
    finally:
        open(stop, 'w').close()
        for process, _ in loops:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for server in servers:
            server.stop()
    print(report)
    failures = registry.fatal + registry.anomalies + registry.lost \
        + registry.dangling + registry.prune_errors + registry.overran
    assert not failures, '%s\n\nseed %d\n%s\n\n%s' % (
        '\n'.join(failures[:30]), seed, report, server_errors(servers))


async def _run(servers, seed, seconds, prepare_bases, config_path,
               final_config_path, stop, loops, tmp_path, *, cold,
               expiration=None):
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
            timeout=timeout,
            connector=aiohttp.TCPConnector(limit=64)) as session:
        registry = Registry(servers, session, seed)

        def start_loops():
            for number in range(PRUNE_LOOPS):
                # Summaries (JSON lines) to .out, prune's log to .log.
                out = tmp_path / ('prune-%d' % number)
                with open('%s.out' % out, 'wb') as summary, \
                        open('%s.log' % out, 'wb') as log:
                    process = subprocess.Popen(
                        prune_command(config_path, stop, grace=GRACE,
                                      upload_expiry=UPLOAD_EXPIRY),
                        stdout=summary, stderr=log,
                        stdin=subprocess.DEVNULL, env=prune_environment(),
                        cwd=REPO_ROOT)
                loops.append((process, out))

        await prepare_bases(registry, start_loops)
        started = time.monotonic()
        deadline = started + seconds
        registry.cold_until = started + cold
        await asyncio.gather(*[registry.client(number, deadline)
                               for number in range(CLIENTS)])
        workload = time.monotonic() - started
        open(stop, 'w').close()
        # No loop prune starts after this: nothing acknowledged during
        # the workload was older than `workload` when one started.
        registry.overran = []
        if expiration is not None and \
                time.monotonic() - started >= expiration:
            registry.overran.append(
                'the workload ran %.1f s, not under the expiration of %d s:'
                ' images it pushed may have expired, legitimately; make '
                'the expiration longer' % (time.monotonic() - started,
                                           expiration))
        runs = []
        for process, out in loops:
            await asyncio.to_thread(process.wait, timeout=120)
            runs += summaries(_read('%s.out' % out))
        registry.lost = []
        registry.dangling = []
        if not registry.fatal:
            registry.lost += await registry.check_complete(
                'after the workload:')
        final = []
        if not registry.fatal:
            for _ in range(2):
                done = await asyncio.to_thread(
                    subprocess.run,
                    prune_command(final_config_path, stop + '-never',
                                  grace=0, upload_expiry=0, once=True),
                    capture_output=True, env=prune_environment(),
                    cwd=REPO_ROOT, timeout=120)
                final += summaries(done.stdout.decode())
                if done.returncode:
                    final.append({'error': done.stderr.decode()[-3000:]})
            registry.lost += await registry.check_complete(
                'after prunes with grace 0:')
            registry.dangling += ['dangling tag ' + line for line in
                                  await registry.check_tags()]
        registry.prune_errors = ['prune raised:\n' + run['error']
                                 for run in runs + final if 'error' in run]
        logs = _log_counts([server.log_text() for server in servers],
                           [_read('%s.log' % out) for _, out in loops])
        return _report(registry, runs, final, workload, seed,
                       logs), registry


def _read(path):
    with open(path, errors='replace') as f:
        return f.read()


# What the logs tell of the races that happened: (log line part, name).
SERVER_LINES = (
    ('restored from quarantine', 'blobs restored by requests'),
    ('revision removed meanwhile, restored',
     'revisions a manifest PUT put back'),
    ('collected while the manifest was stored',
     'manifest PUTs that found a blob purged after their check'),
)
PRUNE_LINES = (
    ('pushed again while it was expired',
     'expiries undone (pushed again meanwhile)'),
    ('restore blob', 'blobs prune restored (needed again)'),
)


def _log_counts(server_logs, prune_logs):
    counts = collections.Counter()
    for logs, lines in ((server_logs, SERVER_LINES),
                        (prune_logs, PRUNE_LINES)):
        for text in logs:
            for part, name in lines:
                counts[name] += text.count(part)
    return counts


def _report(registry, runs, final, workload, seed, logs):
    totals = collections.Counter()
    for run in runs:
        totals.update(run.get('objects', {}))
    closing = collections.Counter()
    for run in final:
        closing.update(run.get('objects', {}))
    lines = ['', '==== prune online: seed %d, workload %.1f s, %d clients, '
             'grace %d s, upload expiry %d s' % (seed, workload, CLIENTS,
                                                  GRACE, UPLOAD_EXPIRY)]
    lines.append('prunes the loops ran: %d (%d raised), '
                 'longest %.2f s' % (
                     len(runs), sum('error' in run for run in runs),
                     max([run.get('seconds', 0) for run in runs] or [0])))
    lines.append('  summed: %s' % ', '.join(
        '%s %d' % (kind, totals[kind]) for kind in
        ('manifests', 'tags', 'quarantined', 'restored', 'purged', 'held',
         'kept', 'links', 'uploads', 'leftovers')))
    lines.append('final prunes (grace 0): %s' % ', '.join(
        '%s %d' % (kind, closing[kind]) for kind in
        ('quarantined', 'restored', 'purged', 'links', 'uploads')))
    lines.append('from the logs:')
    for name, count in sorted(logs.items()):
        lines.append('  %s: %d' % (name, count))
    lines.append('images acknowledged and kept at the end: %d'
                 % len(registry.images))
    for name, count in sorted(registry.counts.items()):
        lines.append('  %s: %d' % (name, count))
    lines.append('races DELETE vs PUT:')
    for name, count in sorted(registry.race_outcomes.items()):
        lines.append('  %s: %d' % (name, count))
    lines.append('answers 4xx (what, status, code):')
    for (what, status, code), count in sorted(registry.rejected.items()):
        lines.append('  %s %d %s: %d' % (what, status, code, count))
    lines.append('5xx / lost connections: %d; anomalies: %d; lost images: '
                 '%d; dangling tags: %d' % (
                     len(registry.fatal), len(registry.anomalies),
                     len(getattr(registry, 'lost', [])),
                     len(getattr(registry, 'dangling', []))))
    return '\n'.join(lines)


def test_move_of_an_object_moved_meanwhile_is_object_not_found(
        tmp_path, monkeypatch):
    """Two processes moving one object (two prunes quarantining a blob,
    two servers restoring it): the loser is told ObjectNotFound, which
    storage/quarantine.py expects, not a bare FileNotFoundError (a 500,
    or a prune that stops).  The object vanishes between the driver's
    check and its rename here, as it did in the test above."""
    from zuul_registry.drivers import base as driver_base
    from zuul_registry.drivers.filesystem import FilesystemDriver

    driver = FilesystemDriver(str(tmp_path / 'root'))
    try:
        monkeypatch.setattr(os.path, 'isfile', lambda path: True)
        with pytest.raises(driver_base.ObjectNotFound):
            driver._move_sync(driver._full('ns/_blobs/gone'),
                              driver._full('ns/_quarantine/gone'))
    finally:
        monkeypatch.undo()
        asyncio.run(driver.close())



def test_a_put_whose_parent_is_removed_as_it_is_made_succeeds(
        tmp_path, monkeypatch):
    """A manifest PUT writing its tag while a racing DELETE removes the
    last tag and with it the empty _tags directory: makedirs finds the
    directory made (EEXIST), then gone, and says FileExistsError.  That
    is no object existing: the put tries again and succeeds (it was a
    500 in the test above: AlreadyExists from a put that is not
    exclusive)."""
    from zuul_registry.drivers.filesystem import FilesystemDriver

    driver = FilesystemDriver(str(tmp_path / 'root'))
    real = os.makedirs
    raced = []

    def makedirs(name, *args, **kwargs):
        if name.endswith('_tags') and not raced:
            raced.append(name)
            raise FileExistsError(17, 'File exists', name)
        return real(name, *args, **kwargs)

    try:
        monkeypatch.setattr(os, 'makedirs', makedirs)
        asyncio.run(driver.put('ns/_repositories/r/_tags/t', b'sha256:x'))
        monkeypatch.undo()
        assert raced
        assert asyncio.run(driver.get('ns/_repositories/r/_tags/t')) \
            == b'sha256:x'
    finally:
        monkeypatch.undo()
        asyncio.run(driver.close())

def test_a_purge_decided_on_a_stale_stamp_spares_a_blob_held_again(
        tmp_path):
    """Two overlapping prunes and one push, in process, in this order:

    1. P1 lists the quarantine: blob B, held for two hours.
    2. P2 marks (before Y exists, so B is not needed).
    3. Y (config fresh, layer B) is PUT: its check restores B, its
       revision and tag are written, its re-check finds B: 201.
    4. P2 lists the quarantine (B is not there), sweeps: B is in the
       blob store, old and not needed by P2's mark: held again, with a
       fresh stamp.
    5. P1 purges B on the two-hour `since` of step 1, and unlinks it.

    Y, acknowledged and never deleted, has lost its layer.
    """
    from tests.api.helpers import image_manifest, make_config
    from tests.api.test_prune_races import Interleaved
    from zuul_registry import oci
    from zuul_registry.drivers.filesystem import FilesystemDriver
    from zuul_registry.prune import prune
    from zuul_registry.storage import Storage, paths
    from zuul_registry.storage.namespaces import Repository

    root = str(tmp_path / 'storage')
    config = make_config(root, expiration=EXPIRATION)
    repository = Repository(None, 'r')
    layer = b'layer B' * 100
    layer_digest = oci.Digest.parse(digest_of(layer))
    drivers = []

    def driver():
        drivers.append(FilesystemDriver(root))
        return drivers[-1]

    async def put_blob(storage, data):
        await storage.blobs.put_small(repository,
                                      oci.Digest.parse(digest_of(data)),
                                      data)

    async def run():
        client = Storage(driver())
        old_config = b'{"old": true}'
        for data in (layer, old_config):
            await put_blob(client, data)
        old = await client.manifests.put(repository, 'old', image_manifest(
            digest_of(old_config), len(old_config),
            [(str(layer_digest), len(layer))]), OCI_MANIFEST)
        await client.manifests.delete(repository, str(old.digest))
        age(root, AGE)
        await prune(config, driver(), grace=3600, upload_expiry=3600)
        age(root, AGE)   # B has been held for two hours

        new_config = b'{"new": true}'
        await put_blob(client, new_config)
        new = image_manifest(digest_of(new_config), len(new_config),
                             [(str(layer_digest), len(layer))])

        async def push():                                        # 3.
            await client.manifests.put(repository, 'y', new, OCI_MANIFEST)

        async def second_prune():                                # 2., 4.
            await prune(config, Interleaved(driver(), 'list',
                                            '_quarantine_since', push),
                        grace=3600, upload_expiry=3600)

        # P2 runs at the first change P1 makes to B's quarantined object
        # after listing it: its purge, however that is done.
        held = paths.quarantined(None, layer_digest)
        first = Interleaved(driver(), ('move', 'delete'), held,
                            second_prune)
        await prune(config, first, grace=3600, upload_expiry=3600)  # 1., 5.
        assert first.ran
        linked = await client.driver.stat(paths.layer_link(
            None, 'r', layer_digest)) is not None
        return await client.blobs.stat(None, layer_digest), linked

    try:
        assert asyncio.run(run()) == (len(layer), True)
    finally:
        for each in drivers:
            asyncio.run(each.close())
