"""Moves racing in opposite directions from two processes, on every
storage: prune quarantining a blob (blob store to quarantine) in one
process while a server restores it (back) in another.  Each process
moves the object its way again and again; afterwards it must be at one
of the two paths, whole (drivers/copy_moves.py says why on Swift and
S3, which cannot rename)."""

import asyncio
import os
import subprocess
import sys

import pytest
import yaml

from tests.clients import swift_cluster
from tests.drivers import s3_server, swift_server
from tests.drivers.test_contract import chunks_of
from zuul_registry.app import make_driver
from zuul_registry.config.loading import load_config

# How long each process moves the object its way.
SECONDS = 2.0
DATA = b'moved to and fro by two processes'
A, Q = 'ns/_blobs/sha256/ab/abc', 'ns/_quarantine/sha256/ab/abc'


def _s3(kind, **options):
    def storage():
        server = s3_server.server(kind)
        return dict({'driver': 's3', 'endpoint': server.endpoint,
                     'region': server.region,
                     'bucket': s3_server.new_bucket(kind),
                     'access-key': server.access_key,
                     'secret-key': server.secret_key}, **options)
    return storage


STORAGES = {
    'filesystem': None,   # under the test's directory
    'swift': lambda: swift_cluster.registry_config(
        swift_server.new_container())['storage'],
    's3-ceph': _s3('ceph'),
    's3-seaweedfs': _s3('seaweedfs'),
    # A streamed write there is a link to its data (s3_links), moved as
    # new links; a put stays a plain object.
    's3-seaweedfs-linked': _s3('seaweedfs', **{'link-size': 1}),
}


async def _write(config_path, *, write):
    driver = make_driver(load_config(config_path).storage)
    await driver.open()
    try:
        if write:
            await driver.write(A, chunks_of(DATA[:10], DATA[10:]))
        else:
            await driver.put(A, DATA)
    finally:
        await driver.close()


async def _found(config_path):
    driver = make_driver(load_config(config_path).storage)
    await driver.open()
    try:
        return {path: await driver.get(path) for path in (A, Q)
                if await driver.stat(path) is not None}
    finally:
        await driver.close()


@pytest.mark.parametrize('written', ['put', 'write'])
@pytest.mark.parametrize('storage', sorted(STORAGES))
def test_moves_racing_from_two_processes_never_lose_the_object(
        tmp_path, storage, written):
    section = (STORAGES[storage] or (lambda: {
        'driver': 'filesystem', 'root': str(tmp_path / 'root')}))()
    config_path = tmp_path / 'registry.yaml'
    config_path.write_text(yaml.safe_dump({'registry': {
        'storage': section}}))
    asyncio.run(_write(str(config_path), write=written == 'write'))
    go = tmp_path / 'go'
    movers = []
    for n, (src, dst) in enumerate([(A, Q), (Q, A)]):
        movers.append((tmp_path / ('ready-%d' % n), subprocess.Popen(
            [sys.executable, '-m', 'tests.clients.move_pingpong',
             str(config_path), src, dst, str(SECONDS),
             str(tmp_path / ('ready-%d' % n)), str(go)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    try:
        for ready, process in movers:
            while not os.path.exists(ready):
                assert process.poll() is None, process.stderr.read()
                asyncio.run(asyncio.sleep(0.02))
        go.touch()
        moved = []
        for _, process in movers:
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0, err
            moved.append(int(out))
    finally:
        for _, process in movers:
            if process.poll() is None:
                process.kill()
    # Both processes really moved it, several times each way.
    assert min(moved) >= 2, moved
    found = asyncio.run(_found(str(config_path)))
    assert found, 'lost after %s moves each way' % moved
    assert set(found.values()) == {DATA}
