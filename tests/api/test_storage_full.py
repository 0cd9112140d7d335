"""A full disk answers 507 Insufficient Storage with an error body.

The real case runs on a 2 MiB tmpfs mounted for the test (we are root in
a sandbox); where mounting is not permitted it is skipped.
"""

import errno
import logging
import os
import subprocess

import pytest
from aiohttp import web

from zuul_registry.api import errors
from zuul_registry.app import make_app
from zuul_registry.drivers import base as driver_base
from zuul_registry.storage import errors as storage_errors
from tests.api.helpers import assert_error, digest_of, make_config


@pytest.fixture
def small_disk(tmp_path):
    mountpoint = tmp_path / 'small'
    mountpoint.mkdir()
    try:
        mounted = subprocess.run(
            ['mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs',
             str(mountpoint)], capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip('no mount command to make a small filesystem')
    if mounted.returncode:
        pytest.skip('cannot mount a 2 MiB tmpfs to fill (needs root): '
                    + mounted.stderr.strip())
    yield mountpoint
    if subprocess.run(['umount', str(mountpoint)]).returncode:
        subprocess.run(['umount', '--lazy', str(mountpoint)], check=True)
        pytest.fail('the small tmpfs was still in use after the test')


def error_records(caplog):
    return [record for record in caplog.records
            if record.name == 'zuul_registry.api.errors']


# small_disk comes first: set up before the app, removed after it closed.
async def test_a_push_bigger_than_the_free_space_is_507(
        small_disk, aiohttp_client, caplog):
    client = await aiohttp_client(make_app(make_config(small_disk)))
    data = os.urandom(3 * 1024 * 1024)
    response = await client.post('/v2/org/img/blobs/uploads/?digest=%s'
                                 % digest_of(data), data=data)
    body = await assert_error(response, 507, 'UNKNOWN')
    assert body['errors'][0]['message'] == 'storage is full'
    [record] = error_records(caplog)
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    # The failed push left nothing behind: a smaller one fits.
    data = os.urandom(1024 * 1024 + 512 * 1024)
    response = await client.post('/v2/org/img/blobs/uploads/?digest=%s'
                                 % digest_of(data), data=data)
    assert response.status == 201, await response.text()


async def test_a_chunk_bigger_than_the_free_space_is_507(
        small_disk, aiohttp_client, caplog):
    client = await aiohttp_client(make_app(make_config(small_disk)))
    response = await client.post('/v2/org/img/blobs/uploads/')
    assert response.status == 202
    response = await client.patch(response.headers['Location'],
                                  data=os.urandom(3 * 1024 * 1024))
    await assert_error(response, 507, 'UNKNOWN')
    assert [r.levelno for r in error_records(caplog)] == [logging.WARNING]


def _raising(exc):
    async def handler(request):
        raise exc
    return handler


def _wrapped(outer, number):
    try:
        try:
            raise OSError(number, os.strerror(number))
        except OSError as cause:
            raise outer from cause
    except Exception as error:
        return error


@pytest.mark.parametrize('exc', [
    OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)),
    _wrapped(driver_base.DriverError('write failed'), errno.ENOSPC),
    _wrapped(storage_errors.StorageError('cannot store'), errno.EDQUOT),
], ids=['quota', 'driver-error', 'storage-error'])
async def test_storage_full_however_raised_is_507(aiohttp_client, caplog,
                                                  exc):
    # A quota cannot be exceeded for real here; the error is raised.
    app = web.Application(middlewares=[errors.error_middleware])
    app.router.add_get('/full', _raising(exc))
    client = await aiohttp_client(app)
    response = await client.get('/full')
    body = await assert_error(response, 507, 'UNKNOWN')
    assert body['errors'][0]['message'] == 'storage is full'
    [record] = error_records(caplog)
    assert (record.levelno, record.exc_info) == (logging.WARNING, None)


async def test_other_os_errors_stay_500_with_a_traceback(aiohttp_client,
                                                         caplog):
    app = web.Application(middlewares=[errors.error_middleware])
    app.router.add_get('/eio', _raising(OSError(errno.EIO, 'I/O error')))
    client = await aiohttp_client(app)
    await assert_error(await client.get('/eio'), 500, 'UNKNOWN')
    [record] = error_records(caplog)
    assert record.levelno == logging.ERROR and record.exc_info
