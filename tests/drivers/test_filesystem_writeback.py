"""The filesystem driver asks the kernel to start writing a file to disk
every STEP bytes as it streams in (filesystem_writeback), so that the
fsync that completes it has little left to wait for."""

import ctypes
import os
import random
import tempfile

import pytest

from zuul_registry.drivers import filesystem_writeback
from zuul_registry.drivers.filesystem import FilesystemDriver
from tests.drivers.test_contract import chunks_of

MIB = 1024 * 1024
STEP = filesystem_writeback.STEP


@pytest.fixture
async def driver():
    # On disk (not tmpfs, where writeback is nothing to ask for).
    with tempfile.TemporaryDirectory(dir='/var/tmp',
                                     prefix='zr-writeback-') as root:
        driver = FilesystemDriver(root)
        yield driver
        await driver.close()


@pytest.fixture
def requests(monkeypatch):
    """The (offset, length, result, errno) of every sync_file_range the
    driver makes, each passed on to the real call."""
    real = filesystem_writeback.sync_file_range
    if real is None:
        pytest.skip('libc has no sync_file_range')
    made = []

    def recorded(fd, offset, length, flags):
        assert flags == filesystem_writeback.SYNC_FILE_RANGE_WRITE
        result = real(fd, offset, length, flags)
        made.append((offset, length, result, ctypes.get_errno()
                     if result else 0))
        return result
    monkeypatch.setattr(filesystem_writeback, 'sync_file_range', recorded)
    return made


def pieces(data, size):
    return [data[n:n + size] for n in range(0, len(data), size)]


async def test_a_write_asks_for_writeback_every_step(driver, requests):
    data = random.Random(1).randbytes(2 * STEP + 3 * MIB + 5)
    assert await driver.write('ns/blob', chunks_of(*pieces(data, MIB))) \
        == len(data)
    # The real call took every range (a wrong signature would not).
    assert requests == [(0, STEP, 0, 0), (STEP, STEP, 0, 0)]
    assert await driver.get('ns/blob') == data


async def test_an_append_asks_from_where_it_starts(driver, requests):
    head = os.urandom(3 * MIB)
    await driver.write('ns/chunk', chunks_of(head))
    assert requests == []   # less than a step
    tail = os.urandom(STEP + MIB)
    await driver.append('ns/chunk', chunks_of(*pieces(tail, MIB // 2)),
                        offset=len(head))
    assert requests == [(len(head), STEP, 0, 0)]
    assert await driver.get('ns/chunk') == head + tail


def test_without_the_call_writes_go_on(tmp_path, monkeypatch):
    monkeypatch.setattr(filesystem_writeback, 'sync_file_range', None)
    with open(tmp_path / 'file', 'wb', 0) as f:
        writeback = filesystem_writeback.Writeback(f.fileno())
        writeback.wrote(3 * STEP)
        assert writeback.started == 0 and writeback.written == 3 * STEP
