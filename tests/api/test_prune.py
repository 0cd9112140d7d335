"""zuul-registry prune, on what real pushes stored, on every driver.

Content is pushed through the API; prune then runs on the same storage
(its own driver on it, as the prune command has) and the API shows what
is left.  Ages come from real time: the old image is pushed a moment
before the new one, with an expiration shorter than that moment, and
prune is given a clock at that moment so that the new image stays
young however long the storage takes (see `age_what_was_pushed`).
"""

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from tests.api.helpers import OCI_INDEX, OCI_MANIFEST, make_config, \
    push_blob, push_image
from tests.api.test_spec_referrers import push_referrer
from zuul_registry.drivers.filesystem import FilesystemDriver
from zuul_registry.prune import prune

GAP = 2.2   # seconds between the old and the new pushes
# A grace period every quarantined blob is past, whatever the clocks say.
PAST_GRACE = -3600


async def age_what_was_pushed():
    """Wait until everything pushed so far is more than a second old,
    and return a `now` for prune (with a 1-second expiration) under
    which everything pushed afterwards is young, however slow the
    machine or the storage: one second before the wait ends, since some
    stores keep modification times in whole seconds."""
    await asyncio.sleep(GAP)
    return time.time() - 1


@pytest.fixture
def run_prune(make_driver, tmp_path):
    """Prune the test's storage as a config with these keys says."""
    async def run(**kwargs):
        options = {key: kwargs.pop(key) for key in
                   ('dry_run', 'now', 'upload_expiry', 'grace', 'report')
                   if key in kwargs}
        options.setdefault('upload_expiry', 0)
        driver = make_driver() or FilesystemDriver(str(tmp_path / 'data'))
        try:
            return await prune(make_config(tmp_path / 'data', **kwargs),
                               driver, **options)
        finally:
            await driver.close()
    return run


async def status(client, path, method='GET'):
    response = await client.request(method, path)
    await response.read()
    return response.status


def blobs_of(body):
    doc = json.loads(body)
    return [doc['config']['digest']] + [d['digest'] for d in doc['layers']]


async def test_old_manifests_go_with_their_tags_and_blobs(client,
                                                          run_prune):
    old, old_body = await push_image(client, 'org/img', 'old',
                                     layer=b'old layer')
    now = await age_what_was_pushed()
    new, new_body = await push_image(client, 'org/img', 'new',
                                     layer=b'new layer')
    old_bytes = len(old_body)
    for digest in blobs_of(old_body):
        response = await client.get('/v2/org/img/blobs/' + digest)
        old_bytes += len(await response.read())
    summary = await run_prune(expiration=1, now=now)
    assert (summary.objects['manifests'], summary.objects['tags'],
            summary.objects['quarantined'], summary.objects['purged']) \
        == (1, 1, 3, 0)
    assert (summary.held, summary.freed) == (old_bytes, 0)
    assert await status(client, '/v2/org/img/manifests/old') == 404
    assert await status(client, '/v2/org/img/manifests/%s' % old) == 404
    # Held, not destroyed: purged only after the grace period.
    held = await run_prune(expiration=1, now=now)
    assert (held.objects['held'], held.objects['purged']) == (3, 0)
    purged = await run_prune(expiration=1, now=now, grace=PAST_GRACE)
    assert (purged.objects['purged'], purged.freed) == (3, old_bytes)
    for digest in blobs_of(old_body):
        assert await status(client, '/v2/org/img/blobs/' + digest) == 404
    assert await status(client, '/v2/org/img/manifests/new') == 200
    for digest in blobs_of(new_body):
        assert await status(client, '/v2/org/img/blobs/' + digest) == 200
    again = await run_prune(expiration=1, now=now, grace=PAST_GRACE)
    assert sum(again.objects.values()) == again.objects['kept'] == 3


async def test_a_quarantined_blob_comes_back_when_it_is_read(client,
                                                             run_prune):
    old, old_body = await push_image(client, 'org/img', 'old',
                                     layer=b'old layer')
    await asyncio.sleep(GAP)
    summary = await run_prune(expiration=1)
    assert summary.objects['quarantined'] == 3
    layer = blobs_of(old_body)[1]
    response = await client.get('/v2/org/img/blobs/' + layer)
    assert (response.status, await response.read()) == (200, b'old layer')
    again = await run_prune(expiration=1, grace=PAST_GRACE)
    assert again.objects['purged'] == 2
    assert await status(client, '/v2/org/img/blobs/' + layer) == 200


async def test_an_index_keeps_its_children_and_their_layers(client,
                                                            run_prune):
    children = []
    for arch in ('amd64', 'arm64'):
        digest, body = await push_image(client, 'org/multi', arch,
                                        layer=arch.encode())
        children.append({'mediaType': OCI_MANIFEST, 'digest': digest,
                         'size': len(body),
                         'platform': {'architecture': arch, 'os': 'linux'}})
        await client.delete('/v2/org/multi/manifests/%s' % arch)
    now = await age_what_was_pushed()
    index = json.dumps({'schemaVersion': 2, 'mediaType': OCI_INDEX,
                        'manifests': children}).encode()
    response = await client.put('/v2/org/multi/manifests/latest', data=index,
                                headers={'Content-Type': OCI_INDEX})
    assert response.status == 201, await response.text()
    summary = await run_prune(expiration=1, now=now)
    assert summary.objects['manifests'] == 0
    assert summary.objects['quarantined'] == 0
    for child in children:
        response = await client.get('/v2/org/multi/manifests/%s'
                                    % child['digest'])
        assert response.status == 200
        for digest in blobs_of(await response.read()):
            assert await status(client, '/v2/org/multi/blobs/' + digest) \
                == 200


async def test_a_referrer_keeps_its_subject(client, run_prune):
    subject, _ = await push_image(client, 'org/signed', 'v1')
    await client.delete('/v2/org/signed/manifests/v1')
    now = await age_what_was_pushed()
    await push_referrer(client, 'org/signed', subject)
    summary = await run_prune(expiration=1, now=now)
    assert summary.objects['manifests'] == 0
    assert await status(client, '/v2/org/signed/manifests/%s'
                        % subject) == 200


async def test_a_dry_run_says_what_would_go_and_removes_nothing(
        client, run_prune):
    old, _ = await push_image(client, 'org/img', 'old', layer=b'old')
    await asyncio.sleep(GAP)
    lines = []
    summary = await run_prune(expiration=1, dry_run=True,
                              report=lines.append)
    assert summary.objects['manifests'] == 1
    assert str(summary).startswith('Would remove 1 manifests, 1 tags, ')
    assert summary.objects['quarantined'] == 3
    assert 'would remove manifest %s in org/img' % old in '\n'.join(lines)
    assert await status(client, '/v2/org/img/manifests/old') == 200


async def test_without_expiration_no_manifest_expires(client, run_prune):
    await push_image(client, 'org/img', 'v1')
    summary = await run_prune(now=time.time() + 10 ** 6)
    assert sum(summary.objects.values()) == 0
    assert await status(client, '/v2/org/img/manifests/v1') == 200


async def test_uploads_untouched_for_an_hour_are_removed(client, run_prune):
    response = await client.post('/v2/org/img/blobs/uploads/')
    location = response.headers['Location']
    response = await client.patch(location, data=b'x' * 1000)
    assert response.status == 202
    assert sum((await run_prune(upload_expiry=3600)).objects.values()) == 0
    summary = await run_prune(upload_expiry=3600, now=time.time() + 3601)
    assert (summary.objects['uploads'], summary.freed) == (1, 1000)
    assert await status(client, location) == 404


async def test_a_blob_pushed_twice_leaves_its_first_copy_to_prune(
        client, run_prune, request):
    # On Swift the second push's segments replace the first's, which no
    # manifest needs any more; on a filesystem a rename replaced them.
    data = os.urandom(1536 * 1024)   # segments of its own on Swift
    digest = await push_blob(client, 'org/img', data)
    assert await push_blob(client, 'org/img', data) == digest
    lines = []
    summary = await run_prune(report=lines.append)
    leftovers = 1 if request.node.callspec.params['make_driver'] == 'swift' \
        else 0
    assert summary.objects['leftovers'] == leftovers
    assert summary.bytes == leftovers * len(data)
    assert len([line for line in lines if 'leftover' in line]) == leftovers
    response = await client.get('/v2/org/img/blobs/' + digest)
    assert await response.read() == data
    assert (await run_prune()).objects['leftovers'] == 0


async def test_every_namespace_is_pruned(make_client, run_prune):
    client = await make_client(namespaced=True)
    await push_image(client, 'quay.io/org/img', 'v1')
    await push_image(client, 'org/img', 'v1')   # docker.io
    await asyncio.sleep(GAP)
    summary = await run_prune(expiration=1, namespaced=True)
    assert summary.objects['manifests'] == 2
    for name in ('quay.io/org/img', 'docker.io/org/img'):
        assert await status(client, '/v2/%s/manifests/v1' % name) == 404


def test_the_prune_command_reports_a_summary(tmp_path):
    config = tmp_path / 'registry.yaml'
    config.write_text(yaml.safe_dump({'registry': {
        'expiration': 60, 'storage': {'driver': 'filesystem',
                                      'root': str(tmp_path / 'data')}}}))
    for extra in (['--dry-run'], []):
        result = subprocess.run(
            [sys.executable, '-m', 'zuul_registry', '-c', str(config),
             'prune', *extra], capture_output=True, text=True, timeout=60,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(
                os.path.abspath(__file__)))))
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == '%s 0 manifests, 0 tags, ' \
            '0 uploads, 0 links, 0 leftovers; blobs: 0 kept, ' \
            '0 quarantined, 0 restored, 0 purged, 0 held; ' \
            '0 bytes quarantined, 0 bytes freed' % (
                'Would remove' if extra else 'Removed')
