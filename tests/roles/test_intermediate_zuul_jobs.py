"""The intermediate registry roles in Zuul jobs as Zuul runs them.

Zuul runs each playbook of a job (pre-run, run, post-run) as a separate
ansible-playbook run: a fact set in the pre-run is gone in the post-run.
What the pre-run returned with ``zuul_return`` stays in the executor's
result data file (``zuul.executor.result_data_file``), and that is where
the push and pull roles find ``buildset_registry`` when it is undefined,
as zuul-jobs' roles do. The zuul_return stand-in keeps that file here as
the executor does (see ``conftest.zuul_job``).

The roles also need skopeo on the node: they install it when it is
missing (unless told not to), and otherwise stop, naming skopeo, before
they do anything else.
"""

import hashlib
import json
import os
import re

import pytest
import yaml

from tests import images
from tests.clients.tools import ContainerTools
from tests.roles.conftest import Ansible
from tests.roles.conftest import REPO_ROOT
from tests.roles.conftest import ROLES
from tests.roles.conftest import require
from tests.roles.conftest import start_registry
from tests.roles.conftest import stop_registry
from tests.roles.conftest import zuul_job
from tests.roles.test_intermediate import auth_file
from tests.roles.test_intermediate import cert_dir

REPOSITORY = 'docker.io/test/zuul-jobs'
POST_RUN = os.path.join(REPO_ROOT, 'playbooks', 'buildset-registry',
                        'post.yaml')


@pytest.fixture(scope='module')
def intermediate(tmp_path_factory):
    require('skopeo')
    base = tmp_path_factory.mktemp('intermediate-zuul')
    ansible = Ansible(base / 'ansible')
    registry = start_registry(ansible, base / 'registry')
    yield registry
    stop_registry(base / 'registry')


def intermediate_vars(registry):
    return dict(host='127.0.0.1', port=registry.port,
                username=registry.facts['username'],
                password=registry.facts['password'],
                cert=registry.facts['cert'])


def digest_in(tools, registry, reference, certs):
    raw = tools.skopeo('inspect', '--raw', '--cert-dir', certs,
                       'docker://127.0.0.1:%d/%s' % (registry.port,
                                                     reference)).stdout
    return 'sha256:' + hashlib.sha256(raw.encode()).hexdigest()


def task_status(output, task_name):
    """How a task ended in ansible-playbook's output: ok, changed,
    skipping, failed or fatal (None if the task did not run)."""
    match = re.search(r'^TASK \[[^\]]*%s\][^\n]*\n(\w+)' % re.escape(
        task_name), output, re.MULTILINE)
    return match.group(1) if match else None


def test_post_run_and_pull_find_the_registry_in_the_result_data_file(
        intermediate, tmp_path):
    """The buildset registry job as Zuul runs it: the pre-run starts the
    registry (zuul_return records it in the job's result data file); the
    post-run, a separate playbook run without the fact, pushes to the
    intermediate registry. Then a later buildset's registry job pulls the
    artifacts in, again with buildset_registry only in its result file."""
    tools = ContainerTools(tmp_path / 'skopeo')
    tmpdir = tmp_path / 'tmpdir'
    tmpdir.mkdir()

    producer = Ansible(tmp_path / 'producer')
    producer.env['TMPDIR'] = str(tmpdir)
    zuul = zuul_job(producer, tmp_path / 'producer-job', build='b-post')
    source = start_registry(producer, tmp_path / 'source', zuul=zuul)
    try:
        with open(zuul['executor']['result_data_file']) as f:
            returned = json.load(f)
        assert returned['secret_data']['buildset_registry'] == source.facts

        tools.env['REGISTRY_AUTH_FILE'] = auth_file(
            str(tmp_path / 'auth.json'), source, intermediate)
        layout = str(tmp_path / 'layout')
        index = images.build_multiarch_layout(layout, 'v1')
        tools.skopeo('copy', '--all', '--dest-cert-dir',
                     cert_dir(tmp_path / 'certs-source', source),
                     'oci:%s:v1' % layout, 'docker://127.0.0.1:%d/%s:v1'
                     % (source.port, REPOSITORY))

        post = producer.playbook(POST_RUN, dict(
            intermediate_registry=intermediate_vars(intermediate),
            container_images=[{'repository': REPOSITORY, 'tags': ['v1']}],
            zuul=zuul))
    finally:
        stop_registry(tmp_path / 'source')
    assert source.facts['password'] not in post.output
    assert intermediate.facts['password'] not in post.output
    assert list(tmpdir.iterdir()) == []
    # skopeo is installed here: the install step was skipped.
    assert task_status(post.output, 'Install skopeo') == 'skipping'

    with open(zuul['executor']['result_data_file']) as f:
        artifacts = json.load(f)['data']['zuul']['artifacts']
    assert artifacts == [{
        'name': REPOSITORY + ':v1',
        'url': 'docker://127.0.0.1:%d/%s:b-post_v1' % (intermediate.port,
                                                      REPOSITORY),
        'metadata': {'type': 'container_image', 'repository': REPOSITORY,
                     'tag': 'v1'}}]
    intermediate_certs = cert_dir(tmp_path / 'certs-intermediate',
                                  intermediate)
    assert digest_in(tools, intermediate, REPOSITORY + ':b-post_v1',
                     intermediate_certs) == index.digest

    consumer = Ansible(tmp_path / 'consumer')
    consumer.env['TMPDIR'] = str(tmpdir)
    later = zuul_job(consumer, tmp_path / 'consumer-job', build='b-later',
                     artifacts=artifacts)
    fresh = start_registry(consumer, tmp_path / 'fresh', zuul=later)
    try:
        pull = consumer.playbook('pull.yaml', dict(
            intermediate_registry=intermediate_vars(intermediate),
            zuul=later))
        assert fresh.facts['password'] not in pull.output
        assert list(tmpdir.iterdir()) == []
        assert digest_in(tools, fresh, REPOSITORY + ':v1', cert_dir(
            tmp_path / 'certs-fresh', fresh)) == index.digest
    finally:
        stop_registry(tmp_path / 'fresh')
        tools.cleanup()


def test_without_a_registry_anywhere_the_roles_say_so(intermediate, tmp_path):
    ansible = Ansible(tmp_path / 'ansible')
    zuul = zuul_job(ansible, tmp_path / 'job', build='b-none',
                    artifacts=[{'name': 'x', 'url': 'docker://h/x:1',
                                'metadata': {'type': 'container_image',
                                             'repository': 'x',
                                             'tag': '1'}}])
    with open(zuul['executor']['result_data_file'], 'w') as f:
        json.dump({'data': {}, 'secret_data': {}}, f)
    for playbook in ('push.yaml', 'pull.yaml'):
        result = ansible.playbook(playbook, dict(
            intermediate_registry=intermediate_vars(intermediate),
            container_images=[{'repository': REPOSITORY}],
            zuul=zuul), expect_failure=True)
        assert 'result_data_file' in result.output, result.output


def without_skopeo(ansible, directory):
    """Give ``ansible`` a PATH with every program of its PATH but skopeo:
    one directory of links, so the shell and coreutils stay."""
    os.makedirs(str(directory))
    for entry in ansible.env['PATH'].split(os.pathsep):
        try:
            names = os.listdir(entry)
        except OSError:
            continue
        for name in names:
            link = os.path.join(str(directory), name)
            if name != 'skopeo' and not os.path.lexists(link):
                os.symlink(os.path.join(entry, name), link)
    ansible.env['PATH'] = str(directory)


@pytest.mark.parametrize('playbook,role', [
    ('push.yaml', 'push_to_intermediate_registry'),
    ('pull.yaml', 'pull_from_intermediate_registry'),
])
def test_missing_skopeo_stops_before_anything_else(
        intermediate, tmp_path, playbook, role):
    """With skopeo not on PATH and its install turned off, the role fails
    with a message naming skopeo and the variable, before it wrote any
    credentials or returned anything to Zuul."""
    ansible = Ansible(tmp_path / 'ansible')
    tmpdir = tmp_path / 'tmpdir'
    tmpdir.mkdir()
    ansible.env['TMPDIR'] = str(tmpdir)
    without_skopeo(ansible, tmp_path / 'bin')
    result = ansible.playbook(playbook, {
        'buildset_registry': dict(intermediate.facts),
        'intermediate_registry': intermediate_vars(intermediate),
        'container_images': [{'repository': REPOSITORY}],
        'zuul': {'build': 'b-noskopeo', 'artifacts': [
            {'name': REPOSITORY + ':v1',
             'url': 'docker://127.0.0.1:%d/%s:b_v1' % (intermediate.port,
                                                      REPOSITORY),
             'metadata': {'type': 'container_image',
                          'repository': REPOSITORY, 'tag': 'v1'}}]},
        role + '_install_skopeo': False,
    }, expect_failure=True)
    assert re.search(r'skopeo .*is not installed', result.output), \
        result.output
    assert role + '_install_skopeo' in result.output
    assert task_status(result.output, 'Install skopeo') is None
    assert list(tmpdir.iterdir()) == []
    assert ansible.zuul_returns() == []
    assert intermediate.facts['password'] not in result.output


def role_tasks(role):
    tasks = []
    directory = os.path.join(ROLES, role, 'tasks')
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name)) as f:
            tasks.extend(yaml.safe_load(f) or [])
    return tasks


def test_skopeo_is_installed_with_the_package_module_when_missing():
    """The install step (not run here: it would call the node's package
    manager) is a become task of the package module, only when skopeo did
    not run and the role's variable allows it; both roles use it."""
    tasks = role_tasks('push-to-intermediate-registry')
    install = next(task for task in tasks
                   if task.get('name') == 'Install skopeo')
    module = install.get('ansible.builtin.package') or install.get('package')
    assert module == {'name': 'skopeo', 'state': 'present'}
    assert install.get('become') is True
    conditions = ' '.join(install['when'])
    assert '_intermediate_registry_install_skopeo' in conditions
    assert '_intermediate_registry_skopeo_version' in conditions
    for role, prefix in (
            ('push-to-intermediate-registry', 'push_to_intermediate_registry'),
            ('pull-from-intermediate-registry',
             'pull_from_intermediate_registry')):
        with open(os.path.join(ROLES, role, 'defaults', 'main.yaml')) as f:
            assert yaml.safe_load(f)[prefix + '_install_skopeo'] is True
        text = json.dumps(role_tasks(role))
        assert 'skopeo.yaml' in text and prefix + '_install_skopeo' in text
