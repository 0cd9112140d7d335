"""What only the filesystem driver promises: files under one root."""

import asyncio
import os
import signal
import subprocess
import sys
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


# -- scratch of other processes -----------------------------------------------

_REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# A server process that starts a write, says where its scratch is, and
# waits for a line on stdin before finishing it.
_WRITER = '''
import asyncio, sys
from zuul_registry.drivers.filesystem import FilesystemDriver

async def main():
    driver = FilesystemDriver(sys.argv[1])

    async def chunks():
        yield b"x" * 65536
        print(driver.tmp, flush=True)
        await asyncio.get_running_loop().run_in_executor(
            None, sys.stdin.readline)
        yield b"y"

    print(await driver.write("ns/blob", chunks()), flush=True)
    await driver.close()

asyncio.run(main())
'''


@pytest.fixture
def start_writer():
    """Start a writing process on a root; wait until its write is under
    way; return the process."""
    processes = []

    def start(root):
        process = subprocess.Popen(
            [sys.executable, '-c', _WRITER, root], cwd=_REPOSITORY,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        processes.append(process)
        line = process.stdout.readline()
        assert line, process.communicate()[1]
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate()


def scratch_files(root):
    """Every file under ROOT/.tmp, relative to ROOT."""
    found = []
    for directory, _, files in os.walk(os.path.join(root, '.tmp')):
        found.extend(os.path.relpath(os.path.join(directory, name), root)
                     for name in files)
    return sorted(found)


def others(root, driver):
    """The scratch files under ROOT/.tmp but those of `driver`."""
    own = os.path.relpath(driver.tmp, root)
    return [name for name in scratch_files(root)
            if not name.startswith(own + '/') and name != own + '.lock']


def killed(process):
    process.send_signal(signal.SIGKILL)
    process.wait()


async def test_scratch_of_a_killed_process_is_removed_at_startup(
        tmp_path, start_writer):
    root = str(tmp_path / 'root')
    killed(start_writer(root))
    assert scratch_files(root)   # the write's scratch, left behind

    driver = FilesystemDriver(root)
    await driver.close()
    assert scratch_files(root) == []
    assert os.listdir(os.path.join(root, '.tmp')) == []


async def test_startup_leaves_the_scratch_of_a_live_process_alone(
        tmp_path, start_writer):
    root = str(tmp_path / 'root')
    writer = start_writer(root)
    before = scratch_files(root)

    driver = FilesystemDriver(root)
    try:
        assert others(root, driver) == before
        assert await driver.collect_leftovers(
            before=time.time() - 3600) == []
        # The write in progress completes.
        output, errors = writer.communicate('go on\n')
        assert writer.returncode == 0, errors
        assert output.split() == ['65537']
        assert await driver.get('ns/blob') == b'x' * 65536 + b'y'
    finally:
        await driver.close()
    assert scratch_files(root) == []


async def test_scratch_of_a_process_killed_since_startup_is_collected(
        tmp_path, start_writer):
    root = str(tmp_path / 'root')
    driver = FilesystemDriver(root)
    try:
        writer = start_writer(root)
        assert await driver.collect_leftovers(
            before=time.time() - 3600) == []
        killed(writer)
        left = scratch_files(root)
        assert left
        # Its owner is gone: collected at once, whatever its age.
        named = await driver.collect_leftovers(before=time.time() - 3600,
                                               dry_run=True)
        assert scratch_files(root) == left
        assert [leftover.size for leftover in named] == [65536]
        assert await driver.collect_leftovers(
            before=time.time() - 3600) == named
        assert others(root, driver) == []
    finally:
        await driver.close()


async def test_a_lock_file_without_its_directory_goes_when_stale(tmp_path):
    # Its owner died between locking and making its directory.
    scratch = tmp_path / 'root' / '.tmp'
    scratch.mkdir(parents=True)
    (scratch / 'dead.lock').touch()
    old = time.time() - 2 * 3600
    os.utime(scratch / 'dead.lock', (old, old))
    (scratch / 'starting.lock').touch()

    driver = FilesystemDriver(str(tmp_path / 'root'))
    await driver.close()

    assert sorted(os.listdir(scratch)) == ['starting.lock']
