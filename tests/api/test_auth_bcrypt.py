"""Users with a bcrypt pass-hash, over HTTP: failures are 401, and the
slow checks never hold up other requests."""

import asyncio
import concurrent.futures
import time
import urllib.error
import urllib.request

import bcrypt
import pytest

from zuul_registry import config as config_module
from zuul_registry.app import make_app
from tests.api.helpers import assert_error, basic_auth, make_config

SECRET = 'the-configured-secret-value-0123456789'


def hash_user(password, cost):
    return config_module.User(
        name='hasher', password=None, access='write',
        password_hash=bcrypt.hashpw(password.encode(),
                                    bcrypt.gensalt(rounds=cost)).decode())


@pytest.fixture
async def client(aiohttp_client, tmp_path):
    return await aiohttp_client(make_app(make_config(
        tmp_path, users=(hash_user('right', 4),), secret=SECRET,
        anonymous_read=False)))


@pytest.mark.parametrize('name', ['hasher', 'nobody'])
async def test_a_password_over_72_bytes_is_refused_with_401(client, name):
    header = {'Authorization': basic_auth(name, 'x' * 100)}
    response = await client.get('/v2/', headers=header)
    await assert_error(response, 401, 'UNAUTHORIZED')
    response = await client.get('/v2/org/img/tags/list', headers=header)
    await assert_error(response, 401, 'UNAUTHORIZED')
    response = await client.get('/auth/token', headers=header, params={
        'service': 'zuul-registry', 'scope': 'repository:org/img:pull'})
    await assert_error(response, 401, 'UNAUTHORIZED')
    response = await client.post('/auth/token', data={
        'grant_type': 'password', 'username': name, 'password': 'x' * 100,
        'scope': 'repository:org/img:pull'})
    await assert_error(response, 401, 'UNAUTHORIZED')


async def test_bcrypt_checks_leave_other_requests_unblocked(
        aiohttp_server, tmp_path):
    # Cost 12: a quarter of a second per check on this kind of machine.
    server = await aiohttp_server(make_app(make_config(
        tmp_path, users=(hash_user('right', 12),), secret=SECRET)))
    url = str(server.make_url('/v2/'))

    def get(headers):
        """Status and completion time of GET /v2/, from another thread."""
        try:
            with urllib.request.urlopen(urllib.request.Request(
                    url, headers=headers), timeout=120) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        return status, time.monotonic()

    loop = asyncio.get_running_loop()
    wrong = {'Authorization': basic_auth('hasher', 'wrong')}
    with concurrent.futures.ThreadPoolExecutor(max_workers=7) as threads:
        checks = [loop.run_in_executor(threads, get, wrong)
                  for _ in range(6)]
        await asyncio.sleep(0.05)    # the server is busy checking them
        cheap = await loop.run_in_executor(threads, get, {})
        checked = await asyncio.gather(*checks)
    assert cheap[0] == 401
    assert [status for status, _ in checked] == [401] * 6
    # Answered while the wrong passwords were still being checked.
    assert cheap[1] < min(done for _, done in checked)
