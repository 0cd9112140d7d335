"""Requests aiohttp refuses in its parser, before any route runs, are
answered with the spec's JSON error body, at aiohttp's status (400), by
every server: the test server around the app, the real command in one
process (aiohttp's run_app) and with workers (an AppRunner in each), over
plain HTTP and over TLS.  The raw bytes go over a real socket; the server
keeps serving afterwards.
"""

import asyncio
import json
import socket
import ssl

import pytest

from zuul_registry import oci
from zuul_registry.app import make_app
from tests.api.helpers import make_config
from tests.clients import tls
from tests.server_process import ServerProcess


def _client_hello():
    """The first bytes a real TLS client sends."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ssl.create_default_context().wrap_bio(
        incoming, outgoing, server_hostname='localhost')
    try:
        client.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


BROKEN_REQUEST_LINE = b'GARBAGE\r\n\r\n'
CLIENT_HELLO = _client_hello()
INVALID_HEADER = b'GET /v2/ HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n'
HEADER_TOO_LONG = (b'GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Long: '
                   + b'a' * 10000 + b'\r\n\r\n')

REFUSED = [
    pytest.param(BROKEN_REQUEST_LINE, id='broken-request-line'),
    pytest.param(CLIENT_HELLO, id='tls-on-plain-port'),
    pytest.param(INVALID_HEADER, id='invalid-header'),
    pytest.param(HEADER_TOO_LONG, id='header-too-long'),
]


def parse_answer(raw):
    """Status, headers (names in lower case) and body of one raw HTTP
    answer."""
    head, separator, body = raw.partition(b'\r\n\r\n')
    assert separator, raw
    status_line, *lines = head.decode('latin-1').split('\r\n')
    headers = {}
    for line in lines:
        name, _, value = line.partition(':')
        headers[name.strip().lower()] = value.strip()
    assert len(body) == int(headers['content-length']), raw
    return int(status_line.split(' ', 2)[1]), headers, body


def assert_json_error(raw):
    status, headers, body = parse_answer(raw)
    assert status == 400, raw
    assert headers['content-type'].split(';')[0] == 'application/json', raw
    assert headers[oci.API_VERSION_HEADER.lower()] == oci.API_VERSION
    errors = json.loads(body)['errors']
    assert len(errors) == 1, errors
    assert errors[0]['code'] == 'UNSUPPORTED'
    assert errors[0]['message'] == 'malformed HTTP request'
    assert isinstance(errors[0]['detail'], str) and errors[0]['detail']


# -- the test server around the app -----------------------------------------

@pytest.fixture
async def client(aiohttp_client, tmp_path):
    return await aiohttp_client(make_app(make_config(tmp_path / 'data')))


@pytest.mark.parametrize('refused', REFUSED)
async def test_refused_request_gets_a_json_error(client, refused):
    reader, writer = await asyncio.open_connection(client.server.host,
                                                   client.server.port)
    writer.write(refused)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert_json_error(answer)
    response = await client.get('/v2/')
    assert response.status == 200


# -- the real command: one process, workers, TLS ----------------------------

def exchange(server, data, *, context=None):
    """Send `data` on a new connection to `server`; all it answers until
    it closes the connection."""
    chunks = []
    with socket.create_connection(('127.0.0.1', server.port),
                                  timeout=10) as sock:
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname='127.0.0.1')
        sock.sendall(data)
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ssl.SSLEOFError, ConnectionResetError):
            pass   # a close without TLS close_notify, or after the answer
    return b''.join(chunks)


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    return tls.make_pki(tmp_path_factory.mktemp('pki'))


@pytest.fixture(scope='module', params=[
    'one-process', 'workers', 'tls-one-process', 'tls-workers'])
def served(request, tmp_path_factory, pki):
    registry = {}
    if request.param.endswith('workers'):
        registry['workers'] = 2
    context = None
    if request.param.startswith('tls'):
        registry.update({'tls-cert': pki.server_cert,
                         'tls-key': pki.server_key})
        context = ssl.create_default_context(cafile=pki.ca_cert)
    with ServerProcess(tmp_path_factory.mktemp('served'), registry=registry,
                       tls_ca=pki.ca_cert) as server:
        server.context = context
        yield server


@pytest.mark.parametrize('refused', REFUSED)
def test_served_refused_request_gets_a_json_error(served, refused):
    # With workers, the kernel spreads connections over them: several
    # tries reach each in all likelihood.
    for _ in range(4):
        assert_json_error(exchange(served, refused, context=served.context))
    assert served.get_status('/v2/') == 200


async def test_a_failure_past_the_middlewares_is_a_json_500(aiohttp_client,
                                                            tmp_path):
    # The error middleware lets a ConnectionResetError through (the client
    # went away); aiohttp answers such a failure itself, as it does a
    # refused request.
    async def reset(request):
        raise ConnectionResetError('gone')

    app = make_app(make_config(tmp_path / 'data'))
    app.router.add_get('/reset', reset)
    client = await aiohttp_client(app)
    response = await client.get('/reset')
    assert response.status == 500
    assert response.content_type == 'application/json'
    assert (await response.json())['errors'] == [{
        'code': 'UNKNOWN', 'message': 'unknown error',
        'detail': 'internal error; see server log'}]
    assert (await client.get('/v2/')).status == 200
