"""The `upstreams` key: the registries that pull-through asks for what
nobody pushed here.

With namespaces on, each entry names the namespace it serves
(``namespace: docker.io``) and no namespace appears twice.  With
namespaces off there is one entry, without ``namespace``.  Whether that
rule holds needs the value of ``namespaced`` too, so it is checked in
:func:`check_upstream_rules` once every key is known.
"""

import re

from zuul_registry.config.checks import (
    _Field, _Invalid, _check_mapping, _is_registry_host, _kind, _scalar,
    _string, _url)
from zuul_registry.config.model import Upstream

PIN = 'pin'
_UNITS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400}
_DURATION = re.compile(r'([0-9]+)\s*([smhd]?)')


def _tag_policy(value, path, problems):
    """'pin', or a duration ('10m', '2h', 90) after which a tag is
    checked upstream again; returns 'pin' or seconds."""
    if value == PIN:
        return PIN
    match = _DURATION.fullmatch(value.strip()) \
        if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif match:
        number, unit = match.groups()
        seconds = int(number) * _UNITS[unit or 's']
    else:
        raise _Invalid(f'must be pin or a duration such as 30s, 10m, 2h '
                       f'or 1d, not {value!r}')
    if not 0 < seconds <= 365 * 86400:
        raise _Invalid('must be a duration from 1 second to 365 days')
    return seconds


_UPSTREAM_FIELDS = {
    'namespace': _Field('namespace', _scalar(
        str, _is_registry_host, 'must be a registry host such as '
        'docker.io, quay.io or registry.example.com:5000')),
    'url': _Field('url', _url, required=True),
    'username': _Field('username', _string),
    'password': _Field('password', _string),
    'ca': _Field('ca', _string),
    'tags': _Field('tags', _tag_policy),
}


def _upstreams(value, path, problems):
    if not isinstance(value, list):
        raise _Invalid(f'must be a list of upstream registries, not '
                       f'{_kind(value)}')
    upstreams = []
    for index, item in enumerate(value):
        item_path = f'{path}[{index}]'
        before = len(problems)
        fields = _check_mapping(item, item_path, _UPSTREAM_FIELDS, problems)
        if not isinstance(item, dict):
            continue
        for key, other in (('username', 'password'),
                           ('password', 'username')):
            if item.get(key) is not None and item.get(other) is None:
                problems.append(f'{item_path}.{other}: required when {key} '
                                f'is set')
        if len(problems) == before:
            upstreams.append(Upstream(**fields))
    return tuple(upstreams)


def check_upstream_rules(raw, values, problems):
    """The rules that tie `upstreams` to `namespaced`."""
    upstreams = values.get('upstreams')
    if not upstreams or len(upstreams) != len(raw.get('upstreams') or ()):
        return   # none, or some already reported
    if values.get('namespaced', False):
        seen = set()
        for index, upstream in enumerate(upstreams):
            where = f'registry.upstreams[{index}].namespace'
            if upstream.namespace is None:
                problems.append(f'{where}: required when namespaced is '
                                f'true')
            elif upstream.namespace in seen:
                problems.append(f'{where}: {upstream.namespace} has an '
                                f'upstream already')
            seen.add(upstream.namespace)
        return
    if len(upstreams) > 1:
        problems.append('registry.upstreams: only one upstream without '
                        'namespaces; set namespaced: true to serve several')
    elif upstreams[0].namespace is not None:
        problems.append('registry.upstreams[0].namespace: only with '
                        'namespaced: true')
