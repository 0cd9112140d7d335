"""The filesystem driver reads cached data on the event loop, and goes to
its thread pool only for data the page cache does not have."""

import errno
import os
import random

import pytest

from zuul_registry.drivers import filesystem_reads
from zuul_registry.drivers.filesystem import FilesystemDriver

SIZE = 3 * 1024 * 1024 + 17
PIECE = 512 * 1024


@pytest.fixture
async def driver(tmp_path):
    driver = FilesystemDriver(str(tmp_path / 'root'))
    yield driver
    await driver.close()


@pytest.fixture
async def stored(driver):
    data = random.Random(7).randbytes(SIZE)
    await driver.put('ns/blob', data)
    return data


def count_pool_calls(driver):
    """The list of functions the driver's reads hand to its pool."""
    calls = []
    original = driver._reads._run

    def run(func, *args):
        calls.append(func)
        return original(func, *args)
    driver._reads._run = run
    return calls


def evict(driver, path):
    """Drop the file's pages from the page cache (written back first:
    dirty pages cannot be dropped)."""
    fd = os.open(driver.local_file(path), os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def cached(driver, path):
    """Whether the first page of the file is in the page cache now."""
    fd = os.open(driver.local_file(path), os.O_RDONLY)
    try:
        os.preadv(fd, [bytearray(1)], 0, os.RWF_NOWAIT)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


async def read_all(driver, path, **kw):
    return [piece async for piece in driver.read(path, **kw)]


async def test_cached_data_is_read_without_the_pool(driver, stored):
    await read_all(driver, 'ns/blob')        # into the page cache
    calls = count_pool_calls(driver)
    pieces = await read_all(driver, 'ns/blob', chunk_size=PIECE)
    assert b''.join(pieces) == stored
    assert [len(p) for p in pieces] == [PIECE] * 6 + [SIZE - 6 * PIECE]
    assert calls == []


async def test_data_not_in_the_cache_is_read_in_the_pool(driver, stored):
    evict(driver, 'ns/blob')
    if cached(driver, 'ns/blob'):
        pytest.skip('this filesystem keeps the file cached after '
                    'POSIX_FADV_DONTNEED')
    calls = count_pool_calls(driver)
    pieces = await read_all(driver, 'ns/blob', offset=5, length=PIECE + 9,
                            chunk_size=PIECE)
    assert b''.join(pieces) == stored[5:PIECE + 14]
    assert os.preadv in calls


async def test_ranges_end_where_asked_or_at_the_end(driver, stored):
    await read_all(driver, 'ns/blob')
    for offset, length in ((0, 1), (PIECE - 1, 2), (SIZE - 3, None),
                           (SIZE - 3, 100), (SIZE, None), (0, 0)):
        pieces = await read_all(driver, 'ns/blob', offset=offset,
                                length=length, chunk_size=PIECE)
        end = SIZE if length is None else offset + length
        assert b''.join(pieces) == stored[offset:end]
        assert all(pieces)


async def test_a_filesystem_without_nowait_reads_in_the_pool(
        driver, stored, monkeypatch):
    # Which filesystem lacks RWF_NOWAIT cannot be chosen here: its
    # answer is simulated, once.
    real = os.preadv
    refused = []

    def preadv(fd, buffers, offset, flags=0):
        if flags & os.RWF_NOWAIT:
            refused.append(offset)
            raise OSError(errno.EOPNOTSUPP, 'not supported')
        return real(fd, buffers, offset)
    monkeypatch.setattr(filesystem_reads.os, 'preadv', preadv)
    calls = count_pool_calls(driver)
    pieces = await read_all(driver, 'ns/blob', chunk_size=PIECE)
    assert b''.join(pieces) == stored
    assert refused == [0]           # asked once, then never again
    assert len(calls) == len(pieces) + 1   # every read, and the EOF
    assert driver._reads.nowait is False
