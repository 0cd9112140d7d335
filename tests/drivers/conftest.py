"""The drivers the contract suite runs against.

A new driver adds one entry to DRIVERS: a factory taking pytest's
`tmp_path` and returning the driver and a function that lists the
driver's private scratch objects (what a failed or refused write must not
leave behind).
"""

import os

import pytest

from zuul_registry.drivers.filesystem import FilesystemDriver
from zuul_registry.drivers.memory import MemoryDriver
from tests.drivers import s3_fixtures, swift_server


def _filesystem(tmp_path):
    driver = FilesystemDriver(str(tmp_path / 'root'))
    return driver, lambda: sorted(os.listdir(driver.tmp))


def _memory(tmp_path):
    return MemoryDriver(), lambda: []


DRIVERS = {
    'filesystem': _filesystem,
    'memory': _memory,
    'swift': swift_server.contract_driver,
    **{'s3-' + kind: s3_fixtures.contract_driver(kind)
       for kind in s3_fixtures.KINDS},
    # Every streamed write of a byte or more a data object behind a link
    # (by default only those of part_size): the contract through links.
    **{'s3-%s-linked' % kind: s3_fixtures.contract_driver(kind, link_size=1)
       for kind in s3_fixtures.KINDS},
}


@pytest.fixture(params=sorted(DRIVERS))
async def _driver_case(request, tmp_path):
    driver, scratch = DRIVERS[request.param](tmp_path)
    yield driver, scratch
    await driver.close()


@pytest.fixture
def driver(_driver_case):
    return _driver_case[0]


@pytest.fixture
def scratch(_driver_case):
    """A function listing the driver's leftover scratch objects."""
    return _driver_case[1]
