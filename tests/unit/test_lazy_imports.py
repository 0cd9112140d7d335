"""A registry whose clients never use tokens does not load PyJWT (and
with it `cryptography`, about 9 MiB of memory per process)."""

import subprocess
import sys

CHECK = '''
import asyncio, sys
from aiohttp.test_utils import TestClient, TestServer
from zuul_registry import config
from zuul_registry.app import make_app

async def main():
    client = TestClient(TestServer(make_app(config.default_config())))
    await client.start_server()
    response = await client.get('/v2/')
    assert response.status == 200, response.status
    await client.close()

asyncio.run(main())
print(sorted(name for name in ('jwt', 'cryptography') if name in sys.modules))
'''


def test_serving_without_tokens_loads_no_jwt(tmp_path):
    result = subprocess.run([sys.executable, '-c', CHECK], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '[]'
