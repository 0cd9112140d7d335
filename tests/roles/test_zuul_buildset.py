"""A Zuul buildset played the way zuul-jobs users run it.

Every playbook is its own ansible-playbook run, as Zuul runs them, and
each job keeps its result data file as Zuul's executor does (the
zuul_return stand-in, ``conftest.zuul_job``); a job sees what its parent
returned only as variables, and its own earlier playbooks only through that
file. Every node's client files (hosts file, certs.d, daemon.json,
registries.conf, auth files) are under a directory of the test.

1. Producer buildset, registry job (``example-buildset-registry``, the
   site's child of zuul-registry-buildset-registry with the intermediate
   registry secret): pre-run ``buildset-registry/pre.yaml`` starts the
   registry and returns ``buildset_registry`` with zuul_return; run
   ``buildset-registry/run.yaml`` pauses.
2. A dependent build job: pre-run ``buildset-registry/use.yaml`` with the
   returned ``buildset_registry``; then the build step pushes as zuul-jobs'
   build roles do, to ``zuul-jobs.buildset-registry:PORT/<repository>``
   (the alias the use role wrote into the node's hosts file, which the push
   resolves through that file bind-mounted over /etc/hosts in a mount
   namespace of its own).
3. The registry job resumes: post-run ``buildset-registry/post.yaml``, a
   separate run without the ``buildset_registry`` fact, pushes to the
   intermediate registry and returns the artifacts.
4. A later change's buildset: its registry job's pre-run gets those
   artifacts (``zuul.artifacts``) and pulls them into its new registry,
   and points the node at it; then ``docker pull`` (dockerd started with
   the daemon.json, certs.d and hosts file the role wrote) and
   ``podman pull`` (with the role's registries.conf and auth file) of
   ``docker.io/test/buildset:latest`` by its public name get the image the
   first buildset built. The machine has no network: the pulls can only
   come from the buildset registry.
"""

import json
import os
import platform

import pytest

from tests import images
from tests.clients.tools import ContainerTools
from tests.docker_engine import DockerEngine
from tests.docker_engine import docker_unavailable_reason
from tests.roles.conftest import Ansible
from tests.roles.conftest import REPO_ROOT
from tests.roles.conftest import hosts_file_argv
from tests.roles.conftest import require
from tests.roles.conftest import run_role_vars
from tests.roles.conftest import start_registry
from tests.roles.conftest import stop_registry
from tests.roles.conftest import use_role_vars
from tests.roles.conftest import zuul_job
from tests.server_process import free_port

IMAGE = 'docker.io/test/buildset'
ALIAS = 'zuul-jobs.buildset-registry'
PLAYBOOKS = os.path.join(REPO_ROOT, 'playbooks', 'buildset-registry')
PRE_RUN = os.path.join(PLAYBOOKS, 'pre.yaml')
RUN = os.path.join(PLAYBOOKS, 'run.yaml')
POST_RUN = os.path.join(PLAYBOOKS, 'post.yaml')
USE = os.path.join(PLAYBOOKS, 'use.yaml')
ARCHITECTURES = {'x86_64': 'amd64', 'aarch64': 'arm64'}


def node(base):
    """A node's root: its hosts file starts as a fresh node's."""
    root = str(base)
    os.makedirs(os.path.join(root, 'etc'))
    with open(os.path.join(root, 'etc', 'hosts'), 'w') as f:
        f.write('127.0.0.1 localhost\n::1 localhost ip6-localhost\n')
    return root


def node_vars(root, **extra):
    """The use role's paths on a node (no buildset_registry: in a pre-run
    the run role sets it, and an extra variable would override the fact)."""
    variables = use_role_vars(
        root, None,
        use_buildset_registry_kubelet_config=os.path.join(
            root, 'var/lib/kubelet/config.json'), **extra)
    del variables['buildset_registry']
    return variables


def in_node_namespace(root, *argv):
    """``argv`` with the node's hosts file over /etc/hosts, in a private
    mount namespace, as a process on the node would resolve names."""
    return hosts_file_argv(os.path.join(root, 'etc', 'hosts'), argv)


def read_results(zuul):
    with open(zuul['executor']['result_data_file']) as f:
        return json.load(f)


def registry_log(root):
    with open(os.path.join(root, 'registry.log'),
              errors='replace') as f:
        return f.read()


@pytest.fixture
def intermediate(tmp_path):
    """The site's long-lived intermediate registry."""
    require('ansible-playbook', 'skopeo', 'podman')
    reason = docker_unavailable_reason()
    if reason:
        pytest.skip(reason)
    registry = start_registry(Ansible(tmp_path / 'site'),
                              tmp_path / 'intermediate')
    yield dict(host='127.0.0.1', port=registry.port,
               username=registry.facts['username'],
               password=registry.facts['password'],
               cert=registry.facts['cert'])
    stop_registry(tmp_path / 'intermediate')


def test_a_buildset_builds_and_a_later_one_pulls_by_public_name(
        intermediate, tmp_path):
    container_images = [{'repository': IMAGE, 'tags': ['latest']}]
    arch = ARCHITECTURES.get(platform.machine(), 'amd64')
    layout = str(tmp_path / 'layout')
    index = images.build_multiarch_layout(
        layout, 'latest', platforms=sorted({'amd64', 'arm64', arch}),
        label='zuul buildset')
    native = next(image for image in index.images
                  if image.platform['architecture'] == arch)
    cleanups = []
    try:
        # 1. The producer buildset's registry job: pre-run, then run.
        producer = Ansible(tmp_path / 'producer-executor')
        producer_zuul = zuul_job(producer, tmp_path / 'producer-job',
                                 build='producer-build',
                                 job='example-buildset-registry')
        producer_node = node(tmp_path / 'producer-node')
        cleanups.append(lambda: stop_registry(
            os.path.join(producer_node, 'registry')))
        producer.playbook(PRE_RUN, dict(
            run_role_vars(os.path.join(producer_node, 'registry'),
                          free_port()),
            **node_vars(producer_node),
            intermediate_registry=intermediate,
            container_images=container_images, zuul=producer_zuul))
        producer.playbook(RUN, dict(zuul=producer_zuul))
        results = read_results(producer_zuul)
        assert results['data']['zuul']['pause'] is True
        buildset_registry = results['secret_data']['buildset_registry']
        port = buildset_registry['port']

        # 2. A dependent build job: Zuul hands it what the registry job
        # returned, as variables. It pushes as the build roles do.
        builder = Ansible(tmp_path / 'build-executor')
        build_zuul = zuul_job(builder, tmp_path / 'build-job',
                              build='image-build', job='myproject-build')
        build_node = node(tmp_path / 'build-node')
        builder.playbook(USE, dict(
            use_role_vars(build_node, buildset_registry,
                          use_buildset_registry_kubelet_config=os.path.join(
                              build_node, 'var/lib/kubelet/config.json')),
            zuul=build_zuul))
        with open(os.path.join(build_node, 'etc', 'hosts')) as f:
            assert '127.0.0.1 %s' % ALIAS in f.read()
        tools = ContainerTools(tmp_path / 'build-tools')
        cleanups.append(tools.cleanup)
        tools.env['REGISTRY_AUTH_FILE'] = os.path.join(
            build_node, 'home/.config/containers/auth.json')
        alias = '%s:%d' % (ALIAS, port)
        tools.run(*in_node_namespace(
            build_node, 'skopeo', '--policy', tools.policy, 'copy', '--all',
            '--dest-cert-dir', os.path.join(
                build_node, 'etc/containers/certs.d', alias),
            'oci:%s:latest' % layout,
            'docker://%s/%s:latest' % (alias, IMAGE)))

        # 3. The registry job resumes: its post-run is a run of its own.
        producer.playbook(POST_RUN, dict(
            intermediate_registry=intermediate,
            container_images=container_images, zuul=producer_zuul))
        artifacts = read_results(producer_zuul)['data']['zuul']['artifacts']
        assert [a['metadata'] for a in artifacts] == [{
            'type': 'container_image', 'repository': IMAGE, 'tag': 'latest'}]
        stop_registry(os.path.join(producer_node, 'registry'))

        # 4. A later change's buildset: its registry job gets the
        # artifacts of the change ahead, as Zuul gives them.
        consumer = Ansible(tmp_path / 'consumer-executor')
        consumer_zuul = zuul_job(
            consumer, tmp_path / 'consumer-job', build='consumer-build',
            job='example-buildset-registry', artifacts=[
                dict(artifact, project='myorg/myproject', change='1',
                     patchset='1', job='example-buildset-registry')
                for artifact in artifacts])
        consumer_node = node(tmp_path / 'consumer-node')
        consumer_registry = os.path.join(consumer_node, 'registry')
        cleanups.append(lambda: stop_registry(consumer_registry))
        engine = DockerEngine(tmp_path / 'docker', hosts_file=os.path.join(
            consumer_node, 'etc', 'hosts'))
        cleanups.append(engine.cleanup)
        consumer.playbook(PRE_RUN, dict(
            run_role_vars(consumer_registry, free_port()),
            **node_vars(
                consumer_node,
                use_buildset_registry_docker_daemon_json=(
                    engine.daemon_json_path),
                use_buildset_registry_docker_certs_dir=engine.certs_dir,
                use_buildset_registry_docker_config=os.path.join(
                    engine.client_config, 'config.json')),
            intermediate_registry=intermediate,
            container_images=container_images, zuul=consumer_zuul))
        consumer_port = read_results(
            consumer_zuul)['secret_data']['buildset_registry']['port']
        consumer_alias = '%s:%d' % (ALIAS, consumer_port)

        # docker, started (as on the node, after the role's restart) with
        # the daemon.json, certs.d and hosts file the role wrote.
        engine.start()
        mark = len(registry_log(consumer_registry))
        engine.run('pull', IMAGE + ':latest')
        assert engine.image_id(IMAGE + ':latest') == native.config.digest
        log = registry_log(consumer_registry)[mark:]
        assert 'test/buildset/manifests/' in log, log

        # podman, with the registries.conf and auth file the role wrote.
        podman = ContainerTools(tmp_path / 'podman')
        cleanups.append(podman.cleanup)
        podman.env['CONTAINERS_REGISTRIES_CONF'] = os.path.join(
            consumer_node, 'etc/containers/registries.conf')
        podman.env['REGISTRY_AUTH_FILE'] = os.path.join(
            consumer_node, 'home/.config/containers/auth.json')
        mark = len(registry_log(consumer_registry))
        podman.run(*in_node_namespace(
            consumer_node, 'podman', *podman._storage_flags(), 'pull',
            '--cert-dir', os.path.join(
                consumer_node, 'etc/containers/certs.d', consumer_alias),
            IMAGE + ':latest'))
        inspect = json.loads(podman.podman(
            'image', 'inspect', IMAGE + ':latest').stdout)
        assert 'sha256:' + inspect[0]['Id'] == native.config.digest
        log = registry_log(consumer_registry)[mark:]
        assert 'GET /v2/docker.io/test/buildset/manifests/' in log, log
    finally:
        for cleanup in reversed(cleanups):
            cleanup()
