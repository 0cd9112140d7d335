"""The access log names query parameters but never shows secret values."""

import logging

import pytest

from zuul_registry.api import access_log


@pytest.mark.parametrize('target, logged', [
    ('/v2/', '/v2/'),
    ('/v2/_catalog?n=2&last=a%2Fb', '/v2/_catalog?n=2&last=a%2Fb'),
    ('/auth/token?service=zuul-registry&scope=repository:a:pull',
     '/auth/token?service=zuul-registry&scope=repository:a:pull'),
    ('/v2/?token=SECRET&password=SECRET',
     '/v2/?token=REDACTED&password=REDACTED'),
    ('/v2/?access_token=SECRET&unknown=SECRET&n=1',
     '/v2/?access_token=REDACTED&unknown=REDACTED&n=1'),
    ('/v2/?SECRET', '/v2/?REDACTED'),
    ('/v2/?to%6Ben=SECRET&&', '/v2/?to%6Ben=REDACTED'),
])
def test_query_values_are_redacted_unless_public(target, logged):
    assert access_log.redacted_target(target) == logged


async def test_access_log_line_has_no_secret_query_value(client, caplog):
    caplog.set_level(logging.INFO, logger='aiohttp.access')
    response = await client.get(
        '/v2/_catalog?n=5&token=SECRET-1&password=SECRET-2&what=SECRET-3')
    assert response.status == 200
    await client.get('/v2/?SECRET-4')
    lines = [r.getMessage() for r in caplog.records
             if r.name == 'aiohttp.access']
    assert any('"GET /v2/_catalog?n=5&token=REDACTED&password=REDACTED'
               '&what=REDACTED HTTP/1.1" 200 ' in line for line in lines), \
        lines
    assert 'SECRET' not in caplog.text
