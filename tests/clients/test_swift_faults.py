"""Pushes to zuul-registry on Swift survive failures, and never show a
half-written blob:

* a server process killed in the middle of a PATCH: the client resumes
  the upload through haproxy, on the other process; skopeo cut off by the
  kill succeeds when run again, and no blob is ever half there;
* Swift's object server stopped in the middle of a push: the client gets
  an error (not a hang, not a success); after the restart its retry
  succeeds.
"""

import hashlib
import os
import subprocess
import threading
import time

import pytest
import requests

from tests import images
from tests.clients import swift_cluster
from tests.clients.test_skopeo import _assert_layout_holds
from tests.clients.test_swift_cluster import bearer, digest_of, token
from tests.drivers import swift_server
from tests.server_process import ServerProcess

REPOSITORY = 'faults/blob'
PIECE = 64 * 1024


def blob_url(url, digest):
    return '%s/v2/%s/blobs/%s' % (url, REPOSITORY, digest)


def start_upload(url, headers):
    response = requests.post(url + '/v2/%s/blobs/uploads/' % REPOSITORY,
                             headers=headers, timeout=10)
    assert response.status_code == 202, response.text
    return response.headers['Location']


def stored_size(url, location, headers):
    response = requests.get(url + location, headers=headers, timeout=30)
    assert response.status_code == 204, response.text
    # "0-0" is what an empty upload answers too; here no chunk is 1 byte.
    end = int(response.headers.get('Range', '0-0').split('-')[1])
    return end + 1 if end else 0


def patch(url, location, headers, data, offset=None):
    """PATCH `data` at `offset`; a generator is streamed without a range."""
    headers = dict(headers, **{'Content-Type': 'application/octet-stream'})
    if offset is not None:
        headers['Content-Range'] = '%d-%d' % (offset, offset + len(data) - 1)
    return requests.patch(url + location, data=data, headers=headers,
                          timeout=60)


def _established(port):
    """Open server-side loopback connections on `port` (/proc/net/tcp),
    as (local, remote) address pairs."""
    found = set()
    with open('/proc/net/tcp') as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[3] == '01' and \
                    int(fields[1].split(':')[1], 16) == port:
                found.add((fields[1], fields[2]))
    return found


def _serving(servers, *, timeout=10):
    """The one server holding a connection that lasts: haproxy closes its
    server connections after each response (and a health check's at once),
    so that is the paused request's."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = [_established(s.port) for s in servers]
        time.sleep(0.2)
        held = [h & _established(s.port) for h, s in zip(held, servers)]
        busy = [s for s, h in zip(servers, held) if h]
        if len(busy) == 1:
            return busy[0]
    raise AssertionError('no single server holds the paused PATCH')


def test_a_push_resumes_on_the_other_process_after_a_kill(tmp_path):
    servers = swift_cluster.start_servers(tmp_path, 2)
    balancer = swift_cluster.Balancer(tmp_path / 'haproxy',
                                      [s.port for s in servers],
                                      balance='first')
    try:
        balancer.start()
        url = balancer.url
        headers = bearer(token(url, 'repository:%s:pull,push' % REPOSITORY))
        data = os.urandom(8 * 1024 * 1024)
        digest = digest_of(data)
        location = start_upload(url, headers)
        sending, killed = threading.Event(), threading.Event()

        def slowly():
            for start in range(0, len(data), PIECE):
                if start == 1024 * 1024:
                    sending.set()
                    killed.wait(30)
                yield data[start:start + PIECE]

        failed = []

        def send():
            try:
                failed.append(patch(url, location, headers, slowly())
                              .status_code >= 500)
            except requests.RequestException:
                failed.append(True)

        thread = threading.Thread(target=send)
        thread.start()
        assert sending.wait(30)
        # `first` sends every request to servers[0] unless a health check
        # under load found it slow: kill whichever holds the PATCH.
        _serving(servers).kill()
        killed.set()
        thread.join(60)
        assert failed == [True]
        # Nothing of the broken PATCH shows, through the other process.
        assert requests.head(blob_url(url, digest), headers=headers,
                             timeout=10).status_code == 404
        offset = stored_size(url, location, headers)
        assert offset == 0
        response = patch(url, location, headers, data[offset:], offset)
        assert response.status_code == 202, response.text
        response = requests.put(url + response.headers['Location'],
                                params={'digest': digest}, headers=headers,
                                timeout=60)
        assert response.status_code == 201, response.text
        pulled = requests.get(blob_url(url, digest), headers=headers,
                              timeout=60)
        assert pulled.content == data
    finally:
        balancer.stop()
        for server in servers:
            server.stop()


@pytest.fixture(scope='module')
def swift(tmp_path_factory):
    with swift_server.private(tmp_path_factory.mktemp('swift')) as swift:
        yield swift


@pytest.fixture
def registry(tmp_path, swift):
    config = swift_cluster.registry_config(swift_server.new_container(),
                                           swift=swift)
    server = ServerProcess(tmp_path / 'registry', registry=config).start()
    yield server
    server.stop()
    if 'object' not in swift.processes:
        swift.start_server('object')


def until_accepted(request, *, seconds=30):
    """Send again until the restarted object server takes requests."""
    deadline = time.monotonic() + seconds
    while True:
        response = request()
        if response.status_code < 500 or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


def test_an_object_server_outage_fails_the_push_then_a_retry_succeeds(
        swift, registry):
    url = registry.url
    headers = bearer(token(url, 'repository:%s:pull,push' % REPOSITORY))
    data = hashlib.sha256(b'seed').digest() * 40000
    digest = digest_of(data)
    half = len(data) // 2
    location = start_upload(url, headers)
    response = patch(url, location, headers, data[:half], 0)
    assert response.status_code == 202, response.text
    location = response.headers['Location']

    swift.stop_server('object')
    started = time.monotonic()
    response = patch(url, location, headers, data[half:], half)
    assert response.status_code >= 500
    assert response.json()['errors'][0]['code'] == 'UNKNOWN'
    assert time.monotonic() - started < 30

    swift.start_server('object')
    assert until_accepted(lambda: requests.head(
        blob_url(url, digest), headers=headers, timeout=30)).status_code \
        == 404
    assert stored_size(url, location, headers) == half
    response = until_accepted(
        lambda: patch(url, location, headers, data[half:], half))
    assert response.status_code == 202, response.text
    location = response.headers['Location']

    # Completing fails too while the object server is away.
    swift.stop_server('object')
    response = requests.put(url + location, params={'digest': digest},
                            headers=headers, timeout=60)
    assert response.status_code >= 500
    swift.start_server('object')
    assert until_accepted(lambda: requests.head(
        blob_url(url, digest), headers=headers, timeout=30)).status_code \
        == 404
    response = until_accepted(lambda: requests.put(
        url + location, params={'digest': digest}, headers=headers,
        timeout=60))
    assert response.status_code == 201, response.text
    assert requests.get(blob_url(url, digest), headers=headers,
                        timeout=60).content == data


def test_a_skopeo_push_cut_by_a_kill_completes_when_run_again(
        skopeo, tmp_path):
    # skopeo (1.9, Debian 12) does not retry a 502 itself: the retry is
    # running it again, as a job would, and it must find the registry whole.
    layout = tmp_path / 'big-image'
    image = images.build_layout(layout, 'v1', files=[
        {'layer%d.bin' % n: os.urandom(24 * 1024 * 1024)} for n in range(3)])
    servers = swift_cluster.start_servers(tmp_path, 2)
    balancer = swift_cluster.Balancer(tmp_path / 'haproxy',
                                      [s.port for s in servers])
    creds = '%s:%s' % (swift_cluster.USER, swift_cluster.PASSWORD)
    ref = 'docker://%s/faults/image:v1' % balancer.host_port
    command = ['skopeo', '--policy', skopeo.policy, 'copy',
               '--dest-tls-verify=false', '--dest-creds', creds,
               'oci:%s:v1' % layout, ref]
    try:
        balancer.start()
        push = subprocess.Popen(command, env=skopeo.env,
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while 'PATCH' not in servers[0].log_text() + servers[1].log_text():
            assert push.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        servers[0].kill()   # in the middle of the push
        push.communicate(timeout=300)
        headers = bearer(token(balancer.url,
                               'repository:faults/image:pull'))
        for blob in image.blobs:   # each whole, or not there at all
            response = requests.get(
                '%s/v2/faults/image/blobs/%s' % (balancer.url, blob.digest),
                headers=headers, timeout=60)
            assert response.status_code in (200, 404)
            if response.status_code == 200:
                assert response.content == blob.data
        skopeo.run(*command, timeout=300)
        out = tmp_path / 'pulled'
        skopeo.skopeo('copy', '--src-tls-verify=false', '--src-creds', creds,
                      ref, 'oci:%s:pulled' % out)
        _assert_layout_holds(out, 'pulled', image)
    finally:
        balancer.stop()
        for server in servers:
            server.stop()


def test_readiness_follows_the_object_server(swift, registry):
    """/readyz turns 503 while Swift's object server is down, and 200 once
    it is back; /healthz stays 200 all along."""
    def ready():
        return requests.get(registry.url + '/readyz', timeout=60)

    def until(status, *, seconds=60):
        deadline = time.monotonic() + seconds
        while True:
            response = ready()
            if response.status_code == status or \
                    time.monotonic() > deadline:
                return response
            time.sleep(0.5)

    assert until(200).status_code == 200
    swift.stop_server('object')
    # The answer is cached for a few seconds: poll until it turns.
    response = until(503)
    assert response.status_code == 503, response.text
    assert response.json()['status'] == 'not ready'
    assert requests.get(registry.url + '/healthz',
                        timeout=10).status_code == 200
    swift.start_server('object')
    assert until(200).status_code == 200
