"""A large file the filesystem driver replaces is freed in its pool
afterwards, not inside the rename that replaces it
(filesystem_release): a blob pushed again completes without waiting for
the old copy's blocks to be freed."""

import concurrent.futures
import os

import pytest

from zuul_registry.drivers import filesystem_release
from tests.drivers.test_contract import chunks_of
# A driver on a fresh root, closed at the end.
from tests.drivers.test_filesystem_reads import driver

__all__ = ['driver']   # a fixture used here

LARGE = filesystem_release.LARGE


@pytest.fixture
def held(driver, monkeypatch):
    """The frees the driver hands to its pool, held instead of run."""
    jobs = []
    monkeypatch.setattr(driver._release, '_submit',
                        lambda function, path: jobs.append((function, path)))
    return jobs


def scratch_files(driver):
    return sorted(os.listdir(driver.tmp))


async def test_a_replaced_blob_is_freed_after_the_rename(driver, held):
    old = os.urandom(LARGE + 1)
    await driver.write('ns/blob', chunks_of(old))
    old_inode = os.stat(driver._full('ns/blob')).st_ino
    new = os.urandom(LARGE + 2)
    await driver.write('ns/upload/chunk', chunks_of(new))
    await driver.concat('ns/blob', ['ns/upload/chunk'], consume=True)

    assert await driver.get('ns/blob') == new
    # The old file outlived the rename under a scratch name...
    [(function, aside)] = held
    assert os.path.dirname(aside) == driver.tmp
    found = os.stat(aside)
    assert (found.st_ino, found.st_nlink) == (old_inode, 1)
    with open(aside, 'rb') as f:
        assert f.read() == old
    # ...until the pool's job frees it.
    function(aside)
    assert scratch_files(driver) == []
    assert await driver.get('ns/blob') == new


async def test_every_replacing_write_sets_large_files_aside(driver, held):
    await driver.write('ns/a', chunks_of(os.urandom(LARGE)))
    await driver.write('ns/a', chunks_of(b'smaller now'))   # replaces
    await driver.put('ns/a', b'small')       # replaces a small file
    await driver.write('ns/b', chunks_of(os.urandom(LARGE)))
    await driver.move('ns/a', 'ns/b')        # replaces a large one
    assert [os.path.getsize(path) for _, path in held] == [LARGE, LARGE]
    assert await driver.get('ns/b') == b'small'


async def test_small_files_are_replaced_as_they_are(driver, held):
    await driver.put('ns/tag', b'x' * (LARGE - 1))
    await driver.put('ns/tag', b'y')
    assert held == [] and scratch_files(driver) == []


async def test_the_pool_frees_them_and_nothing_is_left(driver,
                                                      monkeypatch):
    submitted = []
    submit = driver._release._submit

    def recorded(function, path):
        submitted.append(submit(function, path))
        return submitted[-1]
    monkeypatch.setattr(driver._release, '_submit', recorded)
    for n in range(3):
        await driver.write('ns/blob', chunks_of(os.urandom(LARGE)))
    assert len(submitted) == 2
    concurrent.futures.wait(submitted)
    assert scratch_files(driver) == []


def test_set_aside_of_what_cannot_be_linked(tmp_path):
    names = iter(str(tmp_path / ('aside%d' % n)) for n in range(10))
    release = filesystem_release.Release(lambda: next(names), None)
    assert release.set_aside(str(tmp_path / 'missing')) is None
    (tmp_path / 'directory').mkdir()
    assert release.set_aside(str(tmp_path / 'directory')) is None
    (tmp_path / 'big').write_bytes(b'z' * LARGE)
    aside = release.set_aside(str(tmp_path / 'big'))
    assert os.path.samefile(aside, tmp_path / 'big')


def test_with_the_pool_shut_down_it_frees_at_once(tmp_path):
    pool = concurrent.futures.ThreadPoolExecutor(1)
    pool.shutdown()
    release = filesystem_release.Release(None, pool.submit)
    (tmp_path / 'aside').write_bytes(b'z')
    assert release.free(str(tmp_path / 'aside')) is None
    assert not (tmp_path / 'aside').exists()
    assert release.free(None) is None
