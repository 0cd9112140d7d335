"""The `upstreams` key of the configuration (pull-through)."""

import pytest

from zuul_registry.config.model import ConfigError, Upstream
from tests.unit.test_config import STORAGE, parse


def problems(**registry):
    with pytest.raises(ConfigError) as info:
        parse(**registry)
    return info.value.problems


def test_without_upstreams_nothing_changes():
    config = parse(storage=STORAGE)
    assert config.upstreams == ()
    assert config.upstream_for(None) is None


def test_one_upstream_without_namespaces():
    config = parse(storage=STORAGE,
                   upstreams=[{'url': 'https://registry-1.docker.io/'}])
    assert config.upstreams == (Upstream(url='https://registry-1.docker.io'),)
    assert config.upstream_for(None).tags == 'pin'


def test_several_upstreams_by_namespace_with_every_key():
    config = parse(storage=STORAGE, namespaced=True, upstreams=[
        {'namespace': 'docker.io', 'url': 'https://registry-1.docker.io'},
        {'namespace': 'quay.io', 'url': 'https://quay.io', 'username': 'bot',
         'password': 'secret', 'ca': '/etc/ca.pem', 'tags': '10m'},
    ])
    quay = config.upstream_for('quay.io')
    assert (quay.username, quay.password, quay.ca, quay.tags) == (
        'bot', 'secret', '/etc/ca.pem', 600)
    assert 'secret' not in repr(quay)
    assert config.upstream_for('gcr.io') is None


@pytest.mark.parametrize('tags,seconds', [
    ('pin', 'pin'), (90, 90), ('30s', 30), ('2h', 7200), ('1d', 86400),
    ('15', 15)])
def test_tag_policies(tags, seconds):
    config = parse(storage=STORAGE, upstreams=[
        {'url': 'https://r.example.org', 'tags': tags}])
    assert config.upstreams[0].tags == seconds


@pytest.mark.parametrize('tags', ['soon', '0m', -5, True, '10 minutes',
                                  400 * 86400])
def test_bad_tag_policies_are_reported_with_their_path(tags):
    found = problems(storage=STORAGE, upstreams=[
        {'url': 'https://r.example.org', 'tags': tags}])
    assert [p.split(':')[0] for p in found] == ['registry.upstreams[0].tags']


def test_every_upstream_problem_is_reported_with_its_key_path():
    found = problems(storage=STORAGE, namespaced=True, upstreams=[
        {'namespace': 'Not A Host', 'url': 'ftp://x'},
        {'url': 'https://a.example.org', 'username': 'bot'},
        'https://b.example.org',
        {'namespace': 'quay.io', 'url': 'https://quay.io', 'colour': 1},
    ])
    text = '\n'.join(found)
    for expected in ('registry.upstreams[0].namespace: must be a registry '
                     'host',
                     'registry.upstreams[0].url: must be an http',
                     'registry.upstreams[1].password: required when '
                     'username is set',
                     'registry.upstreams[2]: must be a mapping',
                     'registry.upstreams[3].colour: unknown key'):
        assert expected in text


def test_namespaces_need_a_namespace_on_each_upstream_and_no_twice():
    found = problems(storage=STORAGE, namespaced=True, upstreams=[
        {'url': 'https://a.example.org'},
        {'namespace': 'quay.io', 'url': 'https://quay.io'},
        {'namespace': 'quay.io', 'url': 'https://mirror.example.org'},
    ])
    assert found == [
        'registry.upstreams[0].namespace: required when namespaced is true',
        'registry.upstreams[2].namespace: quay.io has an upstream already']


def test_without_namespaces_only_one_upstream_and_no_namespace():
    assert problems(storage=STORAGE, upstreams=[
        {'url': 'https://a.example.org'}, {'url': 'https://b.example.org'},
    ]) == ['registry.upstreams: only one upstream without namespaces; set '
           'namespaced: true to serve several']
    assert problems(storage=STORAGE, upstreams=[
        {'namespace': 'quay.io', 'url': 'https://quay.io'}]) == [
        'registry.upstreams[0].namespace: only with namespaced: true']


def test_upstreams_must_be_a_list():
    assert problems(storage=STORAGE, upstreams={'url': 'https://x.org'}) == [
        'registry.upstreams: must be a list of upstream registries, not a '
        'mapping']
