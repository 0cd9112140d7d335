"""HTTP tests run the real application through aiohttp's test client."""

import pytest

from zuul_registry.app import make_app
from tests.api.helpers import make_config
from tests.drivers import s3_fixtures, swift_server


@pytest.fixture(params=['filesystem', 'swift', 's3-ceph', 's3-seaweedfs'])
def make_driver(request):
    """Make the storage driver of one app; the apps of a test share the
    storage (None: the filesystem under the config's root)."""
    if request.param == 'filesystem':
        return lambda: None
    if request.param.startswith('s3-'):
        kind = request.param[3:]
        bucket = s3_fixtures.s3_server().new_bucket(kind)
        return lambda: s3_fixtures.make_driver(kind, bucket)
    container = swift_server.new_container()
    return lambda: swift_server.api_driver(container)


@pytest.fixture
def make_client(aiohttp_client, tmp_path, make_driver):
    async def make(**kwargs):
        return await aiohttp_client(make_app(
            make_config(tmp_path / 'data', **kwargs), driver=make_driver()))
    return make


@pytest.fixture
async def client(make_client):
    return await make_client()
