"""The Containerfile's image, built for real and run as a buildset registry.

A module fixture builds the image offline, as README.md's "Container image"
says: a Debian base made by ``mmdebstrap`` (the tarball is cached under
``~/.cache/zuul-registry-tests``, or ``$ZUUL_REGISTRY_TEST_CACHE``, keyed by
its package list) and imported with podman, the project and its
dependencies as wheels built on the host, and ``buildah bud --isolation
chroot`` into a private container storage under a temporary directory
(tests/clients/tools.py). The image gets run-buildset-registry's default
name, so the role's container mode runs it without being told the image.

Then:

* run-buildset-registry's container mode with podman and with docker (a
  private engine, tests/docker_engine.py, which loads the image from a
  docker-archive), each serving a push and a pull over TLS with the user
  the role made;
* the image started the way zuul-jobs' own run-buildset-registry starts
  its image: ``IMAGE zuul-registry -d`` with zuul-jobs' configuration at
  /conf/registry.yaml, its self-signed certificate in /tls and storage in
  /storage, with docker; a push and a pull over TLS with its credentials.

podman runs containers here only with the cgroupfs manager, runc and low
ulimits; those go into the test's containers.conf (CONTAINERS_CONF), so the
role runs plain ``podman run`` as on a CI node.
"""

import datetime
import hashlib
import ipaddress
import json
import os
import platform
import secrets
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests import images
from tests.clients.tools import ContainerTools
from tests.clients.tools import require_tools
from tests.docker_engine import DockerEngine
from tests.docker_engine import docker_cli
from tests.docker_engine import docker_unavailable_reason
from tests.roles.conftest import REPO_ROOT
from tests.roles.conftest import start_registry
from tests.roles.conftest import stop_registry
from tests.server_process import free_port

SUITE = 'bookworm'
# Keep in step with README.md's "Container image".
BASE_PACKAGES = ('python3', 'python3-venv', 'ca-certificates')
# Merged /usr without the usrmerge package (and the perl it needs), and no
# manuals, translations or documentation but the copyright files.
BASE_OPTIONS = (
    '--variant=minbase', '--format=tar',
    '--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr',
    '--dpkgopt=path-exclude=/usr/share/man/*',
    '--dpkgopt=path-exclude=/usr/share/locale/*',
    '--dpkgopt=path-exclude=/usr/share/info/*',
    '--dpkgopt=path-exclude=/usr/share/doc/*',
    '--dpkgopt=path-include=/usr/share/doc/*/copyright',
)
BASE_IMAGE = 'localhost/zuul-registry-base:%s' % SUITE
# run-buildset-registry's default buildset_registry_image.
IMAGE = 'localhost/zuul-registry:latest'
CONTAINER = 'buildset_registry'
# The Python of the base image: the wheels are built for it.
BASE_PYTHON = (3, 11)
SOURCE_FILES = ('setup.cfg', 'pyproject.toml', 'README.md', 'zuul_registry')

# podman on this kind of machine: see the module docstring.
CONTAINERS_CONF = '''\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "none"
tmp_dir = %s
'''


def cache_dir():
    return (os.environ.get('ZUUL_REGISTRY_TEST_CACHE')
            or os.path.join(os.path.expanduser('~'), '.cache',
                            'zuul-registry-tests'))


def base_tarball():
    """The mmdebstrap root file system, from the cache or made now."""
    key = hashlib.sha256(json.dumps(
        [SUITE, BASE_OPTIONS, sorted(BASE_PACKAGES), platform.machine()]
    ).encode()).hexdigest()[:16]
    directory = cache_dir()
    path = os.path.join(directory, 'base-%s-%s.tar' % (SUITE, key))
    if os.path.exists(path):
        return path
    os.makedirs(directory, exist_ok=True)
    partial = '%s.%d.partial' % (path, os.getpid())
    try:
        result = subprocess.run(
            ['mmdebstrap', *BASE_OPTIONS,
             '--include=' + ','.join(BASE_PACKAGES), SUITE, partial],
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=1200)
        assert result.returncode == 0, result.stderr[-4000:]
        # Another run may have finished first: same contents either way.
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return path


def build_wheels(directory):
    """Wheels of this checkout and its dependencies, built on the host
    from a copy of the source (a build writes into its source tree)."""
    source = os.path.join(directory, 'source')
    os.makedirs(source)
    for name in SOURCE_FILES:
        origin = os.path.join(REPO_ROOT, name)
        if os.path.isdir(origin):
            shutil.copytree(origin, os.path.join(source, name),
                            ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copy(origin, source)
    wheels = os.path.join(directory, 'context', 'wheels')
    result = subprocess.run(
        [sys.executable, '-m', 'pip', 'wheel', '--quiet',
         '--disable-pip-version-check', '--wheel-dir', wheels, source],
        stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return os.path.dirname(wheels)


class BuiltImage:

    def __init__(self, tools, directory):
        self.tools = tools
        self.directory = directory
        self._archive = None

    def docker_archive(self):
        """The image as a docker-archive tarball (made once)."""
        if self._archive is None:
            path = os.path.join(self.directory, 'image.tar')
            self.tools.podman('save', '--format', 'docker-archive',
                              '--output', path, IMAGE, timeout=600)
            self._archive = path
        return self._archive


@pytest.fixture(scope='module')
def built_image(tmp_path_factory):
    require_tools('mmdebstrap', 'podman', 'buildah', 'skopeo', 'runc')
    if os.geteuid() != 0:
        pytest.skip('podman with a private storage and runc needs root')
    if sys.version_info[:2] != BASE_PYTHON:
        pytest.skip('the wheels must be built by Python %d.%d, the base '
                    "image's" % BASE_PYTHON)
    directory = str(tmp_path_factory.mktemp('container-image'))
    tools = ContainerTools(os.path.join(directory, 'tools'))
    with open(tools.containers_conf, 'w') as f:
        f.write(CONTAINERS_CONF % json.dumps(tools._dir('libpod-tmp')))
    try:
        tools.podman('import', base_tarball(), BASE_IMAGE, timeout=600)
        context = build_wheels(directory)
        tools.buildah('bud', '--isolation', 'chroot', '--build-arg',
                      'BASE_IMAGE=' + BASE_IMAGE, '--file',
                      os.path.join(REPO_ROOT, 'Containerfile'),
                      '--tag', IMAGE, context, timeout=900)
        yield BuiltImage(tools, directory)
    finally:
        tools.cleanup()


@pytest.fixture(scope='module')
def docker_engine(built_image, tmp_path_factory):
    """One private engine for the module, the image loaded into it once
    (on vfs storage each load and each removal copies it whole)."""
    reason = docker_unavailable_reason()
    if reason:
        pytest.skip(reason)
    engine = DockerEngine(tmp_path_factory.mktemp('docker'))
    engine.start()
    try:
        assert IMAGE in engine.load(built_image.docker_archive())
        yield engine
    finally:
        engine.cleanup()


@pytest.fixture
def docker(docker_engine):
    """The module's engine; the test's registry container goes after it."""
    yield docker_engine
    docker_engine.run('rm', '--force', CONTAINER, check=False)


def podman_env(tools):
    """What the role's podman needs: the test's storage and settings."""
    return {key: tools.env[key] for key in (
        'CONTAINERS_STORAGE_CONF', 'CONTAINERS_CONF',
        'CONTAINERS_REGISTRIES_CONF')}


def write_ca(directory, pem):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, 'ca.crt'), 'w') as f:
        f.write(pem)
    return str(directory)


def skopeo_push_and_pull(tools, tmp_path, host_port, username, password,
                         ca_pem):
    """Push a small image with skopeo over TLS, pull it back, compare."""
    certs = write_ca(tmp_path / 'skopeo-certs', ca_pem)
    creds = '%s:%s' % (username, password)
    layout = str(tmp_path / 'layout')
    image = images.build_layout(layout, 'v1', label='pushed into ' +
                                host_port)
    reference = 'docker://%s/test/container-mode:v1' % host_port
    tools.skopeo('copy', '--quiet', '--dest-cert-dir', certs,
                 '--dest-creds', creds, 'oci:%s:v1' % layout, reference)
    pulled = str(tmp_path / 'pulled')
    tools.skopeo('copy', '--quiet', '--src-cert-dir', certs,
                 '--src-creds', creds, reference, 'oci:%s:v1' % pulled)
    index = images.read_layout_index(pulled)
    assert index['manifests'][0]['digest'] == image.digest
    # Without the credentials, no push.
    refused = tools.skopeo('copy', '--quiet', '--dest-cert-dir', certs,
                           'oci:%s:v1' % layout,
                           'docker://%s/test/anonymous:v1' % host_port,
                           check=False)
    assert refused.returncode != 0


def docker_push_and_pull(engine, tools, tmp_path, host_port, username,
                         password, ca_pem):
    """Push a small image with docker over TLS, pull it back, compare."""
    engine.trust(host_port, ca_pem)
    engine.login(host_port, username, password)
    layout = str(tmp_path / 'docker-layout')
    images.build_layout(layout, 'v1', label='docker push to ' + host_port)
    archive = images.make_docker_archive(
        layout, 'v1', str(tmp_path / 'small.tar'), 'test/small:v1',
        env=tools.env, policy=tools.policy)
    engine.load(archive)
    target = '%s/test/small:v1' % host_port
    engine.run('tag', 'test/small:v1', target)
    image_id = engine.image_id(target)
    engine.run('push', target)
    engine.run('rmi', target, 'test/small:v1')
    assert engine.image_id(target) is None
    engine.run('pull', target)
    assert engine.image_id(target) == image_id


# -- run-buildset-registry's container mode -------------------------------

def test_container_mode_with_podman_runs_the_default_image(
        built_image, ansible, tmp_path):
    tools = built_image.tools
    ansible.env.update(podman_env(tools))
    root = tmp_path / 'root'

    def container(field):
        return tools.podman('inspect', '--format', '{{%s}}' % field,
                            CONTAINER).stdout.strip()

    try:
        # No buildset_registry_image: the default names this server's
        # image.
        registry = start_registry(
            ansible, root, buildset_registry_container_command='podman')
        assert container('.ImageName') == IMAGE
        assert container('.State.Running') == 'true'
        assert not (root / 'venv').exists()
        facts = registry.facts
        skopeo_push_and_pull(tools, tmp_path, registry.host_port,
                             facts['username'], facts['password'],
                             facts['cert'])
        first_pid = container('.State.Pid')

        # Unchanged: nothing happens. Changed: the container restarts.
        variables = dict(registry.variables)
        del variables['test_fact_file']
        assert ansible.playbook('run.yaml', variables).changed == 0
        assert container('.State.Pid') == first_pid
        variables['buildset_registry_username'] = 'other'
        assert ansible.playbook('run.yaml', variables).changed > 0
        assert container('.State.Running') == 'true'
        assert container('.State.Pid') != first_pid
    finally:
        tools.podman('rm', '--force', '--time', '5', CONTAINER, check=False)


def test_container_mode_with_docker_from_zuul_jobs_container_command(
        built_image, ansible, docker, tmp_path):
    """A zuul-jobs job names its engine in ``container_command``; the
    role's own variable takes it as its default."""
    tools = built_image.tools
    ansible.env.update(DOCKER_HOST=docker.env['DOCKER_HOST'],
                       DOCKER_CONFIG=docker.env['DOCKER_CONFIG'])
    registry = start_registry(
        ansible, tmp_path / 'root', container_command=docker_cli(),
        buildset_registry_container_command=None)
    running = docker.run('inspect', '--format',
                         '{{.Config.Image}} {{.State.Running}}', CONTAINER)
    assert running.stdout.split() == [IMAGE, 'true']
    assert not (tmp_path / 'root' / 'venv').exists()
    facts = registry.facts
    docker_push_and_pull(docker, tools, tmp_path, registry.host_port,
                         facts['username'], facts['password'], facts['cert'])


# -- the image under zuul-jobs' own run-buildset-registry ------------------

# zuul-jobs' roles/run-buildset-registry/templates/registry.yaml.j2,
# rendered for a node whose ansible_host is 127.0.0.1.
ZUUL_JOBS_CONFIG = '''\
registry:
  address: '::'
  port: {port}
  public-url: 'https://127.0.0.1:{port}'
  tls-cert: /tls/cert.pem
  tls-key: /tls/cert.key
  secret: "{secret}"
  users:
    - name: zuul
      pass: "{password}"
      access: write
  storage:
    driver: filesystem
    root: /storage
'''


def self_signed_certificate(directory):
    """What zuul-jobs' ``openssl req -x509 -newkey rsa:2048 -nodes``
    writes: tls/cert.key and a self-signed tls/cert.pem for the alias,
    the node's address and 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, '127.0.0.1')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName('zuul-jobs.buildset-registry'),
                x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                           critical=True)
            .sign(key, hashes.SHA256()))
    key_path = os.path.join(directory, 'cert.key')
    with open(key_path, 'wb') as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    with open(os.path.join(directory, 'cert.pem'), 'w') as f:
        f.write(pem)
    return pem


def https_get(host_port, ca_pem, path='/v2/'):
    context = ssl.create_default_context(cadata=ca_pem)
    try:
        with urllib.request.urlopen('https://%s%s' % (host_port, path),
                                    context=context, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_for_registry(engine, host_port, ca_pem, *, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return https_get(host_port, ca_pem)
        except (urllib.error.URLError, ConnectionError, ssl.SSLError):
            state = engine.run('inspect', '--format', '{{.State.Running}}',
                               CONTAINER).stdout.strip()
            if state != 'true' or time.monotonic() > deadline:
                raise AssertionError(
                    'the registry did not answer:\n%s' % engine.run(
                        'logs', CONTAINER, check=False).stderr[-4000:])
            time.sleep(0.3)


def test_image_runs_as_zuul_jobs_run_buildset_registry_starts_it(
        built_image, docker, tmp_path):
    root = tmp_path / 'buildset_registry'
    for name in ('tls', 'conf'):
        (root / name).mkdir(parents=True)
    # The port is the one zuul-jobs' template writes into the file; the
    # engine here has no bridge to publish 5000 on, so the container
    # shares the host's network and listens on a free port instead.
    port = free_port()
    password = secrets.token_urlsafe(15)
    config = root / 'conf' / 'registry.yaml'
    config.write_text(ZUUL_JOBS_CONFIG.format(
        port=port, secret=secrets.token_urlsafe(15), password=password))
    config.chmod(0o600)
    cert = self_signed_certificate(str(root / 'tls'))
    docker.run('run', '-d', '--name=' + CONTAINER, '--restart=always',
               '--network=host', '--volume=%s/tls:/tls' % root,
               '--volume=%s/conf:/conf' % root, IMAGE, 'zuul-registry', '-d')
    host_port = '127.0.0.1:%d' % port
    status, _ = wait_for_registry(docker, host_port, cert)
    assert status == 401
    docker_push_and_pull(docker, built_image.tools, tmp_path, host_port,
                         'zuul', password, cert)
    # Served from /storage inside the container, with debug logging.
    stored = docker.run('exec', CONTAINER, 'find', '/storage', '-type', 'f')
    assert stored.stdout.strip()
    logs = docker.run('logs', CONTAINER).stderr
    assert 'Configuration /conf/registry.yaml' in logs
    assert 'DEBUG' in logs
    # docker stop's SIGTERM ends the server (it is PID 1) cleanly.
    docker.run('stop', '--time', '20', CONTAINER)
    exit_code = docker.run('inspect', '--format', '{{.State.ExitCode}}',
                           CONTAINER).stdout.strip()
    assert exit_code == '0'


def test_container_mode_without_the_image_says_how_to_get_it(
        built_image, ansible, tmp_path):
    ansible.env.update(podman_env(built_image.tools))
    missing = 'localhost/zuul-registry:missing'
    variables = dict(
        buildset_registry_root=str(tmp_path / 'root'),
        buildset_registry_port=free_port(),
        buildset_registry_host='127.0.0.1',
        buildset_registry_address='127.0.0.1',
        buildset_registry_install=False,
        buildset_registry_python=sys.executable,
        buildset_registry_container_command='podman',
        buildset_registry_container_fallback=False,
        buildset_registry_image=missing)
    result = ansible.playbook('run.yaml', variables, expect_failure=True)
    assert 'The registry image %s is not on this node' % missing \
        in result.output, result.output
    assert 'Containerfile' in result.output, result.output
    # Nothing was written for an image that is not there.
    assert not (tmp_path / 'root' / 'registry.yaml').exists()


def test_without_the_image_a_zuul_jobs_job_still_gets_a_registry(
        built_image, ansible, tmp_path):
    """A job that sets zuul-jobs' container_command, on a node without
    this server's image: the registry runs from the checkout instead."""
    ansible.env.update(podman_env(built_image.tools))
    root = tmp_path / 'root'
    port = free_port()
    variables = dict(
        buildset_registry_root=str(root),
        buildset_registry_port=port,
        buildset_registry_host='127.0.0.1',
        buildset_registry_address='127.0.0.1',
        buildset_registry_install=False,
        buildset_registry_python=sys.executable,
        buildset_registry_service_manager='daemon',
        container_command='podman',
        buildset_registry_image='localhost/zuul-registry:missing')
    try:
        result = ansible.playbook('run.yaml', variables)
        assert 'runs from this checkout as a daemon service' \
            in result.output, result.output
        with open(root / 'registry.pid') as f:
            pid = int(f.read())
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            assert b'zuul_registry' in f.read()
        # It serves: the role waited for /v2/ over TLS before returning.
        assert (root / 'registry.yaml').exists()
    finally:
        stop_registry(root)
