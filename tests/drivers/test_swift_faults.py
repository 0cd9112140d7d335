"""The Swift driver when Swift fails: errors, not hangs; retries only where
a request can be sent again, each reported (`on_retry`); nothing partial
ever visible.

These stop and start servers, so they get a Swift of their own.
"""

import asyncio
import logging
import os
import signal
import time

import pytest

from tests.drivers import swift_server
from tests.drivers.test_contract import read_all
from zuul_registry.drivers import base
from zuul_registry.drivers.swift import SwiftDriver
from zuul_registry.drivers.swift_client import connection_factory


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    with swift_server.private(tmp_path_factory.mktemp('swift')) as server:
        yield server


@pytest.fixture
def restarted(server):
    """Start again whatever a test stopped (or froze)."""
    yield
    os.kill(server.processes['proxy'].pid, signal.SIGCONT)
    for kind in swift_server.SERVERS:
        if kind not in server.processes:
            server.start_server(kind)


@pytest.fixture
async def make_driver(server):
    made = []

    def make(*, timeout=30, **options):
        options.setdefault('backoff', 0.05)
        driver = SwiftDriver(
            swift_server.new_container(), connection_factory(
                swift_server.connection_options(server), timeout=timeout),
            **options)
        made.append(driver)
        return driver
    yield make
    for driver in made:
        await driver.close()


async def wait_until_stored(driver, path, data, *, seconds=15):
    """Put until the proxy stops error-limiting a restarted server."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return await driver.put(path, data)
        except base.DriverError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def count_retries(driver):
    """The counts the driver reports to `on_retry`, as they come."""
    counts = []
    driver.on_retry = counts.append
    return counts


def expire_token(client):
    """Give the client's connections a token Swift does not know, as if
    theirs had expired."""
    with client._lock:
        client._auth = (client._auth[0], 'AUTH_tk' + '0' * 32)
        for conn in client._idle:
            conn.token = client._auth[1]


async def test_an_error_not_a_hang_while_the_object_server_is_down(
        server, restarted, make_driver):
    driver = make_driver(retries=2)
    await driver.put('ns/before', b'x')
    server.stop_server('object')
    started = time.monotonic()
    with pytest.raises(base.DriverError, match='503'):
        await driver.put('ns/blob', b'data')
    with pytest.raises(base.DriverError, match='503'):
        await driver.get('ns/before')
    assert time.monotonic() - started < 10
    server.start_server('object')
    await wait_until_stored(driver, 'ns/blob', b'data')
    assert await driver.get('ns/blob') == b'data'


async def test_a_repeatable_request_rides_out_a_restart(server, restarted,
                                                        make_driver):
    driver = make_driver(retries=8, backoff=0.2)
    await driver.put('ns/blob', b'kept')
    server.stop_server('object')
    reading = asyncio.ensure_future(driver.get('ns/blob'))
    await asyncio.sleep(0.5)
    assert not reading.done()
    server.start_server('object')
    assert await asyncio.wait_for(reading, 30) == b'kept'


async def test_each_retry_is_reported_and_a_sound_request_none(
        server, restarted, make_driver):
    driver = make_driver(retries=8, backoff=0.1)
    counts = count_retries(driver)
    await driver.put('ns/blob', b'kept')
    assert await driver.get('ns/blob') == b'kept'
    assert b''.join(await read_all(driver, 'ns/blob')) == b'kept'
    assert (await driver.stat('ns/blob')).size == 4
    assert await driver.list('ns') == ['blob']
    assert counts == []
    server.stop_server('object')
    reading = asyncio.ensure_future(driver.get('ns/blob'))
    await asyncio.sleep(0.5)
    assert counts, 'reported as they happen'
    server.start_server('object')
    assert await asyncio.wait_for(reading, 30) == b'kept'
    assert set(counts) == {1} and len(counts) <= 8


async def test_a_request_sent_again_for_a_new_token_is_reported(
        make_driver):
    driver = make_driver()
    await driver.put('ns/blob', b'kept')
    counts = count_retries(driver)
    expire_token(driver.client)
    assert await driver.get('ns/blob') == b'kept'
    assert counts == [1]
    expire_token(driver.client)
    assert b''.join(await read_all(driver, 'ns/blob')) == b'kept'  # streamed
    assert counts == [1, 1]
    assert await driver.list('ns') == ['blob']      # the new token works
    assert counts == [1, 1]


async def test_a_streamed_write_is_not_replayed_and_leaves_nothing(
        server, restarted, make_driver):
    driver = make_driver(retries=4)
    await driver.put('ns/other', b'x')
    sent = []

    async def body():
        sent.append(1)
        yield b'first chunk'
        server.stop_server('object')
        sent.append(2)
        yield b'second chunk'

    with pytest.raises(Exception):
        await asyncio.wait_for(driver.write('ns/blob', body(),
                                            exclusive=True), 30)
    assert sent == [1, 2]   # read once, never again
    server.start_server('object')
    await wait_until_stored(driver, 'ns/other', b'y')
    assert await driver.stat('ns/blob') is None
    assert await driver.list('ns') == ['other']
    # Collection takes any segment left behind.
    await driver.collect_leftovers(before=time.time() + 60)
    assert swift_server.leftover_segments(server, driver.container) == []


async def test_a_broken_read_resumes_where_it_stopped(server, restarted,
                                                      make_driver, caplog):
    driver = make_driver(retries=8, backoff=0.2)
    data = os.urandom(1024 * 1024) * 48
    await driver.put('ns/blob', data)
    reader = driver.read('ns/blob', chunk_size=64 * 1024)
    pieces = [await reader.__anext__()]
    counts = count_retries(driver)
    server.stop_server('object')
    server.start_server('object')
    with caplog.at_level(logging.WARNING, 'zuul_registry.drivers.swift'):
        pieces += [piece async for piece in reader]
    assert b''.join(pieces) == data
    assert 'resuming' in caplog.text
    # The resumption, and any GET retried while the server started.
    assert counts and set(counts) == {1}


async def test_a_frozen_swift_times_out(server, restarted, make_driver):
    driver = make_driver(retries=1, timeout=1)
    await driver.put('ns/blob', b'x')
    os.kill(server.processes['proxy'].pid, signal.SIGSTOP)
    started = time.monotonic()
    with pytest.raises(Exception):
        await read_all(driver, 'ns/blob')
    assert time.monotonic() - started < 8


async def test_joining_small_parts_waits_out_a_restart(server, restarted,
                                                       make_driver):
    # Parts under the segment minimum are read and written again as one
    # object: reads and write are sent again while the object server is
    # away, and the join completes once it is back.
    driver = make_driver(retries=8, backoff=0.2)
    await driver.put('ns/a', b'first ')
    await driver.put('ns/b', b'second')
    server.stop_server('object')
    joining = asyncio.ensure_future(
        driver.concat('ns/joined', ['ns/a', 'ns/b']))
    await asyncio.sleep(1.0)
    assert not joining.done()
    server.start_server('object')
    await asyncio.wait_for(joining, 60)
    assert await driver.get('ns/joined') == b'first second'
