"""The building blocks of the schema: field tables and value checkers.

A checker is called as check(value, path, problems) and returns the value
to store, or raises Invalid with the problem at ``path``.  Checkers of
nested mappings append their own problems to ``problems``.
"""

import os
import re
import urllib.parse
from typing import Any, Callable, NamedTuple

from zuul_registry import oci


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


# "$2b$", a cost, "$", then 22 characters of salt and 31 of hash in
# bcrypt's base64.  The last character of each has spare bits, always
# zero: bcrypt refuses a salt that ends otherwise, and a hash that ends
# otherwise matches no password.
_B64 = '[./A-Za-z0-9]'
_BCRYPT = re.compile(rf'\$2[aby]\$([0-9]{{2}})\${_B64}{{21}}[.Oeu]'
                     rf'{_B64}{{30}}[.CGKOSWaeimquy26]')


def _bcrypt_hash(value, path, problems):
    match = _BCRYPT.fullmatch(_string(value, path, problems))
    if match is None:
        raise _Invalid('must be a bcrypt hash ($2b$...), as "htpasswd '
                       '-nbB NAME PASSWORD" prints after the colon')
    if not 4 <= int(match.group(1)) <= 31:
        raise _Invalid(f'must be a bcrypt hash with a cost from 04 to 31, '
                       f'not {match.group(1)}')
    return value


def _url(value, path, problems):
    try:
        url = urllib.parse.urlsplit(_string(value, path, problems))
    except ValueError as error:   # "http://[": an unclosed IPv6 address
        raise _Invalid(f'is not a valid URL: {error}') from None
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


def _is_registry_host(host):
    # The grammar namespaces use, so a default namespace always resolves.
    return bool(oci.HOST_RE.fullmatch(host)) and oci.is_host(host)


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
