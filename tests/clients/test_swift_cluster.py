"""Two zuul-registry processes on one Swift container behave as one
registry: uploads move between them, tokens of one are good at the other,
blobs pushed through one are pulled through the other, and skopeo pushes
and pulls an image through a round-robin haproxy in front of both.
"""

import asyncio
import hashlib
import os
import random
import re

import aiohttp
import pytest
import requests
import swiftclient

from tests.clients import swift_cluster
from tests.drivers import swift_server
from tests.clients.test_skopeo import _assert_layout_holds

REPOSITORY = 'cluster/blob'


@pytest.fixture
def servers(tmp_path):
    servers = swift_cluster.start_servers(tmp_path, 2)
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def balancer(tmp_path, servers):
    balancer = swift_cluster.Balancer(tmp_path / 'haproxy',
                                      [server.port for server in servers])
    yield balancer.start()
    balancer.stop()


def token(url, scope='repository:%s:pull,push' % REPOSITORY):
    challenge = requests.get(url + '/v2/', timeout=10)
    assert challenge.status_code == 401
    params = dict(re.findall(r'(\w+)="([^"]*)"',
                             challenge.headers['WWW-Authenticate']))
    response = requests.get(
        params['realm'], params={'service': params['service'],
                                 'scope': scope},
        auth=(swift_cluster.USER, swift_cluster.PASSWORD), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()['token']


def bearer(value):
    return {'Authorization': 'Bearer ' + value}


def digest_of(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def test_a_token_from_one_process_is_accepted_by_the_other(servers):
    first, second = servers
    value = token(first.url)
    for server in servers:
        response = requests.get(server.url + '/v2/', headers=bearer(value),
                                timeout=10)
        assert response.status_code == 200
    response = requests.get(second.url + '/v2/', headers=bearer('x' + value),
                            timeout=10)
    assert response.status_code == 401


def test_a_chunked_upload_alternating_between_processes_completes(servers):
    first, second = servers
    headers = bearer(token(first.url))
    data = bytes(range(256)) * 4096 * 3 + b'tail'
    pieces = [data[:300000], data[300000:700000], data[700000:]]
    response = requests.post(first.url + '/v2/%s/blobs/uploads/'
                             % REPOSITORY, headers=headers, timeout=10)
    assert response.status_code == 202, response.text
    location = response.headers['Location']
    offset = 0
    for n, piece in enumerate(pieces):
        server = servers[(n + 1) % 2]   # second, first, second
        response = requests.patch(
            server.url + location, data=piece, timeout=30, headers=dict(
                headers, **{'Content-Range': '%d-%d' % (
                    offset, offset + len(piece) - 1),
                    'Content-Type': 'application/octet-stream'}))
        assert response.status_code == 202, response.text
        offset += len(piece)
        assert response.headers['Range'] == '0-%d' % (offset - 1)
        location = response.headers['Location']
    status = requests.get(first.url + location, headers=headers, timeout=10)
    assert status.status_code == 204
    assert status.headers['Range'] == '0-%d' % (len(data) - 1)
    # The first process saw one chunk of three: it hashes what is stored.
    response = requests.put(first.url + location, params={
        'digest': digest_of(data)}, headers=headers, timeout=30)
    assert response.status_code == 201, response.text
    pulled = requests.get(second.url + '/v2/%s/blobs/%s' % (
        REPOSITORY, digest_of(data)), headers=headers, timeout=30)
    assert pulled.content == data


def test_a_wrong_digest_is_refused_by_a_process_without_the_hash(servers):
    first, second = servers
    headers = bearer(token(first.url))
    response = requests.post(first.url + '/v2/%s/blobs/uploads/'
                             % REPOSITORY, headers=headers, timeout=10)
    location = response.headers['Location']
    response = requests.patch(second.url + location, data=b'x' * 1000,
                              headers=headers, timeout=10)
    assert response.status_code == 202, response.text
    wrong = requests.put(first.url + response.headers['Location'], params={
        'digest': digest_of(b'y' * 1000)}, headers=headers, timeout=30)
    assert wrong.status_code == 400
    assert wrong.json()['errors'][0]['code'] == 'DIGEST_INVALID'
    blob = requests.head(second.url + '/v2/%s/blobs/%s' % (
        REPOSITORY, digest_of(b'y' * 1000)), headers=headers, timeout=10)
    assert blob.status_code == 404


def upload(server, headers, data):
    """A monolithic upload through `server`, then pull it through all."""
    digest = digest_of(data)
    response = requests.post(
        server.url + '/v2/%s/blobs/uploads/' % REPOSITORY, params={
            'digest': digest}, data=data, timeout=30, headers=dict(
                headers, **{'Content-Type': 'application/octet-stream'}))
    assert response.status_code == 201, response.text
    return digest


def test_a_blob_pushed_through_one_is_pulled_through_the_other(servers):
    first, second = servers
    headers = bearer(token(second.url))
    data = b'pushed through the first, pulled through the second' * 999
    digest = upload(first, headers, data)
    response = requests.get(second.url + '/v2/%s/blobs/%s' % (
        REPOSITORY, digest), headers=headers, timeout=30)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers['Docker-Content-Digest'] == digest
    ranged = requests.get(second.url + '/v2/%s/blobs/%s' % (
        REPOSITORY, digest), timeout=30, headers=dict(
            headers, Range='bytes=10-19'))
    assert ranged.status_code == 206
    assert ranged.content == data[10:20]


def test_skopeo_pushes_and_pulls_through_the_balancer(
        skopeo, balancer, servers, oci_image, tmp_path):
    creds = '%s:%s' % (swift_cluster.USER, swift_cluster.PASSWORD)
    ref = 'docker://%s/cluster/image:v1' % balancer.host_port
    skopeo.skopeo('copy', '--dest-tls-verify=false', '--dest-creds', creds,
                  oci_image.ref, ref)
    out = tmp_path / 'pulled'
    skopeo.skopeo('copy', '--src-tls-verify=false', '--src-creds', creds,
                  ref, 'oci:%s:pulled' % out)
    _assert_layout_holds(out, 'pulled', oci_image.image)
    # Both processes took part.
    for server in servers:
        assert '/v2/cluster/image/' in server.log_text()


def test_concurrent_chunked_pushes_through_the_balancer_all_verify(
        servers, balancer):
    headers = bearer(token(balancer.url))
    blobs = [os.urandom(random.Random(n).randrange(1, 3 * 2 ** 20))
             for n in range(12)]
    blobs.append(blobs[0])   # the same blob twice at once

    async def push(session, data):
        url = balancer.url + '/v2/%s/blobs/uploads/' % REPOSITORY
        async with session.post(url) as response:
            assert response.status == 202, await response.text()
            location = response.headers['Location']
        third = len(data) // 3 + 1
        for start in range(0, len(data), third):
            piece = data[start:start + third]
            async with session.patch(balancer.url + location, data=piece,
                                     headers={'Content-Range': '%d-%d' % (
                                         start, start + len(piece) - 1)}) \
                    as response:
                assert response.status == 202, await response.text()
                location = response.headers['Location']
        async with session.put(balancer.url + location, params={
                'digest': digest_of(data)}) as response:
            assert response.status == 201, await response.text()

    async def push_all():
        async with aiohttp.ClientSession(headers=headers) as session:
            await asyncio.gather(*[push(session, data) for data in blobs])

    asyncio.run(push_all())
    for data in blobs:
        response = requests.get(balancer.url + '/v2/%s/blobs/%s' % (
            REPOSITORY, digest_of(data)), headers=headers, timeout=30)
        assert response.content == data
    # Every upload area is gone.
    conn = swiftclient.Connection(retries=0, **swift_server.connection_options(
        swift_server.shared()))
    container = servers[0].config()['registry']['storage']['container']
    _, listing = conn.get_container(container, prefix='_default/_uploads/')
    assert listing == []
