"""HTTP tests run the real application through aiohttp's test client."""

import pytest

from zuul_registry.app import make_app
from tests.api.helpers import make_config


@pytest.fixture
def make_client(aiohttp_client, tmp_path):
    async def make(**kwargs):
        return await aiohttp_client(make_app(make_config(tmp_path / 'data',
                                                         **kwargs)))
    return make


@pytest.fixture
async def client(make_client):
    return await make_client()
