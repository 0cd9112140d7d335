"""What only the filesystem driver promises: files under one root."""

import asyncio
import os
import time

import pytest

from zuul_registry.drivers.base import InvalidPath
from zuul_registry.drivers.filesystem import FilesystemDriver


@pytest.fixture
async def fs_driver(tmp_path):
    driver = FilesystemDriver(str(tmp_path / 'root'))
    yield driver
    await driver.close()


def _under(root, name):
    return os.path.commonpath([root, os.path.abspath(name)]) == root


@pytest.mark.parametrize('path', [
    'a', 'ns/_blobs/sha256/ab/' + 'ab' * 32, 'a..b/c..', '_x/_..._/a',
    'localhost:5000/_tags/v1+a=b',
])
async def test_every_object_is_a_file_under_the_root(fs_driver, path):
    await fs_driver.put(path, b'x')
    name = fs_driver.local_file(path)
    assert _under(fs_driver.root, name)
    assert os.path.relpath(name, fs_driver.root).split(os.sep) == \
        path.split('/')
    with open(name, 'rb') as f:
        assert f.read() == b'x'


@pytest.mark.parametrize('path', ['..', '../escape', 'a/../../escape',
                                  '/tmp/escape', '.tmp/x'])
async def test_a_path_that_would_leave_the_root_writes_nothing(
        tmp_path, fs_driver, path):
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(InvalidPath):
        await fs_driver.put(path, b'x')
    assert sorted(os.listdir(tmp_path)) == before
    assert os.listdir(fs_driver.tmp) == []
    assert not os.path.exists('/tmp/escape')


async def test_the_scratch_area_is_empty_after_every_write(fs_driver):
    await fs_driver.put('a/b', b'1')
    await fs_driver.put('a/b', b'2')
    await fs_driver.concat('a/c', ['a/b'])
    await fs_driver.concat('a/d', ['a/b', 'a/c'])

    async def chunks():
        yield b'3'

    await fs_driver.write('a/e', chunks())
    assert os.listdir(fs_driver.tmp) == []
    assert sorted(os.listdir(os.path.join(fs_driver.root, 'a'))) == \
        ['b', 'c', 'd', 'e']


async def test_objects_persist_across_driver_instances(tmp_path, fs_driver):
    await fs_driver.put('ns/blob', b'kept')
    again = FilesystemDriver(fs_driver.root)
    try:
        assert await again.get('ns/blob') == b'kept'
    finally:
        await again.close()


async def test_stale_scratch_files_are_removed_at_startup(tmp_path):
    scratch = tmp_path / 'root' / '.tmp'
    scratch.mkdir(parents=True)
    old = time.time() - 2 * 3600
    for name in ['stale', 'just-over-an-hour']:
        (scratch / name).write_bytes(b'left over from a crash')
    os.utime(scratch / 'stale', (old, old))
    hour_ago = time.time() - 3600 - 60
    os.utime(scratch / 'just-over-an-hour', (hour_ago, hour_ago))
    (scratch / 'fresh').write_bytes(b'an upload in another process')
    recent = time.time() - 3600 + 300
    (scratch / 'recent').write_bytes(b'an upload in another process')
    os.utime(scratch / 'recent', (recent, recent))

    driver = FilesystemDriver(str(tmp_path / 'root'))
    await driver.close()

    assert sorted(os.listdir(scratch)) == ['fresh', 'recent']


async def test_startup_creates_the_root_and_scratch_area(tmp_path):
    driver = FilesystemDriver(str(tmp_path / 'new' / 'root'))
    await driver.close()
    assert os.path.isdir(os.path.join(driver.root, '.tmp'))
    assert driver.root == str(tmp_path / 'new' / 'root')


async def test_put_survives_concurrent_deletes_emptying_its_parents(tmp_path):
    """Deleting the last object of a tree prunes empty directories; a put
    racing with it must re-create them, never fail (seen under load)."""
    driver = FilesystemDriver(str(tmp_path), threads=8, fsync=False)
    try:
        async def cycle(index):
            for round_ in range(40):
                path = 'ns/_uploads/u%d-%d/_info' % (index, round_)
                await driver.put(path, b'x')
                await driver.delete('ns/_uploads/u%d-%d' % (index, round_))
        await asyncio.gather(*(cycle(i) for i in range(16)))
        assert await driver.list('ns/_uploads') == []
    finally:
        await driver.close()
