"""Appends on the filesystem across processes: an flock per append, which
the kernel releases when its process dies."""

import signal
import subprocess
import sys

import pytest

from zuul_registry.drivers.base import AppendConflict
from zuul_registry.drivers.filesystem import FilesystemDriver
from tests.drivers.test_contract import chunks_of
from tests.drivers.test_filesystem import _REPOSITORY

# Appends 64 KiB to ns/upload, says so, and waits for a line on stdin
# before appending one more byte.
_APPENDER = '''
import asyncio, sys
from zuul_registry.drivers.filesystem import FilesystemDriver

async def main():
    driver = FilesystemDriver(sys.argv[1])

    async def chunks():
        yield b"x" * 65536
        await asyncio.sleep(0.2)   # the first piece is on its way to disk
        print("appending", flush=True)
        await asyncio.get_running_loop().run_in_executor(
            None, sys.stdin.readline)
        yield b"y"

    print(await driver.append("ns/upload", chunks(), offset=3), flush=True)
    await driver.close()

asyncio.run(main())
'''


@pytest.fixture
async def fs_driver(tmp_path):
    driver = FilesystemDriver(str(tmp_path / 'root'))
    await driver.put('ns/upload', b'abc')
    yield driver
    await driver.close()


@pytest.fixture
def appending(fs_driver):
    """Another process, in the middle of an append to ns/upload."""
    process = subprocess.Popen(
        [sys.executable, '-c', _APPENDER, fs_driver.root], cwd=_REPOSITORY,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    line = process.stdout.readline()
    assert line == 'appending\n', process.communicate()[1]
    yield process
    if process.poll() is None:
        process.kill()
    process.communicate()


async def test_an_append_in_another_process_excludes_ours(fs_driver,
                                                          appending):
    size = (await fs_driver.stat('ns/upload')).size
    assert size == 3 + 65536   # its bytes show as they arrive
    with pytest.raises(AppendConflict):
        await fs_driver.append('ns/upload', chunks_of(b'z'), offset=size)
    with pytest.raises(AppendConflict):
        await fs_driver.freeze('ns/upload')
    out, err = appending.communicate('go\n', timeout=30)
    assert out.strip() == str(3 + 65536 + 1), err
    assert (await fs_driver.freeze('ns/upload')).size == 3 + 65536 + 1


async def test_a_killed_appender_leaves_its_lock_nowhere(fs_driver,
                                                         appending):
    appending.send_signal(signal.SIGKILL)
    appending.wait()
    # What it stored is a prefix of what it was given, at its place; the
    # next append starts after it.
    with open(fs_driver.local_file('ns/upload'), 'rb') as f:
        assert f.read() == b'abc' + b'x' * 65536
    assert await fs_driver.append('ns/upload', chunks_of(b'z'),
                                  offset=3 + 65536) == 3 + 65536 + 1
    assert (await fs_driver.freeze('ns/upload')).size == 3 + 65536 + 1


async def test_a_frozen_file_stays_frozen_for_every_process(fs_driver):
    await fs_driver.freeze('ns/upload')
    other = FilesystemDriver(fs_driver.root)
    try:
        with pytest.raises(AppendConflict):
            await other.append('ns/upload', chunks_of(b'z'), offset=3)
    finally:
        await other.close()
