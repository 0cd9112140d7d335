"""What must also hold in the server `zuul-registry -d serve` runs.

The test client builds its own server around the app; these tests start
the real command (tests/server_process.py) and talk plain HTTP to it.
"""

import gzip
import hashlib
import http.client

import pytest

from tests.server_process import ServerProcess

SECRETS = ('S3cr3t-token-value', 'S3cr3t-password', 'S3cr3t-unknown',
           'S3cr3t-bare')


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    with ServerProcess(tmp_path_factory.mktemp('served')) as server:
        yield server


def request(server, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def push(server, data, headers):
    digest = 'sha256:' + hashlib.sha256(data).hexdigest()
    status, _, body = request(
        server, 'POST', '/v2/org/img/blobs/uploads/?digest=' + digest,
        body=data, headers={'Content-Length': str(len(data)), **headers})
    return digest, status, body


def test_served_gzip_encoded_blob_is_stored_byte_for_byte(server):
    sent = gzip.compress(b'0' * (1024 * 1024))   # 1 KiB that inflates
    digest, status, body = push(server, sent,
                                {'Content-Encoding': 'gzip'})
    assert status == 201, body
    status, headers, stored = request(server, 'GET',
                                      '/v2/org/img/blobs/' + digest)
    assert status == 200
    assert headers['Docker-Content-Digest'] == digest
    assert stored == sent


def test_served_invalid_gzip_is_not_a_500(server):
    sent = b'\x1f\x8b\x08 broken gzip'
    digest, status, body = push(server, sent, {'Content-Encoding': 'gzip'})
    assert status == 201, body
    assert request(server, 'GET', '/v2/org/img/blobs/' + digest)[2] == sent


def test_served_access_log_never_shows_query_values(server):
    mark = server.log_offset()
    status, _, _ = request(
        server, 'GET', '/v2/_catalog?n=5&token=%s&password=%s&x-y=%s'
        % SECRETS[:3])
    assert status == 200
    request(server, 'GET', '/v2/?' + SECRETS[3],
            headers={'Referer': 'http://a/?token=' + SECRETS[0]})
    text = server.wait_for_log_lines(
        mark, '"GET /v2/_catalog?n=5&token=REDACTED&password=REDACTED'
        '&x-y=REDACTED HTTP/1.1" 200 ', '"GET /v2/?REDACTED HTTP/1.1" 200 ')
    for secret in SECRETS:
        assert secret not in text
