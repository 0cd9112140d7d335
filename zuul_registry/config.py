"""Load the YAML configuration, substitute %(ZUUL_*) environment variables
and validate it once into frozen dataclasses, reporting every problem as
``<key.path>: <message>``.  A key given with no value counts as not given.
"""

import dataclasses
import ipaddress
import logging
import os
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional

import yaml

log = logging.getLogger('zuul_registry.config')

READ = 'read'
WRITE = 'write'


class ConfigError(Exception):
    """The configuration is unusable; ``problems`` lists every reason."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__('\n'.join(self.problems))


@dataclass(frozen=True)
class User:
    name: str
    password: str = dataclasses.field(repr=False)
    access: str  # READ or WRITE


@dataclass(frozen=True)
class StorageConfig:
    driver: str
    root: Optional[str] = None            # filesystem
    container: Optional[str] = None       # swift, and one of:
    cloud: Optional[str] = None           # a cloud of clouds.yaml
    auth_url: Optional[str] = None        # or credentials
    auth_version: Optional[int] = None    # 1: tempauth, 3: Keystone v3
    user: Optional[str] = None            # v1
    key: Optional[str] = dataclasses.field(default=None, repr=False)
    username: Optional[str] = None        # v3
    password: Optional[str] = dataclasses.field(default=None, repr=False)
    project_name: Optional[str] = None
    user_domain_name: Optional[str] = None
    project_domain_name: Optional[str] = None
    region_name: Optional[str] = None     # v3 and cloud


@dataclass(frozen=True)
class Config:
    storage: StorageConfig
    address: str = '127.0.0.1'
    port: int = 5000
    public_url: Optional[str] = None
    tls_cert: Optional[str] = None
    tls_key: Optional[str] = None
    secret: Optional[str] = dataclasses.field(default=None, repr=False)
    users: tuple = ()  # of User
    expiration: Optional[int] = None
    namespaced: bool = False
    default_namespace: str = 'docker.io'
    anonymous_push: bool = False
    anonymous_read: Optional[bool] = None   # None: allowed unless read users
    token_expiration: int = 3600
    manifest_size_limit: int = 4 * 1024 * 1024
    delete_enabled: bool = True   # false: manifest, tag, blob DELETE is 405

    @property
    def anonymous_pull(self) -> bool:
        """Whether a client without credentials may pull."""
        if not self.users:
            return True
        if self.anonymous_read is not None:
            return self.anonymous_read
        return not any(user.access == READ for user in self.users)

    @property
    def anonymous_access(self) -> bool:
        """True when no users are configured: anyone may push and pull."""
        return not self.users


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


# A checker is called as check(value, path, problems) and returns the
# value to store, or raises _Invalid with the problem at ``path``.
# Checkers of nested mappings append their own problems to ``problems``.

class _Invalid(Exception):
    pass


class _Field(NamedTuple):
    attr: str
    check: Callable[[Any, str, list], Any]
    required: bool = False


def _join(path, key):
    return f'{path}.{key}' if path else str(key)


_KINDS = {type(None): 'null', bool: 'a boolean', int: 'an integer',
          float: 'a number', str: 'a string', list: 'a list',
          dict: 'a mapping'}


def _kind(value):
    return _KINDS.get(type(value), type(value).__name__)


def _scalar(kind, test=None, message=None):
    """A checker for a value of type ``kind`` for which ``test`` holds."""
    def check(value, path, problems):
        if not isinstance(value, kind) or (
                isinstance(value, bool) and kind is not bool):
            raise _Invalid(f'must be {_KINDS[kind]}, not {_kind(value)}')
        if test is not None and not test(value):
            raise _Invalid(message)
        return value
    return check


def _choice(*choices):
    return _scalar(str, choices.__contains__,
                   'must be ' + ' or '.join(map(repr, choices)))


_string = _scalar(str, bool, 'must not be empty')
_boolean = _scalar(bool)


def _directory(value, path, problems):
    return os.path.abspath(_string(value, path, problems))


def _url(value, path, problems):
    url = urllib.parse.urlsplit(_string(value, path, problems))
    if url.scheme not in ('http', 'https') or not url.hostname:
        raise _Invalid('must be an http:// or https:// URL with a host')
    if '?' in value or '#' in value:
        raise _Invalid('must not have a query or fragment')
    if url.username is not None:
        raise _Invalid('must not contain a user name or password')
    try:
        url.port
    except ValueError:
        raise _Invalid('has an invalid port') from None
    return value.rstrip('/')


_LABEL = r'[a-z0-9](?:[a-z0-9-]*[a-z0-9])?'
_HOST = re.compile(rf'{_LABEL}(?:\.{_LABEL})*(?::[0-9]{{1,5}})?')


def _is_registry_host(host):
    return bool(_HOST.fullmatch(host)) and (
        '.' in host or ':' in host or host == 'localhost')


def _check_mapping(data, path, fields, problems, *, report_unknown=True):
    """Check ``data`` against a field table.

    Returns ``{attr: value}`` for each valid field given; every problem
    (unknown, missing or invalid keys) is appended to ``problems``.
    """
    if not isinstance(data, dict):
        problems.append(f'{path}: must be a mapping, not {_kind(data)}')
        return {}
    if report_unknown:
        problems.extend(f'{_join(path, key)}: unknown key'
                        for key in data if key not in fields)
    values = {}
    for key, field in fields.items():
        key_path = _join(path, key)
        if data.get(key) is None:
            if field.required:
                problems.append(f'{key_path}: required')
            continue
        try:
            values[field.attr] = field.check(data[key], key_path, problems)
        except _Invalid as error:
            problems.append(f'{key_path}: {error}')
    return values


_USER_FIELDS = {
    'name': _Field('name', _string, required=True),
    'pass': _Field('password', _string, required=True),
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
        if len(fields) == len(_USER_FIELDS):
            users.append(User(**fields))
    return tuple(users)


_EXPIRATION = _scalar(int, lambda value: value > 0,
                      'must be a positive number of seconds')
_STORAGE_FIELDS = {
    'driver': _Field('driver', _choice('filesystem', 'swift'),
                     required=True),
    'expiration': _Field('expiration', _EXPIRATION),
}
_SWIFT_CONTAINER = _scalar(
    str, lambda value: 0 < len(value) <= 256 and '/' not in value,
    'must be a Swift container name: 1 to 256 characters, without "/"')
_DRIVER_FIELDS = {
    'filesystem': {'root': _Field('root', _directory, required=True)},
    'swift': {
        'container': _Field('container', _SWIFT_CONTAINER, required=True),
        'cloud': _Field('cloud', _string),
        'auth-url': _Field('auth_url', _url),
        'auth-version': _Field('auth_version', _scalar(
            int, (1, 3).__contains__, 'must be 1 (tempauth) or 3 '
            '(Keystone v3)')),
        'user': _Field('user', _string),
        'key': _Field('key', _string),
        'username': _Field('username', _string),
        'password': _Field('password', _string),
        'project-name': _Field('project_name', _string),
        'user-domain-name': _Field('user_domain_name', _string),
        'project-domain-name': _Field('project_domain_name', _string),
        'region-name': _Field('region_name', _string),
    },
}
# Which swift keys go with which way of authenticating.
_SWIFT_AUTH_KEYS = {
    'cloud': ((), ('region-name',)),
    1: (('auth-url', 'user', 'key'), ()),
    3: (('auth-url', 'username', 'password', 'project-name'),
        ('user-domain-name', 'project-domain-name', 'region-name')),
}
_SWIFT_AUTH_NAMES = {'cloud': 'cloud (the credentials come from '
                              'clouds.yaml)',
                     1: 'auth-version 1 (tempauth)',
                     3: 'auth-version 3 (Keystone v3)'}


def _storage(value, path, problems):
    """Return the storage fields as a dict, ``expiration`` included."""
    driver = value.get('driver') if isinstance(value, dict) else None
    known = isinstance(driver, str) and driver in _DRIVER_FIELDS
    # The other keys of an unknown driver cannot be judged.
    fields = dict(_STORAGE_FIELDS, **(_DRIVER_FIELDS[driver] if known else {}))
    values = _check_mapping(value, path, fields, problems,
                            report_unknown=known)
    if driver == 'swift':
        _check_swift_auth(value, values, path, problems)
    return values


def _check_swift_auth(raw, values, path, problems):
    """One way to authenticate, with its keys and no others'."""
    given = {key for key in _DRIVER_FIELDS['swift']
             if raw.get(key) is not None} - {'container'}
    if not given:
        problems.append(f'{path}.cloud: required, or auth-url with user and '
                        f'key (tempauth) or with username, password and '
                        f'project-name (Keystone v3)')
        return
    if 'cloud' in given:
        how = 'cloud'
    elif 'auth-version' in given:
        how = values.get('auth_version')
        if how is None:
            return   # invalid, already reported
    else:
        how = 1 if given & {'user', 'key'} else 3
        values['auth_version'] = how
    required, optional = _SWIFT_AUTH_KEYS[how]
    problems.extend(f'{path}.{key}: required with {_SWIFT_AUTH_NAMES[how]}'
                    for key in required if key not in given)
    order = list(_DRIVER_FIELDS['swift'])
    problems.extend(
        f'{path}.{key}: not used with {_SWIFT_AUTH_NAMES[how]}'
        for key in sorted(given - {'cloud' if how == 'cloud' else
                                   'auth-version', *required, *optional},
                          key=order.index))


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
    data = _substitute(data, '', os.environ if environ is None else environ,
                       problems)
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
    parts.append(f'namespaces on (default {config.default_namespace})'
                 if config.namespaced else 'namespaces off')
    return ', '.join(parts)
