"""The roles end to end: a real registry, real clients, no network.

run-buildset-registry starts the session registry (TLS, one write user);
use-buildset-registry writes the client files into a temporary root;
skopeo pushes with the credentials the role wrote, and podman and ctr pull
``docker.io/test/image`` through the mirror configuration the role wrote.
A pull that did not go through the registry would need the network, which
is not there; the registry's access log shows it served the pull. With
``use_buildset_registry_mirror_only``, podman and ctr try only the
registry, never the upstream, as their debug logs show.
"""

import json
import os
import re
import signal
import subprocess
import tempfile

import pytest

from tests import images
from tests.clients.tools import ContainerTools
from tests.roles.conftest import Ansible
from tests.roles.conftest import hosts_file_argv
from tests.roles.conftest import require
from tests.roles.conftest import use_role_vars

IMAGE = 'docker.io/test/image'


@pytest.fixture(scope='module')
def client_root(buildset_registry, tmp_path_factory):
    """The session registry's client files, written by the use role."""
    base = tmp_path_factory.mktemp('clients')
    root = str(base / 'root')
    os.makedirs(os.path.join(root, 'etc'))
    with open(os.path.join(root, 'etc', 'hosts'), 'w') as f:
        f.write('127.0.0.1 localhost\n')
    Ansible(base / 'ansible').playbook(
        'use.yaml', use_role_vars(root, buildset_registry.facts))
    return root


@pytest.fixture(scope='module')
def pushed_image(buildset_registry, client_root, tmp_path_factory):
    """docker.io/test/image:latest, pushed by skopeo with the credentials
    and CA the use role wrote."""
    require('skopeo')
    base = tmp_path_factory.mktemp('pushed')
    layout = str(base / 'layout')
    image = images.build_layout(layout, 'latest', label='roles end to end')
    tools = ContainerTools(base / 'skopeo')
    tools.env['REGISTRY_AUTH_FILE'] = os.path.join(
        client_root, 'home/.config/containers/auth.json')
    cert_dir = os.path.join(client_root, 'etc/containers/certs.d',
                            buildset_registry.host_port)
    tools.skopeo('copy', '--dest-cert-dir', cert_dir,
                 'oci:%s:latest' % layout,
                 'docker://%s/%s:latest' % (buildset_registry.host_port,
                                            IMAGE))
    yield image
    tools.cleanup()


def test_push_needs_the_credentials(buildset_registry, client_root,
                                    tmp_path):
    require('skopeo')
    layout = str(tmp_path / 'layout')
    images.build_layout(layout, 'latest', label='anonymous push')
    tools = ContainerTools(tmp_path / 'skopeo')
    try:
        cert_dir = os.path.join(client_root, 'etc/containers/certs.d',
                                buildset_registry.host_port)
        result = tools.skopeo(
            'copy', '--dest-cert-dir', cert_dir, 'oci:%s:latest' % layout,
            'docker://%s/docker.io/test/anonymous:latest'
            % buildset_registry.host_port, check=False)
        assert result.returncode != 0
        assert 'unauthorized' in result.stderr.lower() or (
            'authentication required' in result.stderr.lower())
    finally:
        tools.cleanup()


def test_podman_pulls_through_the_written_registries_conf(
        buildset_registry, client_root, pushed_image, tmp_path):
    require('podman')
    tools = ContainerTools(tmp_path / 'podman')
    try:
        tools.env['CONTAINERS_REGISTRIES_CONF'] = os.path.join(
            client_root, 'etc/containers/registries.conf')
        tools.env['REGISTRY_AUTH_FILE'] = os.path.join(
            client_root, 'home/.config/containers/auth.json')
        cert_dir = os.path.join(client_root, 'etc/containers/certs.d',
                                buildset_registry.host_port)
        offset = buildset_registry.log_offset()
        # The mirror is named by the alias, which the role's hosts file
        # maps to 127.0.0.1 (issue 10: zuul-jobs names every IP host so).
        tools.run(*hosts_file_argv(
            os.path.join(client_root, 'etc/hosts'),
            ['podman'] + tools._storage_flags() + [
                'pull', '--cert-dir', cert_dir, IMAGE + ':latest']))
        inspect = json.loads(tools.podman(
            'image', 'inspect', IMAGE + ':latest').stdout)
        assert inspect[0]['Id'] == pushed_image.config.digest.split(':')[1]
        log = buildset_registry.log_text(since=offset)
        assert 'GET /v2/docker.io/test/image/manifests/latest' in log
        assert 'containers/' in log  # podman's user agent
    finally:
        tools.cleanup()


@pytest.fixture
def containerd(tmp_path):
    """A private containerd: its own root, state and socket."""
    require('containerd', 'ctr')
    # A socket path must stay short.
    run = tempfile.mkdtemp(prefix='zr-ctd-')
    config = os.path.join(run, 'config.toml')
    with open(config, 'w') as f:
        f.write('version = 2\nroot = "%s"\nstate = "%s"\n'
                'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                '[grpc]\n  address = "%s"\n[ttrpc]\n  address = "%s"\n'
                % (tmp_path / 'containerd-root', os.path.join(run, 'state'),
                   os.path.join(run, 'c.sock'), os.path.join(run, 't.sock')))
    log = open(tmp_path / 'containerd.log', 'wb')
    process = subprocess.Popen(['containerd', '--config', config],
                               stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    socket = os.path.join(run, 'c.sock')
    try:
        for _ in range(100):
            if subprocess.run(['ctr', '-a', socket, 'version'],
                              capture_output=True).returncode == 0:
                break
            if process.poll() is not None:
                pytest.fail('containerd exited: %s' % (
                    tmp_path / 'containerd.log').read_text())
            subprocess.run(['sleep', '0.1'])
        yield socket
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        subprocess.run(['rm', '-rf', run])


def test_ctr_pulls_through_the_written_hosts_toml(
        buildset_registry, client_root, pushed_image, containerd):
    hosts_dir = os.path.join(client_root, 'etc/containerd/certs.d')
    offset = buildset_registry.log_offset()
    # ctr resolves the hosts.toml's alias itself: with the role's hosts file.
    result = subprocess.run(hosts_file_argv(
        os.path.join(client_root, 'etc/hosts'),
        ['ctr', '-a', containerd, '-n', 'zuul-registry-test', 'content',
         'fetch', '--hosts-dir', hosts_dir, IMAGE + ':latest']),
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = subprocess.run(
        ['ctr', '-a', containerd, '-n', 'zuul-registry-test', 'content',
         'ls', '-q'], capture_output=True, text=True, timeout=60).stdout
    for blob in pushed_image.blobs:
        assert blob.digest in listed
    log = buildset_registry.log_text(since=offset)
    # containerd resolves with HEAD and adds ?ns=docker.io.
    assert re.search(r'"(HEAD|GET) /v2/docker\.io/test/image/manifests/'
                     r'latest[ ?]', log), log
    assert re.search(r'"GET /v2/docker\.io/test/image/blobs/', log), log
    assert 'containerd/' in log  # containerd's user agent


# -- mirror only: no fallback to the upstream -------------------------------

@pytest.fixture(scope='module')
def mirror_only_root(buildset_registry, tmp_path_factory):
    """The client files with use_buildset_registry_mirror_only."""
    base = tmp_path_factory.mktemp('mirror-only')
    root = str(base / 'root')
    os.makedirs(os.path.join(root, 'etc'))
    with open(os.path.join(root, 'etc', 'hosts'), 'w') as f:
        f.write('127.0.0.1 localhost\n')
    Ansible(base / 'ansible').playbook('use.yaml', use_role_vars(
        root, buildset_registry.facts,
        use_buildset_registry_mirror_only=True))
    return root


def podman_pull(buildset_registry, root, tmp_path, reference):
    """podman --log-level=debug pull with the client files in ``root``;
    (returncode, the locations podman tried)."""
    require('podman')
    tools = ContainerTools(tmp_path / 'podman')
    try:
        tools.env['CONTAINERS_REGISTRIES_CONF'] = os.path.join(
            root, 'etc/containers/registries.conf')
        tools.env['REGISTRY_AUTH_FILE'] = os.path.join(
            root, 'home/.config/containers/auth.json')
        cert_dir = os.path.join(root, 'etc/containers/certs.d',
                                buildset_registry.host_port)
        result = tools.run(*hosts_file_argv(
            os.path.join(root, 'etc/hosts'),
            ['podman'] + tools._storage_flags() + [
                '--log-level=debug', 'pull', '--cert-dir', cert_dir,
                reference]), check=False, timeout=120)
        tried = re.findall(r'Trying to access \\?"([^"\\]+)\\?"',
                           result.stderr)
        return result, tried
    finally:
        tools.cleanup()


def test_mirror_only_podman_pulls_from_the_registry_only(
        buildset_registry, client_root, mirror_only_root, pushed_image,
        tmp_path):
    alias = 'zuul-jobs.buildset-registry:%d' % buildset_registry.port
    result, tried = podman_pull(buildset_registry, mirror_only_root,
                                tmp_path / 'present', IMAGE + ':latest')
    assert result.returncode == 0, result.stderr
    # An image the registry does not have: the pull fails, and podman
    # never tried docker.io itself.
    result, tried = podman_pull(buildset_registry, mirror_only_root,
                                tmp_path / 'absent',
                                'docker.io/test/absent:latest')
    assert result.returncode != 0
    assert tried, result.stderr
    assert set(tried) == {alias + '/docker.io/test/absent:latest'}, (
        result.stderr)
    # Without mirror_only, podman goes on to docker.io after the registry.
    result, tried = podman_pull(buildset_registry, client_root,
                                tmp_path / 'fallback',
                                'docker.io/test/absent:latest')
    assert result.returncode != 0
    assert tried[0] == alias + '/docker.io/test/absent:latest', (
        result.stderr)
    assert 'docker.io/test/absent:latest' in tried, result.stderr


def ctr_fetch(containerd, root, reference):
    """ctr --debug content fetch with the hosts.toml files in ``root``;
    (returncode, the hosts containerd's resolver asked)."""
    result = subprocess.run(hosts_file_argv(
        os.path.join(root, 'etc/hosts'),
        ['ctr', '--debug', '-a', containerd, '-n', 'zuul-registry-test',
         'content', 'fetch', '--hosts-dir',
         os.path.join(root, 'etc/containerd/certs.d'), reference]),
        capture_output=True, text=True, timeout=120)
    hosts = re.findall(r'host="?([^" ]+)', result.stdout + result.stderr)
    return result, hosts


def test_mirror_only_ctr_asks_the_registry_only(
        buildset_registry, client_root, mirror_only_root, pushed_image,
        containerd):
    alias = 'zuul-jobs.buildset-registry:%d' % buildset_registry.port
    result, hosts = ctr_fetch(containerd, mirror_only_root,
                              IMAGE + ':latest')
    assert result.returncode == 0, result.stdout + result.stderr
    result, hosts = ctr_fetch(containerd, mirror_only_root,
                              'docker.io/test/absent:latest')
    assert result.returncode != 0
    assert hosts and set(hosts) == {alias}, result.stdout + result.stderr
    # Without mirror_only, containerd goes on to Docker Hub.
    result, hosts = ctr_fetch(containerd, client_root,
                              'docker.io/test/absent:latest')
    assert result.returncode != 0
    assert 'registry-1.docker.io' in hosts, result.stdout + result.stderr
