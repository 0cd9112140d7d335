"""The schema of ``registry.storage``: drivers and their keys."""

import os
import re

from zuul_registry.config.checks import (
    _Field, _Invalid, _boolean, _check_mapping, _choice, _directory, _scalar,
    _string, _url)

def _file(value, path, problems):
    """A readable file (a PEM bundle), as an absolute path."""
    name = os.path.abspath(_string(value, path, problems))
    if not os.path.isfile(name) or not os.access(name, os.R_OK):
        raise _Invalid(f'{name}: not a readable file')
    return name


_EXPIRATION = _scalar(int, lambda value: value > 0,
                      'must be a positive number of seconds')
_STORAGE_FIELDS = {
    'driver': _Field('driver', _choice('filesystem', 'swift', 's3'),
                     required=True),
    'expiration': _Field('expiration', _EXPIRATION),
}
_SWIFT_CONTAINER = _scalar(
    str, lambda value: 0 < len(value) <= 256 and '/' not in value,
    'must be a Swift container name: 1 to 256 characters, without "/"')
# AWS's rules, which Ceph and SeaweedFS accept too.
_S3_BUCKET = _scalar(
    str, re.compile(r'[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]').fullmatch,
    'must be an S3 bucket name: 3 to 63 lower-case letters, digits, '
    '"." and "-", starting and ending with a letter or digit')
_S3_PREFIX = _scalar(
    str, lambda value: 0 < len(value) <= 512 and not value.startswith('/'),
    'must be 1 to 512 characters, not starting with "/"')
# The driver's part size: a larger link size would change nothing.
_S3_LINK_SIZE = _scalar(
    int, lambda value: 1 <= value <= 8 * 1024 * 1024,
    'must be a number of bytes from 1 to 8388608 (8 MiB)')
_DRIVER_FIELDS = {
    'filesystem': {'root': _Field('root', _directory, required=True)},
    's3': {
        'bucket': _Field('bucket', _S3_BUCKET, required=True),
        'endpoint': _Field('endpoint', _url),
        'region': _Field('region', _string),
        'prefix': _Field('prefix', _S3_PREFIX),
        'access-key': _Field('access_key', _string),
        'secret-key': _Field('secret_key', _string),
        'ca': _Field('ca', _file),
        'redirect': _Field('redirect', _boolean),
        'link-size': _Field('link_size', _S3_LINK_SIZE),
    },
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
    if driver == 's3':
        _check_s3(value, path, problems)
    return values


def _check_s3(raw, path, problems):
    """Both keys or neither (then boto3's default credential chain);
    a region or an endpoint to know where to go."""
    for given, missing in (('access-key', 'secret-key'),
                           ('secret-key', 'access-key')):
        if raw.get(given) is not None and raw.get(missing) is None:
            problems.append(f'{path}.{missing}: required with {given}')
    if raw.get('endpoint') is None and raw.get('region') is None:
        problems.append(f'{path}.region: required without an endpoint '
                        f'(it picks the AWS endpoint)')


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
