"""What the S3 driver does beyond the contract, on real Ceph RGW and
SeaweedFS: multipart writes, server-side copies, leftovers, prefixes,
what it finds out about the server, and startup errors."""

import asyncio
import os
import socket
import time

import pytest

from tests.drivers import s3_fixtures
from tests.drivers.held_calls import (
    MOVE_STEPS, hold_move_step, moves_both_ways)
from tests.drivers.test_contract import chunks_of, failing_after
from tests.unit.test_cli import run
from zuul_registry.drivers.base import AlreadyExists, DriverError

MIB = 1024 ** 2


@pytest.fixture(params=s3_fixtures.KINDS)
def kind(request):
    return request.param


@pytest.fixture
async def make(kind):
    """Drivers on the `kind` server, closed at the end."""
    drivers = []

    def make_driver(bucket=None, **kwargs):
        kwargs.setdefault('part_size', 5 * MIB)
        drivers.append(s3_fixtures.make_driver(kind, bucket, **kwargs))
        return drivers[-1]
    yield make_driver
    for driver in drivers:
        await driver.close()


def record_requests(driver):
    """The S3 operations the driver sends from now on, with their
    parameters, seen through botocore's own event hook."""
    seen = []

    def record(params, model, **kwargs):
        seen.append((model.name, dict(params)))
    driver.client.s3.meta.events.register('provide-client-params.s3.*',
                                          record)
    return seen


def blob(size, seed):
    return (bytes([seed]) * 7 + os.urandom(1))[:8] * (size // 8) + \
        bytes([seed]) * (size % 8)


async def test_the_probes_find_what_each_server_honours(make, kind):
    driver = make(conditional_put=None, empty_prefixes=None)
    await driver.open()
    assert {name: getattr(driver, name)
            for name in s3_fixtures.PROBED[kind]} == \
        s3_fixtures.PROBED[kind]
    assert await driver.list('ns') == []   # the probes left no object


# -- multipart writes ---------------------------------------------------------

async def test_a_large_write_is_a_multipart_upload_of_part_size(make):
    driver = make()
    seen = record_requests(driver)
    data = os.urandom(11 * MIB + 3)
    pieces = [data[n:n + 1000003] for n in range(0, len(data), 1000003)]
    assert await driver.write('ns/blob', chunks_of(*pieces)) == len(data)
    assert await driver.get('ns/blob') == data
    assert (await driver.stat('ns/blob')).size == len(data)
    sizes = [len(params['Body']) for name, params in seen
             if name == 'UploadPart']
    assert sizes == [5 * MIB, 5 * MIB, MIB + 3]
    # Into a data object; the single requests are its link and hint.
    assert {params['Key'].split('/')[0] for name, params in seen
            if name == 'UploadPart'} == {'.zr-data'}
    assert [len(params['Body']) < 1024 for name, params in seen
            if name == 'PutObject'] == [True, True]


async def test_a_failing_large_write_leaves_no_upload_behind(make):
    driver = make()
    data = os.urandom(6 * MIB)
    with pytest.raises(RuntimeError, match='client went away'):
        await driver.write('ns/blob', failing_after(data[:3 * MIB],
                                                    data[3 * MIB:]))
    assert await driver.stat('ns/blob') is None
    assert await driver.collect_leftovers(before=time.time() + 60) == []


@pytest.mark.parametrize('checked_by', ['server', 'driver'])
async def test_of_two_large_exclusive_writes_exactly_one_wins(
        make, kind, checked_by):
    # Where the server ignores If-None-Match on PutObject, the driver
    # checks; both servers honour it, so both run both ways.
    options = {}
    if checked_by == 'driver':
        options = dict(conditional_put=False)
    elif not s3_fixtures.PROBED[kind]['conditional_put']:
        pytest.skip('%s does not check If-None-Match' % kind)
    driver = make(**options)
    first, second = blob(6 * MIB, 1), blob(6 * MIB, 2)
    results = await asyncio.gather(
        driver.write('ns/blob', chunks_of(first[:MIB], first[MIB:]),
                     exclusive=True),
        driver.write('ns/blob', chunks_of(second[:MIB], second[MIB:]),
                     exclusive=True),
        return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == \
        ['AlreadyExists', 'int']
    assert await driver.get('ns/blob') in (first, second)
    with pytest.raises(AlreadyExists):
        await driver.write('ns/blob', chunks_of(blob(6 * MIB, 3)),
                           exclusive=True)
    assert await driver.collect_leftovers(before=time.time() + 60) == []


# -- concat: copies on the server --------------------------------------------

async def test_consuming_big_and_small_parts_copies_the_big_ones(make):
    driver = make()
    sizes = {'a': 6 * MIB, 'b': 100, 'c': 200, 'd': 12 * MIB, 'e': MIB,
             'f': 6 * MIB, 'g': 10}
    data = {name: blob(size, n) for n, (name, size) in
            enumerate(sorted(sizes.items()))}
    for name in sorted(data):
        await driver.put('ns/upload/' + name, data[name])
    seen = record_requests(driver)
    await driver.concat('ns/blob', ['ns/upload/' + name
                                    for name in sorted(data)], consume=True)
    assert await driver.list('ns') == ['blob']
    seen_before_reading = list(seen)
    assert await driver.get('ns/blob') == b''.join(
        data[name] for name in sorted(data))

    def ranges(operation, key):
        return [params.get('Range') or params.get('CopySourceRange')
                for name, params in seen_before_reading
                if name == operation and key in (
                    params.get('Key'), params.get('CopySource', {}).get(
                        'Key'))]
    # The joins fill up to 5 MiB from the head of the next big part; the
    # rest of a big part is copied when it still makes a part.
    lack_d, lack_f = 5 * MIB - 300, 4 * MIB
    assert ranges('GetObject', 'ns/upload/a') == []
    assert ranges('UploadPartCopy', 'ns/upload/a') == \
        ['bytes=0-%d' % (6 * MIB - 1)]
    assert ranges('GetObject', 'ns/upload/d') == \
        ['bytes=0-%d' % (lack_d - 1)]
    assert ranges('UploadPartCopy', 'ns/upload/d') == \
        ['bytes=%d-%d' % (lack_d, 12 * MIB - 1)]
    assert ranges('GetObject', 'ns/upload/f') == [
        'bytes=0-%d' % (lack_f - 1), 'bytes=%d-%d' % (lack_f, 6 * MIB - 1)]
    read = sum(int(r.split('-')[1]) - int(r[6:].split('-')[0]) + 1
               for name, params in seen_before_reading
               if name == 'GetObject' for r in [params['Range']])
    assert read == 300 + lack_d + MIB + 6 * MIB + 10


async def test_concat_of_one_part_is_one_server_side_copy(make):
    driver = make()
    data = blob(6 * MIB, 7)
    await driver.put('ns/part', data)
    seen = record_requests(driver)
    await driver.concat('ns/blob', ['ns/part'])
    operations = [name for name, _ in seen]
    assert 'CopyObject' in operations and 'GetObject' not in operations
    await driver.delete('ns/part')
    assert await driver.get('ns/blob') == data


async def test_concat_beyond_the_copy_limit_copies_in_ranges(make):
    # Objects over 5 GiB are copied in parts; a lowered limit shows it.
    driver = make(max_copy_size=10 * MIB)
    data = blob(12 * MIB, 9)
    await driver.put('ns/part', data)
    seen = record_requests(driver)
    await driver.move('ns/part', 'ns/blob')
    # The parts are copied at once: in whatever order they finish.
    assert sorted([params['CopySourceRange'] for name, params in seen
                   if name == 'UploadPartCopy']) == [
        'bytes=0-%d' % (6 * MIB - 1), 'bytes=%d-%d' % (6 * MIB, 12 * MIB - 1)]
    assert await driver.get('ns/blob') == data
    assert await driver.list('ns') == ['blob']


# -- leftovers ----------------------------------------------------------------

async def test_the_upload_of_a_crashed_write_is_collected(make):
    driver = make()
    await driver.put('ns/kept', b'kept')
    # What a writer that died mid-way leaves: an upload with a part.
    s3 = driver.client.s3
    upload = s3.create_multipart_upload(Bucket=driver.bucket,
                                        Key='ns/crashed')
    s3.upload_part(Bucket=driver.bucket, Key='ns/crashed', PartNumber=1,
                   UploadId=upload['UploadId'], Body=b'x' * 1000)
    assert await driver.collect_leftovers(before=time.time() - 3600) == []
    found = await driver.collect_leftovers(before=time.time() + 60,
                                           dry_run=True)
    assert [(leftover.name, leftover.size) for leftover in found] == [
        ('ns/crashed (upload %s)' % upload['UploadId'], 1000)]
    assert await driver.collect_leftovers(before=time.time() + 60) == found
    assert s3.list_multipart_uploads(Bucket=driver.bucket).get(
        'Uploads', []) == []
    assert await driver.get('ns/kept') == b'kept'
    assert await driver.stat('ns/crashed') is None


# -- prefixes -----------------------------------------------------------------

async def test_drivers_with_other_prefixes_share_a_bucket_apart(make):
    one = make(prefix='one/')
    await one.open()
    two = make(one.bucket, prefix='two/')
    bare = make(one.bucket)
    for driver, data in ((one, b'1'), (two, b'2'), (bare, b'0')):
        await driver.put('ns/blob', data)
        await driver.put('ns/tree/leaf', data)
    await two.delete('ns')
    assert await two.list('ns') == []
    assert [await d.get('ns/blob') for d in (one, bare)] == [b'1', b'0']
    assert await one.list('ns') == ['blob', 'tree']
    assert await bare.list('ns') == ['blob', 'tree']
    s3 = one.client.s3
    s3.create_multipart_upload(Bucket=one.bucket, Key='two/ns/crashed')
    assert await one.collect_leftovers(before=time.time() + 60) == []
    assert len(await two.collect_leftovers(before=time.time() + 60)) == 1
    keys = sorted(entry['Key'] for entry in s3.list_objects_v2(
        Bucket=one.bucket)['Contents'])
    assert keys == ['ns/blob', 'ns/tree/leaf', 'one/ns/blob',
                    'one/ns/tree/leaf']


# -- startup ----------------------------------------------------------------

async def test_a_missing_bucket_is_created_on_open(make):
    driver = make()
    await driver.open()
    driver.client.s3.head_bucket(Bucket=driver.bucket)


def _dead_port():
    with socket.socket() as closed:
        closed.bind(('127.0.0.1', 0))
        return closed.getsockname()[1]


async def test_wrong_keys_or_no_server_fail_open_in_one_line(make):
    wrong = make(secret_key='not-the-secret')
    with pytest.raises(DriverError) as raised:
        await wrong.open()
    assert str(raised.value).startswith('S3 bucket %s at %s: 403 '
                                        % (wrong.bucket,
                                           wrong.client.endpoint))
    assert '\n' not in str(raised.value)
    gone = make(endpoint='http://127.0.0.1:%d' % _dead_port(), retries=1)
    with pytest.raises(DriverError, match='Could not connect'):
        await gone.open()


def serve_with(tmp_path, server, endpoint):
    path = tmp_path / 's3.yaml'
    path.write_text(
        'registry:\n  port: %d\n  storage:\n    driver: s3\n'
        '    endpoint: %s\n    region: %s\n    bucket: registry\n'
        '    access-key: %s\n    secret-key: wrong\n'
        % (_dead_port(), endpoint, server.region, server.access_key))
    result = run('-c', str(path), 'serve', timeout=120)
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr
    [line] = [line for line in result.stderr.splitlines()
              if 'cannot use the storage' in line]
    assert 'cannot use the storage: S3 bucket registry at %s: ' % endpoint \
        in line
    return line


def test_serve_with_a_wrong_key_fails_at_startup(tmp_path, kind):
    server = s3_fixtures.s3_server().server(kind)
    assert ': 403 ' in serve_with(tmp_path, server, server.endpoint)


def test_serve_with_an_unreachable_s3_fails_at_startup(tmp_path):
    server = s3_fixtures.s3_server().server('seaweedfs')
    line = serve_with(tmp_path, server, 'http://127.0.0.1:%d' % _dead_port())
    assert 'Could not connect to the endpoint URL' in line


async def test_reads_of_an_unreachable_server_are_driver_errors(make, kind):
    driver = make()
    await driver.open()
    await driver.put('ns/a', b'abc')
    server = s3_fixtures.s3_server().server(kind)
    server.stop_s3()
    try:
        with pytest.raises(DriverError):
            await driver.get('ns/a')
        with pytest.raises(DriverError):
            async for _ in driver.read('ns/a'):
                pass
    finally:
        server.start_s3()
    assert await driver.get('ns/a') == b'abc'


async def write_link(driver, path):
    await driver.write(path, chunks_of(b'linked blob'))


@pytest.mark.parametrize('held', MOVE_STEPS)
@pytest.mark.parametrize('linked', [False, True], ids=['small', 'link'])
async def test_opposite_moves_keep_the_object_and_leave_nothing(
        make, monkeypatch, held, linked):
    driver = make(link_size=1)
    found = await moves_both_ways(
        driver, lambda: hold_move_step(monkeypatch, driver, held,
                                       'delete_keys'),
        write=write_link if linked else None)
    assert found, 'the object is in neither place'
    for path in found:
        assert await driver.get(path) == (
            b'linked blob' if linked else b'small blob')
    # The keeps are gone, and data no link names too.
    assert await driver.collect_leftovers(before=time.time() + 60) == []
