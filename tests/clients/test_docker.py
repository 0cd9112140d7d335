"""docker as a client: a real dockerd against real zuul-registry servers.

Each test runs one private engine (tests/docker_engine.py: dockerd in a
mount namespace of its own, vfs storage, ``/etc/docker`` and ``/etc/hosts``
from the test) and loads a tiny image from a docker-archive made offline.

* Over TLS with token auth: ``docker login``, ``push`` and ``pull`` against
  a server with a write user and a read user, whose CA the engine trusts
  through ``certs.d/HOST:PORT/ca.crt`` only.
* Mirrors: run-buildset-registry starts the registry, use-buildset-registry
  writes ``daemon.json``, ``certs.d``, the hosts file and the CLI's
  ``config.json`` laid out as an engine's directories (one role run per
  set of facts, copied into each test's engine), dockerd restarts with
  them, and ``docker pull library/x`` and ``docker pull x`` come from the
  registry, for an IPv4 and an IPv6 registry (both named through the
  alias the role writes into the hosts file). The machine has no network:
  a pull that succeeds came from the mirror, and the registry's access log
  shows it served it.
* The Docker Hub credential quirk: for ``docker pull`` the CLI sends the
  credentials stored for ``https://index.docker.io/v1/``, and dockerd hands
  them to every mirror. With the buildset registry's own credentials there,
  a registry that refuses anonymous pull serves the mirror; with someone's
  real Docker Hub login there, the registry must ignore the foreign
  credentials and serve the pull anonymously, which the buildset registry
  (one write user, anonymous pull) allows. When a mirror refuses, docker
  quietly goes on to Docker Hub: on a node with network a job would then
  get the upstream image instead of the one its buildset built.

Three answers that misled docker are checked too: a Hub identity token
sent to the mirror gets an anonymous token, ``docker login`` with a wrong
password fails, and a read user's push is reported as denied.

Why the registries are mostly named through a host name for ``::1``:
dockerd always counts 127.0.0.0/8 among its insecure registries and then
does not verify the server certificate at all. A name that the engine's
hosts file maps to ``::1`` is outside that range, so dockerd checks the
certificate against ``certs.d`` as it does on a CI node, whose registry
has a routable address.
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
import time

import pytest

from tests.clients import tls
from tests.docker_engine import docker_unavailable_reason
from tests.server_process import ServerProcess
from tests.server_process import free_port

pytestmark = pytest.mark.skipif(
    os.environ.get('ZUUL_REGISTRY_TEST_SERVER') == 'distribution',
    reason='zuul-registry users, tokens and namespaces only')

User = collections.namedtuple('User', 'name password access')

WRITER = User('writer', secrets.token_urlsafe(18), 'write')
READER = User('reader', secrets.token_urlsafe(18), 'read')
# The name tests use for the TLS server, and the alias the use role gives
# a registry; the engine's hosts file maps both to ::1.
REGISTRY_NAME = 'zuul-registry.test'
ALIAS = 'zuul-jobs.buildset-registry'
# Where the docker CLI keeps the Docker Hub login, and someone's login.
HUB_KEY = 'https://index.docker.io/v1/'
HUB_PASS = secrets.token_urlsafe(18)
HUB_IDENTITY_TOKEN = secrets.token_urlsafe(32)
HOSTS = '127.0.0.1 localhost\n::1 localhost ip6-localhost %s\n' % (
    REGISTRY_NAME)

_PUSHED = re.compile(r'^\S+: digest: (sha256:[0-9a-f]{64}) size: \d+$',
                     re.MULTILINE)
_REQUEST = re.compile(r'"([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3}) ')


def _auth(name, password):
    return base64.b64encode(('%s:%s' % (name, password)).encode()).decode()


def _requests(server, since):
    """(method, path, status) of each request logged since ``since``."""
    return [(m.group(1), m.group(2), int(m.group(3)))
            for m in map(_REQUEST.search,
                         server.log_text(since=since).splitlines()) if m]


def _wait_for_request(server, since, check, *, timeout=5):
    """Wait until the access log since ``since`` shows a request for which
    ``check(method, path, status)`` holds: the line is written just after
    the response went out, so the client may be done a moment earlier."""
    deadline = time.monotonic() + timeout
    while not any(check(*request) for request in _requests(server, since)):
        assert time.monotonic() < deadline, _requests(server, since)
        time.sleep(0.05)


def _request(methods, paths, status):
    """A check for _wait_for_request."""
    return lambda method, path, code: (
        method in methods and path in paths and code == status)


def _push(engine, reference):
    """``docker push``; the manifest digest it reports."""
    result = engine.run('push', reference)
    match = _PUSHED.search(result.stdout)
    assert match, result.stdout
    return match.group(1)


def _says_refused(text):
    """Whether ``text`` tells of a refusal for credentials."""
    return any(word in text.lower() for word in (
        'unauthorized', 'denied', 'authentication required'))


def _refused_by_credentials(result):
    return result.returncode != 0 and _says_refused(
        result.stdout + result.stderr)


def _manifest_status(server, repository, tag):
    """The status of GET manifest as the writer, with Basic credentials."""
    context = ssl.create_default_context(cafile=server.tls_ca)
    conn = http.client.HTTPSConnection('127.0.0.1', server.port, timeout=30,
                                       context=context)
    try:
        conn.request('GET', '/v2/%s/manifests/%s' % (repository, tag),
                     headers={'Authorization': 'Basic ' + _auth(
                         WRITER.name, WRITER.password)})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    return tls.make_pki(tmp_path_factory.mktemp('pki'), hosts=(
        '127.0.0.1', 'localhost', '::1', REGISTRY_NAME, ALIAS))


@pytest.fixture(scope='module')
def ca_pem(pki):
    with open(pki.ca_cert) as f:
        return f.read()


@pytest.fixture(scope='module')
def secured(tmp_path_factory, pki):
    """HTTPS on IPv4 and IPv6, a write user and a read user (so anonymous
    pull is refused), namespaces with docker.io the default, as the
    buildset registry has them. No public-url: the token realm is built
    from the name the client used."""
    reason = docker_unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = ServerProcess(
        tmp_path_factory.mktemp('secured'), port=free_port(),
        tls_ca=pki.ca_cert, namespaced=True, default_namespace='docker.io',
        registry={
            'address': '::',
            'tls-cert': pki.server_cert,
            'tls-key': pki.server_key,
            'secret': secrets.token_urlsafe(48),
            'users': [{'name': u.name, 'pass': u.password,
                       'access': u.access} for u in (WRITER, READER)],
        })
    server.start()
    yield server
    server.stop()


@pytest.fixture
def engine(docker_engines, tmp_path):
    """A started engine whose hosts file names the TLS server."""
    hosts = str(tmp_path / 'hosts')
    _write(hosts, HOSTS)
    return docker_engines('docker', hosts_file=hosts).start()


def _load(engine, archive):
    [loaded] = engine.load(archive)
    image_id = engine.image_id(loaded)
    assert image_id and image_id.startswith('sha256:')
    return loaded, image_id


# -- login, push and pull over TLS with token auth ---------------------------

def test_login_push_pull_over_tls_with_token_auth(
        engine, secured, ca_pem, docker_archive):
    name = '%s:%d' % (REGISTRY_NAME, secured.port)
    result = engine.login(name, WRITER.name, WRITER.password, check=False)
    assert result.returncode != 0
    assert 'x509' in result.stderr or 'certificate' in result.stderr, \
        result.stderr
    assert name not in engine.client_auths()

    engine.trust(name, ca_pem)
    mark = secured.log_offset()
    assert 'Login Succeeded' in engine.login(
        name, WRITER.name, WRITER.password).stdout
    assert engine.client_auths()[name] == {
        'auth': _auth(WRITER.name, WRITER.password)}

    loaded, image_id = _load(engine, docker_archive)
    reference = name + '/docker/round-trip:v1'
    engine.run('tag', loaded, reference)
    digest = _push(engine, reference)
    _wait_for_request(secured, mark, _request(
        ['PUT'], ['/v2/docker/round-trip/manifests/v1'], 201))
    requests = _requests(secured, mark)
    assert ('GET', '/v2/', 401) in requests
    assert any(method == 'GET' and path.startswith('/auth/token?')
               and status == 200 for method, path, status in requests)
    # Filed under the default namespace, as ``docker.io/docker/round-trip``.
    assert _manifest_status(secured, 'docker.io/docker/round-trip',
                            'v1') == 200

    engine.run('rmi', reference, loaded)
    assert engine.image_id(reference) is None
    engine.run('pull', reference)
    assert engine.image_id(reference) == image_id
    assert engine.repo_digests(reference) == [
        name + '/docker/round-trip@' + digest]


def test_read_user_pulls_but_its_push_is_refused(
        engine, secured, ca_pem, docker_archive):
    name = '%s:%d' % (REGISTRY_NAME, secured.port)
    engine.trust(name, ca_pem)
    loaded, image_id = _load(engine, docker_archive)
    readable = name + '/docker/readable:v1'
    engine.run('tag', loaded, readable)
    engine.login(name, WRITER.name, WRITER.password)
    _push(engine, readable)
    engine.run('logout', name)
    engine.run('rmi', readable)

    engine.login(name, READER.name, READER.password)
    engine.run('pull', readable)
    assert engine.image_id(readable) == image_id

    refused = name + '/docker/by-reader:v1'
    engine.run('tag', loaded, refused)
    result = engine.run('push', refused, check=False)
    assert _refused_by_credentials(result), result
    assert _manifest_status(secured, 'docker/by-reader', 'v1') == 404


def test_read_user_push_is_reported_as_denied(engine, secured, ca_pem,
                                              docker_archive):
    name = '%s:%d' % (REGISTRY_NAME, secured.port)
    engine.trust(name, ca_pem)
    engine.login(name, READER.name, READER.password)
    loaded, _ = _load(engine, docker_archive)
    engine.run('tag', loaded, name + '/docker/denied:v1')
    result = engine.run('push', name + '/docker/denied:v1', check=False)
    assert result.returncode != 0
    assert 'denied: requested access to the resource is denied' in \
        result.stderr, result.stderr


def test_login_with_a_wrong_password_fails(engine, secured, ca_pem):
    name = '%s:%d' % (REGISTRY_NAME, secured.port)
    engine.trust(name, ca_pem)
    for user, password in ((WRITER.name, READER.password),
                           ('nobody', WRITER.password)):
        result = engine.login(name, user, password, check=False)
        assert _refused_by_credentials(result), result
        assert name not in engine.client_auths()
    assert WRITER.password not in secured.log_text()
    assert READER.password not in secured.log_text()


# -- the buildset registry as docker's mirror --------------------------------

@pytest.fixture(scope='module')
def buildset(tmp_path_factory):
    """A registry started by run-buildset-registry on the role's default
    address ``::`` (IPv4 and IPv6): TLS, one write user, anonymous pull,
    namespaces with docker.io the default."""
    reason = docker_unavailable_reason()
    if reason:
        pytest.skip(reason)
    from tests.roles.conftest import Ansible
    from tests.roles.conftest import require
    from tests.roles.conftest import start_registry
    from tests.roles.conftest import stop_registry
    require('ansible-playbook')
    root = tmp_path_factory.mktemp('buildset-registry')
    registry = start_registry(Ansible(tmp_path_factory.mktemp('ansible')),
                              root, buildset_registry_address=None)
    yield registry
    stop_registry(root)


class RoleOutput:
    """What use-buildset-registry wrote for docker, for one ``facts``.

    The role ran with docker's paths laid out as in an engine's directory
    (``etc-docker`` for /etc/docker, ``client`` for ~/.docker) and with a
    hosts file of its own; :meth:`install` copies them into an engine, so
    that the tests with the same facts share one role run.
    """

    def __init__(self, base, facts, **extra):
        from tests.roles.conftest import Ansible
        from tests.roles.conftest import use_role_vars
        self.base = str(base)
        root = os.path.join(self.base, 'root')
        self.hosts = os.path.join(root, 'etc', 'hosts')
        _write(self.hosts, HOSTS)
        # The layout of a DockerEngine's directory.
        self.etc_dir = os.path.join(self.base, 'etc-docker')
        self.config_json = os.path.join(self.base, 'client', 'config.json')
        daemon_json = os.path.join(self.etc_dir, 'daemon.json')
        Ansible(os.path.join(self.base, 'ansible')).playbook(
            'use.yaml', use_role_vars(
                root, facts,
                use_buildset_registry_docker_daemon_json=daemon_json,
                use_buildset_registry_docker_certs_dir=os.path.join(
                    self.etc_dir, 'certs.d'),
                use_buildset_registry_docker_config=self.config_json,
                **extra))
        with open(daemon_json) as f:
            [mirror] = json.load(f)['registry-mirrors']
        assert mirror.startswith('https://'), mirror
        # HOST:PORT as the role named the registry.
        self.registry = mirror[len('https://'):]
        with open(self.config_json) as f:
            self.auths = json.load(f)['auths']

    def engine(self, docker_engines):
        """A new engine with the role's hosts file (not started)."""
        return docker_engines('docker', hosts_file=self.hosts)

    def install(self, engine):
        """Copy the role's files into ``engine``'s directories."""
        shutil.copytree(self.etc_dir, engine.etc_dir, dirs_exist_ok=True)
        shutil.copy(self.config_json, os.path.join(engine.client_config,
                                                   'config.json'))


@pytest.fixture(scope='module')
def use_role(tmp_path_factory):
    """``use_role(facts)``: the role's RoleOutput; one run per facts."""
    outputs = {}

    def run(facts, **extra):
        key = json.dumps([facts, extra], sort_keys=True)
        if key not in outputs:
            outputs[key] = RoleOutput(tmp_path_factory.mktemp('use-role'),
                                      facts, **extra)
        return outputs[key]
    return run


def _engine_configured_by(output, docker_engines, archive):
    """An engine that runs before the role (with the test image loaded)
    and restarts with what the role wrote, as docker on a node restarts
    after its daemon.json changed. Returns it, the image name and ID."""
    engine = output.engine(docker_engines).start()
    loaded, image_id = _load(engine, archive)
    output.install(engine)
    engine.restart()
    with open(engine.daemon_json_path) as f:
        assert json.load(f)['registry-mirrors'] == [
            'https://' + output.registry]
    return engine, loaded, image_id


def _push_library_image(engine, output, loaded, repository):
    """Push as the build roles do, with the credentials the role wrote;
    ``library/NAME`` has no registry host in front, so the namespaced
    registry files it under its default namespace, docker.io. Removes the
    local copies; returns the digest."""
    reference = '%s/library/%s:v1' % (output.registry, repository)
    engine.run('tag', loaded, reference)
    digest = _push(engine, reference)
    engine.run('rmi', reference, loaded)
    return digest


def _pull_through_mirror(engine, server, reference, image_id, digest):
    """``docker pull reference`` succeeds, and came from ``server``."""
    mark = server.log_offset()
    engine.run('pull', reference)
    assert engine.image_id(reference) == image_id
    assert any(entry.endswith('@' + digest)
               for entry in engine.repo_digests(reference))
    name, tag = reference.rsplit(':', 1)
    if '/' not in name:
        name = 'library/' + name
    # docker asks for the tag (HEAD or GET), then maybe for the digest.
    _wait_for_request(server, mark, _request(['GET', 'HEAD'], [
        '/v2/%s/manifests/%s' % (name, ref) for ref in (tag, digest)], 200))


def _mirror_refused(engine, reference):
    """``docker pull`` fails: the mirror refused it for credentials, and
    docker went on to Docker Hub, which is not there."""
    result = engine.run('pull', reference, check=False)
    assert result.returncode != 0, result
    assert 'registry-1.docker.io' in result.stderr, result.stderr
    log = engine.log()
    assert 'Attempting next endpoint for pull after error' in log, log
    assert _says_refused(log), log


@pytest.mark.parametrize('host', ['127.0.0.1', '::1'], ids=['ipv4', 'ipv6'])
def test_docker_pulls_library_images_through_the_daemon_json_mirror(
        buildset, use_role, host, docker_engines, docker_archive):
    output = use_role(dict(buildset.facts, host=host))
    assert output.registry.endswith(':%d' % buildset.port)
    engine, loaded, image_id = _engine_configured_by(
        output, docker_engines, docker_archive)
    ca = os.path.join(engine.certs_dir, output.registry, 'ca.crt')
    with open(ca) as f:
        assert f.read() == buildset.facts['cert']
    digest = _push_library_image(engine, output, loaded, 'x')

    _pull_through_mirror(engine, buildset, 'library/x:v1', image_id, digest)
    engine.run('rmi', 'library/x:v1')
    _pull_through_mirror(engine, buildset, 'x:v1', image_id, digest)

    # Without the CA the role put into certs.d, the mirror is refused and
    # docker goes on to Docker Hub, which is not there; except where docker
    # checks no certificate at all: a registry in 127.0.0.0/8.
    os.unlink(ca)
    engine.run('rmi', 'x:v1')
    result = engine.run('pull', 'x:v1', check=False)
    if host.startswith('127.'):
        # Under the alias too: dockerd resolves the name to decide.
        assert result.returncode == 0, result
    else:
        assert result.returncode != 0, result
        assert 'x509' in engine.log(), engine.log()


# -- the Docker Hub credential quirk of mirrors ------------------------------

def test_hub_key_credentials_let_docker_pull_where_anonymous_pull_is_refused(
        secured, ca_pem, use_role, docker_engines, docker_archive):
    # The secured server has a read user, so anonymous pull is refused.
    facts = {'host': '::1', 'port': secured.port, 'username': WRITER.name,
             'password': WRITER.password, 'cert': ca_pem}
    output = use_role(facts,
                      use_buildset_registry_docker_hub_credentials=True)
    own = {'auth': _auth(WRITER.name, WRITER.password)}
    # As the role writes them, when asked to, where no Hub login exists.
    assert output.auths[output.registry] == own
    assert output.auths[HUB_KEY] == own
    engine, loaded, image_id = _engine_configured_by(
        output, docker_engines, docker_archive)
    digest = _push_library_image(engine, output, loaded, 'private')

    _pull_through_mirror(engine, secured, 'library/private:v1', image_id,
                         digest)

    # It is the Hub key that counts: without it, docker pulls from the
    # mirror anonymously, which this registry refuses ...
    engine.run('rmi', 'library/private:v1')
    engine.write_client_auths({output.registry: own})
    mark = secured.log_offset()
    _mirror_refused(engine, 'library/private:v1')
    _wait_for_request(secured, mark, _request(
        ['GET', 'HEAD'], ['/v2/library/private/manifests/v1'], 401))
    # ... and someone's real Docker Hub login there is refused too: a
    # registry that refuses anonymous pull cannot be docker's mirror on a
    # node that keeps its own Docker Hub login. The buildset registry has
    # no read user, so anonymous pull, for that reason.
    engine.write_client_auths({output.registry: own,
                               HUB_KEY: {'auth': _auth('hubuser', HUB_PASS)}})
    mark = secured.log_offset()
    _mirror_refused(engine, 'library/private:v1')
    _wait_for_request(secured, mark, lambda method, path, status: (
        path.startswith('/auth/token') and status == 401))
    assert HUB_PASS not in secured.log_text()


HUB_LOGINS = {
    # What ``docker login`` writes for a user name and password.
    'password': {'auth': _auth('hubuser', HUB_PASS)},
    # What it writes when the registry returned an identity (refresh)
    # token: dockerd then asks for tokens with an OAuth2 POST, grant_type
    # refresh_token, instead of a GET with Basic credentials.
    'identity-token': {'auth': _auth('hubuser', ''),
                       'identitytoken': HUB_IDENTITY_TOKEN},
}


@pytest.mark.parametrize('login', [
    'password',
    'identity-token',
])
def test_a_real_docker_hub_login_still_pulls_through_the_buildset_registry(
        buildset, use_role, login, docker_engines, docker_archive):
    output = use_role(dict(buildset.facts, host='::1'))
    engine, loaded, image_id = _engine_configured_by(
        output, docker_engines, docker_archive)
    digest = _push_library_image(engine, output, loaded, 'hub-login')
    # The node's own Docker Hub login, which the daemon sends to the
    # mirror: foreign credentials for the buildset registry.
    engine.write_client_auths({
        output.registry: output.auths[output.registry],
        HUB_KEY: HUB_LOGINS[login]})
    mark = buildset.log_offset()
    try:
        _pull_through_mirror(engine, buildset, 'library/hub-login:v1',
                             image_id, digest)
    finally:
        log = buildset.log_text(since=mark)
        assert HUB_PASS not in log and HUB_IDENTITY_TOKEN not in log


def test_docker_login_to_the_buildset_registry_checks_the_password(
        buildset, docker_engines, tmp_path):
    hosts = str(tmp_path / 'hosts')
    _write(hosts, '127.0.0.1 localhost\n::1 localhost %s\n' % ALIAS)
    engine = docker_engines('docker', hosts_file=hosts).start()
    name = '%s:%d' % (ALIAS, buildset.port)
    engine.trust(name, buildset.facts['cert'])
    assert 'Login Succeeded' in engine.login(
        name, buildset.facts['username'], buildset.facts['password']).stdout
    engine.run('logout', name)
    result = engine.login(name, buildset.facts['username'], HUB_PASS,
                          check=False)
    assert _refused_by_credentials(result), result
