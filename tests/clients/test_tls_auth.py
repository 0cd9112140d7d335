"""Real clients over TLS with a self-signed CA, each through the token flow.

Two HTTPS servers run for the whole module, both with users and a random
secret, and a ``public-url`` so the token realm is their https address:

* ``secured``: a write user and a read user. A read user exists, so
  anonymous pull is refused.
* ``open_read``: a write user only, so anonymous pull is allowed (the
  buildset registry case) while push still needs the writer.

Each client is told to trust only the test CA, each in its own way:
skopeo ``--*-cert-dir``, podman ``--cert-dir``, containerd's ``ctr`` a
``hosts.toml`` under ``--hosts-dir``, python-dxf ``tlsverify=CA``. Every
client meets the 401 challenge and fetches a token from ``/auth/token``
(containerd with a POST form, the others with GET and Basic credentials).

A server whose TLS certificate or key cannot be used must say so in one
line and exit non-zero, without a traceback.

The last test greps both servers' debug logs, after everything above ran,
for every password, the secret, every token and every Authorization
header value.
"""

import base64
import collections
import http.client
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import tarfile
import time
import urllib.parse

import pytest

from tests import images
from tests.clients import tls
from tests.clients.containerd import Containerd
from tests.clients.containerd import write_hosts_toml
from tests.clients.tools import require_tools
from tests.server_process import ServerProcess
from tests.server_process import free_port

pytestmark = pytest.mark.skipif(
    os.environ.get('ZUUL_REGISTRY_TEST_SERVER') == 'distribution',
    reason='zuul-registry users and tokens only')

User = collections.namedtuple('User', 'name password access')

SECRET = secrets.token_urlsafe(48)
WRITER = User('writer', secrets.token_urlsafe(18), 'write')
READER = User('reader', secrets.token_urlsafe(18), 'read')
WRONG_PASSWORD = secrets.token_urlsafe(18)
# Tokens the tests saw with their own eyes; the log must hold none.
SEEN_TOKENS = set()


def creds(user, password=None):
    return '%s:%s' % (user.name, user.password if password is None
                      else password)


# -- servers -----------------------------------------------------------------

def _tls_server(directory, pki, users):
    port = free_port()
    return ServerProcess(directory, port=port, tls_ca=pki.ca_cert, registry={
        'tls-cert': pki.server_cert,
        'tls-key': pki.server_key,
        'secret': SECRET,
        'public-url': 'https://127.0.0.1:%d' % port,
        'users': [{'name': u.name, 'pass': u.password, 'access': u.access}
                  for u in users],
    })


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    return tls.make_pki(tmp_path_factory.mktemp('pki'))


@pytest.fixture(scope='module')
def secured(tmp_path_factory, pki):
    server = _tls_server(tmp_path_factory.mktemp('secured'), pki,
                         [WRITER, READER])
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope='module')
def open_read(tmp_path_factory, pki):
    server = _tls_server(tmp_path_factory.mktemp('open-read'), pki,
                         [WRITER])
    server.start()
    yield server
    server.stop()


# -- plain HTTPS, to seed and check the registry independently ----------------

def https(server, method, path, *, user=None, body=None, headers=None):
    """(status, headers, body); ``user`` sends Basic credentials."""
    headers = dict(headers or {})
    if user is not None:
        headers['Authorization'] = 'Basic ' + base64.b64encode(
            creds(user).encode()).decode()
    context = ssl.create_default_context(cafile=server.tls_ca)
    conn = http.client.HTTPSConnection('127.0.0.1', server.port,
                                       timeout=30, context=context)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def seed(server, repository, tag, image):
    """Push ``image`` as the writer with Basic auth on /v2/ directly."""
    for blob in image.blobs:
        status, headers, body = https(
            server, 'POST', '/v2/%s/blobs/uploads/' % repository, user=WRITER)
        assert status == 202, body
        location = urllib.parse.urlsplit(headers['Location'])
        query = (location.query + '&' if location.query else '') + \
            'digest=' + urllib.parse.quote(blob.digest)
        status, _, body = https(
            server, 'PUT', '%s?%s' % (location.path, query), user=WRITER,
            body=blob.data,
            headers={'Content-Type': 'application/octet-stream'})
        assert status == 201, body
    status, _, body = https(
        server, 'PUT', '/v2/%s/manifests/%s' % (repository, tag),
        user=WRITER, body=image.manifest.data,
        headers={'Content-Type': image.manifest.media_type})
    assert status == 201, body


def manifest(server, repository, reference):
    """(status, body) of the manifest, read as the writer."""
    status, _, body = https(
        server, 'GET', '/v2/%s/manifests/%s' % (repository, reference),
        user=WRITER, headers={'Accept': images.OCI_MANIFEST})
    return status, body


def assert_registry_holds(server, repository, tag, image):
    assert manifest(server, repository, tag) == (200, image.manifest.data)
    for blob in image.blobs:
        status, _, data = https(server, 'GET', '/v2/%s/blobs/%s' % (
            repository, blob.digest), user=WRITER)
        assert (status, data) == (200, blob.data)


def assert_layout_holds(layout_dir, tag, image):
    [entry] = [m for m in images.read_layout_index(layout_dir)['manifests']
               if m['annotations'][images.REF_NAME] == tag]
    assert entry['digest'] == image.digest
    for blob in (image.manifest,) + image.blobs:
        assert images.read_layout_blob(layout_dir, blob.digest) == blob.data


_REQUEST = re.compile(r'"([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3}) ')


def access_log(server, since):
    """(method, path, status) of each request logged since ``since``."""
    return [(m.group(1), m.group(2), int(m.group(3)))
            for m in map(_REQUEST.search,
                         server.log_text(since=since).splitlines()) if m]


def assert_logged(server, since, *checks, timeout=5):
    """Each check holds for some request logged since ``since``.

    The access log line of a request is written just after its response
    went out, so the last lines may come a moment after the client is done.
    """
    deadline = time.monotonic() + timeout
    while True:
        requests = access_log(server, since)
        if all(any(check(*request) for request in requests)
               for check in checks):
            return
        assert time.monotonic() < deadline, requests
        time.sleep(0.05)


def assert_token_flow(server, since, *, method='GET'):
    """The client was challenged and fetched a token."""
    assert_logged(
        server, since,
        lambda m, path, status: path.startswith('/v2/') and status == 401,
        lambda m, path, status: (m == method and status == 200
                                 and path.startswith('/auth/token')))


# insufficient_scope: a valid token lacking the access (RFC 6750), as
# ctr reports the challenge's error.
_REFUSALS = ('unauthorized', 'denied', 'invalid username/password',
             '401', '403', 'insufficient_scope')


def refused(result):
    """The command failed, and said so because of credentials."""
    text = (result.stdout + result.stderr).lower()
    return result.returncode != 0 and any(word in text
                                          for word in _REFUSALS)


# -- skopeo ------------------------------------------------------------------

def test_skopeo_copies_in_and_out_with_creds_and_cert_dir(
        skopeo, secured, pki, oci_image, tmp_path):
    ref = 'docker://%s/skopeo/image:v1' % secured.host_port
    mark = secured.log_offset()
    skopeo.skopeo('copy', '--dest-creds', creds(WRITER),
                  '--dest-cert-dir', pki.cert_dir, oci_image.ref, ref)
    assert_token_flow(secured, mark)
    assert_registry_holds(secured, 'skopeo/image', 'v1', oci_image.image)

    out = tmp_path / 'out'
    skopeo.skopeo('copy', '--src-creds', creds(WRITER),
                  '--src-cert-dir', pki.cert_dir, ref, 'oci:%s:v1' % out)
    assert_layout_holds(out, 'v1', oci_image.image)


def test_skopeo_without_the_ca_refuses_the_server_certificate(
        skopeo, secured, oci_image):
    result = skopeo.skopeo(
        'copy', '--dest-creds', creds(WRITER), oci_image.ref,
        'docker://%s/skopeo/untrusted:v1' % secured.host_port, check=False)
    assert result.returncode != 0
    assert 'certificate' in result.stderr, result.stderr
    assert manifest(secured, 'skopeo/untrusted', 'v1')[0] == 404


def test_skopeo_read_user_pulls_but_its_push_is_refused(
        skopeo, secured, pki, oci_image, tmp_path):
    seed(secured, 'skopeo/readable', 'v1', oci_image.image)
    out = tmp_path / 'out'
    skopeo.skopeo('copy', '--src-creds', creds(READER),
                  '--src-cert-dir', pki.cert_dir,
                  'docker://%s/skopeo/readable:v1' % secured.host_port,
                  'oci:%s:v1' % out)
    assert_layout_holds(out, 'v1', oci_image.image)

    result = skopeo.skopeo(
        'copy', '--dest-creds', creds(READER), '--dest-cert-dir',
        pki.cert_dir, oci_image.ref,
        'docker://%s/skopeo/by-reader:v1' % secured.host_port, check=False)
    assert refused(result), result
    assert manifest(secured, 'skopeo/by-reader', 'v1')[0] == 404


def test_skopeo_wrong_password_is_refused(skopeo, secured, pki, oci_image,
                                          tmp_path):
    seed(secured, 'skopeo/wrong-password', 'v1', oci_image.image)
    result = skopeo.skopeo(
        'copy', '--src-creds', creds(WRITER, WRONG_PASSWORD),
        '--src-cert-dir', pki.cert_dir,
        'docker://%s/skopeo/wrong-password:v1' % secured.host_port,
        'oci:%s:v1' % (tmp_path / 'out'), check=False)
    assert refused(result), result


def test_skopeo_anonymous_pull_works_when_no_read_user_exists(
        skopeo, open_read, pki, oci_image, tmp_path):
    seed(open_read, 'skopeo/public', 'v1', oci_image.image)
    out = tmp_path / 'out'
    skopeo.skopeo('copy', '--src-no-creds', '--src-cert-dir', pki.cert_dir,
                  'docker://%s/skopeo/public:v1' % open_read.host_port,
                  'oci:%s:v1' % out)
    assert_layout_holds(out, 'v1', oci_image.image)
    # ... but anonymous push is still refused.
    result = skopeo.skopeo(
        'copy', '--dest-no-creds', '--dest-cert-dir', pki.cert_dir,
        oci_image.ref, 'docker://%s/skopeo/anonymous:v1'
        % open_read.host_port, check=False)
    assert refused(result), result
    assert manifest(open_read, 'skopeo/anonymous', 'v1')[0] == 404


def test_skopeo_anonymous_pull_is_refused_when_a_read_user_exists(
        skopeo, secured, pki, oci_image, tmp_path):
    seed(secured, 'skopeo/private', 'v1', oci_image.image)
    result = skopeo.skopeo(
        'copy', '--src-no-creds', '--src-cert-dir', pki.cert_dir,
        'docker://%s/skopeo/private:v1' % secured.host_port,
        'oci:%s:v1' % (tmp_path / 'out'), check=False)
    assert refused(result), result


# -- podman ------------------------------------------------------------------

@pytest.fixture
def podman(containers):
    require_tools('podman')
    return containers


def _login(tools, server, pki, user, password=None):
    return tools.podman('login', '--cert-dir', pki.cert_dir,
                        '--username', user.name, '--password',
                        user.password if password is None else password,
                        server.host_port, check=False)


def _logged_in(tools):
    with open(tools.auth_file) as f:
        return sorted(json.load(f).get('auths', {}))


def test_podman_login_push_and_pull(podman, secured, pki, oci_image):
    result = _login(podman, secured, pki, WRITER)
    assert result.returncode == 0, result.stderr
    assert _logged_in(podman) == [secured.host_port]

    image_id = podman.podman('pull', '--quiet', oci_image.ref).stdout.strip()
    assert 'sha256:' + image_id == oci_image.image.config.digest
    reference = '%s/podman/image:v1' % secured.host_port
    mark = secured.log_offset()
    podman.podman('push', '--cert-dir', pki.cert_dir, image_id,
                  'docker://' + reference)
    assert_token_flow(secured, mark)
    assert manifest(secured, 'podman/image', 'v1')[0] == 200

    podman.podman('rmi', '--force', image_id)
    mark = secured.log_offset()
    pulled = podman.podman('pull', '--quiet', '--cert-dir', pki.cert_dir,
                           reference).stdout.strip()
    assert pulled == image_id
    assert_logged(secured, mark, lambda method, path, status: (
        method == 'GET' and '/v2/podman/image/blobs/' in path
        and status == 200))


def test_podman_read_user_pulls_but_its_push_is_refused(
        podman, secured, pki, oci_image):
    seed(secured, 'podman/readable', 'v1', oci_image.image)
    assert _login(podman, secured, pki, READER).returncode == 0
    pulled = podman.podman(
        'pull', '--quiet', '--cert-dir', pki.cert_dir,
        '%s/podman/readable:v1' % secured.host_port).stdout.strip()
    assert 'sha256:' + pulled == oci_image.image.config.digest

    result = podman.podman(
        'push', '--cert-dir', pki.cert_dir, pulled,
        'docker://%s/podman/by-reader:v1' % secured.host_port, check=False)
    assert refused(result), result
    assert manifest(secured, 'podman/by-reader', 'v1')[0] == 404


def test_podman_login_with_wrong_password_is_refused(podman, secured, pki):
    result = _login(podman, secured, pki, WRITER, WRONG_PASSWORD)
    assert refused(result), result
    assert _logged_in(podman) == []


# -- containerd (ctr) --------------------------------------------------------

@pytest.fixture
def containerd(tmp_path):
    require_tools('containerd', 'ctr')
    with Containerd(tmp_path / 'containerd') as daemon:
        yield daemon


@pytest.fixture
def hosts_dir(tmp_path, pki, secured, open_read):
    """A certs.d trusting the test CA for both servers, as hosts.toml."""
    directory = tmp_path / 'certs.d'
    for server in (secured, open_read):
        write_hosts_toml(directory, server.host_port, ca=pki.ca_cert)
    return directory


def _import(daemon, layout, name, tmp_path):
    """Import an OCI layout into containerd as ``name:TAG``."""
    archive = tmp_path / 'image.tar'
    with tarfile.open(archive, 'w') as tar:
        for entry in os.listdir(layout.path):
            tar.add(os.path.join(layout.path, entry), arcname=entry)
    daemon.ctr('images', 'import', '--no-unpack', '--base-name', name,
               archive)
    return '%s:%s' % (name, layout.tag)


def _ctr_pull(daemon, hosts_dir, reference, *user):
    return daemon.ctr('images', 'pull', '--hosts-dir', hosts_dir,
                      '--snapshotter', 'native', *user, reference,
                      check=False)


def test_ctr_pushes_with_user_through_hosts_toml(
        containerd, hosts_dir, secured, oci_image, tmp_path):
    reference = _import(containerd, oci_image,
                        secured.host_port + '/ctr/pushed', tmp_path)
    mark = secured.log_offset()
    containerd.ctr('images', 'push', '--hosts-dir', hosts_dir,
                   '--user', creds(WRITER), reference)
    # containerd asks for tokens with a POST form (grant_type=password).
    assert_token_flow(secured, mark, method='POST')
    assert_registry_holds(secured, 'ctr/pushed', 'v1', oci_image.image)


def test_ctr_pulls_with_user_through_hosts_toml(
        containerd, hosts_dir, secured, oci_image):
    seed(secured, 'ctr/pulled', 'v1', oci_image.image)
    reference = secured.host_port + '/ctr/pulled:v1'
    mark = secured.log_offset()
    result = _ctr_pull(containerd, hosts_dir, reference,
                       '--user', creds(WRITER))
    assert result.returncode == 0, result.stderr
    assert_token_flow(secured, mark, method='POST')
    assert containerd.image_digests() == {reference: oci_image.image.digest}


def test_ctr_read_user_pulls_but_its_push_is_refused(
        containerd, hosts_dir, secured, oci_image, tmp_path):
    seed(secured, 'ctr/readable', 'v1', oci_image.image)
    reference = secured.host_port + '/ctr/readable:v1'
    result = _ctr_pull(containerd, hosts_dir, reference,
                       '--user', creds(READER))
    assert result.returncode == 0, result.stderr

    pushed = _import(containerd, oci_image,
                     secured.host_port + '/ctr/by-reader', tmp_path)
    result = containerd.ctr('images', 'push', '--hosts-dir', hosts_dir,
                            '--user', creds(READER), pushed, check=False)
    assert refused(result), result
    assert manifest(secured, 'ctr/by-reader', 'v1')[0] == 404


def test_ctr_wrong_password_is_refused(containerd, hosts_dir, secured,
                                       oci_image):
    seed(secured, 'ctr/wrong-password', 'v1', oci_image.image)
    result = _ctr_pull(containerd, hosts_dir,
                       secured.host_port + '/ctr/wrong-password:v1',
                       '--user', creds(WRITER, WRONG_PASSWORD))
    assert refused(result), result
    assert containerd.image_digests() == {}


def test_ctr_anonymous_pull_works_when_no_read_user_exists(
        containerd, hosts_dir, open_read, oci_image):
    seed(open_read, 'ctr/public', 'v1', oci_image.image)
    reference = open_read.host_port + '/ctr/public:v1'
    result = _ctr_pull(containerd, hosts_dir, reference)
    assert result.returncode == 0, result.stderr
    assert containerd.image_digests() == {reference: oci_image.image.digest}


# -- python-dxf --------------------------------------------------------------

@pytest.fixture
def dxf_client(pki):
    dxf = pytest.importorskip('dxf')

    def make(server, repository, user=None, password=None):
        def auth(client, response):
            if user is None:
                client.authenticate(response=response)
            else:
                client.authenticate(
                    user.name, user.password if password is None
                    else password, response=response)
            SEEN_TOKENS.add(client.token)
        return dxf.DXF(server.host_port, repository, auth=auth,
                       tlsverify=pki.ca_cert, timeout=30)
    return make


BLOB = secrets.token_bytes(200 * 1024)


def _push(client, data):
    """A generator body: requests sends it chunked, as dxf streams."""
    chunks = (data[i:i + 65536] for i in range(0, len(data), 65536))
    return client.push_blob(data=chunks, digest=images.sha256_digest(data))


def _pull(client, digest):
    return b''.join(client.pull_blob(digest))


def test_dxf_pushes_and_pulls_a_blob_with_credentials_and_ca(
        dxf_client, secured):
    client = dxf_client(secured, 'dxf/blobs', WRITER)
    digest = _push(client, BLOB)
    assert client.token  # a Bearer token, not Basic on every request
    assert _pull(client, digest) == BLOB
    assert _pull(dxf_client(secured, 'dxf/blobs', WRITER), digest) == BLOB


def test_dxf_read_user_pulls_but_its_push_is_refused(dxf_client, secured):
    data = b'pushed by the writer, read by the reader'
    digest = _push(dxf_client(secured, 'dxf/readable', WRITER), data)
    reader = dxf_client(secured, 'dxf/readable', READER)
    assert _pull(reader, digest) == data
    with pytest.raises(Exception) as error:
        _push(reader, b'pushed by the reader')
    assert _is_refusal(error.value), repr(error.value)


def test_dxf_wrong_password_is_refused(dxf_client, secured):
    digest = _push(dxf_client(secured, 'dxf/wrong', WRITER), BLOB)
    client = dxf_client(secured, 'dxf/wrong', WRITER, WRONG_PASSWORD)
    with pytest.raises(Exception) as error:
        _pull(client, digest)
    assert _is_refusal(error.value), repr(error.value)


def test_dxf_anonymous_pull_works_when_no_read_user_exists(
        dxf_client, open_read):
    digest = _push(dxf_client(open_read, 'dxf/public', WRITER), BLOB)
    anonymous = dxf_client(open_read, 'dxf/public')
    assert _pull(anonymous, digest) == BLOB
    with pytest.raises(Exception) as error:
        _push(anonymous, b'anonymous push')
    assert _is_refusal(error.value), repr(error.value)


def _is_refusal(error):
    from dxf import exceptions
    if isinstance(error, exceptions.DXFUnauthorizedError):
        return True
    response = getattr(error, 'response', None)
    return response is not None and response.status_code in (401, 403)


# -- startup errors ----------------------------------------------------------

_LOG_LINE = re.compile(r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d')


def _start_fails(tmp_path, *, cert, key, prefix=()):
    """Start a server on ``cert``/``key``; return its one error line."""
    server = ServerProcess(tmp_path / 'server', debug=False,
                           registry={'tls-cert': str(cert),
                                     'tls-key': str(key)})
    server.write_config()
    os.makedirs(server.storage_root, exist_ok=True)
    result = subprocess.run(
        list(prefix) + server.command(), env=server.environment(),
        cwd=server.directory, stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=30)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert 'Traceback' not in output, output
    errors = [line for line in output.splitlines()
              if line.strip() and not _LOG_LINE.match(line)]
    assert len(errors) == 1, output
    return errors[0]


def test_missing_tls_certificate_is_a_one_line_startup_error(pki, tmp_path):
    missing = tmp_path / 'no-such.crt'
    error = _start_fails(tmp_path, cert=missing, key=pki.server_key)
    assert str(missing) in error


def test_missing_tls_key_is_a_one_line_startup_error(pki, tmp_path):
    missing = tmp_path / 'no-such.key'
    error = _start_fails(tmp_path, cert=pki.server_cert, key=missing)
    assert str(missing) in error


def test_unreadable_tls_key_is_a_one_line_startup_error(pki, tmp_path):
    if os.geteuid() != 0 or shutil.which('setpriv') is None:
        pytest.skip('needs root and setpriv to drop the power to read '
                    'any file')
    key = tmp_path / 'unreadable.key'
    shutil.copy(pki.server_key, key)
    os.chmod(key, 0)
    # Root reads any file through CAP_DAC_OVERRIDE; without it (and
    # CAP_DAC_READ_SEARCH) the mode 000 applies as to anyone.
    error = _start_fails(tmp_path, cert=pki.server_cert, key=key, prefix=[
        'setpriv', '--bounding-set', '-dac_override,-dac_read_search'])
    assert str(key) in error
    assert 'Permission denied' in error


def test_tls_key_path_that_is_a_directory_is_a_one_line_startup_error(
        pki, tmp_path):
    error = _start_fails(tmp_path, cert=pki.server_cert, key=tmp_path)
    assert str(tmp_path) in error


def test_tls_key_that_does_not_match_certificate_is_a_one_line_error(
        pki, tmp_path):
    error = _start_fails(tmp_path, cert=pki.server_cert, key=pki.other_key)
    assert pki.server_cert in error and pki.other_key in error
    assert 'match' in error


# -- the debug log, after everything above ------------------------------------

_JWT = re.compile(r'eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}')
_AUTH_VALUE = re.compile(r'(?i)\b(basic|bearer)\s+[A-Za-z0-9+/=._-]{20,}')


def test_debug_log_holds_no_password_token_secret_or_authorization(
        secured, open_read):
    """Runs last: the logs then hold every request of this module."""
    # Some traffic of its own, so that it proves something even alone.
    status, _, body = https(secured, 'GET', '/auth/token?service='
                            'zuul-registry&scope=repository:log/check:pull',
                            user=WRITER)
    assert status == 200
    SEEN_TOKENS.add(json.loads(body)['token'])
    assert https(secured, 'GET', '/v2/', user=READER)[0] == 200

    forbidden = {SECRET: 'the secret'}
    for user in (WRITER, READER):
        forbidden[user.password] = 'password of %s' % user.name
        forbidden[base64.b64encode(creds(user).encode()).decode()] = \
            'Basic credentials of %s' % user.name
    forbidden[WRONG_PASSWORD] = 'a wrong password'
    forbidden[base64.b64encode(creds(WRITER, WRONG_PASSWORD).encode())
              .decode()] = 'Basic credentials with a wrong password'
    for token in SEEN_TOKENS:
        if token:
            forbidden[token] = 'a token'
    for server in (secured, open_read):
        text = server.log_text()
        assert 'DEBUG' in text  # it is the debug log
        for value, what in forbidden.items():
            assert value not in text, '%s in %s' % (what, server.log_path)
        for pattern in (_JWT, _AUTH_VALUE):
            found = pattern.search(text)
            assert found is None, '%r in %s' % (found.group(0)[:40],
                                                server.log_path)
