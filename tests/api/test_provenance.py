"""Provenance: every manifest served is noted with its reference, digest,
source and first/last time, and `zuul-registry report` prints them."""

import json
import os
import subprocess
import sys

import yaml

from zuul_registry.api import base
from zuul_registry.app import make_app
from zuul_registry.storage import provenance
from tests.api.helpers import make_config, push_image
from tests.api.test_pullthrough import (  # noqa: F401 (fixtures)
    make_mirror, pusher, upstream, url_of)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


async def notes(client):
    storage = client.app[base.STORAGE]
    await storage.provenance.close()   # the notes under way
    return await storage.provenance.report(storage.catalog)


async def test_local_and_upstream_manifests_are_noted_with_their_source(
        upstream, pusher, make_mirror):
    fetched, _ = await push_image(pusher, 'org/up', 'v1', layer=b'up')
    mirror = await make_mirror(url_of(upstream))
    pushed, _ = await push_image(mirror, 'org/mine', 'v1', layer=b'mine')
    clock = [1000.0]
    mirror.app[base.STORAGE].provenance.clock = lambda: clock[0]
    for path in ('/v2/org/up/manifests/v1', '/v2/org/mine/manifests/v1',
                 '/v2/org/mine/manifests/%s' % pushed):
        response = await mirror.get(path)
        assert response.status == 200
    response = await mirror.head('/v2/org/up/manifests/%s' % fetched)
    assert response.status == 200
    found = await notes(mirror)
    assert [(n['repository'], n['reference'], n['digest'], n['source'])
            for n in found] == [
        ('org/mine', pushed, pushed, provenance.LOCAL),
        ('org/mine', 'v1', pushed, provenance.LOCAL),
        ('org/up', fetched, fetched, url_of(upstream)),
        ('org/up', 'v1', fetched, url_of(upstream))]
    assert {(n['first'], n['last']) for n in found} == {(1000.0, 1000.0)}
    # Served again later: last moves (once INTERVAL passed), first stays.
    clock[0] += provenance.INTERVAL + 5
    await mirror.get('/v2/org/mine/manifests/v1')
    note = [n for n in await notes(mirror) if n['reference'] == 'v1'
            and n['repository'] == 'org/mine'][0]
    assert (note['first'], note['last']) == (1000.0, clock[0])


async def test_a_tag_that_moved_has_a_note_per_digest(client):
    first, _ = await push_image(client, 'org/img', 'v1', layer=b'one')
    await client.get('/v2/org/img/manifests/v1')
    second, _ = await push_image(client, 'org/img', 'v1', layer=b'two')
    await client.get('/v2/org/img/manifests/v1')
    found = await notes(client)
    assert sorted(n['digest'] for n in found) == sorted([first, second])


async def test_the_report_command_prints_the_notes(aiohttp_client,
                                                  tmp_path):
    client = await aiohttp_client(make_app(make_config(tmp_path / 'data')))
    digest, _ = await push_image(client, 'org/img', 'v1')
    await client.get('/v2/org/img/manifests/v1')
    await notes(client)
    config = tmp_path / 'registry.yaml'
    config.write_text(yaml.safe_dump({'registry': {'storage': {
        'driver': 'filesystem', 'root': str(tmp_path / 'data')}}}))
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    result = subprocess.run(
        [sys.executable, '-m', 'zuul_registry', '-c', str(config), 'report',
         '--json'], capture_output=True, text=True, env=env, check=True)
    entries = json.loads(result.stdout)
    assert [(e['repository'], e['reference'], e['digest'], e['source'])
            for e in entries] == [('org/img', 'v1', digest, 'local')]
    result = subprocess.run(
        [sys.executable, '-m', 'zuul_registry', '-c', str(config), 'report'],
        capture_output=True, text=True, env=env, check=True)
    lines = result.stdout.splitlines()
    assert lines[0].split() == ['REPOSITORY', 'REFERENCE', 'DIGEST',
                                'SOURCE', 'FIRST', 'LAST']
    assert lines[1].split()[:4] == ['org/img', 'v1', digest, 'local']
