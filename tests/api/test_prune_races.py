"""Prune and DELETE racing the requests that can interleave with them.

Each test makes one interleaving happen for certain: the storage under
prune (or under the app) is the real driver, wrapped so that a request
runs at a chosen moment, just before the first call that touches a
chosen part of the tree.  Afterwards, everything acknowledged with 201
and not deleted by a client must be complete, also after a later prune
past the grace period.
"""

import asyncio
import functools
import json
import time

import pytest

from tests.api.helpers import OCI_MANIFEST, assert_error, digest_of, \
    image_manifest, make_config, push_blob, push_image
from tests.api.test_prune import PAST_GRACE, age_what_was_pushed
from zuul_registry import oci
from zuul_registry.app import make_app
from zuul_registry.drivers.filesystem import FilesystemDriver
from zuul_registry.prune import prune
from zuul_registry.storage import paths, uploads as uploads_module
from zuul_registry.storage.quarantine import Quarantine

# Seconds after which prune expires what was pushed, in these tests.
EXPIRATION = 1


class Interleaved:
    """A driver that runs `hook` once, just before (or after) the first
    call of `method` (a name, or a tuple of names) whose first path
    contains `part`."""

    def __init__(self, driver, method, part, hook, *, after=False):
        self._driver = driver
        self._methods = (method,) if isinstance(method, str) else method
        self._part = part
        self._hook = hook
        self._after = after
        self.ran = False

    def __getattr__(self, name):
        target = getattr(self._driver, name)
        if name not in self._methods:
            return target

        async def call(path, *args, **kwargs):
            due = not self.ran and self._part in path
            if due and not self._after:
                self.ran = True
                await self._hook()
            result = await target(path, *args, **kwargs)
            if due and self._after:
                self.ran = True
                await self._hook()
            return result
        return call


class DeleteRecorder:
    """A driver that records the paths it is asked to delete."""

    def __init__(self, driver):
        self._driver = driver
        self.deleted = []

    def __getattr__(self, name):
        return getattr(self._driver, name)

    async def delete(self, path):
        self.deleted.append(path)
        return await self._driver.delete(path)


@pytest.fixture
def storage_driver(make_driver, tmp_path):
    """A new driver on the test's storage (the apps' and prune's)."""
    def make():
        return make_driver() or FilesystemDriver(str(tmp_path / 'data'))
    return make


@pytest.fixture
def run_prune(storage_driver, tmp_path):
    """Prune the test's storage; after `old_base`, on its clock."""
    async def run(*, wrap=None, **options):
        if run.now is not None:
            options.setdefault('now', run.now)
        driver = storage_driver()
        try:
            return await prune(make_config(tmp_path / 'data',
                                           expiration=EXPIRATION),
                               wrap(driver) if wrap else driver,
                               upload_expiry=options.pop('upload_expiry', 0),
                               **options)
        finally:
            await driver.close()
    run.now = None
    return run


async def assert_complete(client, name, reference, body):
    """The manifest and every blob it names can be pulled, intact."""
    response = await client.get('/v2/%s/manifests/%s' % (name, reference))
    assert response.status == 200, (name, reference)
    assert await response.read() == body
    doc = json.loads(body)
    for descriptor in [doc['config']] + doc['layers']:
        response = await client.get('/v2/%s/blobs/%s'
                                    % (name, descriptor['digest']))
        assert response.status == 200, descriptor
        assert digest_of(await response.read()) == descriptor['digest']


async def old_base(client, run_prune):
    """An image pushed a while ago whose manifest prune will expire, so
    that its layers are old blobs nothing needs; from now on prune runs
    on a clock under which whatever the test pushes next is young."""
    digest, body = await push_image(client, 'old/base', 'v1',
                                    layer=b'old base layer')
    run_prune.now = await age_what_was_pushed()
    return digest, body


def reuse(body):
    """A new manifest naming the old image's config and layer."""
    doc = json.loads(body)
    return image_manifest(
        doc['config']['digest'], doc['config']['size'],
        [(d['digest'], d['size']) for d in doc['layers']])


async def put_manifest(client, name, tag, body):
    response = await client.put('/v2/%s/manifests/%s' % (name, tag),
                                data=body,
                                headers={'Content-Type': OCI_MANIFEST})
    assert response.status == 201, await response.text()


async def test_an_image_pushed_into_a_new_repository_while_blobs_are_swept(
        client, run_prune):
    # The new repository mounts the old layers: they are old blobs, in a
    # repository prune never listed when it began.
    _, old = await old_base(client, run_prune)
    new = reuse(old)

    async def push_new_repository():
        for descriptor in [json.loads(old)['config']] + \
                json.loads(old)['layers']:
            response = await client.post(
                '/v2/new/app/blobs/uploads/?mount=%s&from=old/base'
                % descriptor['digest'])
            assert response.status == 201
        await put_manifest(client, 'new/app', 'latest', new)

    await run_prune(wrap=lambda driver: Interleaved(
        driver, 'move', '/_blobs/', push_new_repository))
    await assert_complete(client, 'new/app', 'latest', new)
    await run_prune(grace=PAST_GRACE)
    await assert_complete(client, 'new/app', 'latest', new)


async def test_a_manifest_put_after_the_mark_keeps_its_blobs(client,
                                                             run_prune):
    _, old = await old_base(client, run_prune)
    new = reuse(old)
    hook = Interleaved(None, ('move', 'delete'), '/_blobs/',
                       lambda: put_manifest(
                           client, 'old/base', 'v2', new))
    await run_prune(wrap=lambda driver: setattr(hook, '_driver', driver)
                    or hook)
    assert hook.ran
    await run_prune(grace=PAST_GRACE)
    await assert_complete(client, 'old/base', 'v2', new)


async def test_a_manifest_pushed_again_under_a_new_tag_does_not_expire(
        client, run_prune):
    digest, old = await old_base(client, run_prune)
    hook = Interleaved(None, 'delete', '/_revisions/', lambda: put_manifest(
        client, 'old/base', 'again', old))
    summary = await run_prune(
        wrap=lambda driver: setattr(hook, '_driver', driver) or hook)
    assert hook.ran
    assert summary.objects['manifests'] == 0
    await run_prune(grace=PAST_GRACE)
    await assert_complete(client, 'old/base', 'again', old)
    await assert_complete(client, 'old/base', digest, old)


async def test_a_chunk_streaming_for_longer_than_the_expiry_is_kept(
        client, run_prune, monkeypatch):
    monkeypatch.setattr(uploads_module, 'ALIVE_INTERVAL', 0.2,
                        raising=False)
    response = await client.post('/v2/org/img/blobs/uploads/')
    location = response.headers['Location']
    data = b'slow chunk ' * 1200
    stop = asyncio.Event()

    async def slowly():
        for i in range(0, len(data), len(data) // 12):
            yield data[i:i + len(data) // 12]
            await asyncio.sleep(1)

    async def prune_meanwhile():
        while not stop.is_set():
            # 6 s: thirty keep-alive intervals (production: sixty, 60 s
            # and an hour), so that a keep-alive write that a loaded
            # machine's storage holds up for seconds (seen once, on Ceph
            # in a full run) does not make the live upload look idle.
            await run_prune(upload_expiry=6)
            await asyncio.sleep(0.1)

    pruning = asyncio.create_task(prune_meanwhile())
    try:
        # 12 seconds of streaming, twice the expiry.
        response = await client.patch(location, data=slowly())
        assert response.status == 202, await response.text()
        response = await client.put(location + '?digest=' + digest_of(data))
        assert response.status == 201, await response.text()
    finally:
        stop.set()
        await pruning
    response = await client.get('/v2/org/img/blobs/' + digest_of(data))
    assert await response.read() == data


async def test_uploads_in_a_namespace_without_blobs_are_pruned(
        make_client, storage_driver, tmp_path):
    client = await make_client(namespaced=True)
    locations = []
    for name in ('made.up.io/x/y', 'docker.io/org/img'):
        response = await client.post('/v2/%s/blobs/uploads/' % name)
        locations.append(response.headers['Location'])
        response = await client.patch(locations[-1], data=b'x' * 100)
        assert response.status == 202
    driver = storage_driver()
    try:
        summary = await prune(
            make_config(tmp_path / 'data', namespaced=True), driver,
            now=time.time() + 3601)
    finally:
        await driver.close()
    assert (summary.objects['uploads'], summary.bytes) == (2, 200)
    for location in locations:
        response = await client.get(location)
        assert response.status == 404


async def test_a_delete_racing_a_put_of_the_same_manifest_leaves_no_tag_dangling(
        make_driver, aiohttp_client, tmp_path):
    for after in (False, True):
        root = tmp_path / ('data-%s' % after)
        config = make_config(root)
        plain = await aiohttp_client(make_app(config, driver=make_driver()))
        digest, body = await push_image(plain, 'org/img', 'v1')
        client = None

        async def put_new_tag():
            await put_manifest(client, 'org/img', 'new', body)

        driver = make_driver() or FilesystemDriver(str(root))
        client = await aiohttp_client(make_app(config, driver=Interleaved(
            driver, 'delete', '/_revisions/', put_new_tag, after=after)))
        response = await client.delete('/v2/org/img/manifests/' + digest)
        assert response.status == 202
        response = await client.get('/v2/org/img/tags/list')
        tags = (await response.json())['tags'] if response.status == 200 \
            else []
        for tag in tags or []:
            response = await client.get('/v2/org/img/manifests/' + tag)
            assert response.status == 200, (after, tag)


async def test_a_blob_uploaded_after_the_mark_survives(client, run_prune):
    # Its manifest comes later than the sweep: the blob is held, then
    # restored by the manifest PUT.
    _, old = await old_base(client, run_prune)
    fresh = b'fresh layer'
    digest = await push_blob(client, 'org/img', fresh)
    config = await push_blob(client, 'org/img', b'{}')
    await run_prune()
    body = image_manifest(config, 2, [(digest, len(fresh))])
    await put_manifest(client, 'org/img', 'v1', body)
    await run_prune(grace=PAST_GRACE)
    await assert_complete(client, 'org/img', 'v1', body)


async def test_a_blob_purged_under_a_manifest_put_is_manifest_blob_unknown(
        make_driver, aiohttp_client, tmp_path):
    # The rare end of the invariant: a purge wins against a PUT that
    # already checked its blobs; the PUT must not be acknowledged.
    root = tmp_path / 'data'
    config = make_config(root)
    plain = await aiohttp_client(make_app(config, driver=make_driver()))
    _, body = await push_image(plain, 'org/img', 'v1', layer=b'doomed')
    layer = oci.Digest.parse(json.loads(body)['layers'][0]['digest'])
    again = reuse(body)
    storage = None

    async def purge_layer():
        quarantine = Quarantine(storage)
        assert await quarantine.hold(None, layer)
        assert await quarantine.purge(None, layer,
                                      held_before=time.time() + 3600)

    storage = make_driver() or FilesystemDriver(str(root))
    client = await aiohttp_client(make_app(config, driver=Interleaved(
        storage, 'put', '/_revisions/', purge_layer)))
    response = await client.put('/v2/org/img/manifests/v2', data=again,
                                headers={'Content-Type': OCI_MANIFEST})
    await assert_error(response, 400, 'MANIFEST_BLOB_UNKNOWN')


async def test_a_purge_finding_the_blob_restored_meanwhile_keeps_it(
        storage_driver):
    # Where a driver copies, a restore and the purge's move can both
    # take the quarantined blob: the restore's copy lands in the store
    # while the purge holds its own.  The purge must not count the blob
    # purged (prune would unlink it).
    driver = storage_driver()
    digest = oci.Digest.parse(digest_of(b'restored by a copy'))
    quarantine = Quarantine(driver)

    async def restored_by_a_copy():
        await driver.put(paths.blob(None, digest), b'restored by a copy')

    try:
        await driver.put(paths.blob(None, digest), b'restored by a copy')
        assert await quarantine.hold(None, digest)
        quarantine.driver = Interleaved(driver, 'stat', '_quarantine_since',
                                        restored_by_a_copy)
        assert not await quarantine.purge(None, digest,
                                          held_before=time.time() + 3600)
        assert quarantine.driver.ran
        assert await driver.get(paths.blob(None, digest)) == \
            b'restored by a copy'
        assert await quarantine.entries(None) == []
    finally:
        await driver.close()


async def test_a_chunk_whose_upload_was_collected_meanwhile_is_refused(
        make_driver, aiohttp_client, tmp_path):
    root = tmp_path / 'data'
    config = make_config(root)
    storage = make_driver() or FilesystemDriver(str(root))
    upload = {}

    async def collect_upload():
        await storage.delete(upload['path'])

    client = await aiohttp_client(make_app(config, driver=Interleaved(
        storage, 'write', '/_chunks/', collect_upload)))
    response = await client.post('/v2/org/img/blobs/uploads/')
    location = response.headers['Location']
    upload['path'] = '_default/_uploads/' + location.rsplit('/', 1)[1]
    response = await client.patch(location, data=b'x' * 1000)
    await assert_error(response, 404, 'BLOB_UPLOAD_UNKNOWN')
    assert await storage.list(upload['path']) == []


async def test_a_purge_interrupted_by_a_crash_is_put_back(
        client, storage_driver, run_prune):
    _, body = await old_base(client, run_prune)
    await run_prune()
    driver = storage_driver()
    try:
        held = await Quarantine(driver).entries(None)
        assert held
        # What a purge that moved a blob aside and then died leaves.
        stale = '%d-%s' % (time.time() - 7200, 'crashed')
        await driver.move(paths.quarantined(None, held[0].digest),
                          paths.purging_blob(None, stale, held[0].digest))
    finally:
        await driver.close()
    summary = await run_prune()
    assert summary.objects['held'] == len(held)
    driver = storage_driver()
    try:
        assert await driver.list(paths.purging(None)) == []
    finally:
        await driver.close()


async def test_a_blob_pushed_again_while_it_is_purged_stays_linked(
        client, run_prune):
    _, body = await old_base(client, run_prune)
    layer = json.loads(body)['layers'][0]['digest']
    await run_prune()

    async def push_again():
        assert await push_blob(client, 'old/base', b'old base layer') \
            == layer

    hook = Interleaved(None, 'delete', '/_layers/', push_again)
    summary = await run_prune(
        grace=PAST_GRACE,
        wrap=lambda driver: setattr(hook, '_driver', driver) or hook)
    assert hook.ran and summary.objects['purged'] >= 1
    response = await client.get('/v2/old/base/blobs/' + layer)
    assert (response.status, await response.read()) == (200,
                                                         b'old base layer')


async def test_a_blob_restored_as_it_is_purged_keeps_its_links(
        client, run_prune):
    # Where moves copy, a restore and the purge can both take the held
    # blob, and the restore's copy can land after the purge looked for
    # the blob in the store: the blob is then purged from the quarantine
    # but back in the store, and its links must not go, even for a
    # moment (a pull would get 404).
    _, body = await old_base(client, run_prune)
    layer = json.loads(body)['layers'][0]['digest']
    await run_prune()
    digest = oci.Digest.parse(layer)

    async def restored_late():
        await late._driver.put(paths.blob(None, digest), b'old base layer')

    # Just before the purge of the layer destroys its private copy.
    late = Interleaved(None, 'delete', digest.hex, restored_late)
    watch = DeleteRecorder(late)
    summary = await run_prune(
        grace=PAST_GRACE,
        wrap=lambda driver: setattr(late, '_driver', driver) or watch)
    assert late.ran and summary.objects['purged'] >= 1
    assert any('/_purging/' in path and digest.hex in path
               for path in watch.deleted)
    assert paths.layer_link(None, 'old/base', digest) not in watch.deleted
    response = await client.get('/v2/old/base/blobs/' + layer)
    assert (response.status, await response.read()) == (200,
                                                         b'old base layer')


async def test_a_push_again_under_the_same_tag_while_it_is_expired(
        client, run_prune):
    # The PUT lands between prune's last look at the tag (old) and its
    # deletion: prune sees the push again afterwards and puts the tag
    # back.
    digest, old = await old_base(client, run_prune)
    hook = Interleaved(None, 'delete', '/_tags/', lambda: put_manifest(
        client, 'old/base', 'v1', old))
    summary = await run_prune(
        wrap=lambda driver: setattr(hook, '_driver', driver) or hook)
    assert hook.ran and summary.objects['manifests'] == 0
    await run_prune(grace=PAST_GRACE)
    await assert_complete(client, 'old/base', 'v1', old)


async def test_a_push_again_whose_check_outlasts_the_expiry(
        make_driver, aiohttp_client, tmp_path, run_prune):
    # Prune looks at the revision (old), the PUT writes it, prune
    # removes it and looks at the tags (old), the PUT writes its tag and
    # checks it, prune removes it and finds nothing pushed again; then
    # the PUT finds its revision gone, puts it back, and must look at
    # its tag again.
    root = tmp_path / 'data'
    config = make_config(root)
    plain = await aiohttp_client(make_app(config, driver=make_driver()))
    digest, old = await old_base(plain, run_prune)
    steps = {name: asyncio.Event() for name in (
        'put started', 'revision looked at', 'revision written',
        'tags looked at', 'tag checked', 'pruned')}

    async def step(done, then):
        steps[done].set()
        await steps[then].wait()

    def wrapped(driver, *rules):
        for method, part, done, then in rules:
            driver = Interleaved(driver, method, part,
                                 functools.partial(step, done, then))
        return driver

    client = await aiohttp_client(make_app(config, driver=wrapped(
        make_driver() or FilesystemDriver(str(root)),
        ('put', '/_revisions/', 'put started', 'revision looked at'),
        ('put', '/_tags/', 'revision written', 'tags looked at'),
        ('stat', '/_revisions/', 'tag checked', 'pruned'))))
    putting = asyncio.create_task(put_manifest(client, 'old/base', 'v1',
                                               old))
    await steps['put started'].wait()
    try:
        await run_prune(wrap=lambda driver: wrapped(
            driver,
            ('delete', '/_revisions/', 'revision looked at',
             'revision written'),
            ('delete', '/_tags/', 'tags looked at', 'tag checked')))
    finally:
        steps['pruned'].set()
    await putting
    await assert_complete(client, 'old/base', 'v1', old)
    await run_prune(grace=PAST_GRACE)
    await assert_complete(client, 'old/base', 'v1', old)


async def test_an_upload_completed_while_prune_looks_is_not_counted(
        client, run_prune):
    response = await client.post('/v2/org/img/blobs/uploads/')
    location = response.headers['Location']
    response = await client.patch(location, data=b'done meanwhile')

    async def complete():
        response = await client.put(
            location + '?digest=' + digest_of(b'done meanwhile'))
        assert response.status == 201

    # Completed after prune listed it, before it looked at its parts.
    hook = Interleaved(None, 'list', '/_chunks', complete)
    summary = await run_prune(
        upload_expiry=-3600,
        wrap=lambda driver: setattr(hook, '_driver', driver) or hook)
    assert hook.ran and summary.objects['uploads'] == 0
