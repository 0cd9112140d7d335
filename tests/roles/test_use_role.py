"""use-buildset-registry, run for real against files in a temporary root."""

import base64
import json
import os
import stat
import tomllib

import pytest

from tests.roles.conftest import use_role_vars

FACTS = {
    'host': '203.0.113.5',
    'port': 5000,
    'username': 'zuul',
    'password': 'not-a-real-password',
    'cert': '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
}
NAMESPACES = ['docker.io', 'quay.io', 'gcr.io', 'registry.k8s.io', 'ghcr.io']
# An IPv4 registry is named by the alias (as zuul-jobs does, issue 10);
# its address keeps the credentials and the CA too.
ADDRESS = '203.0.113.5:5000'
REGISTRY = 'zuul-jobs.buildset-registry:5000'

EXISTING_REGISTRIES_CONF = '''\
# Site settings: keep this comment.
unqualified-search-registries = ["quay.io", "docker.io"]
short-name-mode = "enforcing"

[[registry]]
# Docker Hub through the site mirror.
prefix = "docker.io"
location = "docker.io"

[[registry.mirror]]
location = "mirror.example.com/hub"

[[registry]]
prefix = "internal.example.com"
location = "internal.example.com"
insecure = true

[aliases]
"tool" = "quay.io/example/tool"
'''

EXISTING_BUILDKITD = '''\
debug = true  # keep me

[registry."docker.io"]
  mirrors = ["mirror.example.com"]
  http = false

[worker.oci]
  enabled = true
'''


def read(root, path):
    with open(os.path.join(root, path.lstrip('/'))) as f:
        return f.read()


def write(root, path, text):
    path = os.path.join(root, path.lstrip('/'))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)


@pytest.fixture(scope='module')
def configured(tmp_path_factory):
    """The role run twice over a root with pre-existing client files."""
    from tests.roles.conftest import Ansible
    from tests.roles.conftest import require
    require('ansible-playbook')
    base = tmp_path_factory.mktemp('use-role')
    root = str(base / 'root')
    write(root, '/etc/docker/daemon.json', json.dumps({
        'registry-mirrors': ['https://mirror.example.com'],
        'log-driver': 'journald', 'debug': True}))
    write(root, '/etc/containers/registries.conf', EXISTING_REGISTRIES_CONF)
    write(root, '/etc/buildkit/buildkitd.toml', EXISTING_BUILDKITD)
    write(root, '/home/.docker/config.json', json.dumps({
        'auths': {'quay.io': {'auth': 'c29tZTpvbmU='}},
        'credHelpers': {'gcr.io': 'gcloud'}}))
    write(root, '/etc/hosts', '127.0.0.1 localhost\n')
    ansible = Ansible(base / 'ansible')
    variables = use_role_vars(root, FACTS)
    first = ansible.playbook('use.yaml', variables)
    second = ansible.playbook('use.yaml', variables)
    return root, first, second


def test_second_run_changes_nothing(configured):
    _, first, second = configured
    assert first.changed > 0
    assert second.changed == 0, second.output


def test_never_logs_the_password(configured):
    _, first, second = configured
    encoded = base64.b64encode(b'zuul:not-a-real-password').decode()
    for run in (first, second):
        assert 'not-a-real-password' not in run.output
        assert encoded not in run.output


def test_ca_is_trusted_everywhere(configured):
    root = configured[0]
    assert read(root, '/usr/local/share/ca-certificates/'
                'buildset-registry.crt') == FACTS['cert']
    for directory in ('docker', 'containers', 'containerd'):
        for name in (REGISTRY, ADDRESS):
            assert read(root, '/etc/%s/certs.d/%s/ca.crt' % (
                directory, name)) == FACTS['cert']
    # The trust store was updated once: when the CA was new.
    assert read(root, 'ca-updates') == 'updated\n'


def test_docker_daemon_json_keeps_mirrors_and_keys(configured):
    daemon = json.loads(read(configured[0], '/etc/docker/daemon.json'))
    assert daemon == {
        'registry-mirrors': ['https://' + REGISTRY,
                             'https://mirror.example.com'],
        'log-driver': 'journald', 'debug': True}


def test_registries_conf_mirrors_every_namespace(configured):
    text = read(configured[0], '/etc/containers/registries.conf')
    conf = tomllib.loads(text)
    by_prefix = {entry['prefix']: entry for entry in conf['registry']}
    for namespace in NAMESPACES:
        mirrors = by_prefix[namespace]['mirror']
        assert mirrors[0] == {'location': '%s/%s' % (REGISTRY, namespace)}
    # What was there stays, in its order, with its comments.
    assert by_prefix['docker.io']['mirror'][1:] == [
        {'location': 'mirror.example.com/hub'}]
    assert by_prefix['internal.example.com'] == {
        'prefix': 'internal.example.com',
        'location': 'internal.example.com', 'insecure': True}
    # buildset_registry_unqualified_registries ([docker.io]) first.
    assert conf['unqualified-search-registries'] == ['docker.io', 'quay.io']
    assert conf['short-name-mode'] == 'enforcing'
    assert conf['aliases'] == {'tool': 'quay.io/example/tool'}
    for line in EXISTING_REGISTRIES_CONF.splitlines():
        if not line.startswith('unqualified-search-registries'):
            assert line in text.splitlines()


def test_containerd_hosts_toml_per_namespace(configured):
    root = configured[0]
    for namespace in NAMESPACES:
        hosts = tomllib.loads(read(root, '/etc/containerd/certs.d/%s/'
                                   'hosts.toml' % namespace))
        url = 'https://%s/v2/%s' % (REGISTRY, namespace)
        assert list(hosts['host']) == [url]
        assert hosts['host'][url] == {
            'capabilities': ['pull', 'resolve'],
            'ca': os.path.join(root, 'etc/containerd/certs.d', REGISTRY,
                               'ca.crt'),
            'override_path': True}
    docker = tomllib.loads(read(root, '/etc/containerd/certs.d/docker.io/'
                                'hosts.toml'))
    assert docker['server'] == 'https://registry-1.docker.io'


def test_buildkitd_toml_mirrors(configured):
    root = configured[0]
    text = read(root, '/etc/buildkit/buildkitd.toml')
    conf = tomllib.loads(text)
    assert conf['debug'] is True
    assert conf['worker'] == {'oci': {'enabled': True}}
    assert conf['registry']['docker.io'] == {
        'mirrors': [REGISTRY + '/docker.io', 'mirror.example.com'],
        'http': False}
    for namespace in NAMESPACES[1:]:
        assert conf['registry'][namespace] == {
            'mirrors': ['%s/%s' % (REGISTRY, namespace)]}
    for name in (REGISTRY, ADDRESS):
        assert conf['registry'][name] == {'ca': [os.path.join(
            root, 'etc/containers/certs.d', name, 'ca.crt')]}
    assert 'debug = true  # keep me' in text


def test_credentials(configured):
    root = configured[0]
    auth = base64.b64encode(b'zuul:not-a-real-password').decode()
    docker = json.loads(read(root, '/home/.docker/config.json'))
    assert docker == {
        'auths': {'quay.io': {'auth': 'c29tZTpvbmU='},
                  REGISTRY: {'auth': auth}, ADDRESS: {'auth': auth}},
        'credHelpers': {'gcr.io': 'gcloud'}}
    containers = json.loads(read(root, '/home/.config/containers/'
                                 'auth.json'))
    assert containers == {'auths': {REGISTRY: {'auth': auth},
                                    ADDRESS: {'auth': auth}}}
    path = os.path.join(root, 'home/.config/containers/auth.json')
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_ipv4_host_gets_the_alias_in_the_hosts_file(configured):
    assert read(configured[0], '/etc/hosts') == (
        '127.0.0.1 localhost\n203.0.113.5 zuul-jobs.buildset-registry\n')


def test_ipv6_registry_is_named_by_its_alias(ansible, tmp_path):
    root = str(tmp_path / 'root')
    facts = dict(FACTS, host='2001:db8::5')
    write(root, '/etc/hosts', '')
    ansible.playbook('use.yaml', use_role_vars(root, facts))
    alias = 'zuul-jobs.buildset-registry:5000'
    assert read(root, '/etc/hosts').splitlines() == [
        '2001:db8::5 zuul-jobs.buildset-registry']
    daemon = json.loads(read(root, '/etc/docker/daemon.json'))
    assert daemon == {'registry-mirrors': ['https://' + alias]}
    conf = tomllib.loads(read(root, '/etc/containers/registries.conf'))
    assert conf['registry'][0]['mirror'][0]['location'] == (
        alias + '/docker.io')
    assert os.path.exists(os.path.join(
        root, 'etc/containers/certs.d', alias, 'ca.crt'))


def test_check_mode_writes_nothing(ansible, tmp_path):
    root = tmp_path / 'root'
    result = ansible.playbook('use.yaml', use_role_vars(str(root), FACTS),
                              check=True, diff=True)
    assert result.changed > 0
    assert not root.exists() or not any(
        files for _, _, files in os.walk(root))
    assert 'not-a-real-password' not in result.output


def test_refuses_a_version_1_registries_conf(ansible, tmp_path):
    root = str(tmp_path / 'root')
    v1 = '[registries.search]\nregistries = ["docker.io"]\n'
    write(root, '/etc/containers/registries.conf', v1)
    result = ansible.playbook('use.yaml', use_role_vars(root, FACTS),
                              expect_failure=True)
    assert 'version 1 format' in result.output
    assert read(root, '/etc/containers/registries.conf') == v1
    # Refused before anything else was written.
    written = [os.path.join(directory, name)
               for directory, _, names in os.walk(root) for name in names]
    assert written == [os.path.join(root, 'etc/containers/registries.conf')]


def test_namespaces_in_the_zuul_jobs_pair_form(ansible, tmp_path):
    root = str(tmp_path / 'root')
    namespaces = [['docker.io', 'https://registry-1.docker.io'], 'quay.io',
                  ['registry.example.com:5000',
                   'https://registry.example.com:5000']]
    ansible.playbook('use.yaml', use_role_vars(
        root, FACTS, buildset_registry_namespaces=namespaces))
    conf = tomllib.loads(read(root, '/etc/containers/registries.conf'))
    by_prefix = {entry['prefix']: entry for entry in conf['registry']}
    for namespace in ('docker.io', 'quay.io', 'registry.example.com:5000'):
        assert by_prefix[namespace]['mirror'][0] == {
            'location': '%s/%s' % (REGISTRY, namespace)}
    assert not [prefix for prefix in by_prefix if '/' in prefix]
    assert sorted(set(os.listdir(os.path.join(
        root, 'etc/containerd/certs.d'))) - {REGISTRY, ADDRESS}) == [
        'docker.io', 'quay.io', 'registry.example.com:5000']
    buildkit = tomllib.loads(read(root, '/etc/buildkit/buildkitd.toml'))
    assert buildkit['registry']['docker.io']['mirrors'] == [
        REGISTRY + '/docker.io']


@pytest.mark.parametrize('namespaces, named', [
    ('docker.io', "must be a list"),
    ([['docker.io']], 'buildset_registry_namespaces[0]: a pair must be'),
    ([['docker.io', 'registry-1.docker.io']],
     'buildset_registry_namespaces[0]: a pair must be'),
    (['quay.io', 'quay..io'], "buildset_registry_namespaces[1]: 'quay..io'"),
    (['docker.io', {'name': 'quay.io'}], 'buildset_registry_namespaces[1]'),
    (['localhost:0'], "'localhost:0' is not a registry host"),
])
def test_other_namespace_forms_stop_before_any_file_is_written(
        ansible, tmp_path, namespaces, named):
    root = tmp_path / 'root'
    result = ansible.playbook('use.yaml', use_role_vars(
        str(root), FACTS, buildset_registry_namespaces=namespaces),
        expect_failure=True)
    assert named in result.output
    assert not root.exists() or not any(
        files for _, _, files in os.walk(root))


def test_mirror_only_and_back(ansible, tmp_path):
    root = str(tmp_path / 'root')
    write(root, '/etc/containers/registries.conf', EXISTING_REGISTRIES_CONF)
    ansible.playbook('use.yaml', use_role_vars(
        root, FACTS, use_buildset_registry_mirror_only=True))
    conf = tomllib.loads(read(root, '/etc/containers/registries.conf'))
    by_prefix = {entry['prefix']: entry for entry in conf['registry']}
    for namespace in NAMESPACES:
        ours = '%s/%s' % (REGISTRY, namespace)
        # The registry is where pulls go, not only the first mirror.
        assert by_prefix[namespace]['location'] == ours
        assert by_prefix[namespace]['mirror'][0] == {'location': ours}
        hosts = tomllib.loads(read(root, '/etc/containerd/certs.d/%s/'
                                   'hosts.toml' % namespace))
        url = 'https://%s/v2/%s' % (REGISTRY, namespace)
        assert hosts['server'] == url
        assert hosts['override_path'] is True
        assert hosts['capabilities'] == ['pull', 'resolve']
    assert by_prefix['docker.io']['mirror'][1:] == [
        {'location': 'mirror.example.com/hub'}]
    assert by_prefix['internal.example.com']['location'] == (
        'internal.example.com')
    # Off again: the upstreams are where pulls fall back to, as before.
    ansible.playbook('use.yaml', use_role_vars(root, FACTS))
    conf = tomllib.loads(read(root, '/etc/containers/registries.conf'))
    by_prefix = {entry['prefix']: entry for entry in conf['registry']}
    assert by_prefix['docker.io']['location'] == 'docker.io'
    hosts = tomllib.loads(read(root, '/etc/containerd/certs.d/docker.io/'
                               'hosts.toml'))
    assert hosts['server'] == 'https://registry-1.docker.io'
    assert 'override_path' not in hosts
