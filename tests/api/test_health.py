"""/healthz and /readyz: answered without credentials; readiness follows
the storage."""

import os

import pytest

from zuul_registry import config as config_module
from zuul_registry.api import health

WRITER = config_module.User(name='writer', password='w-pass-123',
                            access='write')
READER = config_module.User(name='reader', password='r-pass-456',
                            access='read')


@pytest.fixture
async def secured(make_client):
    return await make_client(users=(WRITER, READER), secret='s' * 40)


async def test_health_needs_no_credentials(secured):
    response = await secured.get('/healthz')
    assert response.status == 200
    assert (await response.json())['status'] == 'ok'
    response = await secured.get('/readyz')
    assert response.status == 200, await response.text()
    assert (await response.json())['status'] == 'ready'
    # Everything else still asks for credentials.
    assert (await secured.get('/v2/')).status == 401


async def test_readiness_is_cached(client, monkeypatch):
    probes = []
    state = client.app[health._STATE]
    original = state._round_trip

    async def counted(driver):
        probes.append(1)
        return await original(driver)

    monkeypatch.setattr(state, '_round_trip', counted)
    for _ in range(5):
        assert (await client.get('/readyz')).status == 200
    assert len(probes) == 1


async def test_not_ready_while_the_storage_root_is_unusable(
        aiohttp_client, tmp_path, monkeypatch):
    from zuul_registry.app import make_app
    from tests.api.helpers import make_config, push_image
    monkeypatch.setattr(health, 'READY_CACHE', 0)
    root = tmp_path / 'data'
    client = await aiohttp_client(make_app(make_config(root)))
    await push_image(client, 'org/img', 'v1')
    assert (await client.get('/readyz')).status == 200
    # The storage root is replaced by a file: nothing can be written.
    os.rename(root, tmp_path / 'moved')
    root.write_text('not a directory')
    response = await client.get('/readyz')
    assert response.status == 503
    body = await response.json()
    assert body['status'] == 'not ready'
    assert 'storage failed' in body['reason']
    assert (await client.get('/healthz')).status == 200
    # Back: ready again, by itself.
    root.unlink()
    os.rename(tmp_path / 'moved', root)
    response = await client.get('/readyz')
    assert response.status == 200
    assert (await client.get('/v2/org/img/manifests/v1')).status == 200
    # The probe leaves nothing behind.
    probes = root / '_health'
    assert not probes.exists() or not os.listdir(probes)
