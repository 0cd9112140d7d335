"""What only the Swift driver promises: how objects lie in the container.

Runs against the shared one-node Swift of swift_server; each test has a
container of its own.
"""

import asyncio
import json
import logging
import threading
import time

import pytest
import requests
import swiftclient
import urllib3
from keystoneauth1 import exceptions as keystone_errors

from tests.drivers import swift_server
from tests.drivers.test_contract import chunks_of, read_all
from zuul_registry.drivers.swift_client import is_transient


@pytest.fixture
async def make_driver():
    made = []

    def make(**options):
        driver, scratch = swift_server.contract_driver(None, **options)
        made.append(driver)
        return driver, scratch
    yield make
    for driver in made:
        await driver.close()


@pytest.fixture
def swift():
    conn = swiftclient.Connection(
        retries=0, **swift_server.connection_options(swift_server.shared()))
    yield conn
    conn.close()


def manifest(swift, container, name):
    """The segments of a manifest: [(name, size, nested)]."""
    _, data = swift.get_object(container, name,
                               query_string='multipart-manifest=get')
    return [(item['name'].split('/', 2)[2], item['bytes'],
             bool(item.get('sub_slo'))) for item in json.loads(data)]


def names(swift, container, prefix=''):
    _, listing = swift.get_container(container, prefix=prefix,
                                     full_listing=True)
    return [entry['name'] for entry in listing]


async def test_a_write_is_one_manifest_over_its_segments(make_driver, swift):
    driver, scratch = make_driver(segment_size=4)
    assert await driver.write('ns/blob', chunks_of(b'0123456', b'789')) == 10
    segments = manifest(swift, driver.container, 'ns/blob')
    assert [size for _, size, _ in segments] == [4, 4, 2]
    # One set of their own, under .segments/, not under the path.
    assert len({name.rsplit('/', 1)[0] for name, _, _ in segments}) == 1
    assert all(name.startswith('.segments/') and 'ns/blob' not in name
               for name, _, _ in segments)
    assert b''.join(await read_all(driver, 'ns/blob', offset=3, length=6,
                                   chunk_size=4)) == b'345678'
    assert scratch() == []


async def test_manifests_nest_past_the_segment_limit(make_driver, swift):
    driver, scratch = make_driver(join_under=1)
    count = 2 * swift_server.MAX_MANIFEST_SEGMENTS + 3
    parts = ['ns/upload/%03d' % n for n in range(count)]
    for n, part in enumerate(parts):
        await driver.put(part, b'%03d' % n)
    await driver.concat('ns/blob', parts)
    await driver.delete('ns/upload')
    top = manifest(swift, driver.container, 'ns/blob')
    assert [nested for _, _, nested in top] == [True, True, True]
    assert sum(len(manifest(swift, driver.container, name))
               for name, _, _ in top) == count
    expected = b''.join(b'%03d' % n for n in range(count))
    assert await driver.get('ns/blob') == expected
    assert b''.join(await read_all(driver, 'ns/blob', offset=29,
                                   length=7)) == expected[29:36]
    await driver.delete('ns/blob')
    assert names(swift, driver.container) == []
    assert scratch() == []


async def test_small_parts_are_joined_and_large_ones_copied(
        make_driver, swift):
    # Swift serves small SLO segments at one a second after the tenth.
    driver, _ = make_driver(join_under=4, join_target=10)
    sizes = [3] * 7 + [5] + [2] * 2 + [4]
    parts = []
    for n, size in enumerate(sizes):
        parts.append('ns/upload/%02d' % n)
        await driver.put(parts[-1], bytes([65 + n]) * size)
    await driver.concat('ns/blob', parts)
    assert [size for _, size, _ in manifest(
        swift, driver.container, 'ns/blob')] == [12, 9, 5, 4, 4]
    assert await driver.get('ns/blob') == b''.join(
        bytes([65 + n]) * size for n, size in enumerate(sizes))


async def test_one_source_becomes_a_plain_object(make_driver, swift):
    driver, scratch = make_driver(segment_size=1024)
    await driver.write('ns/upload/0', chunks_of(b'only', b' chunk'))
    await driver.concat('ns/blob', ['ns/upload/0'])
    headers = swift.head_object(driver.container, 'ns/blob')
    assert 'x-static-large-object' not in headers
    await driver.delete('ns/upload')
    assert await driver.get('ns/blob') == b'only chunk'
    assert scratch() == []


async def test_small_parts_in_one_group_become_a_plain_object(
        make_driver, swift):
    driver, _ = make_driver()   # joins everything under 3 bytes
    for n in range(3):
        await driver.put('ns/upload/%d' % n, b'ab')
    await driver.concat('ns/blob', ['ns/upload/%d' % n for n in range(3)])
    assert 'x-static-large-object' not in swift.head_object(
        driver.container, 'ns/blob')
    assert await driver.get('ns/blob') == b'ababab'


async def test_delete_keeps_the_segments_of_a_name_it_prefixes(make_driver,
                                                               swift):
    driver, scratch = make_driver()
    for path in ('ns/a', 'ns/ab', 'ns/a/b'):
        await driver.write(path, chunks_of(b'0123456789', path.encode()))
    await driver.delete('ns/a')
    assert sorted(names(swift, driver.container)) == sorted(
        ['ns/ab'] + [name for name, _, _ in manifest(
            swift, driver.container, 'ns/ab')])
    assert await driver.get('ns/ab') == b'0123456789ns/ab'
    assert scratch() == []


async def test_replaced_segments_stay_until_collected(make_driver, swift):
    driver, scratch = make_driver()
    await driver.write('ns/blob', chunks_of(b'first version'))
    reader = driver.read('ns/blob', chunk_size=6)
    assert await reader.__anext__() == b'first '
    await driver.write('ns/blob', chunks_of(b'second version'))
    # A read in progress still has the old segments to read.
    assert b''.join([piece async for piece in reader]) == b'version'
    assert await driver.get('ns/blob') == b'second version'
    old = scratch()
    assert old != []
    # Not an hour old yet: they stay.
    assert await driver.collect_leftovers(before=time.time() - 3600) == []
    assert scratch() == old
    [leftover] = await driver.collect_leftovers(before=time.time() + 60)
    assert leftover.name == old[0].rsplit('/', 1)[0] + '/'
    assert leftover.size == len(b'first version')
    assert scratch() == []
    assert await driver.get('ns/blob') == b'second version'
    await driver.delete('ns/blob')
    assert names(swift, driver.container) == []


async def test_a_path_of_the_maximum_length_has_segments(make_driver,
                                                         swift):
    driver, scratch = make_driver()
    parent = 'ns/' + '/'.join(['a' * 200] * 5)
    await driver.write(parent + '/x', chunks_of(b'0123456789' * 3))
    await driver.concat(parent + '/y', [parent + '/x'], consume=True)
    assert await driver.get(parent + '/y') == b'0123456789' * 3
    assert await driver.list(parent) == ['y']
    await driver.delete('ns')
    await driver.collect_leftovers(before=time.time() + 60)   # the claim
    assert names(swift, driver.container) == []
    assert scratch() == []


async def test_listing_follows_markers_past_a_page(make_driver):
    driver, _ = make_driver(page_size=4)
    expected = sorted(['%02d' % n for n in range(13)] + ['sub'])
    for name in expected:
        await driver.put('ns/dir/%s%s' % (name, '/x' if name == 'sub'
                                          else ''), b'')
    assert await driver.list('ns/dir') == expected
    await driver.delete('ns/dir')
    assert await driver.list('ns') == []


async def test_the_page_size_is_the_clusters_listing_limit_at_most(
        make_driver):
    driver, _ = make_driver(page_size=10 ** 6)
    assert await driver.list('ns') == []
    assert driver.page_size == 10000


async def test_the_container_is_created_when_missing(make_driver, swift):
    driver, _ = make_driver()
    with pytest.raises(swiftclient.ClientException):
        swift.head_container(driver.container)
    assert await driver.stat('ns/x') is None
    swift.head_container(driver.container)


@pytest.mark.parametrize('error, transient', [
    (swiftclient.ClientException('x', http_status=503), True),
    (swiftclient.ClientException('x', http_status=500), True),
    (swiftclient.ClientException('x', http_status=429), True),
    (swiftclient.ClientException('x', http_status=404), False),
    (swiftclient.ClientException('x', http_status=412), False),
    (swiftclient.ClientException('cannot rewind the body'), False),
    (requests.ConnectionError(), True),
    (requests.ReadTimeout(), True),
    (urllib3.exceptions.ProtocolError(), True),
    (ConnectionResetError(), True),
    (keystone_errors.ConnectFailure(), True),
    (keystone_errors.ServiceUnavailable(), True),
    (keystone_errors.Unauthorized(), False),
    (RuntimeError('the body failed'), False),
])
def test_only_failures_of_swift_or_the_network_are_retried(error, transient):
    assert is_transient(error) is transient


async def test_no_token_reaches_the_log(make_driver, caplog):
    driver, _ = make_driver()
    with caplog.at_level(logging.DEBUG):
        assert await driver.stat('ns/missing') is None
        await driver.put('ns/object', b'x')
    token = driver.client._auth[1]
    assert token and token[:12] not in caplog.text
    assert 'X-Auth-Token' not in caplog.text


async def test_segmented_objects_take_every_allowed_character(make_driver):
    driver, scratch = make_driver()
    path = 'ns/localhost:5000/_tags/v1.0-rc_1+build=2'
    await driver.write(path + '/x', chunks_of(b'0123456789abc'))
    await driver.concat(path + '/y', [path + '/x', path + '/x'])
    await driver.move(path + '/y', path + '/z')
    assert await driver.get(path + '/z') == b'0123456789abc' * 2
    assert await driver.list(path) == ['x', 'z']
    await driver.delete('ns')
    # The claim of the set moved stays until collection.
    assert [name.rsplit('/', 1)[1] for name in scratch()] == ['claim']
    await driver.collect_leftovers(before=time.time() + 60)
    assert scratch() == []


async def test_swiftclient_runs_in_threads_at_most_concurrency_at_once(
        make_driver, monkeypatch):
    driver, _ = make_driver(concurrency=3)
    await driver.put('ns/object', b'x')
    running, most = set(), []
    blocking = driver.client._blocking

    def counting(method, args, kwargs):
        running.add(threading.get_ident())
        most.append(len(running))
        time.sleep(0.05)   # a slow Swift; the event loop must not wait
        try:
            return blocking(method, args, kwargs)
        finally:
            running.discard(threading.get_ident())

    monkeypatch.setattr(driver.client, '_blocking', counting)
    ticks = []

    async def heartbeat():
        for _ in range(20):
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    await asyncio.gather(heartbeat(), *[driver.stat('ns/object')
                                        for _ in range(12)])
    assert max(most) == 3
    assert max(b - a for a, b in zip(ticks, ticks[1:])) < 0.05
