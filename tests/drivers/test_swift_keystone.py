"""Keystone v3 and clouds.yaml credentials, end to end.

A small stand-in for Keystone answers version discovery and password
authentication, and hands out a token the test Swift accepts (one from its
tempauth) with a catalog naming that Swift's storage URL.  The driver must
find the object-store endpoint of its region and use the token.
"""

import http.server
import json
import threading

import pytest
import swiftclient

from tests.drivers import swift_server
from zuul_registry.config import StorageConfig
from zuul_registry.drivers.swift import SwiftDriver


class _Keystone(http.server.BaseHTTPRequestHandler):

    def log_message(self, *args):
        pass

    def _json(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        base = 'http://%s:%d' % self.server.server_address
        self._json(200, {'version': {
            'id': 'v3.14', 'status': 'stable',
            'links': [{'rel': 'self', 'href': base + '/v3/'}],
            'media-types': [{'base': 'application/json',
                             'type': 'application/vnd.openstack.identity-v3'
                                     '+json'}]}})

    def do_POST(self):
        request = json.loads(self.rfile.read(
            int(self.headers['Content-Length'])))
        self.server.requests.append(request)
        user = request['auth']['identity']['password']['user']
        if user['password'] != 'secret':
            return self._json(401, {'error': {'code': 401}})
        swift = self.server.swift
        catalog = [{'type': 'object-store', 'name': 'swift', 'id': 's',
                    'endpoints': [
                        {'interface': 'public', 'region': region,
                         'region_id': region, 'id': region, 'url': url}
                        for region, url in (
                            ('RegionOne', 'http://127.0.0.1:9/nowhere'),
                            ('RegionTwo', swift.storage_url))]}]
        domain = {'id': 'default', 'name': 'Default'}
        body = {'token': {
            'methods': ['password'], 'expires_at': '2999-01-01T00:00:00Z',
            'issued_at': '2000-01-01T00:00:00Z', 'catalog': catalog,
            'user': {'id': 'u', 'name': user['name'], 'domain': domain},
            'project': {'id': 'p', 'name': 'ci', 'domain': domain}}}
        self._json(201, body, [('X-Subject-Token', self.server.token)])


@pytest.fixture(scope='module')
def keystone():
    swift = swift_server.shared()
    _, token = swiftclient.get_auth(swift.auth_url, swift_server.USER,
                                    swift_server.KEY)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Keystone)
    server.swift, server.token, server.requests = swift, token, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url_of(keystone):
    return 'http://127.0.0.1:%d/v3' % keystone.server_address[1]


async def round_trip(driver):
    try:
        await driver.put('ns/object', b'through keystone')
        assert await driver.get('ns/object') == b'through keystone'
    finally:
        await driver.close()


async def test_keystone_v3_password_in_a_region(keystone):
    del keystone.requests[:]
    await round_trip(SwiftDriver.from_config(StorageConfig(
        driver='swift', container=swift_server.new_container(),
        auth_url=url_of(keystone), auth_version=3, username='zuul',
        password='secret', project_name='ci', user_domain_name='users',
        region_name='RegionTwo')))
    [request] = keystone.requests   # one token for every connection
    identity = request['auth']['identity']['password']['user']
    assert (identity['name'], identity['domain']) == ('zuul',
                                                      {'name': 'users'})
    assert request['auth']['scope']['project'] == {
        'name': 'ci', 'domain': {'name': 'Default'}}


async def test_a_cloud_from_clouds_yaml(keystone, tmp_path, monkeypatch):
    clouds = tmp_path / 'clouds.yaml'
    clouds.write_text(json.dumps({'clouds': {'ci': {
        'region_name': 'RegionTwo',
        'auth': {'auth_url': url_of(keystone), 'username': 'zuul',
                 'password': 'secret', 'project_name': 'ci',
                 'user_domain_name': 'Default',
                 'project_domain_name': 'Default'}}}}))
    monkeypatch.setenv('OS_CLIENT_CONFIG_FILE', str(clouds))
    await round_trip(SwiftDriver.from_config(StorageConfig(
        driver='swift', container=swift_server.new_container(),
        cloud='ci')))


async def test_wrong_credentials_are_an_error(keystone):
    driver = SwiftDriver.from_config(StorageConfig(
        driver='swift', container=swift_server.new_container(),
        auth_url=url_of(keystone), auth_version=3, username='zuul',
        password='wrong', project_name='ci'))
    try:
        with pytest.raises(Exception, match='401|Unauthorized'):
            await driver.stat('ns/object')
    finally:
        await driver.close()
