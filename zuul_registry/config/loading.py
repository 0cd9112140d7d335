"""Load the YAML configuration, substitute %(ZUUL_*) environment variables
and validate it once into frozen dataclasses, reporting every problem as
``<key.path>: <message>``.  A key given with no value counts as not given.
"""

import ipaddress
import logging
import os
import re

import yaml

from zuul_registry.config.checks import (
    _Field, _Invalid, _bcrypt_hash, _boolean, _check_mapping, _choice,
    _is_registry_host, _join, _kind, _scalar, _string, _url)
from zuul_registry.config.model import (
    READ, WRITE, Config, ConfigError, StorageConfig, User)
from zuul_registry.config.storage import _EXPIRATION, _storage
from zuul_registry.config.upstreams import _upstreams, check_upstream_rules

log = logging.getLogger('zuul_registry.config')

_VARIABLE = re.compile(r'%\(([^)]*)\)')


def _substitute(value, path, environ, problems):
    """Return ``value`` with ``%(ZUUL_*)`` replaced in every string."""
    if isinstance(value, dict):
        return {key: _substitute(item, _join(path, key), environ, problems)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, f'{path}[{index}]', environ, problems)
                for index, item in enumerate(value)]
    if not isinstance(value, str):
        return value

    failed = []

    def replace(match):
        name = match.group(1)
        if not name.startswith('ZUUL_'):
            failed.append(f'{path}: only environment variables starting '
                          f'with ZUUL_ may be substituted, not {name!r}')
        elif name not in environ:
            failed.append(f'{path}: environment variable {name} is not set')
        else:
            return environ[name]
        return ''

    value = _VARIABLE.sub(replace, value)
    problems.extend(failed)
    # A value that could not be substituted counts as not given.
    return None if failed else value


_USER_FIELDS = {
    'name': _Field('name', _string, required=True),
    'pass': _Field('password', _string),
    'pass-hash': _Field('password_hash', _bcrypt_hash),
    'access': _Field('access', _choice(READ, WRITE), required=True),
}


def _users(value, path, problems):
    if not isinstance(value, list):
        raise _Invalid(f'must be a list of users, not {_kind(value)}')
    users, names = [], set()
    for index, item in enumerate(value):
        item_path = f'{path}[{index}]'
        fields = _check_mapping(item, item_path, _USER_FIELDS, problems)
        name = fields.get('name')
        if name is not None and name in names:
            problems.append(f'{item_path}.name: duplicate user name {name!r}')
        names.add(name)
        if not isinstance(item, dict):
            continue   # already reported
        given = [key for key in ('pass', 'pass-hash')
                 if item.get(key) is not None]
        if not given:
            problems.append(f'{item_path}.pass: required (or pass-hash)')
        elif len(given) > 1:
            problems.append(f'{item_path}.pass: give either pass or '
                            f'pass-hash, not both')
        elif {'name', 'access'} <= set(fields) and len(fields) == 3:
            fields.setdefault('password', None)
            users.append(User(**fields))
    return tuple(users)


def _workers(value, path, problems):
    if value == 'auto' or (type(value) is int and 0 < value <= 1024):
        return value
    raise _Invalid(f"must be 'auto' or an integer from 1 to 1024, not "
                   f"{value!r}" if type(value) in (int, str) else
                   f"must be 'auto' or an integer, not {_kind(value)}")


_REGISTRY_FIELDS = {
    'address': _Field('address', _string),
    'port': _Field('port', _scalar(int, lambda value: 0 < value < 65536,
                                   'must be from 1 to 65535')),
    'public-url': _Field('public_url', _url),
    'tls-cert': _Field('tls_cert', _string),
    'tls-key': _Field('tls_key', _string),
    'secret': _Field('secret', _string),
    'users': _Field('users', _users),
    'storage': _Field('storage', _storage, required=True),
    'expiration': _Field('expiration', _EXPIRATION),
    'namespaced': _Field('namespaced', _boolean),
    'default-namespace': _Field('default_namespace', _scalar(
        str, _is_registry_host, 'must be a registry host such as '
        'docker.io, quay.io, localhost or registry.example.com:5000')),
    'anonymous-push': _Field('anonymous_push', _boolean),
    'anonymous-read': _Field('anonymous_read', _boolean),
    'token-expiration': _Field('token_expiration', _scalar(
        int, lambda value: 0 < value <= 7 * 86400,
        'must be from 1 to 604800 seconds')),
    'manifest-size-limit': _Field('manifest_size_limit', _scalar(
        int, lambda value: 1024 <= value <= 64 * 1024 * 1024,
        'must be from 1024 to 67108864 bytes')),
    'delete': _Field('delete_enabled', _boolean),
    'prune-interval': _Field('prune_interval', _scalar(
        int, lambda value: 0 < value <= 30 * 86400,
        'must be from 1 to 2592000 seconds')),
    'upstreams': _Field('upstreams', _upstreams),
    'upstream-expiration': _Field('upstream_expiration', _EXPIRATION),
    'workers': _Field('workers', _workers),
    'metrics-address': _Field('metrics_address', _string),
    'metrics-port': _Field('metrics_port', _scalar(
        int, lambda value: 0 < value < 65536, 'must be from 1 to 65535')),
}


def _is_loopback(address):
    try:
        return address == 'localhost' or ipaddress.ip_address(
            address).is_loopback
    except ValueError:
        return False


def _host_port(address, port):
    return f'[{address}]:{port}' if ':' in address else f'{address}:{port}'


def _check_rules(raw, values, problems):
    """Check the rules that relate several keys of ``registry``."""
    given = {key for key, value in raw.items() if value is not None}
    check_upstream_rules(raw, values, problems)
    for key, other in (('tls-cert', 'tls-key'), ('tls-key', 'tls-cert')):
        if key in given and other not in given:
            problems.append(f'registry.{other}: required when {key} is set')
    storage = raw.get('storage')
    if 'expiration' in given and isinstance(storage, dict) and (
            storage.get('expiration') is not None):
        problems.append('registry.storage.expiration: also given as '
                        'registry.expiration; give only one')
    has_users = bool(raw.get('users'))
    if has_users and 'secret' not in given:
        problems.append('registry.secret: required when users are configured')
    anonymous_push = values.get('anonymous_push', False)
    if has_users and anonymous_push:
        problems.append('registry.anonymous-push: must not be true when '
                        'users are configured; anonymous push is never '
                        'allowed when users exist')
    if 'address' in given and 'address' not in values:
        return  # the address is invalid, already reported
    address = values.get('address', Config.address)
    if not has_users and not anonymous_push and not _is_loopback(address):
        where = _host_port(address, values.get('port', Config.port))
        problems.append(
            f'registry.anonymous-push: no users are configured and {address} '
            f'is not a loopback address, so anyone who can reach {where} '
            f'could push images; add users, or set anonymous-push: true '
            f'if anonymous push from the network is intended')


def parse_config(data, *, environ=None) -> Config:
    """Validate a loaded YAML document and return its Config."""
    problems = []
    try:
        data = _substitute(data, '', os.environ if environ is None
                           else environ, problems)
    except RecursionError:
        # A YAML alias inside its own anchor ("a: &x [*x]") is endless.
        raise ConfigError(['the document nests too deeply or contains '
                           'itself through a YAML alias']) from None
    if not isinstance(data, dict):
        raise ConfigError(problems + [
            'registry: required; the file must be a mapping with the '
            'top-level key registry'])
    checks = [f'{key}: unknown key' for key in data if key != 'registry']
    raw = data.get('registry')
    values = {}
    if raw is None:
        checks.append('registry: required')
    else:
        values = _check_mapping(raw, 'registry', _REGISTRY_FIELDS, checks)
        if isinstance(raw, dict):
            _check_rules(raw, values, checks)
    # A value that could not be substituted would draw a second problem.
    unresolved = {problem.split(': ', 1)[0] for problem in problems}
    problems.extend(problem for problem in checks
                    if problem.split(': ', 1)[0] not in unresolved)
    if problems:
        raise ConfigError(problems)
    storage = values.pop('storage')
    if 'expiration' in storage:
        values['expiration'] = storage.pop('expiration')
    return Config(storage=StorageConfig(**storage), **values)


class _Loader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f'duplicate key {key_node.value!r}',
                    key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: str, *, environ=None) -> Config:
    """Read, substitute and validate the YAML file at ``path``."""
    try:
        with open(path, 'rb') as stream:
            data = yaml.load(stream, Loader=_Loader)
    except RecursionError:
        # PyYAML composes nested collections recursively.
        raise ConfigError([f'{path}: invalid YAML: nested too deeply'
                           ]) from None
    except OSError as error:
        raise ConfigError(
            [f'{path}: cannot read: {error.strerror or error}']) from None
    except yaml.YAMLError as error:
        mark = getattr(error, 'problem_mark', None)
        where = (f'{path}, line {mark.line + 1}, column {mark.column + 1}'
                 if mark else path)
        what = getattr(error, 'problem', None) or str(error)
        if getattr(error, 'context', None):
            what = f'{what} ({error.context})'
        if "'%'" in what:
            what += "; quote a value that starts with %(, as in '%(ZUUL_X)'"
        raise ConfigError([f'{where}: invalid YAML: {what}']) from None
    config = parse_config(data, environ=environ)
    log.debug('Loaded configuration from %s', path)
    return config


def default_config() -> Config:
    """The configuration used when no file is given."""
    return Config(storage=StorageConfig(
        driver='filesystem', root=os.path.abspath('zuul-registry-data')))


def _describe_storage(storage):
    if storage.driver == 's3':
        where = storage.endpoint or f'AWS region {storage.region}'
        prefix = f' under {storage.prefix}' if storage.prefix else ''
        return f's3 storage in bucket {storage.bucket}{prefix} at {where}'
    if storage.driver != 'swift':
        return f'{storage.driver} storage in {storage.root}'
    where = (f'cloud {storage.cloud}' if storage.cloud else
             f'{storage.auth_url} (auth-version {storage.auth_version})')
    return f'swift storage in container {storage.container} at {where}'


def describe(config) -> str:
    """Say in one line what the server will do; never shows a secret."""
    transport = 'HTTPS' if config.tls_cert else 'plain HTTP'
    parts = [f'serving {transport} on '
             f'{_host_port(config.address, config.port)}']
    if config.workers == 'auto':
        parts.append('a worker process per CPU')
    elif config.workers != 1:
        parts.append(f'{config.workers} worker processes')
    if config.public_url:
        parts.append(f'public URL {config.public_url}')
    if config.anonymous_access:
        parts.append('anonymous push and pull')
    else:
        writers = sum(user.access == WRITE for user in config.users)
        readers = len(config.users) - writers
        parts.append(f'users: {writers} write, {readers} read, '
                     f'anonymous pull '
                     f'{"allowed" if config.anonymous_pull else "refused"}'
                     f', no anonymous push')
    parts.append(_describe_storage(config.storage))
    if config.expiration:
        parts.append(f'expiration after {config.expiration}s')
    if config.metrics_port:
        parts.append(f'metrics on '
                     f'{_host_port(config.metrics_address, config.metrics_port)}')
    if config.upstream_expiration:
        parts.append(f'fetched manifests expire after '
                     f'{config.upstream_expiration}s')
    if config.prune_interval:
        parts.append(f'pruning every {config.prune_interval}s')
    parts.append(f'namespaces on (default {config.default_namespace})'
                 if config.namespaced else 'namespaces off')
    for upstream in config.upstreams:
        parts.append(f'pull-through {upstream.namespace or "all"} from '
                     f'{upstream.url}')
    return ', '.join(parts)
