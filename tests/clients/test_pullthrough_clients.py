"""Pull-through with real clients, real servers and several processes.

The upstream is a zuul-registry over TLS whose read user is required for
pulls (the token flow, with its CA given as ``ca``); the mirror is a
namespaced zuul-registry on plain HTTP whose docker.io namespace pulls
through from it.  skopeo, podman and docker pull from the mirror what
only the upstream has.  Then two mirror processes on one storage root
fill the same blobs at once, while a client pushes a tag of the same
name and prune runs: every body must be the blob, the pushed tag must
win, and no upload may be left behind.
"""

import concurrent.futures
import hashlib
import json
import os
import re
import subprocess
import sys
import urllib.request

import pytest

from tests import images
from tests.clients import tls
from tests.clients.tools import Layout, require_tools
from tests.docker_engine import DockerEngine, docker_available
from tests.server_process import ServerProcess, free_port

pytestmark = pytest.mark.skipif(
    os.environ.get('ZUUL_REGISTRY_TEST_SERVER') == 'distribution',
    reason='pull-through is zuul-registry only')

WRITER = ('writer', 'writer-password-1')
READER = ('reader', 'reader-password-2')


@pytest.fixture
def pki(tmp_path):
    return tls.make_pki(tmp_path / 'pki')


@pytest.fixture
def upstream(tmp_path, pki):
    port = free_port()
    server = ServerProcess(tmp_path / 'upstream', port=port,
                           tls_ca=pki.ca_cert, registry={
                               'tls-cert': pki.server_cert,
                               'tls-key': pki.server_key,
                               'secret': 's' * 40,
                               'public-url': 'https://127.0.0.1:%d' % port,
                               'users': [
                                   {'name': WRITER[0], 'pass': WRITER[1],
                                    'access': 'write'},
                                   {'name': READER[0], 'pass': READER[1],
                                    'access': 'read'}]})
    server.start()
    yield server
    server.stop()


def mirror_settings(upstream, pki):
    return {'upstreams': [{
        'namespace': 'docker.io', 'url': upstream.url,
        'username': READER[0], 'password': READER[1], 'ca': pki.ca_cert}]}


@pytest.fixture
def mirror(tmp_path, upstream, pki):
    server = ServerProcess(tmp_path / 'mirror', namespaced=True,
                           default_namespace='docker.io',
                           registry=mirror_settings(upstream, pki))
    server.start()
    yield server
    server.stop()


def cert_dir(tmp_path, pki):
    directory = tmp_path / 'certs'
    directory.mkdir(exist_ok=True)
    with open(pki.ca_cert) as src, open(directory / 'ca.crt', 'w') as dst:
        dst.write(src.read())
    return str(directory)


def push_upstream(skopeo, tmp_path, pki, upstream, name, tag):
    layout = tmp_path / ('oci-' + name.replace('/', '-'))
    image = Layout(layout, tag, images.build_layout(layout, tag))
    skopeo.skopeo('copy', '--dest-cert-dir', cert_dir(tmp_path, pki),
                  '--dest-creds', '%s:%s' % WRITER, image.ref,
                  'docker://%s/%s:%s' % (upstream.host_port, name, tag))
    return image


def test_skopeo_and_podman_pull_what_only_the_upstream_has(
        tmp_path, pki, upstream, mirror, skopeo):
    require_tools('podman')
    image = push_upstream(skopeo, tmp_path, pki, upstream, 'library/app',
                          'v1')
    upstream_raw = skopeo.skopeo(
        'inspect', '--raw', '--cert-dir', cert_dir(tmp_path, pki),
        '--creds', '%s:%s' % READER,
        'docker://%s/library/app:v1' % upstream.host_port).stdout.encode()
    raw = skopeo.inspect_raw('docker://%s/docker.io/library/app:v1'
                             % mirror.host_port)
    assert raw == upstream_raw
    # podman through a registries.conf mirror, as the use role writes it;
    # docker.io itself cannot be reached here, so the mirror served it.
    skopeo.write_mirror_conf('docker.io', '%s/docker.io' % mirror.host_port)
    skopeo.podman('pull', 'docker.io/library/app:v1')
    pulled = json.loads(skopeo.podman(
        'image', 'inspect', 'docker.io/library/app:v1').stdout)[0]
    assert pulled['Digest'] == image.image.digest
    log = mirror.log_text()
    for layer in image.image.layers:
        assert 'Blob %s of docker.io/library/app filled from' \
            % layer.blob.digest in log


@pytest.mark.skipif(not docker_available(), reason='dockerd not installed')
def test_docker_pulls_through_its_mirror(tmp_path, pki, upstream, mirror,
                                         skopeo):
    push_upstream(skopeo, tmp_path, pki, upstream, 'library/tool', 'v2')
    engine = DockerEngine(tmp_path / 'docker', daemon_json={
        'registry-mirrors': ['http://%s' % mirror.host_port],
        'insecure-registries': [mirror.host_port]})
    try:
        engine.start()
        engine.run('pull', 'tool:v2')
        engine.run('pull', 'docker.io/library/tool:v2')
        tags = engine.run('image', 'ls', '--format',
                          '{{.Repository}}:{{.Tag}}').stdout.split()
        assert 'tool:v2' in tags
    finally:
        engine.cleanup()


def _get(url):
    hasher = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=120) as response:
        while True:
            data = response.read(1 << 20)
            if not data:
                break
            hasher.update(data)
    return 'sha256:' + hasher.hexdigest()


def test_two_processes_fill_the_same_blobs_while_a_push_and_prune_run(
        tmp_path, pki, upstream, skopeo):
    root = str(tmp_path / 'shared')
    settings = mirror_settings(upstream, pki)
    mirrors = [ServerProcess(tmp_path / ('mirror%d' % i), namespaced=True,
                             default_namespace='docker.io',
                             storage_root=root, registry=settings)
               for i in range(2)]
    # Big layers: several fill segments each.
    blobs = []
    for index in range(3):
        data = os.urandom(6 * 1024 * 1024 + index * 1000)
        blobs.append(('sha256:' + hashlib.sha256(data).hexdigest(), data))
    with open(tmp_path / 'blob-push.py', 'w') as f:
        f.write(_PUSH_SCRIPT)
    for digest, data in blobs:
        path = tmp_path / digest.replace(':', '-')
        path.write_bytes(data)
        subprocess.run([sys.executable, str(tmp_path / 'blob-push.py'),
                        upstream.url, pki.ca_cert, '%s:%s' % WRITER,
                        'library/big', str(path), digest], check=True)
    image = push_upstream(skopeo, tmp_path, pki, upstream, 'library/app',
                          'v1')
    for server in mirrors:
        server.start()
    stop = tmp_path / 'stop-prune'
    prune = subprocess.Popen(
        [sys.executable, '-m', 'tests.clients.prune_loop',
         mirrors[0].config_path, str(stop), '--grace', '1',
         '--upload-expiry', '3600', '--pause', '0.1'],
        env=mirrors[0].environment(), stdout=subprocess.PIPE,
        stderr=open(tmp_path / 'prune.log', 'w'), text=True)
    # One run done: the loop is going when the pulls start.
    first = prune.stdout.readline()
    assert first, (tmp_path / 'prune.log').read_text()
    try:
        urls = ['%s/v2/library/big/blobs/%s' % (server.url, digest)
                for digest, _ in blobs for server in mirrors
                for _ in range(3)]
        with concurrent.futures.ThreadPoolExecutor(len(urls) + 1) as pool:
            pulls = [pool.submit(_get, url) for url in urls]
            # Meanwhile: the upstream's app:v1 through one process, and a
            # push of app:v1 of our own to the other.
            pulled = pool.submit(
                skopeo.inspect_raw, 'docker://%s/docker.io/library/app:v1'
                % mirrors[0].host_port)
            layout = tmp_path / 'oci-local'
            local = Layout(layout, 'v1', images.build_layout(
                layout, 'v1', label='pushed to the mirror'))
            skopeo.skopeo('copy', '--dest-tls-verify=false', local.ref,
                          'docker://%s/docker.io/library/app:v1'
                          % mirrors[1].host_port)
            results = [pull.result() for pull in pulls]
            pulled.result()
        expected = [digest for digest, _ in blobs for _ in range(6)]
        assert results == expected
    finally:
        stop.write_text('')
        out, _ = prune.communicate(timeout=120)
    runs = [json.loads(line) for line in [first] + out.splitlines()
            if line.strip()]
    assert runs and not [run for run in runs if 'error' in run]
    assert local.image.digest != image.image.digest
    for server in mirrors:
        # The pushed tag wins on both processes, whatever was fetched.
        raw = skopeo.inspect_raw('docker://%s/docker.io/library/app:v1'
                                 % server.host_port)
        assert 'sha256:' + hashlib.sha256(raw).hexdigest() == \
            local.image.digest
        for digest, _ in blobs:
            assert _get('%s/v2/library/big/blobs/%s'
                        % (server.url, digest)) == digest
        log = server.log_text()
        # (skopeo probes HTTPS first: that one 400 is expected.)
        assert 'Unexpected failure' not in log
        assert 'fill from' not in log   # "... fill from URL failed"
        assert not re.search(r'HTTP/1\.[01]" 5\d\d ', log)
    uploads = os.path.join(root, 'docker.io', '_uploads')
    assert not os.path.exists(uploads) or os.listdir(uploads) == []
    for server in mirrors:
        server.stop()


# Pushes one blob to a registry with Basic credentials through the token
# flow, streaming from a file (a helper process: urllib has no token
# flow of its own).
_PUSH_SCRIPT = r'''
import base64, json, ssl, sys, urllib.parse, urllib.request
url, ca, creds, name, path, digest = sys.argv[1:]
context = ssl.create_default_context(cafile=ca)
basic = 'Basic ' + base64.b64encode(creds.encode()).decode()
query = urllib.parse.urlencode({'service': urllib.parse.urlsplit(url).netloc,
                                'scope': 'repository:%s:pull,push' % name})
request = urllib.request.Request(url + '/auth/token?' + query,
                                 headers={'Authorization': basic})
token = json.load(urllib.request.urlopen(request, context=context))['token']
auth = {'Authorization': 'Bearer ' + token}
with open(path, 'rb') as f:
    data = f.read()
request = urllib.request.Request(
    url + '/v2/%s/blobs/uploads/?digest=%s' % (name, digest), data=data,
    method='POST', headers=dict(auth, **{
        'Content-Type': 'application/octet-stream'}))
response = urllib.request.urlopen(request, context=context)
assert response.status == 201, response.status
'''
