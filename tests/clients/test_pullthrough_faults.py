"""Pull-through against real upstream processes, and what happens when
they fail.

Every server here is a real child process on loopback:

- docker-registry (CNCF Distribution) over TLS with htpasswd users (a
  Basic challenge) as the upstream of a namespaced zuul-registry mirror;
  skopeo pulls through the mirror, and ctr pulls the upstream's own name
  through a hosts.toml mirror *without* override_path, so the namespace
  reaches the mirror only as containerd's ``?ns=`` parameter;
- a zuul-registry upstream that is killed (SIGKILL) while a 64 MiB blob
  streams through the mirror, brought back on the same port and storage;
- 16 clients asking at once for a 64 MiB blob nobody has fetched yet:
  the upstream's access log must show one blob GET;
- an upstream that is down: what was fetched is still served, what was
  not is a quick 502 UNAVAILABLE naming the upstream;
- an upstream process that sends wrong bytes for a blob: no client may
  get a complete body of them (the last byte waits for the digest).

To make "in the middle of the blob" deterministic on a fast loopback the
upstream process is paced: it is stopped (SIGSTOP) before the request
and let run in slices of a few milliseconds (SIGCONT/SIGSTOP) until the
client has read some MiB; it is killed while stopped, so it cannot have
sent the whole blob.
"""

import base64
import hashlib
import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

import bcrypt
import pytest

from tests import images
from tests.clients import tls
from tests.clients.containerd import SNAPSHOTTER, Containerd
from tests.clients.tools import require_tools
from tests.server_process import DistributionProcess, ServerProcess
from tests.server_process import free_port

pytestmark = pytest.mark.skipif(
    os.environ.get('ZUUL_REGISTRY_TEST_SERVER') == 'distribution',
    reason='pull-through is zuul-registry only')

MiB = 1024 * 1024
BIG = 64 * MiB
USER = ('puller', 'htpasswd-password-7')
DIST_NAMESPACE = 'dist.test'


# -- HTTP helpers -------------------------------------------------------------

def _connection(url, *, cafile=None, timeout=60):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == 'https':
        return http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout,
            context=ssl.create_default_context(cafile=cafile))
    return http.client.HTTPConnection(parts.hostname, parts.port,
                                      timeout=timeout)


def _target(url):
    parts = urllib.parse.urlsplit(url)
    return parts.path + ('?' + parts.query if parts.query else '')


def call(url, method='GET', *, body=None, headers=None, cafile=None,
         timeout=60):
    """(status, headers, body) of one request; ``body`` may be a file."""
    conn = _connection(url, cafile=cafile, timeout=timeout)
    try:
        conn.request(method, _target(url), body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


class ShortBody(Exception):
    """The connection ended before Content-Length bytes arrived."""


def fetch(url, *, progress=None, timeout=60):
    """GET a blob, hashing as it streams: (status, digest or error body).

    ``progress(n)`` is called with the bytes read so far.  A body that
    ends before its Content-Length raises ShortBody; a reset raises
    whatever the socket raised.
    """
    conn = _connection(url, timeout=timeout)
    try:
        conn.request('GET', _target(url))
        response = conn.getresponse()
        if response.status != 200:
            return response.status, response.read()
        length = int(response.headers['Content-Length'])
        hasher = hashlib.sha256()
        received = 0
        while True:
            data = response.read(MiB)
            if not data:
                break
            hasher.update(data)
            received += len(data)
            if progress:
                progress(received)
        if received != length:
            raise ShortBody('%d of %d bytes' % (received, length))
        return 200, 'sha256:' + hasher.hexdigest()
    finally:
        conn.close()


def basic(user):
    return 'Basic ' + base64.b64encode(('%s:%s' % user).encode()).decode()


def push_blob(base, name, path_or_data, digest, *, auth=None, cafile=None):
    """Push one blob (bytes, or a file streamed from disk) in a POST and a
    PUT, the way every registry takes it."""
    headers = {'Authorization': auth} if auth else {}
    status, answer, body = call('%s/v2/%s/blobs/uploads/' % (base, name),
                                'POST', headers=dict(headers, **{
                                    'Content-Length': '0'}), cafile=cafile)
    assert status == 202, (status, body)
    location = urllib.parse.urljoin(base + '/', answer['Location'])
    location += ('&' if '?' in location else '?') + 'digest=' + digest
    if isinstance(path_or_data, bytes):
        status, _, body = call(location, 'PUT', body=path_or_data,
                               headers=dict(headers, **{
                                   'Content-Type':
                                   'application/octet-stream'}),
                               cafile=cafile)
    else:
        with open(path_or_data, 'rb') as f:
            status, _, body = call(location, 'PUT', body=f, headers=dict(
                headers, **{'Content-Type': 'application/octet-stream',
                            'Content-Length':
                            str(os.path.getsize(path_or_data))}),
                cafile=cafile, timeout=120)
    assert status == 201, (status, body)


def push_image(base, name, tag, image, *, auth=None, cafile=None):
    for blob in image.blobs:
        push_blob(base, name, blob.data, blob.digest, auth=auth,
                  cafile=cafile)
    headers = {'Content-Type': image.manifest.media_type}
    if auth:
        headers['Authorization'] = auth
    status, _, body = call('%s/v2/%s/manifests/%s' % (base, name, tag), 'PUT',
                           body=image.manifest.data, headers=headers,
                           cafile=cafile)
    assert status == 201, (status, body)


def big_blob(directory):
    """64 MiB of random bytes in a file: (path, digest)."""
    data = os.urandom(BIG)
    digest = 'sha256:' + hashlib.sha256(data).hexdigest()
    path = os.path.join(directory, 'big.bin')
    with open(path, 'wb') as f:
        f.write(data)
    return path, digest


def blob_file(server, namespace, digest):
    hexdigest = digest.split(':', 1)[1]
    return os.path.join(server.storage_root, namespace, '_blobs', 'sha256',
                        hexdigest[:2], hexdigest)


def committed(server, namespace, digest, timeout=30):
    """Whether the blob's file appears within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(blob_file(server, namespace, digest)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def uploads_left(server, namespace):
    uploads = os.path.join(server.storage_root, namespace, '_uploads')
    return os.listdir(uploads) if os.path.isdir(uploads) else []


def wait_until(predicate, *, timeout=20.0, what='condition'):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for %s' % what)
        time.sleep(0.05)


def assert_unavailable(status, body, upstream_url):
    assert status == 502, (status, body)
    errors = json.loads(body)['errors']
    assert errors[0]['code'] == 'UNAVAILABLE', errors
    # The house style: the code's message, and the specifics in detail.
    assert upstream_url in '%s %s' % (errors[0]['message'],
                                      errors[0].get('detail', '')), errors


class Paced:
    """A server process stopped, and let run a few milliseconds at a time.

    Used as a context manager: stopped on entry, continued on exit.
    """

    def __init__(self, server, *, run_for=0.002, pause=0.02):
        self.pid = server.process.pid
        self.run_for = run_for
        self.pause = pause

    def __enter__(self):
        os.kill(self.pid, signal.SIGSTOP)
        return self

    def __exit__(self, *exc):
        try:
            os.kill(self.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass

    def until(self, predicate, *, timeout=30.0):
        """Run in slices until ``predicate()``; stopped again when true."""
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, 'no progress while paced'
            os.kill(self.pid, signal.SIGCONT)
            time.sleep(self.run_for)
            os.kill(self.pid, signal.SIGSTOP)
            time.sleep(self.pause)


# -- upstream: docker-registry over TLS with htpasswd ------------------------

class HtpasswdTLSDistribution(DistributionProcess):
    def __init__(self, directory, pki, **kw):
        super().__init__(directory, tls_ca=pki.ca_cert, registry={
            # For ServerProcess: speak HTTPS, and a 401 means ready.
            'tls-cert': pki.server_cert, 'users': 'htpasswd'}, **kw)
        self.pki = pki

    def config(self):
        config = super().config()
        config['http']['tls'] = {'certificate': self.pki.server_cert,
                                 'key': self.pki.server_key}
        config['auth'] = {'htpasswd': {
            'realm': 'zuul-registry-tests',
            'path': os.path.join(self.directory, 'htpasswd')}}
        return config

    def start(self):
        hashed = bcrypt.hashpw(USER[1].encode(), bcrypt.gensalt(rounds=4))
        with open(os.path.join(self.directory, 'htpasswd'), 'w') as f:
            f.write('%s:%s\n' % (USER[0], hashed.decode()))
        return super().start()


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    return tls.make_pki(tmp_path_factory.mktemp('pki'))


@pytest.fixture(scope='module')
def distribution(tmp_path_factory, pki):
    require_tools('docker-registry')
    with HtpasswdTLSDistribution(tmp_path_factory.mktemp('distribution'),
                                 pki) as server:
        yield server


@pytest.fixture
def skopeo(containers):
    require_tools('skopeo')
    return containers


@pytest.fixture
def dist_mirror(tmp_path, distribution, pki):
    """A namespaced mirror: DIST_NAMESPACE and the upstream's own
    host:port both pull through from docker-registry; the default
    namespace docker.io has no upstream."""
    settings = {'url': distribution.url, 'username': USER[0],
                'password': USER[1], 'ca': pki.ca_cert}
    server = ServerProcess(tmp_path / 'mirror', namespaced=True,
                           default_namespace='docker.io', registry={
                               'upstreams': [
                                   dict(settings, namespace=DIST_NAMESPACE),
                                   dict(settings,
                                        namespace=distribution.host_port)]})
    with server:
        yield server


def test_skopeo_pulls_through_distribution_with_htpasswd_over_tls(
        tmp_path, distribution, dist_mirror, pki, skopeo):
    auth = basic(USER)
    image = images.make_image([{'hello': b'only upstream\n'},
                               {'data': os.urandom(300 * 1024)}])
    push_image(distribution.url, 'team/app', 'v1', image, auth=auth,
               cafile=pki.ca_cert)
    # The upstream wants the password: without it, nothing.
    assert call('%s/v2/team/app/manifests/v1' % distribution.url,
                cafile=pki.ca_cert)[0] == 401
    status, _, upstream_raw = call(
        '%s/v2/team/app/manifests/v1' % distribution.url,
        headers={'Authorization': auth,
                 'Accept': image.manifest.media_type}, cafile=pki.ca_cert)
    assert (status, upstream_raw) == (200, image.manifest.data)

    reference = 'docker://%s/%s/team/app:v1' % (dist_mirror.host_port,
                                                DIST_NAMESPACE)
    pulled = tmp_path / 'pulled'
    skopeo.skopeo('copy', '--src-tls-verify=false', reference,
                  'dir:%s' % pulled)
    assert (pulled / 'manifest.json').read_bytes() == upstream_raw
    layer = image.layers[1].blob
    hexdigest = layer.digest.split(':', 1)[1]
    assert hashlib.sha256((pulled / hexdigest).read_bytes()).hexdigest() \
        == hexdigest
    # The same layer straight from the mirror, now from its storage.
    assert fetch('%s/v2/%s/team/app/blobs/%s' % (
        dist_mirror.url, DIST_NAMESPACE, layer.digest)) == (200, layer.digest)
    assert committed(dist_mirror, DIST_NAMESPACE, layer.digest)
    log = dist_mirror.log_text()
    assert 'Blob %s of %s/team/app filled from %s' % (
        layer.digest, DIST_NAMESPACE, distribution.url) in log
    assert USER[1] not in log

    # A push to the mirror under the same name shadows the upstream's.
    local = images.make_image([{'hello': b'pushed to the mirror\n'}])
    push_image(dist_mirror.url, '%s/team/app' % DIST_NAMESPACE, 'v1', local)
    assert skopeo.inspect_raw(reference) == local.manifest.data
    pulled_again = tmp_path / 'pulled-again'
    skopeo.skopeo('copy', '--src-tls-verify=false', reference,
                  'dir:%s' % pulled_again)
    assert (pulled_again / 'manifest.json').read_bytes() == \
        local.manifest.data
    # ... and the upstream's is untouched.
    assert call('%s/v2/team/app/manifests/v1' % distribution.url,
                headers={'Authorization': auth,
                         'Accept': image.manifest.media_type},
                cafile=pki.ca_cert)[2] == image.manifest.data


# -- ctr through a hosts.toml mirror, with ?ns= ------------------------------

@pytest.fixture
def containerd(tmp_path):
    require_tools('containerd', 'ctr')
    if os.geteuid() != 0:
        pytest.skip('containerd needs root')
    with Containerd(tmp_path / 'containerd') as daemon:
        yield daemon


def test_ctr_pulls_the_upstream_name_through_the_mirror_with_ns(
        tmp_path, distribution, dist_mirror, pki, containerd):
    """containerd sends ``ns=<host of the reference>`` to every host that
    is not the reference's own (remotes/docker: RegistryHost.isProxy),
    with or without override_path.  Without override_path the name in
    the path has no namespace: only ``ns`` can route it, since the
    mirror's default namespace (docker.io) has no upstream."""
    image = images.make_image([{'hello': b'hello through ns\n'}])
    push_image(distribution.url, 'team/tool', 'v3', image,
               auth=basic(USER), cafile=pki.ca_cert)
    upstream = distribution.host_port
    directory = tmp_path / 'certs.d' / upstream
    directory.mkdir(parents=True)
    # The server is the real upstream, but ctr has neither its CA nor its
    # password: a pull can only succeed through the mirror.
    (directory / 'hosts.toml').write_text(
        'server = %s\n\n[host.%s]\n  capabilities = ["pull", "resolve"]\n'
        % (json.dumps('https://' + upstream),
           json.dumps(dist_mirror.url)))
    offset = dist_mirror.log_offset()

    containerd.ctr('images', 'pull', '--hosts-dir', tmp_path / 'certs.d',
                   '--snapshotter', SNAPSHOTTER, '--platform', 'linux/amd64',
                   '%s/team/tool:v3' % upstream)

    assert containerd.image_digests() == {
        '%s/team/tool:v3' % upstream: image.digest}
    ns = r'\?ns=127\.0\.0\.1(?::|%%3A)%d' % distribution.port
    log = dist_mirror.wait_for_log(lambda text: all(
        re.search(r'"GET /v2/team/tool/blobs/%s%s HTTP/1\.1" 200 '
                  % (re.escape(blob.digest), ns), text)
        for blob in image.blobs), since=offset)
    assert re.search(r'"(HEAD|GET) /v2/team/tool/manifests/v3%s HTTP/1\.1" '
                     r'200 ' % ns, log), log
    # No request without ns reached the mirror's docker.io namespace.
    assert not re.search(r'/v2/team/tool/\S* HTTP/1\.1" 404 ', log), log
    assert 'Manifest %s of %s/team/tool fetched from %s' % (
        image.digest, upstream, distribution.url) in log


# -- a zuul-registry upstream, killed and slow --------------------------------

@pytest.fixture
def upstream(tmp_path):
    with ServerProcess(tmp_path / 'upstream', port=free_port()) as server:
        yield server


def make_mirror(tmp_path, upstream, **upstreams):
    """A namespaced mirror whose docker.io pulls through from
    ``upstream``; ``upstreams`` adds namespace=tag-policy entries."""
    entries = [{'namespace': 'docker.io', 'url': upstream.url}]
    entries += [{'namespace': namespace, 'url': upstream.url, 'tags': tags}
                for namespace, tags in upstreams.items()]
    return ServerProcess(tmp_path / 'mirror', namespaced=True,
                         default_namespace='docker.io',
                         registry={'upstreams': entries})


def test_upstream_killed_mid_blob_commits_nothing_and_retry_succeeds(
        tmp_path, upstream):
    path, digest = big_blob(str(tmp_path))
    push_blob(upstream.url, 'library/big', path, digest)
    url = '/v2/library/big/blobs/%s' % digest
    with make_mirror(tmp_path, upstream) as mirror:
        read = [0]
        outcome = {}

        def client():
            try:
                outcome['result'] = fetch(
                    mirror.url + url,
                    progress=lambda n: read.__setitem__(0, n))
            except Exception as e:
                outcome['error'] = e

        thread = threading.Thread(target=client)
        with Paced(upstream) as paced:
            thread.start()
            paced.until(lambda: read[0] >= 4 * MiB)
            offset = mirror.log_offset()
            upstream.kill()           # stopped: it sent what it sent
        thread.join(60)
        assert not thread.is_alive()
        # A failure, never a complete body (with whatever hash).
        assert 'result' not in outcome, outcome
        assert isinstance(outcome['error'], (ShortBody, OSError,
                                             http.client.HTTPException))
        assert 4 * MiB <= read[0] < BIG
        mirror.wait_for_log_lines(offset, 'fill from %s failed'
                                  % upstream.url, timeout=20)
        # Nothing committed, the fill's upload gone.
        wait_until(lambda: not uploads_left(mirror, 'docker.io'),
                   what='the failed fill to remove its upload')
        assert not os.path.exists(blob_file(mirror, 'docker.io', digest))

        # Down, nothing cached: a clean 502, for GET and HEAD alike.
        status, body = fetch(mirror.url + url, timeout=30)
        assert_unavailable(status, body, upstream.url)
        status, _, body = call(mirror.url + url, 'HEAD', timeout=30)
        assert (status, body) == (502, b'')
        assert not os.path.exists(blob_file(mirror, 'docker.io', digest))

        # Back on the same port and storage: the retry succeeds.
        upstream.start()
        assert fetch(mirror.url + url) == (200, digest)
        # The client's last byte follows the digest check; the commit
        # (copy, fsync) follows it.
        assert committed(mirror, 'docker.io', digest)
        # Completing an upload renames its data into place, then removes
        # the upload's directory: the second step may still be running.
        wait_until(lambda: not uploads_left(mirror, 'docker.io'),
                   what='the completed fill to remove its upload')
        with open(blob_file(mirror, 'docker.io', digest), 'rb') as f:
            assert 'sha256:' + hashlib.file_digest(
                f, 'sha256').hexdigest() == digest
        log = mirror.log_text()
        assert 'Unexpected failure' not in log
        assert not re.search(r'HTTP/1\.1" 500 ', log)


def test_sixteen_first_pulls_of_one_blob_make_one_upstream_get(
        tmp_path, upstream):
    path, digest = big_blob(str(tmp_path))
    push_blob(upstream.url, 'library/big', path, digest)
    url = '/v2/library/big/blobs/%s' % digest
    upstream_offset = upstream.log_offset()
    with make_mirror(tmp_path, upstream) as mirror:
        results = [None] * 16
        sent = threading.Semaphore(0)

        def client(index):
            try:
                conn = _connection(mirror.url, timeout=120)
                conn.request('GET', url)
                sent.release()
                response = conn.getresponse()
                hasher = hashlib.sha256()
                received = 0
                while True:
                    data = response.read(MiB)
                    if not data:
                        break
                    hasher.update(data)
                    received += len(data)
                assert response.status == 200, response.status
                assert received == int(response.headers['Content-Length'])
                results[index] = 'sha256:' + hasher.hexdigest()
                conn.close()
            except Exception as e:
                results[index] = e
                sent.release()

        threads = [threading.Thread(target=client, args=(index,))
                   for index in range(16)]
        # The upstream holds its answer until all 16 requests are in the
        # mirror: every one of them is a first pull.
        with Paced(upstream):
            for thread in threads:
                thread.start()
            for _ in threads:
                assert sent.acquire(timeout=30)
            time.sleep(0.5)
        for thread in threads:
            thread.join(120)
        assert results == [digest] * 16
        upstream.wait_for_log(lambda text: 'GET %s ' % url in text,
                              since=upstream_offset)
        time.sleep(0.5)   # a second GET would have been logged by now
        log = upstream.log_text(since=upstream_offset)
        assert log.count('"GET %s HTTP' % url) == 1, log
        mirror_log = mirror.wait_for_log(
            lambda text: text.count('"GET %s HTTP/1.1" 200 ' % url) == 16)
        assert mirror_log.count('filled from %s' % upstream.url) == 1


def test_upstream_down_serves_what_is_cached_and_names_itself_otherwise(
        tmp_path, upstream):
    image = images.make_image([{'cached': b'fetched before the outage\n'}])
    push_image(upstream.url, 'team/cached', 'v1', image)
    never = b'never fetched'
    never_digest = images.sha256_digest(never)
    push_blob(upstream.url, 'team/cached', never, never_digest)
    accept = {'Accept': image.manifest.media_type}
    # docker.io pins tags; checked.test checks them again after 1 s.
    with make_mirror(tmp_path, upstream, **{'checked.test': 1}) as mirror:
        names = ['team/cached', 'checked.test/team/cached']
        for name in names:
            status, _, body = call('%s/v2/%s/manifests/v1' % (mirror.url,
                                                               name),
                                   headers=accept)
            assert (status, body) == (200, image.manifest.data)
            for blob in image.blobs:
                assert fetch('%s/v2/%s/blobs/%s' % (
                    mirror.url, name, blob.digest)) == (200, blob.digest)
        upstream.kill()
        time.sleep(1.1)     # checked.test's tag is due for a check
        offset = mirror.log_offset()

        for name in names:
            base = '%s/v2/%s' % (mirror.url, name)
            # Cached: served as before.
            for reference in ('v1', image.digest):
                status, headers, body = call(
                    '%s/manifests/%s' % (base, reference), headers=accept,
                    timeout=30)
                assert (status, body) == (200, image.manifest.data)
                assert headers['Docker-Content-Digest'] == image.digest
            for blob in image.blobs:
                assert fetch('%s/blobs/%s' % (base, blob.digest),
                             timeout=30) == (200, blob.digest)
            # Not cached: a clear 502 naming the upstream, not a hang.
            for what in ('manifests/v2', 'blobs/%s' % never_digest):
                status, _, body = call('%s/%s' % (base, what), headers=accept,
                                       timeout=30)
                assert_unavailable(status, body, upstream.url)
        log = mirror.log_text(since=offset)
        assert 'Tag v1 of checked.test/team/cached not checked, serving %s' \
            % image.digest in log
        assert 'Unexpected failure' not in log
        assert not re.search(r'HTTP/1\.1" 500 ', log)


# An upstream that answers every blob GET with SIZE zero bytes (the
# announced Content-Length, so only the digest can tell): a process of its
# own, since no real registry sends wrong bytes.
_WRONG_BYTES_UPSTREAM = r'''
import sys
from aiohttp import web
port, size = int(sys.argv[1]), int(sys.argv[2])
async def base(request):
    return web.json_response({})
async def blob(request):
    response = web.StreamResponse(headers={'Content-Length': str(size)})
    await response.prepare(request)
    for start in range(0, size, 1 << 20):
        await response.write(bytes(min(1 << 20, size - start)))
    await response.write_eof()
    return response
app = web.Application()
app.router.add_get('/v2/', base)
app.router.add_route('*', '/v2/{name:.+}/blobs/{digest}', blob)
web.run_app(app, host='127.0.0.1', port=port, print=None)
'''


def test_wrong_bytes_never_reach_a_client_as_a_complete_body(tmp_path):
    """The blob's last byte is held back until its digest is verified:
    every client of a fill whose bytes do not match is cut off."""
    script = tmp_path / 'wrong_upstream.py'
    script.write_text(_WRONG_BYTES_UPSTREAM)
    port = free_port()
    fake = subprocess.Popen([sys.executable, str(script), str(port),
                             str(16 * MiB)], stdin=subprocess.DEVNULL)
    try:
        url = 'http://127.0.0.1:%d' % port
        wait_until(lambda: _answers(url + '/v2/'), what='the fake upstream')
        mirror = ServerProcess(tmp_path / 'mirror', namespaced=True,
                               default_namespace='docker.io', registry={
                                   'upstreams': [{'namespace': 'docker.io',
                                                  'url': url}]})
        with mirror:
            for attempt in range(3):
                digest = images.sha256_digest(b'wanted %d' % attempt)
                with pytest.raises((ShortBody, OSError,
                                    http.client.HTTPException)):
                    fetch('%s/v2/library/x/blobs/%s' % (mirror.url, digest))
                wait_until(lambda: not uploads_left(mirror, 'docker.io'),
                           what='the failed fill to remove its upload')
                assert not os.path.exists(blob_file(mirror, 'docker.io',
                                                    digest))
            assert mirror.log_text().count('fill from %s failed' % url) == 3
    finally:
        fake.kill()
        fake.wait(10)


def _answers(url):
    try:
        return call(url, timeout=2)[0] == 200
    except OSError:
        return False
