"""`prune-interval`: serve prunes its own storage on a schedule."""

import asyncio
import time

from tests.api.helpers import push_image
from tests.api.test_prune import GAP, status


async def test_serve_prunes_on_its_schedule(make_client, caplog):
    caplog.set_level('INFO', logger='zuul_registry')
    client = await make_client(expiration=1, prune_interval=1)
    await push_image(client, 'org/img', 'old', layer=b'old layer')
    await asyncio.sleep(GAP)
    deadline = time.monotonic() + 30

    def expired():
        return [record for record in caplog.records
                if record.getMessage().startswith(
                    'Scheduled prune: Removed 1 manifests, 1 tags')]
    while not expired():
        assert time.monotonic() < deadline, 'no scheduled prune expired it'
        await asyncio.sleep(0.2)
    assert await status(client, '/v2/org/img/manifests/old') == 404
