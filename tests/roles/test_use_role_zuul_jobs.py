"""use-buildset-registry as a drop-in for zuul-jobs' role (issue 10).

The alias for every IP host, with credentials and CA for ALIAS:PORT and
IP:PORT, proven by real pushes to ALIAS:PORT (skopeo, and docker with the
daemon.json the role wrote) against a registry started by
run-buildset-registry; a Docker Hub login of the user's own that stays;
containerd hosts.toml files merged; zuul-jobs' variables
(buildset_registry_unqualified_registries, buildset_registry_docker_user)
and the kubelet config.json link.
"""

import base64
import json
import os
import pwd
import re
import subprocess
import time
import tomllib

import pytest

from tests import images
from tests.clients.tools import ContainerTools
from tests.roles.conftest import Ansible
from tests.roles.conftest import hosts_file_argv
from tests.roles.conftest import require
from tests.roles.conftest import use_role_vars

ALIAS = 'zuul-jobs.buildset-registry'
FACTS = {
    'host': '203.0.113.5',
    'port': 5000,
    'username': 'zuul',
    'password': 'not-a-real-password',
    'cert': '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
}
AUTH = base64.b64encode(b'zuul:not-a-real-password').decode()
HUB = 'https://index.docker.io/v1/'


def path(root, name):
    return os.path.join(str(root), name.lstrip('/'))


def read(root, name):
    with open(path(root, name)) as f:
        return f.read()


def write(root, name, text):
    name = path(root, name)
    os.makedirs(os.path.dirname(name), exist_ok=True)
    with open(name, 'w') as f:
        f.write(text)


def run_role(ansible, root, facts=FACTS, **extra):
    """The role through use-facts.yaml; returns (result, saved facts)."""
    fact_file = os.path.join(ansible.base, 'use-facts.json')
    variables = use_role_vars(str(root), facts, test_fact_file=fact_file,
                              **extra)
    result = ansible.playbook('use-facts.yaml', variables)
    with open(fact_file) as f:
        return result, json.load(f)


SITE_HOSTS_TOML = '''\
# Site settings: keep me.
server = "https://docker.example.com"

# The site mirror.
[host."https://mirror.example.com"]
  capabilities = ["pull", "resolve"]
  skip_verify = true

[host."https://203.0.113.5:5000/v2/docker.io"]
  capabilities = ["pull"]
'''
EXISTING_DOCKER_CONFIG = {
    'auths': {HUB: {'auth': 'aHViOmxvZ2lu'},
              'quay.io': {'auth': 'cXVheTpsb2dpbg=='}},
    'credsStore': 'secretservice',
    'credHelpers': {'gcr.io': 'gcloud'},
    'psFormat': 'table {{.ID}}',
}


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    """The role run twice, for an IPv4 registry, over a root with the
    site's own files: a Docker Hub login, a containerd hosts.toml with a
    site mirror (and an entry of an older run for the registry's address),
    search registries, a kubelet directory."""
    require('ansible-playbook')
    base = tmp_path_factory.mktemp('site')
    root = base / 'root'
    write(root, '/etc/hosts', '127.0.0.1 localhost\n')
    write(root, '/home/.docker/config.json',
          json.dumps(EXISTING_DOCKER_CONFIG))
    write(root, '/etc/containerd/certs.d/docker.io/hosts.toml',
          SITE_HOSTS_TOML)
    write(root, '/etc/containers/registries.conf',
          'unqualified-search-registries = ["registry.fedoraproject.org", '
          '"docker.io"]\n')
    os.makedirs(path(root, '/var/lib/kubelet'))
    ansible = Ansible(base / 'ansible')
    extra = dict(
        buildset_registry_unqualified_registries=['quay.io', 'docker.io'],
        # The explicit path variable wins over the user's home.
        buildset_registry_docker_user='nobody')
    first, facts = run_role(ansible, root, **extra)
    second, _ = run_role(ansible, root, **extra)
    return root, first, second, facts


# -- 1: the alias for every IP host --------------------------------------------

def test_an_ipv4_registry_is_named_by_the_alias(site):
    root, _, _, facts = site
    assert facts['buildset_registry_alias'] == ALIAS
    assert read(root, '/etc/hosts') == (
        '127.0.0.1 localhost\n203.0.113.5 %s\n' % ALIAS)
    alias, address = '%s:5000' % ALIAS, '203.0.113.5:5000'
    daemon = json.loads(read(root, '/etc/docker/daemon.json'))
    assert daemon['registry-mirrors'] == ['https://' + alias]
    conf = tomllib.loads(read(root, '/etc/containers/registries.conf'))
    assert conf['registry'][0]['mirror'][0] == {
        'location': alias + '/docker.io'}
    hosts = tomllib.loads(read(root, '/etc/containerd/certs.d/quay.io/'
                               'hosts.toml'))
    assert list(hosts['host']) == ['https://%s/v2/quay.io' % alias]
    buildkit = tomllib.loads(read(root, '/etc/buildkit/buildkitd.toml'))
    assert buildkit['registry']['docker.io']['mirrors'] == [
        alias + '/docker.io']
    # Credentials and CA for the alias and, as before, for IP:PORT.
    for name in (alias, address):
        for tool in ('docker', 'containers', 'containerd'):
            assert read(root, '/etc/%s/certs.d/%s/ca.crt' % (
                tool, name)) == FACTS['cert']
        assert buildkit['registry'][name]['ca'] == [path(
            root, '/etc/containers/certs.d/%s/ca.crt' % name)]
    docker = json.loads(read(root, '/home/.docker/config.json'))['auths']
    containers = json.loads(read(
        root, '/home/.config/containers/auth.json'))['auths']
    for auths in (docker, containers):
        assert auths[alias] == auths[address] == {'auth': AUTH}


def test_second_run_changes_nothing_and_logs_no_secret(site):
    _, first, second, _ = site
    assert second.changed == 0, second.output
    for run in (first, second):
        assert AUTH not in run.output
        assert FACTS['password'] not in run.output


def test_a_registry_host_name_is_its_own_alias(ansible, tmp_path):
    """Also: Docker Hub's key already holding our credentials stays; the
    search registries default to docker.io; no kubelet, no link."""
    root = tmp_path / 'root'
    write(root, '/etc/hosts', '127.0.0.1 localhost\n')
    write(root, '/home/.docker/config.json', json.dumps(
        {'auths': {HUB: {'auth': AUTH}}}))
    _, facts = run_role(ansible, root,
                        dict(FACTS, host='registry.example.com'))
    assert facts['buildset_registry_alias'] == 'registry.example.com'
    assert read(root, '/etc/hosts') == '127.0.0.1 localhost\n'
    auths = json.loads(read(root, '/home/.docker/config.json'))['auths']
    assert auths == {HUB: {'auth': AUTH},
                     'registry.example.com:5000': {'auth': AUTH}}
    conf = tomllib.loads(read(root, '/etc/containers/registries.conf'))
    assert conf['unqualified-search-registries'] == ['docker.io']
    assert not os.path.lexists(path(root, '/var/lib/kubelet'))


def test_an_ipv6_registry_also_keeps_credentials_for_its_address(
        ansible, tmp_path):
    """Also: a kubelet config.json of its own is kept."""
    root = tmp_path / 'root'
    write(root, '/etc/hosts', '')
    write(root, '/var/lib/kubelet/config.json', '{"auths": {}}')
    result, facts = run_role(ansible, root, dict(FACTS, host='2001:db8::5'))
    assert facts['buildset_registry_alias'] == ALIAS
    assert read(root, '/etc/hosts') == '2001:db8::5 %s\n' % ALIAS
    auths = json.loads(read(
        root, '/home/.config/containers/auth.json'))['auths']
    assert sorted(auths) == ['[2001:db8::5]:5000', '%s:5000' % ALIAS]
    assert os.path.exists(path(
        root, '/etc/containers/certs.d/[2001:db8::5]:5000/ca.crt'))
    assert read(root, '/var/lib/kubelet/config.json') == '{"auths": {}}'
    assert 'left alone' in result.output


HUB_LOGIN = base64.b64encode(b'someone:hub-password').decode()


@pytest.fixture(scope='module')
def alias_root(buildset_registry, tmp_path_factory):
    """The role's files for the session registry (127.0.0.1), docker's
    written straight into the directory of a DockerEngine
    (``root/docker``: its /etc/docker and client config). The client
    config holds a Docker Hub login of someone else."""
    base = tmp_path_factory.mktemp('alias')
    root = base / 'root'
    write(root, '/etc/hosts', '127.0.0.1 localhost\n')
    write(root, '/docker/client/config.json', json.dumps(
        {'auths': {HUB: {'auth': HUB_LOGIN}}}))
    Ansible(base / 'ansible').playbook('use.yaml', use_role_vars(
        str(root), buildset_registry.facts,
        use_buildset_registry_docker_daemon_json=path(
            root, '/docker/etc-docker/daemon.json'),
        use_buildset_registry_docker_certs_dir=path(
            root, '/docker/etc-docker/certs.d'),
        use_buildset_registry_docker_config=path(
            root, '/docker/client/config.json')))
    return root


def wait_for_log(registry, offset, pattern):
    """The registry's log since ``offset`` once ``pattern`` is in it (the
    access log line is written just after the response)."""
    for _ in range(100):
        log = registry.log_text(since=offset)
        if re.search(pattern, log):
            return log
        time.sleep(0.1)
    raise AssertionError('%r not in the registry log:\n%s' % (pattern, log))


def skopeo_copy_to_alias(tools, root, registry, layout, repository):
    """skopeo copy to ALIAS:PORT, as zuul-jobs' build roles push, with the
    role's auth.json, certs.d and hosts file; returns the result."""
    alias = '%s:%d' % (ALIAS, registry.port)
    tools.env['REGISTRY_AUTH_FILE'] = path(
        root, '/home/.config/containers/auth.json')
    argv = ['skopeo', '--policy', tools.policy, 'copy', '--dest-cert-dir',
            path(root, '/etc/containers/certs.d/' + alias),
            'oci:%s:latest' % layout,
            'docker://%s/%s:latest' % (alias, repository)]
    return subprocess.run(
        hosts_file_argv(path(root, '/etc/hosts'), argv), env=tools.env,
        capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL)


def test_skopeo_pushes_to_the_alias_with_the_written_files(
        buildset_registry, alias_root, tmp_path):
    require('skopeo', 'unshare')
    layout = str(tmp_path / 'layout')
    images.build_layout(layout, 'latest', label='pushed to the alias')
    tools = ContainerTools(tmp_path / 'skopeo')
    try:
        offset = buildset_registry.log_offset()
        result = skopeo_copy_to_alias(tools, alias_root, buildset_registry,
                                      layout, 'docker.io/test/alias-push')
        assert result.returncode == 0, result.stderr
        wait_for_log(buildset_registry, offset,
                     r'"PUT /v2/docker\.io/test/alias-push/manifests/latest ')
    finally:
        tools.cleanup()


# -- docker: push to the alias; pull through the mirror with a Hub login ----

@pytest.fixture
def docker_engine(alias_root):
    from tests.docker_engine import DockerEngine, docker_available
    if not docker_available():
        pytest.skip('docker is not installed')
    engine = DockerEngine(path(alias_root, '/docker'),
                          hosts_file=path(alias_root, '/etc/hosts'))
    yield alias_root, engine
    engine.cleanup()


def test_docker_pushes_to_the_alias_and_pulls_through_the_mirror(
        buildset_registry, docker_engine, tmp_path):
    """The role wrote straight into the engine's /etc/docker and client
    config, which holds a Docker Hub login of someone else: it stays, the
    daemon sends it to the mirror, and the registry still serves the pull
    (anonymous read)."""
    root, engine = docker_engine
    with open(os.path.join(engine.client_config, 'config.json')) as f:
        assert json.load(f)['auths'][HUB] == {'auth': HUB_LOGIN}
    engine.start()
    alias = '%s:%d' % (ALIAS, buildset_registry.port)
    # An image in the registry, pushed by skopeo to the alias.
    layout = str(tmp_path / 'layout')
    image = images.build_layout(layout, 'latest', label='docker mirror')
    tools = ContainerTools(tmp_path / 'skopeo')
    try:
        result = skopeo_copy_to_alias(tools, root, buildset_registry,
                                      layout, 'docker.io/test/mirrored')
        assert result.returncode == 0, result.stderr
    finally:
        tools.cleanup()
    # docker pull test/mirrored: only the mirror has it (no network).
    offset = buildset_registry.log_offset()
    engine.run('pull', 'test/mirrored:latest')
    log = wait_for_log(buildset_registry, offset,
                       r'"(HEAD|GET) /v2/(docker\.io/)?test/mirrored/'
                       r'manifests/latest ')
    # The daemon sent the Hub login to the mirror, which answered it with
    # an anonymous pull token.
    assert "Unknown credentials for 'someone'" in log, log
    inspect = json.loads(engine.run('image', 'inspect',
                                    'test/mirrored:latest').stdout)
    assert inspect[0]['Id'] == image.config.digest
    # docker push ALIAS:PORT/..., as zuul-jobs' build-docker-image does.
    engine.run('tag', 'test/mirrored:latest', alias + '/test/pushed:latest')
    offset = buildset_registry.log_offset()
    engine.run('push', alias + '/test/pushed:latest')
    wait_for_log(buildset_registry, offset,
                 r'"PUT /v2/test/pushed/manifests/latest ')


# -- 5: a Docker Hub login of the user's own is kept -------------------------

def test_an_existing_docker_hub_login_is_never_replaced(site):
    root = site[0]
    docker = json.loads(read(root, '/home/.docker/config.json'))
    assert docker['auths'][HUB] == {'auth': 'aHViOmxvZ2lu'}
    assert docker['auths']['quay.io'] == {'auth': 'cXVheTpsb2dpbg=='}
    assert docker['auths']['%s:5000' % ALIAS] == {'auth': AUTH}
    assert {key: value for key, value in docker.items() if key != 'auths'} \
        == {key: value for key, value in EXISTING_DOCKER_CONFIG.items()
            if key != 'auths'}


# -- 6: containerd hosts.toml merged -----------------------------------------

def test_containerd_hosts_toml_keeps_site_mirrors(site):
    root = site[0]
    text = read(root, '/etc/containerd/certs.d/docker.io/hosts.toml')
    hosts = tomllib.loads(text)
    ours = 'https://%s:5000/v2/docker.io' % ALIAS
    # Ours first; the site's mirror after it; the older entry for our
    # registry by its address is gone.
    assert list(hosts['host']) == [ours, 'https://mirror.example.com']
    assert hosts['server'] == 'https://docker.example.com'
    assert hosts['host']['https://mirror.example.com'] == {
        'capabilities': ['pull', 'resolve'], 'skip_verify': True}
    assert hosts['host'][ours] == {
        'capabilities': ['pull', 'resolve'],
        'ca': path(root, '/etc/containerd/certs.d/%s:5000/ca.crt' % ALIAS),
        'override_path': True}
    assert '# Site settings: keep me.' in text
    assert '# The site mirror.\n[host."https://mirror.example.com"]' in text


# -- 7: zuul-jobs' variables -------------------------------------------------

def test_unqualified_registries_come_first_and_the_others_stay(site):
    conf = tomllib.loads(read(site[0], '/etc/containers/registries.conf'))
    assert conf['unqualified-search-registries'] == [
        'quay.io', 'docker.io', 'registry.fedoraproject.org']


def test_docker_user_decides_whose_config_json(ansible, tmp_path):
    """buildset_registry_docker_user picks the user's home; check mode, so
    nothing is written outside the temporary root."""
    root = tmp_path / 'root'
    variables = use_role_vars(str(root), FACTS,
                              buildset_registry_docker_user='nobody')
    del variables['use_buildset_registry_docker_config']
    fact_file = os.path.join(ansible.base, 'facts.json')
    variables['test_fact_file'] = fact_file
    ansible.playbook('use-facts.yaml', variables, check=True)
    with open(fact_file) as f:
        saved = json.load(f)
    assert saved['docker_config'] == os.path.join(
        pwd.getpwnam('nobody').pw_dir, '.docker', 'config.json')


def test_an_explicit_docker_config_path_wins_over_the_docker_user(site):
    root, _, _, facts = site
    assert facts['docker_config'] == path(root, '/home/.docker/config.json')


def test_kubelet_config_json_links_to_the_docker_config(site):
    root = site[0]
    link = path(root, '/var/lib/kubelet/config.json')
    assert os.readlink(link) == path(root, '/home/.docker/config.json')
    with open(link) as f:
        assert json.load(f)['auths']['%s:5000' % ALIAS] == {'auth': AUTH}
