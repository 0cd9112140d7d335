"""The swift storage keys: one way to authenticate, with its keys only."""

import pytest

from zuul_registry.config import (
    ConfigError, StorageConfig, describe, parse_config)
from zuul_registry.drivers import swift_auth

AUTH_URL = 'https://swift.example.com/auth/v1.0'
KEYSTONE = 'https://keystone.example.com:5000/v3'
TEMPAUTH = {'auth-url': AUTH_URL, 'user': 'account:user', 'key': 'k'}
KEYSTONE_V3 = {'auth-url': KEYSTONE, 'username': 'zuul', 'password': 'pw',
               'project-name': 'ci'}


def storage(environ=None, **keys):
    keys.setdefault('container', 'registry')
    config = parse_config({'registry': {'storage': dict(driver='swift',
                                                        **keys)}},
                          environ=environ or {})
    return config.storage


def problems(environ=None, **keys):
    with pytest.raises(ConfigError) as raised:
        storage(environ, **keys)
    return raised.value.problems


def test_tempauth_is_auth_version_1():
    assert storage(**TEMPAUTH) == StorageConfig(
        driver='swift', container='registry', auth_url=AUTH_URL,
        auth_version=1, user='account:user', key='k')
    assert storage(**TEMPAUTH, **{'auth-version': 1}).auth_version == 1


def test_keystone_v3_is_auth_version_3():
    assert storage(**KEYSTONE_V3) == StorageConfig(
        driver='swift', container='registry', auth_url=KEYSTONE,
        auth_version=3, username='zuul', password='pw', project_name='ci')


def test_keystone_v3_takes_domains_and_a_region():
    config = storage(**KEYSTONE_V3, **{
        'auth-version': 3, 'user-domain-name': 'users',
        'project-domain-name': 'projects', 'region-name': 'RegionTwo'})
    assert (config.user_domain_name, config.project_domain_name,
            config.region_name) == ('users', 'projects', 'RegionTwo')


@pytest.mark.parametrize('keys', [{}, {'region-name': 'RegionTwo'}])
def test_a_cloud_of_clouds_yaml_needs_no_credentials(keys):
    config = storage(cloud='ci-cloud', **keys)
    assert config.cloud == 'ci-cloud'
    assert config.auth_version is None
    assert config.region_name == keys.get('region-name')


def test_the_container_is_required():
    assert problems(container=None, **TEMPAUTH) == [
        'registry.storage.container: required']


@pytest.mark.parametrize('container', ['', 'a/b', 'c' * 257, 5])
def test_the_container_must_be_a_swift_container_name(container):
    [problem] = problems(container=container, **TEMPAUTH)
    assert problem.startswith('registry.storage.container: must be ')


def test_some_way_to_authenticate_is_required():
    assert problems() == [
        'registry.storage.cloud: required, or auth-url with user and key '
        '(tempauth) or with username, password and project-name '
        '(Keystone v3)']


@pytest.mark.parametrize('missing', ['auth-url', 'user', 'key'])
def test_tempauth_needs_url_user_and_key(missing):
    keys = {k: v for k, v in TEMPAUTH.items() if k != missing}
    assert problems(**keys) == [
        f'registry.storage.{missing}: required with auth-version 1 '
        f'(tempauth)']


@pytest.mark.parametrize('missing', sorted(KEYSTONE_V3))
def test_keystone_v3_needs_url_username_password_and_project(missing):
    keys = {k: v for k, v in KEYSTONE_V3.items() if k != missing}
    assert problems(**keys) == [
        f'registry.storage.{missing}: required with auth-version 3 '
        f'(Keystone v3)']


def test_keystone_keys_are_refused_with_tempauth():
    assert problems(**TEMPAUTH, username='u', password='p',
                    **{'project-name': 'p', 'region-name': 'r',
                       'user-domain-name': 'd'}) == [
        'registry.storage.username: not used with auth-version 1 (tempauth)',
        'registry.storage.password: not used with auth-version 1 (tempauth)',
        'registry.storage.project-name: not used with auth-version 1 '
        '(tempauth)',
        'registry.storage.user-domain-name: not used with auth-version 1 '
        '(tempauth)',
        'registry.storage.region-name: not used with auth-version 1 '
        '(tempauth)',
    ]


def test_tempauth_keys_are_refused_with_keystone_v3():
    assert problems(**KEYSTONE_V3, user='u', **{'auth-version': 3}) == [
        'registry.storage.user: not used with auth-version 3 (Keystone v3)']


def test_auth_version_3_with_only_tempauth_keys_says_what_is_missing():
    assert problems(**TEMPAUTH, **{'auth-version': 3}) == [
        'registry.storage.username: required with auth-version 3 '
        '(Keystone v3)',
        'registry.storage.password: required with auth-version 3 '
        '(Keystone v3)',
        'registry.storage.project-name: required with auth-version 3 '
        '(Keystone v3)',
        'registry.storage.user: not used with auth-version 3 (Keystone v3)',
        'registry.storage.key: not used with auth-version 3 (Keystone v3)',
    ]


def test_credentials_are_refused_with_a_cloud():
    cloud = 'cloud (the credentials come from clouds.yaml)'
    assert problems(cloud='c', **TEMPAUTH, **{'auth-version': 1}) == [
        f'registry.storage.auth-url: not used with {cloud}',
        f'registry.storage.auth-version: not used with {cloud}',
        f'registry.storage.user: not used with {cloud}',
        f'registry.storage.key: not used with {cloud}',
    ]


@pytest.mark.parametrize('version', [2, '3', 1.0, True])
def test_auth_version_is_1_or_3(version):
    [problem] = problems(**TEMPAUTH, **{'auth-version': version})
    assert problem.startswith('registry.storage.auth-version: must be ')


def test_auth_url_must_be_an_http_url():
    assert problems(**dict(TEMPAUTH, **{'auth-url': 'swift.example.com'})) \
        == ['registry.storage.auth-url: must be an http:// or https:// URL '
            'with a host']


def test_filesystem_and_swift_keys_do_not_mix():
    assert problems(root='/srv', **TEMPAUTH) == [
        'registry.storage.root: unknown key']
    with pytest.raises(ConfigError) as raised:
        parse_config({'registry': {'storage': {
            'driver': 'filesystem', 'root': '/srv', 'container': 'c'}}},
            environ={})
    assert raised.value.problems == ['registry.storage.container: unknown key']


def test_secrets_come_from_the_environment_and_are_never_shown():
    config = storage(environ={'ZUUL_SWIFT_PASSWORD': 'hunter2'},
                     **dict(KEYSTONE_V3, password='%(ZUUL_SWIFT_PASSWORD)'))
    assert config.password == 'hunter2'
    tempauth = storage(**dict(TEMPAUTH, key='sekrit'))
    for shown in (repr(config), repr(tempauth)):
        assert 'hunter2' not in shown and 'sekrit' not in shown


def test_an_unset_variable_is_reported_once():
    assert problems(**dict(KEYSTONE_V3, password='%(ZUUL_SWIFT_PASSWORD)')) \
        == ['registry.storage.password: environment variable '
            'ZUUL_SWIFT_PASSWORD is not set']


def test_describe_names_the_container_and_no_secret():
    config = parse_config({'registry': {'storage': dict(
        driver='swift', container='registry', **KEYSTONE_V3)}}, environ={})
    text = describe(config)
    assert 'swift storage in container registry at ' + KEYSTONE in text
    assert 'pw' not in text.split()


def test_tempauth_becomes_swiftclient_v1_options():
    assert swift_auth.connection_options(storage(**TEMPAUTH)) == {
        'authurl': AUTH_URL, 'user': 'account:user', 'key': 'k',
        'auth_version': '1'}


def test_keystone_v3_becomes_a_session_in_the_region():
    options = swift_auth.connection_options(storage(
        **KEYSTONE_V3, **{'region-name': 'RegionTwo'}))
    assert options['os_options'] == {
        'service_type': 'object-store', 'endpoint_type': 'public',
        'region_name': 'RegionTwo'}
    auth = options['session'].auth
    assert (auth.auth_url, auth._username, auth._project_name,
            auth._user_domain_name) == (KEYSTONE, 'zuul', 'ci', 'Default')


def test_a_cloud_is_read_from_clouds_yaml(tmp_path, monkeypatch):
    clouds = tmp_path / 'clouds.yaml'
    clouds.write_text(
        'clouds:\n'
        '  ci:\n'
        '    region_name: RegionOne\n'
        '    auth:\n'
        f'      auth_url: {KEYSTONE}\n'
        '      username: zuul\n'
        '      password: pw\n'
        '      project_name: ci\n'
        '      user_domain_name: Default\n'
        '      project_domain_name: Default\n'
        '  old:\n'
        '    auth_type: v1password\n'
        '    auth:\n'
        f'      auth_url: {AUTH_URL}\n'
        '      username: account:user\n'
        '      password: k\n')
    monkeypatch.setenv('OS_CLIENT_CONFIG_FILE', str(clouds))
    options = swift_auth.connection_options(storage(cloud='ci'))
    assert options['os_options']['region_name'] == 'RegionOne'
    assert options['session'].auth.auth_url == KEYSTONE
    assert swift_auth.connection_options(storage(cloud='old')) == \
        swift_auth.connection_options(storage(**TEMPAUTH))
    with pytest.raises(Exception, match="cloud 'missing' not found in "):
        swift_auth.connection_options(storage(cloud='missing'))
