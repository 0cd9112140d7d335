import os
import pathlib

import pytest

from zuul_registry.config import (
    Config, ConfigError, StorageConfig, User, default_config, describe,
    load_config, parse_config)

EXAMPLES = pathlib.Path(__file__).parents[2] / 'examples'
EXAMPLE_ENVIRON = {
    'ZUUL_REGISTRY_SECRET': 'example-secret',
    'ZUUL_REGISTRY_PASSWORD': 'example-password',
    'ZUUL_REGISTRY_WRITE_PASSWORD': 'example-write-password',
    'ZUUL_REGISTRY_READ_PASSWORD': 'example-read-password',
    'ZUUL_QUAY_PASSWORD': 'example-quay-password',
}
STORAGE = {'driver': 'filesystem', 'root': '/srv/registry'}
WRITER = {'name': 'zuul', 'pass': 'pw', 'access': 'write'}


def parse(environ=None, **registry):
    registry.setdefault('storage', STORAGE)
    return parse_config({'registry': registry}, environ=environ or {})


def problems_of(data, environ=None):
    with pytest.raises(ConfigError) as raised:
        parse_config(data, environ=environ or {})
    return raised.value.problems


def problems(**registry):
    registry.setdefault('storage', STORAGE)
    return problems_of({'registry': registry})


def test_minimal_config_gets_every_default():
    config = parse()
    assert config == Config(storage=StorageConfig('filesystem',
                                                  '/srv/registry'))
    assert config.address == '127.0.0.1'
    assert config.port == 5000
    assert config.users == ()
    assert config.anonymous_access
    assert not config.namespaced
    assert config.default_namespace == 'docker.io'


def test_full_config_maps_every_key():
    config = parse(
        environ=None, address='::1', port=5443,
        **{'public-url': 'https://registry.example.com/',
           'tls-cert': '/tls/cert.pem', 'tls-key': '/tls/key.pem',
           'secret': 's3cret', 'expiration': 3600, 'namespaced': True,
           'default-namespace': 'quay.io',
           'users': [WRITER, {'name': 'ro', 'pass': 'x', 'access': 'read'}]})
    assert config.public_url == 'https://registry.example.com'
    assert (config.tls_cert, config.tls_key) == ('/tls/cert.pem',
                                                 '/tls/key.pem')
    assert config.secret == 's3cret'
    assert config.users == (User('zuul', 'pw', 'write'),
                            User('ro', 'x', 'read'))
    assert not config.anonymous_access
    assert config.expiration == 3600
    assert config.namespaced
    assert config.default_namespace == 'quay.io'


def test_every_problem_is_reported_at_once():
    found = problems(
        port=0, namespaced='yes', frobnicate=1,
        users=[{'name': '', 'pass': 'x', 'access': 'admin'}],
        storage={'driver': 'filesystem'})
    assert found == [
        'registry.frobnicate: unknown key',
        'registry.port: must be from 1 to 65535',
        'registry.users[0].name: must not be empty',
        "registry.users[0].access: must be 'read' or 'write'",
        'registry.storage.root: required',
        'registry.namespaced: must be a boolean, not a string',
        'registry.secret: required when users are configured',
    ]
    assert str(ConfigError(found)) == '\n'.join(found)


@pytest.mark.parametrize('data, expected', [
    (None, 'registry: required; the file must be a mapping with the '
           'top-level key registry'),
    (['registry'], 'registry: required; the file must be a mapping with '
                   'the top-level key registry'),
    ({}, 'registry: required'),
    ({'registry': None}, 'registry: required'),
    ({'registry': 'x'}, 'registry: must be a mapping, not a string'),
    ({'registry': {}}, 'registry.storage: required'),
])
def test_registry_mapping_is_required(data, expected):
    assert problems_of(data) == [expected]


@pytest.mark.parametrize('path, data', [
    ('extra', {'extra': 1, 'registry': {'storage': STORAGE}}),
    ('registry.tls', {'registry': {'storage': STORAGE, 'tls': True}}),
    ('registry.storage.foo',
     {'registry': {'storage': dict(STORAGE, foo=1)}}),
    ('registry.users[0].password',
     {'registry': {'storage': STORAGE, 'secret': 's',
                   'users': [dict(WRITER, password='x')]}}),
])
def test_unknown_key_anywhere_is_an_error(path, data):
    assert problems_of(data) == [f'{path}: unknown key']


@pytest.mark.parametrize('key, value, message', [
    ('address', 5, 'must be a string, not an integer'),
    ('port', '5000', 'must be an integer, not a string'),
    ('port', True, 'must be an integer, not a boolean'),
    ('port', 65536, 'must be from 1 to 65535'),
    ('expiration', 0, 'must be a positive number of seconds'),
    ('expiration', 1.5, 'must be an integer, not a number'),
    ('expiration', False, 'must be an integer, not a boolean'),
    ('namespaced', 1, 'must be a boolean, not an integer'),
    ('anonymous-push', 'true', 'must be a boolean, not a string'),
    ('secret', '', 'must not be empty'),
])
def test_values_must_have_the_right_type(key, value, message):
    assert problems(**{key: value}) == [f'registry.{key}: {message}']


def test_null_means_not_given():
    config = parse(port=None, namespaced=None, users=None)
    assert (config.port, config.namespaced, config.users) == (5000, False, ())


@pytest.mark.parametrize('url, expected', [
    ('http://registry.example.com', 'http://registry.example.com'),
    ('https://registry.example.com:8443/',
     'https://registry.example.com:8443'),
    ('https://example.com/registry//', 'https://example.com/registry'),
])
def test_public_url_loses_its_trailing_slash(url, expected):
    assert parse(**{'public-url': url}).public_url == expected


NOT_HTTP = 'must be an http:// or https:// URL with a host'
NO_QUERY = 'must not have a query or fragment'


@pytest.mark.parametrize('url, message', [
    ('ftp://registry.example.com', NOT_HTTP),
    ('registry.example.com', NOT_HTTP),
    ('https://registry.example.com/?x=1', NO_QUERY),
    ('https://registry.example.com/?', NO_QUERY),
    ('https://registry.example.com/#top', NO_QUERY),
    ('https://u:p@registry.example.com',
     'must not contain a user name or password'),
    ('https://registry.example.com:99999', 'has an invalid port'),
    # urlsplit raises ValueError on these (escaped parse_config).
    ('http://[', 'is not a valid URL: Invalid IPv6 URL'),
    ('https://[::1:5000/', 'is not a valid URL: Invalid IPv6 URL'),
])
def test_public_url_must_be_a_plain_http_url(url, message):
    assert problems(**{'public-url': url}) == [
        f'registry.public-url: {message}']


@pytest.mark.parametrize('given, missing', [
    ('tls-cert', 'tls-key'), ('tls-key', 'tls-cert')])
def test_tls_cert_and_key_come_together(given, missing):
    assert problems(**{given: '/tls/file.pem'}) == [
        f'registry.{missing}: required when {given} is set']


def test_users_need_a_secret():
    assert problems(users=[WRITER]) == [
        'registry.secret: required when users are configured']


def test_user_fields_are_checked():
    found = problems(secret='s', users=[
        WRITER, {'name': 'zuul', 'pass': 'x', 'access': 'read'},
        {'name': 'ci', 'pass': 1234}, 'bob'])
    assert found == [
        "registry.users[1].name: duplicate user name 'zuul'",
        'registry.users[2].pass: must be a string, not an integer',
        'registry.users[2].access: required',
        'registry.users[3]: must be a mapping, not a string',
    ]
    assert problems(secret='s', users={'zuul': 'pw'}) == [
        'registry.users: must be a list of users, not a mapping']


def test_user_password_is_not_shown_by_repr():
    config = parse(secret='top-secret', users=[WRITER])
    assert 'top-secret' not in repr(config)
    assert "'pw'" not in repr(config)


def test_storage_is_required_and_checked():
    assert problems_of({'registry': {'storage': 'x'}}) == [
        'registry.storage: must be a mapping, not a string']
    assert problems(storage={'root': '/x'}) == [
        'registry.storage.driver: required']


def test_unknown_driver_does_not_judge_its_keys():
    assert problems(storage={'driver': 'gcs', 'bucket': 'c'}) == [
        "registry.storage.driver: must be 'filesystem' or 'swift' or 's3'"]


def test_storage_root_is_made_absolute():
    config = parse(storage={'driver': 'filesystem', 'root': 'data'})
    assert config.storage.root == os.path.abspath('data')


def test_storage_expiration_is_accepted_for_compatibility():
    storage = dict(STORAGE, expiration=60)
    assert parse(storage=storage).expiration == 60
    assert problems(storage=storage, expiration=60) == [
        'registry.storage.expiration: also given as registry.expiration; '
        'give only one']


@pytest.mark.parametrize('host', [
    'docker.io', 'quay.io', 'localhost', 'localhost:5000',
    'registry.example.com:5000', 'my-registry.example.com', 'xn--80a.io'])
def test_default_namespace_accepts_registry_hosts(host):
    assert parse(**{'default-namespace': host}).default_namespace == host


@pytest.mark.parametrize('host', [
    'docker', 'Docker.io', 'docker.io/library', '-bad.io', 'bad-.io',
    'a..io', 'docker.io:', 'https://docker.io'])
def test_default_namespace_must_look_like_a_registry_host(host):
    [problem] = problems(**{'default-namespace': host})
    assert problem.startswith('registry.default-namespace: must be a '
                              'registry host')


def test_environment_is_substituted_in_every_string():
    environ = {'ZUUL_SECRET': 'abc', 'ZUUL_PASS': 'pw', 'ZUUL_DIR': '/d'}
    config = parse(environ=environ, secret='%(ZUUL_SECRET)',
                   users=[dict(WRITER, **{'pass': 'x-%(ZUUL_PASS)-y'})],
                   storage={'driver': 'filesystem',
                            'root': '%(ZUUL_DIR)/%(ZUUL_DIR)'})
    assert config.secret == 'abc'
    assert config.users[0].password == 'x-pw-y'
    assert config.storage.root == '/d/d'


def test_substituted_values_are_validated_after_substitution():
    assert problems_of({'registry': {'storage': STORAGE,
                                     'port': '%(ZUUL_PORT)'}},
                       environ={'ZUUL_PORT': '5000'}) == [
        'registry.port: must be an integer, not a string']


def test_environment_defaults_to_os_environ(monkeypatch):
    monkeypatch.setenv('ZUUL_TEST_SECRET', 'from-os')
    config = parse_config({'registry': {'storage': STORAGE,
                                        'secret': '%(ZUUL_TEST_SECRET)'}})
    assert config.secret == 'from-os'


def test_unset_or_foreign_variables_are_errors():
    found = problems_of({'registry': {
        'storage': STORAGE, 'secret': '%(ZUUL_REGISTRY_SECRET)',
        'users': [dict(WRITER, **{'pass': '%(HOME)'})]}},
        environ={'HOME': '/root'})
    # No second problem is reported for a value that could not be
    # substituted.
    assert found == [
        'registry.secret: environment variable ZUUL_REGISTRY_SECRET '
        'is not set',
        "registry.users[0].pass: only environment variables starting "
        "with ZUUL_ may be substituted, not 'HOME'",
    ]


@pytest.mark.parametrize('address', [
    '127.0.0.1', '127.1.2.3', '::1', 'localhost'])
def test_anonymous_registry_on_loopback_is_allowed(address):
    assert parse(address=address).anonymous_access


@pytest.mark.parametrize('address, where', [
    ('0.0.0.0', '0.0.0.0:5000'), ('::', '[::]:5000'),
    ('192.0.2.10', '192.0.2.10:5000'), ('registry.example.com',
                                        'registry.example.com:5000')])
def test_anonymous_registry_off_loopback_is_refused(address, where):
    [problem] = problems(address=address)
    assert problem.startswith('registry.anonymous-push: ')
    assert f'anyone who can reach {where} could push' in problem
    assert 'add users, or set anonymous-push: true' in problem


def test_anonymous_push_true_allows_an_open_registry():
    config = parse(address='0.0.0.0', port=80, **{'anonymous-push': True})
    assert config.anonymous_push and config.anonymous_access


def test_users_make_a_public_address_acceptable():
    config = parse(address='0.0.0.0', secret='s', users=[WRITER])
    assert not config.anonymous_access


def test_anonymous_push_true_with_users_is_an_error():
    assert problems(secret='s', users=[WRITER],
                    **{'anonymous-push': True}) == [
        'registry.anonymous-push: must not be true when users are '
        'configured; anonymous push is never allowed when users exist']


@pytest.mark.parametrize('name', sorted(
    path.name for path in EXAMPLES.glob('*.yaml')))
def test_example_config_is_valid(name):
    config = load_config(str(EXAMPLES / name), environ=EXAMPLE_ENVIRON)
    assert config.storage.driver in ('filesystem', 'swift', 's3')
    assert config.secret is None or config.secret == 'example-secret'


def test_examples_exist():
    assert {'buildset-registry.yaml', 'local.yaml',
            'intermediate-registry.yaml'} <= {
        path.name for path in EXAMPLES.glob('*.yaml')}


def test_load_config_reads_a_file(tmp_path):
    path = tmp_path / 'registry.yaml'
    path.write_text('registry:\n  port: 5001\n  storage:\n'
                    '    driver: filesystem\n    root: /srv\n')
    assert load_config(str(path), environ={}).port == 5001


def test_load_config_reports_yaml_syntax_errors_with_a_line(tmp_path):
    path = tmp_path / 'broken.yaml'
    path.write_text('registry:\n  port: 5000\n   address: x\n')
    with pytest.raises(ConfigError) as raised:
        load_config(str(path), environ={})
    [problem] = raised.value.problems
    assert problem.startswith(f'{path}, line 3, column ')
    assert 'invalid YAML' in problem


@pytest.mark.parametrize('text', [
    '[' * 1100, '{a: ' * 1100,     # PyYAML composes these recursively
    'registry: &a [*a]\n',         # an alias inside its own anchor
    'registry:\n  users: &u [{name: x, pass: y, access: read, more: *u}]\n',
])
def test_load_config_reports_endless_nesting(tmp_path, text):
    # Both were RecursionError, not the ConfigError check-config prints.
    path = tmp_path / 'deep.yaml'
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(str(path), environ={})
    assert raised.value.problems


def test_load_config_refuses_duplicate_keys(tmp_path):
    path = tmp_path / 'twice.yaml'
    path.write_text('registry:\n  port: 5000\n  port: 5001\n')
    with pytest.raises(ConfigError) as raised:
        load_config(str(path), environ={})
    assert raised.value.problems == [
        f"{path}, line 3, column 3: invalid YAML: duplicate key 'port'"]


def test_load_config_reports_an_unreadable_file(tmp_path):
    path = tmp_path / 'missing.yaml'
    with pytest.raises(ConfigError) as raised:
        load_config(str(path))
    assert raised.value.problems == [
        f'{path}: cannot read: No such file or directory']


def test_load_config_reports_validation_problems(tmp_path):
    path = tmp_path / 'registry.yaml'
    path.write_text('registry:\n  storage:\n    driver: filesystem\n')
    with pytest.raises(ConfigError) as raised:
        load_config(str(path), environ={})
    assert raised.value.problems == ['registry.storage.root: required']


def test_default_config_is_a_local_anonymous_registry():
    config = default_config()
    assert (config.address, config.port) == ('127.0.0.1', 5000)
    assert config.tls_cert is None and config.anonymous_access
    assert config.storage == StorageConfig(
        'filesystem', os.path.abspath('zuul-registry-data'))


def test_describe_the_default_config():
    root = os.path.abspath('zuul-registry-data')
    assert describe(default_config()) == (
        f'serving plain HTTP on 127.0.0.1:5000, anonymous push and pull, '
        f'filesystem storage in {root}, namespaces off')


def test_describe_never_shows_secrets():
    config = parse(address='::', secret='top-secret', expiration=60,
                   namespaced=True, users=[WRITER],
                   **{'tls-cert': '/c', 'tls-key': '/k',
                      'public-url': 'https://r.example.com'})
    line = describe(config)
    assert line == (
        'serving HTTPS on [::]:5000, public URL https://r.example.com, '
        'users: 1 write, 0 read, anonymous pull allowed, no anonymous push, '
        'filesystem storage in '
        '/srv/registry, expiration after 60s, namespaces on '
        '(default docker.io)')
    assert 'top-secret' not in line and 'pw' not in line


def test_a_value_that_cannot_be_substituted_draws_no_second_problem():
    assert problems_of({'registry': {
        'storage': {'driver': 'filesystem', 'root': '%(ZUUL_ROOT)'},
        'address': '%(ZUUL_ADDRESS)'}}) == [
        'registry.storage.root: environment variable ZUUL_ROOT is not set',
        'registry.address: environment variable ZUUL_ADDRESS is not set',
    ]


def test_load_config_hints_at_quoting_a_substitution(tmp_path):
    path = tmp_path / 'unquoted.yaml'
    path.write_text('registry:\n  secret: %(ZUUL_REGISTRY_SECRET)\n')
    with pytest.raises(ConfigError) as raised:
        load_config(str(path), environ={})
    [problem] = raised.value.problems
    assert problem.startswith(f'{path}, line 2, column 11: invalid YAML: ')
    assert "quote a value that starts with %(" in problem


def test_delete_is_enabled_by_default_and_can_be_switched_off():
    assert parse().delete_enabled
    assert parse(delete=True).delete_enabled
    assert not parse(delete=False).delete_enabled
    assert problems(delete='no') == [
        'registry.delete: must be a boolean, not a string']


BCRYPT_HASH = '$2b$04$aANV/E8F/PdEtPzPErv/b.sFY8qBH74duxBsR30WfC7e7gkzUB2di'


def test_user_may_have_a_bcrypt_hash_instead_of_a_password():
    config = parse(secret='s' * 40, users=[
        {'name': 'zuul', 'pass-hash': BCRYPT_HASH, 'access': 'write'}])
    assert config.users[0].password_hash == BCRYPT_HASH
    assert config.users[0].password is None
    assert BCRYPT_HASH not in repr(config)


@pytest.mark.parametrize('user, problem', [
    ({'name': 'z', 'access': 'read'},
     'registry.users[0].pass: required (or pass-hash)'),
    ({'name': 'z', 'pass': 'p', 'pass-hash': BCRYPT_HASH, 'access': 'read'},
     'registry.users[0].pass: give either pass or pass-hash, not both'),
    ({'name': 'z', 'pass-hash': '$6$salt$notbcrypt', 'access': 'read'},
     'registry.users[0].pass-hash: must be a bcrypt hash'),
] + [
    # Shaped like bcrypt, but bcrypt refuses them (or no password matches).
    ({'name': 'z', 'pass-hash': malformed, 'access': 'read'},
     'registry.users[0].pass-hash: must be a bcrypt hash')
    for malformed in [
        BCRYPT_HASH.replace('$04$', '$00$'),
        BCRYPT_HASH.replace('$04$', '$03$'),
        BCRYPT_HASH.replace('$04$', '$32$'),
        BCRYPT_HASH.replace('$04$', '$99$'),
        BCRYPT_HASH[:28] + 'z' + BCRYPT_HASH[29:],   # salt's last character
        BCRYPT_HASH[:-1] + 'j',                      # hash's last character
        BCRYPT_HASH + '\n',
        BCRYPT_HASH.replace('$2b$', '$2x$'),
    ]
])
def test_user_password_rules(user, problem):
    with pytest.raises(ConfigError) as error:
        parse(secret='s' * 40, users=[user])
    assert any(p.startswith(problem) for p in error.value.problems), \
        error.value.problems


@pytest.mark.parametrize('prefix', ['$2a$', '$2b$', '$2y$'])
def test_every_hash_bcrypt_makes_is_accepted(prefix):
    import bcrypt
    for password in [b'', b'x', b'a longer password'] * 10:
        hashed = bcrypt.hashpw(password, bcrypt.gensalt(rounds=4)).decode()
        hashed = prefix + hashed[4:]
        config = parse(secret='s' * 40, users=[
            {'name': 'z', 'pass-hash': hashed, 'access': 'read'}])
        assert config.users[0].password_hash == hashed


def test_prune_interval_is_seconds_between_scheduled_prunes():
    config = parse(expiration=86400, **{'prune-interval': 3600})
    assert config.prune_interval == 3600
    assert 'pruning every 3600s' in describe(config)
    assert parse().prune_interval is None
    for bad in (0, -5, 31 * 86400):
        assert problems(**{'prune-interval': bad}) == [
            'registry.prune-interval: must be from 1 to 2592000 seconds'], \
            bad
    assert problems(**{'prune-interval': 'hourly'}) == [
        'registry.prune-interval: must be an integer, not a string']


@pytest.mark.parametrize('host', ['quay..io', 'localhost:0', 'quay.io:99999',
                                  '-quay.io', 'docker'])
def test_default_namespace_follows_the_namespace_grammar(host):
    assert problems(**{'default-namespace': host})
