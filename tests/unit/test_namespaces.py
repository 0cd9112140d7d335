"""Which namespace a repository name belongs to."""

import pytest

from zuul_registry import oci
from zuul_registry.storage.namespaces import Namespaces, Repository


@pytest.fixture
def flat():
    return Namespaces()


@pytest.fixture
def namespaced():
    return Namespaces(namespaced=True)


# -- namespaces off -----------------------------------------------------------

@pytest.mark.parametrize('name', [
    'alpine', 'library/alpine', 'docker.io/library/alpine', 'localhost/x',
    'quay.io/x/y', 'docker.io',
])
def test_without_namespaces_every_name_is_in_the_single_area(flat, name):
    assert flat.resolve(name) == Repository(None, name)
    assert str(flat.resolve(name)) == name


@pytest.mark.parametrize('name', ['', 'Alpine', 'a//b', '_a', 'a/_tags',
                                  'x' * 256])
def test_without_namespaces_an_invalid_name_is_refused(flat, name):
    with pytest.raises(oci.GrammarError):
        flat.resolve(name)


# -- namespaces on ------------------------------------------------------------

def test_docker_and_podman_mirror_names_reach_the_same_repository(
        namespaced):
    # docker asks a mirror for "library/alpine", podman for
    # "docker.io/library/alpine".
    expected = Repository('docker.io', 'library/alpine')
    assert namespaced.resolve('docker.io/library/alpine') == expected
    assert namespaced.resolve('library/alpine') == expected
    assert str(expected) == 'docker.io/library/alpine'


def test_another_host_is_another_namespace(namespaced):
    quay = namespaced.resolve('quay.io/x/y')
    assert quay == Repository('quay.io', 'x/y')
    assert quay != namespaced.resolve('x/y')
    assert quay != namespaced.resolve('docker.io/x/y')


@pytest.mark.parametrize('name, host', [
    ('localhost/x', 'localhost'),
    ('localhost:5000/x', 'localhost:5000'),
    ('registry.example.com:5000/x', 'registry.example.com:5000'),
    ('127.0.0.1:5000/x', '127.0.0.1:5000'),
    ('host:5000/x', 'host:5000'),
])
def test_a_first_component_that_is_a_host_names_the_namespace(
        namespaced, name, host):
    assert namespaced.resolve(name) == Repository(host, 'x')


@pytest.mark.parametrize('name', ['docker.io', 'localhost', 'a.b', 'alpine'])
def test_a_single_component_is_a_repository_in_the_default_namespace(
        namespaced, name):
    assert namespaced.resolve(name) == Repository('docker.io', name)


@pytest.mark.parametrize('name', ['library/alpine', 'a/b/c'])
def test_a_first_component_that_is_not_a_host_is_part_of_the_name(
        namespaced, name):
    assert namespaced.resolve(name) == Repository('docker.io', name)


@pytest.mark.parametrize('name', [
    'bad_host.io/x', 'Host.io/x', 'host.io:port/x', '-host.io/x',
    'host.io-/x', 'host.io:5000:1/x', 'quay..io/x', 'localhost:0/x',
    'quay.io:99999/x', 'a.-b.io/x', 'quay.io./x',
])
def test_an_invalid_host_is_refused(namespaced, name):
    with pytest.raises(oci.GrammarError):
        namespaced.resolve(name)


@pytest.mark.parametrize('name', [
    'docker.io/', 'docker.io/Alpine', 'docker.io/_tags', 'docker.io//x',
    'localhost:5000', 'Library/alpine', '',
])
def test_an_invalid_repository_is_refused(namespaced, name):
    with pytest.raises(oci.GrammarError):
        namespaced.resolve(name)


def test_the_whole_name_including_host_is_at_most_255_characters(
        namespaced):
    host = 'registry.example.com:5000'
    repository = 'a' * (255 - len(host) - 1)
    assert namespaced.resolve(host + '/' + repository) == \
        Repository(host, repository)
    with pytest.raises(oci.GrammarError):
        namespaced.resolve(host + '/' + repository + 'a')


def test_a_name_in_the_default_namespace_counts_the_namespace_too(
        namespaced):
    # "docker.io/" + name is how the catalog lists it and tokens name it;
    # that spelling must resolve to the same repository.
    name = 'library/' + 'a' * (255 - len('docker.io/library/'))
    repository = namespaced.resolve(name)
    assert namespaced.resolve(str(repository)) == repository
    with pytest.raises(oci.GrammarError):
        namespaced.resolve(name + 'a')
    assert Namespaces().resolve(name + 'a').name == name + 'a'


def test_a_configured_default_namespace_is_used():
    namespaces = Namespaces(namespaced=True,
                            default_namespace='registry.example.com')
    assert namespaces.resolve('library/alpine') == \
        Repository('registry.example.com', 'library/alpine')
    assert namespaces.resolve('docker.io/library/alpine') == \
        Repository('docker.io', 'library/alpine')
