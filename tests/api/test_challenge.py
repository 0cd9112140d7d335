"""The WWW-Authenticate challenge stays well-formed whatever Host says.

Without `public-url` the token realm is built from the Host the client
used, so that it is reachable the way the client came; a Host that is
not a host[:port] must not leak into (and break) the header.
"""

import re

import pytest

from zuul_registry import config as config_module
from tests.api.helpers import assert_error

SECRET = 'the-configured-secret-value-0123456789'
WRITER = config_module.User(name='writer', password='w-pass-123',
                            access='write')
# auth-param = token "=" quoted-string (RFC 9110, section 11.2)
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_CHALLENGE = re.compile(r'Bearer realm=(%s),service=(%s)(?:,scope=(%s))?'
                        % (_QUOTED, _QUOTED, _QUOTED))


@pytest.fixture
async def secured(make_client):
    return await make_client(users=(WRITER,), secret=SECRET)


async def realm(client, path, host, *, method='GET'):
    response = await client.request(method, path, headers={'Host': host})
    await assert_error(response, 401, 'UNAUTHORIZED')
    match = _CHALLENGE.fullmatch(response.headers['WWW-Authenticate'])
    assert match, response.headers['WWW-Authenticate']
    return match.group(1)[1:-1]


@pytest.mark.parametrize('host', [
    'registry.example.com:5000', 'registry.example.com', '127.0.0.1:5000',
    '[::1]:5000', 'Registry.Example.COM',
])
async def test_realm_uses_a_valid_host_header(secured, host):
    assert await realm(secured, '/v2/', host) == \
        'http://%s/auth/token' % host


@pytest.mark.parametrize('host', [
    'evil"host', 'a"b:5000', 'host\\', 'a b', 'a,b', 'a/b', 'host:99999',
    'host:0', 'host:', '-a.example', 'a..b', 'user@host', '[::1',
])
async def test_realm_falls_back_to_our_address_for_an_invalid_host(
        secured, host):
    port = secured.server.port
    assert await realm(secured, '/v2/', host) == \
        'http://127.0.0.1:%d/auth/token' % port
    assert await realm(secured, '/v2/org/img/blobs/uploads/', host,
                       method='POST') == \
        'http://127.0.0.1:%d/auth/token' % port


async def test_public_url_is_used_whatever_the_host(make_client):
    client = await make_client(users=(WRITER,), secret=SECRET,
                               public_url='https://registry.example.com')
    assert await realm(client, '/v2/', 'evil"host') == \
        'https://registry.example.com/auth/token'
