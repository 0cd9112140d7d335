"""Fixtures for the real-client tests: servers, client config, test images.

Set ``ZUUL_REGISTRY_TEST_SERVER=distribution`` to run the tests that need no
namespaces against the CNCF Distribution registry (``docker-registry``)
instead of zuul-registry: a check of the tests themselves against the
reference implementation. Tests that need namespaces are skipped then.
"""

import os
import sys

import pytest

# tests/ has no __init__.py; make ``tests.images`` and friends importable
# however pytest was started (``pytest`` or ``python -m pytest``).
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from tests import docker_engine  # noqa: E402
from tests import images  # noqa: E402
from tests.clients.tools import ContainerTools  # noqa: E402
from tests.clients.tools import Layout  # noqa: E402
from tests.clients.tools import require_tools  # noqa: E402
from tests.server_process import DistributionProcess  # noqa: E402
from tests.server_process import ServerProcess  # noqa: E402

SERVER_KIND = os.environ.get('ZUUL_REGISTRY_TEST_SERVER', 'zuul-registry')


@pytest.fixture
def registry(tmp_path):
    """A registry without namespaces, anonymous push and pull."""
    if SERVER_KIND == 'distribution':
        require_tools('docker-registry')
        server = DistributionProcess(tmp_path / 'registry')
    else:
        server = ServerProcess(tmp_path / 'registry')
    server.start()
    yield server
    server.stop()


@pytest.fixture
def namespaced_registry(tmp_path):
    """A namespaced registry whose default namespace is docker.io.

    ``HOST/quay.io/x/y`` is ``x/y`` in namespace quay.io; a first component
    without '.' or ':' (and not 'localhost') means the default namespace, so
    ``HOST/x/y`` is ``HOST/docker.io/x/y``.
    """
    if SERVER_KIND == 'distribution':
        pytest.skip('docker-registry has no namespaces')
    server = ServerProcess(tmp_path / 'namespaced', namespaced=True,
                           default_namespace='docker.io')
    server.start()
    yield server
    server.stop()


@pytest.fixture
def containers(tmp_path):
    """skopeo/podman/buildah with all config and storage under tmp_path."""
    tools = ContainerTools(tmp_path / 'containers')
    yield tools
    tools.cleanup()


@pytest.fixture
def skopeo(containers):
    require_tools('skopeo')
    return containers


@pytest.fixture
def oci_image(tmp_path):
    """A two-layer linux/amd64 image as ``oci:DIR:v1``; ``.image`` has
    the manifest, config and layers that were written."""
    layout = tmp_path / 'oci-image'
    return Layout(layout, 'v1', images.build_layout(layout, 'v1'))


@pytest.fixture
def multiarch_image(tmp_path):
    """An image index over linux/amd64 and linux/arm64 as ``oci:DIR:v1``."""
    layout = tmp_path / 'oci-multiarch'
    return Layout(layout, 'v1', images.build_multiarch_layout(layout, 'v1'))


@pytest.fixture
def docker_archive(skopeo, oci_image, tmp_path):
    """``oci_image`` as a docker-archive tarball named test/archive:v1."""
    path = str(tmp_path / 'image.tar')
    images.make_docker_archive(str(oci_image.path), 'v1', path,
                               'test/archive:v1', env=skopeo.env,
                               policy=skopeo.policy)
    return path


@pytest.fixture
def docker_engines(tmp_path):
    """Make private docker engines: ``docker_engines(name, **kw)`` is a
    :class:`tests.docker_engine.DockerEngine` under ``tmp_path/name``, not
    started yet; each is stopped and removed after the test. Skips the
    test where dockerd cannot run."""
    reason = docker_engine.docker_unavailable_reason()
    if reason:
        pytest.skip(reason)
    engines = []

    def make(name='docker', **kw):
        engine = docker_engine.DockerEngine(tmp_path / name, **kw)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.cleanup()
