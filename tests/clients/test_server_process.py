"""The server-process helper the end-to-end tests stand on."""

import hashlib
import http.client

import pytest

from tests.server_process import ServerError
from tests.server_process import ServerProcess


def _push_blob(server, repository, data):
    """Monolithic upload: POST, then PUT ?digest= with the whole body."""
    digest = 'sha256:' + hashlib.sha256(data).hexdigest()
    conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=10)
    try:
        conn.request('POST', '/v2/%s/blobs/uploads/' % repository)
        response = conn.getresponse()
        response.read()
        assert response.status == 202
        location = response.getheader('Location')
        separator = '&' if '?' in location else '?'
        conn.request('PUT', '%s%sdigest=%s' % (location, separator, digest),
                     body=data,
                     headers={'Content-Type': 'application/octet-stream'})
        response = conn.getresponse()
        response.read()
        assert response.status == 201
    finally:
        conn.close()
    return digest


def test_restart_keeps_port_and_storage(registry):
    port = registry.port
    digest = _push_blob(registry, 'helper/test', b'survives a restart')
    registry.kill()
    assert not registry.running
    registry.restart()
    assert registry.port == port
    assert registry.get_status('/v2/helper/test/blobs/%s' % digest) == 200
    registry.stop()
    registry.start()
    assert registry.get_status('/v2/helper/test/blobs/%s' % digest) == 200


def test_log_records_requests(registry):
    mark = registry.log_offset()
    registry.get_status('/v2/helper/log-check/tags/list')
    registry.wait_for_log(
        lambda log: '/v2/helper/log-check/tags/list' in log, since=mark)


def test_server_that_cannot_start_reports_its_log(tmp_path):
    server = ServerProcess(tmp_path / 'broken',
                           registry={'storage': {'driver': 'no-such-driver'}},
                           start_timeout=15)
    with pytest.raises(ServerError) as error:
        server.start()
    # The error carries the server's own words: the config key at fault.
    assert 'exited' in str(error.value)
    assert 'storage.driver' in str(error.value)
    assert not server.running
