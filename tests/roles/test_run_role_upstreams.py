"""run-buildset-registry with pull-through, and the provenance report that
the buildset registry job's post-run saves with the job's logs.

The upstream is a second zuul-registry (plain HTTP on loopback) whose read
user is required for pulls, so the role must hand the credentials on.  The
role runs once with ``buildset_registry_upstreams``; skopeo then pulls
through it, with the role's CA and user, what only the upstream has.  The
post-run (``playbooks/buildset-registry/post.yaml``, a run of its own as
Zuul runs it) saves ``zuul-registry report`` into the fake job's log root.
"""

import hashlib
import json
import os
import sys

import pytest
import yaml

from tests import images
from tests.clients.tools import ContainerTools
from tests.clients.tools import Layout
from tests.roles.conftest import REPO_ROOT
from tests.roles.conftest import require
from tests.roles.conftest import run_role_vars
from tests.roles.conftest import start_registry
from tests.roles.conftest import stop_registry
from tests.server_process import ServerProcess
from tests.server_process import free_port

WRITER = ('writer', 'writer-password-1')
READER = ('reader', 'upstream-reader-secret-2')
IMAGE = 'library/app'
POST_RUN = os.path.join(REPO_ROOT, 'playbooks', 'buildset-registry',
                        'post.yaml')


@pytest.fixture(scope='module')
def upstream(tmp_path_factory):
    port = free_port()
    server = ServerProcess(tmp_path_factory.mktemp('upstream'), port=port,
                           registry={
                               'secret': 'u' * 40,
                               'public-url': 'http://127.0.0.1:%d' % port,
                               'users': [
                                   {'name': WRITER[0], 'pass': WRITER[1],
                                    'access': 'write'},
                                   {'name': READER[0], 'pass': READER[1],
                                    'access': 'read'}]})
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope='module')
def skopeo(tmp_path_factory):
    require('skopeo')
    tools = ContainerTools(tmp_path_factory.mktemp('skopeo'))
    yield tools
    tools.cleanup()


@pytest.fixture(scope='module')
def upstream_image(upstream, skopeo, tmp_path_factory):
    """library/app:v1 on the upstream only; its manifest bytes."""
    layout = str(tmp_path_factory.mktemp('layout') / 'oci')
    image = Layout(layout, 'v1', images.build_layout(
        layout, 'v1', label='only upstream'))
    skopeo.skopeo('copy', '--dest-tls-verify=false', '--dest-creds',
                  '%s:%s' % WRITER, image.ref,
                  'docker://%s/%s:v1' % (upstream.host_port, IMAGE))
    return skopeo.skopeo(
        'inspect', '--raw', '--tls-verify=false', '--creds',
        '%s:%s' % READER, 'docker://%s/%s:v1' % (
            upstream.host_port, IMAGE)).stdout.encode()


@pytest.fixture(scope='module')
def pulling_registry(session_ansible, upstream, tmp_path_factory):
    """A buildset registry started by the role with the upstream."""
    root = tmp_path_factory.mktemp('pull-through-registry')
    registry = start_registry(
        session_ansible, root,
        buildset_registry_upstreams=[{
            'namespace': 'docker.io', 'url': upstream.url,
            'username': READER[0], 'password': READER[1], 'tags': 'pin'}],
        buildset_registry_upstream_expiration=86400)
    registry.ansible = session_ansible
    yield registry
    stop_registry(root)


def pull(skopeo, registry, tmp_path, reference):
    """skopeo inspect --raw through ``registry``, with the role's CA and
    user; the result (returncode, stdout, stderr)."""
    cert_dir = tmp_path / 'certs'
    cert_dir.mkdir(exist_ok=True)
    (cert_dir / 'ca.crt').write_text(registry.facts['cert'])
    return skopeo.skopeo(
        'inspect', '--raw', '--cert-dir', str(cert_dir), '--creds',
        '%s:%s' % (registry.facts['username'], registry.facts['password']),
        'docker://%s/%s' % (registry.host_port, reference), check=False)


def test_pulls_through_from_the_upstream(pulling_registry, upstream_image,
                                         skopeo, tmp_path):
    result = pull(skopeo, pulling_registry, tmp_path,
                  'docker.io/%s:v1' % IMAGE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.encode() == upstream_image
    assert ('pull-through docker.io from http://127.0.0.1:'
            in pulling_registry.log_text())


def test_without_upstreams_what_nobody_pushed_is_unknown(
        buildset_registry, upstream_image, skopeo, tmp_path):
    result = pull(skopeo, buildset_registry, tmp_path,
                  'docker.io/%s:v1' % IMAGE)
    assert result.returncode != 0
    assert 'manifest unknown' in result.stderr.lower(), result.stderr


def test_upstreams_are_in_the_checked_config(pulling_registry, upstream):
    with open(os.path.join(pulling_registry.root, 'registry.yaml')) as f:
        registry = yaml.safe_load(f)['registry']
    assert registry['upstreams'] == [{
        'namespace': 'docker.io', 'url': upstream.url,
        'username': READER[0], 'password': READER[1], 'tags': 'pin'}]
    assert registry['upstream-expiration'] == 86400
    assert registry['namespaced'] is True


def test_never_logs_the_upstream_password(pulling_registry):
    assert READER[1] not in pulling_registry.first_run.output
    assert READER[1] not in pulling_registry.log_text()


def test_an_invalid_upstream_is_refused_with_its_key_path(ansible,
                                                          tmp_path):
    root = tmp_path / 'root'
    variables = run_role_vars(root, free_port(), buildset_registry_upstreams=[
        {'namespace': 'docker.io', 'password': READER[1]}])
    result = ansible.playbook('run.yaml', variables, expect_failure=True)
    assert 'registry.upstreams[0].url: required' in result.output
    assert 'registry.upstreams[0].username: required' in result.output
    assert READER[1] not in result.output
    assert not (root / 'registry.yaml').exists()
    assert not (root / 'registry.pid').exists()


# -- the provenance report in the post-run --------------------------------

def test_post_run_saves_the_report_with_the_logs(
        pulling_registry, upstream_image, upstream, skopeo, tmp_path):
    assert pull(skopeo, pulling_registry, tmp_path,
                'docker.io/%s:v1' % IMAGE).returncode == 0
    log_root = tmp_path / 'logs'
    log_root.mkdir()
    # A run of its own, as Zuul runs the post-run: no facts of the
    # pre-run, only the job's variables.
    pulling_registry.ansible.playbook(POST_RUN, dict(
        buildset_registry_root=pulling_registry.root,
        buildset_registry_python=sys.executable,
        zuul={'build': 'report-build',
              'executor': {'log_root': str(log_root)}}))
    saved = log_root / 'buildset-registry'
    text = (saved / 'report.txt').read_text()
    entries = json.loads((saved / 'report.json').read_text())
    digest = 'sha256:' + hashlib.sha256(upstream_image).hexdigest()
    assert [(e['repository'], e['reference'], e['digest'], e['source'])
            for e in entries] == [
                ('docker.io/' + IMAGE, 'v1', digest, upstream.url)]
    header, line = text.splitlines()
    assert header.split() == ['REPOSITORY', 'REFERENCE', 'DIGEST', 'SOURCE',
                              'FIRST', 'LAST']
    assert line.split()[:4] == ['docker.io/' + IMAGE, 'v1', digest,
                                upstream.url]
    # Also on the node, beside the registry's files.
    assert os.path.exists(os.path.join(pulling_registry.root, 'report.json'))


def test_post_run_reports_nothing_where_the_job_started_no_registry(
        ansible, tmp_path):
    log_root = tmp_path / 'logs'
    log_root.mkdir()
    root = tmp_path / 'no-registry'
    # A job whose parent provided the registry: no registry root here.
    result = ansible.playbook(POST_RUN, dict(
        buildset_registry_root=str(root),
        buildset_registry_python=sys.executable,
        zuul={'build': 'child-build',
              'executor': {'log_root': str(log_root)}}))
    assert result.changed == 0, result.output
    assert not (log_root / 'buildset-registry').exists()
    assert not root.exists()


def test_post_run_without_zuul_keeps_the_report_on_the_node(
        pulling_registry, tmp_path):
    pulling_registry.ansible.playbook(POST_RUN, dict(
        buildset_registry_root=pulling_registry.root,
        buildset_registry_python=sys.executable))
    with open(os.path.join(pulling_registry.root, 'report.txt')) as f:
        assert f.readline().startswith('REPOSITORY')
