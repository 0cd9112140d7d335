"""push-to-intermediate-registry and pull-from-intermediate-registry.

The session registry is the buildset registry of a first buildset; a
second registry started by the run role plays the intermediate registry;
a third, fresh one is the buildset registry of a later buildset. A
two-platform image goes from the first to the intermediate registry and
from there into the fresh one, and keeps its digests.
"""

import base64
import hashlib
import json
import os

import pytest

from tests import images
from tests.clients.tools import ContainerTools
from tests.roles.conftest import require
from tests.roles.conftest import start_registry
from tests.roles.conftest import stop_registry

REPOSITORY = 'docker.io/test/multi'
BUILD = 'b0123'


def auth_file(path, *registries):
    auths = {}
    for registry in registries:
        auths['127.0.0.1:%d' % registry.port] = {'auth': base64.b64encode((
            '%s:%s' % (registry.facts['username'],
                       registry.facts['password'])).encode()).decode()}
    with open(path, 'w') as f:
        json.dump({'auths': auths}, f)
    return path


def cert_dir(path, registry):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, 'ca.crt'), 'w') as f:
        f.write(registry.facts['cert'])
    return str(path)


def manifest_digest(tools, registry, reference, cert_path):
    raw = tools.skopeo('inspect', '--raw', '--cert-dir', cert_path,
                       'docker://127.0.0.1:%d/%s' % (registry.port,
                                                     reference)).stdout
    return 'sha256:' + hashlib.sha256(raw.encode()).hexdigest()


@pytest.fixture(scope='module')
def registries(buildset_registry, tmp_path_factory):
    require('skopeo')
    from tests.roles.conftest import Ansible
    base = tmp_path_factory.mktemp('intermediate')
    ansible = Ansible(base / 'ansible')
    intermediate = start_registry(ansible, base / 'intermediate')
    try:
        fresh = start_registry(ansible, base / 'fresh')
    except BaseException:
        stop_registry(base / 'intermediate')
        raise
    try:
        yield ansible, buildset_registry, intermediate, fresh, base
    finally:
        stop_registry(base / 'intermediate')
        stop_registry(base / 'fresh')


def facts_with_host(registry):
    return dict(registry.facts)


def test_push_then_pull_keeps_a_two_platform_image(registries, tmp_path):
    ansible, source, intermediate, fresh, base = registries
    # The role's temporary credential directories go under TMPDIR.
    tmpdir = tmp_path / 'tmpdir'
    tmpdir.mkdir()
    ansible.env['TMPDIR'] = str(tmpdir)

    tools = ContainerTools(tmp_path / 'skopeo')
    tools.env['REGISTRY_AUTH_FILE'] = auth_file(
        str(tmp_path / 'auth.json'), source, intermediate, fresh)
    source_certs = cert_dir(tmp_path / 'certs-source', source)
    layout = str(tmp_path / 'layout')
    index = images.build_multiarch_layout(layout, 'v1')
    for tag in ('v1', 'v2'):
        tools.skopeo('copy', '--all', '--dest-cert-dir', source_certs,
                     'oci:%s:v1' % layout, 'docker://127.0.0.1:%d/%s:%s'
                     % (source.port, REPOSITORY, tag))

    intermediate_registry = dict(host='127.0.0.1', port=intermediate.port,
                                 username=intermediate.facts['username'],
                                 password=intermediate.facts['password'],
                                 cert=intermediate.facts['cert'])
    push = ansible.playbook('push.yaml', dict(
        buildset_registry=source.facts,
        intermediate_registry=intermediate_registry,
        container_images=[{'repository': REPOSITORY, 'tags': ['v1', 'v2']}],
        zuul={'build': BUILD}))
    for secret in (source.facts['password'],
                   intermediate.facts['password']):
        assert secret not in push.output
    assert list(tmpdir.iterdir()) == []

    artifacts = [entry['data']['zuul']['artifacts']
                 for entry in ansible.zuul_returns()
                 if 'zuul' in entry.get('data', {})]
    assert artifacts == [[
        {'name': '%s:%s' % (REPOSITORY, tag),
         'url': 'docker://127.0.0.1:%d/%s:%s_%s' % (
             intermediate.port, REPOSITORY, BUILD, tag),
         'metadata': {'type': 'container_image', 'repository': REPOSITORY,
                      'tag': tag}}
        for tag in ('v1', 'v2')]]

    intermediate_certs = cert_dir(tmp_path / 'certs-intermediate',
                                  intermediate)
    for tag in ('v1', 'v2'):
        assert manifest_digest(
            tools, intermediate, '%s:%s_%s' % (REPOSITORY, BUILD, tag),
            intermediate_certs) == index.digest

    zuul_artifacts = [
        {'name': 'docs', 'url': 'https://example.com/docs/',
         'metadata': {'type': 'docs_site'}},
        {'name': 'no metadata', 'url': 'https://example.com/x'},
    ] + artifacts[0]
    pull = ansible.playbook('pull.yaml', dict(
        buildset_registry=fresh.facts,
        intermediate_registry=intermediate_registry,
        zuul={'build': 'later-build', 'artifacts': zuul_artifacts}))
    assert fresh.facts['password'] not in pull.output
    assert list(tmpdir.iterdir()) == []

    fresh_certs = cert_dir(tmp_path / 'certs-fresh', fresh)
    for tag in ('v1', 'v2'):
        assert manifest_digest(tools, fresh, '%s:%s' % (REPOSITORY, tag),
                               fresh_certs) == index.digest
    for image in index.images:
        assert manifest_digest(tools, fresh, '%s@%s' % (
            REPOSITORY, image.digest), fresh_certs) == image.digest
    tools.cleanup()


def test_pull_without_artifacts_does_nothing(registries):
    ansible, _, intermediate, fresh, _ = registries
    result = ansible.playbook('pull.yaml', dict(
        buildset_registry=fresh.facts,
        intermediate_registry=dict(host='127.0.0.1', port=intermediate.port,
                                   username='zuul', password='unused'),
        zuul={'build': 'x', 'artifacts': []}))
    assert result.changed == 0


def test_image_lists_as_zuul_jobs_reads_them(registries, tmp_path):
    """Tags default to latest, docker_images wins over container_images,
    and a failed build pushes nothing."""
    ansible, source, intermediate, _, _ = registries
    tools = ContainerTools(tmp_path / 'skopeo')
    tools.env['REGISTRY_AUTH_FILE'] = auth_file(
        str(tmp_path / 'auth.json'), source, intermediate)
    layout = str(tmp_path / 'layout')
    index = images.build_multiarch_layout(layout, 'v1')
    tools.skopeo('copy', '--all', '--dest-cert-dir',
                 cert_dir(tmp_path / 'certs-source', source),
                 'oci:%s:v1' % layout,
                 'docker://127.0.0.1:%d/%s:latest' % (source.port,
                                                     REPOSITORY))
    intermediate_registry = dict(host='127.0.0.1', port=intermediate.port,
                                 username=intermediate.facts['username'],
                                 password=intermediate.facts['password'],
                                 cert=intermediate.facts['cert'])
    variables = dict(
        buildset_registry=source.facts,
        intermediate_registry=intermediate_registry,
        docker_images=[{'repository': REPOSITORY}],
        container_images=[{'repository': 'docker.io/test/not-built'}],
        zuul={'build': 'b-latest'})
    returned = len(ansible.zuul_returns())
    failed = ansible.playbook('push.yaml', dict(variables, zuul_success=False))
    assert failed.changed == 0
    assert len(ansible.zuul_returns()) == returned

    ansible.playbook('push.yaml', variables)
    artifacts = ansible.zuul_returns()[-1]['data']['zuul']['artifacts']
    assert [artifact['name'] for artifact in artifacts] == [
        REPOSITORY + ':latest']
    assert manifest_digest(
        tools, intermediate, REPOSITORY + ':b-latest_latest',
        cert_dir(tmp_path / 'certs-intermediate', intermediate)) \
        == index.digest
    tools.cleanup()
