"""Drivers report the requests they send again (`on_retry`), for the
metrics: botocore's retries and a resumed read on real Ceph RGW and
SeaweedFS, and no count at all for requests that went through.

Swift's retries are counted in test_swift_faults, where its servers are
stopped.  An S3 server cannot be made to answer 503 or to cut an answer
short at will, so here the driver talks to it through a small TCP front
that does (FaultyFront): the requests it lets through reach the real
server unchanged.
"""

import asyncio
import os
import urllib.parse

import pytest

from tests.drivers import s3_fixtures
from zuul_registry.drivers.base import DriverError
from zuul_registry.drivers.memory import MemoryDriver

MIB = 1024 ** 2
_UNAVAILABLE = (b'<?xml version="1.0" encoding="UTF-8"?><Error>'
                b'<Code>ServiceUnavailable</Code><Message>busy</Message>'
                b'</Error>')


class FaultyFront:
    """A TCP front for an HTTP server, one request per connection (it
    asks the server to close each), failing what it is told to: the next
    `refuse` requests it answers 503 itself; the answer to the next GET
    it cuts after `cut_after` bytes."""

    def __init__(self, endpoint):
        url = urllib.parse.urlsplit(endpoint)
        self.backend = (url.hostname, url.port)
        self.refuse = 0
        self.cut_after = None
        self.requests = 0
        self._server = None

    async def __aenter__(self):
        self._server = await asyncio.start_server(
            self._serve, '127.0.0.1', 0)
        return self

    async def __aexit__(self, *exc_info):
        self._server.close()
        await self._server.wait_closed()

    @property
    def endpoint(self):
        return 'http://127.0.0.1:%d' % self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader, writer):
        try:
            head = await reader.readuntil(b'\r\n\r\n')
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        self.requests += 1
        request_line, *lines = head.split(b'\r\n')[:-2]
        headers = dict((name.strip().lower(), value.strip()) for name, _,
                       value in (line.partition(b':') for line in lines))
        try:
            if self.refuse:
                self.refuse -= 1
                await self._unavailable(reader, writer, headers)
                return
            limit = None
            if request_line.startswith(b'GET ') and self.cut_after:
                limit, self.cut_after = self.cut_after, None
            kept = [line for line in lines
                    if not line.lower().startswith(b'connection:')]
            await self._forward(reader, writer, b'\r\n'.join(
                [request_line, *kept, b'Connection: close', b'', b'']),
                limit)
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _unavailable(self, reader, writer, headers):
        if headers.get(b'expect', b'').lower() != b'100-continue':
            await reader.readexactly(int(headers.get(b'content-length', 0)))
        writer.write(b'HTTP/1.1 503 Service Unavailable\r\n'
                     b'Content-Type: application/xml\r\n'
                     b'Content-Length: %d\r\nConnection: close\r\n\r\n%s'
                     % (len(_UNAVAILABLE), _UNAVAILABLE))
        await writer.drain()

    async def _forward(self, reader, writer, head, limit):
        """Send the request on to the server, its answer back (at most
        `limit` bytes of it)."""
        back_reader, back_writer = await asyncio.open_connection(
            *self.backend)
        back_writer.write(head)
        request = asyncio.ensure_future(_pipe(reader, back_writer))
        try:
            await _pipe(back_reader, writer, limit=limit)
        finally:
            request.cancel()
            back_writer.close()


async def _pipe(reader, writer, *, limit=None):
    while limit is None or limit > 0:
        data = await reader.read(64 * 1024 if limit is None
                                 else min(limit, 64 * 1024))
        if not data:
            return
        if limit is not None:
            limit -= len(data)
        writer.write(data)
        await writer.drain()


def count_retries(driver):
    """The counts the driver reports to `on_retry`, as they come."""
    counts = []
    driver.on_retry = counts.append
    return counts


def test_retried_reports_only_what_was_sent_again():
    driver = MemoryDriver()
    driver.retried()    # nobody counts: nothing happens
    counts = count_retries(driver)
    driver.retried(0)
    driver.retried()
    driver.retried(3)
    assert counts == [1, 3]


@pytest.fixture(params=s3_fixtures.KINDS)
def kind(request):
    return request.param


@pytest.fixture
async def s3(kind):
    """A driver on the real `kind` server, an object it stored, and a
    driver on the same bucket through a FaultyFront: (front, driver,
    data)."""
    direct = s3_fixtures.make_driver(kind)
    data = os.urandom(3 * MIB)
    await direct.put('ns/blob', data)
    server = s3_fixtures.s3_server().server(kind)
    async with FaultyFront(server.endpoint) as front:
        # retries=3: botocore sends a request again three times at most
        # (its max_attempts counts the retries alone).
        driver = s3_fixtures.make_driver(kind, direct.bucket, retries=3,
                                         endpoint=front.endpoint)
        try:
            yield front, driver, data
        finally:
            await driver.close()
            await direct.close()


async def test_s3_retries_are_counted_and_a_sound_request_counts_none(s3):
    front, driver, data = s3
    counts = count_retries(driver)
    await driver.open()
    assert await driver.get('ns/blob') == data
    assert (await driver.stat('ns/blob')).size == len(data)
    await driver.put('ns/small', b'small')
    assert await driver.list('ns') == ['blob', 'small']
    assert counts == []
    sent = front.requests

    front.refuse = 2
    assert await driver.get('ns/small') == b'small'
    assert front.requests == sent + 3
    assert counts == [2]


async def test_s3_retries_of_a_request_that_fails_are_counted(s3):
    front, driver, _ = s3
    counts = count_retries(driver)
    await driver.open()
    front.refuse = 10
    with pytest.raises(DriverError, match='503'):
        await driver.get('ns/blob')
    assert front.refuse == 6     # sent four times
    assert counts == [3]


async def test_s3_a_resumed_read_is_counted(s3):
    front, driver, data = s3
    counts = count_retries(driver)
    await driver.open()
    front.cut_after = MIB
    pieces = [piece async for piece in driver.read('ns/blob',
                                                   chunk_size=256 * 1024)]
    assert front.cut_after is None    # the answer was cut
    assert b''.join(pieces) == data
    assert counts == [1]
