#!/usr/bin/python
# Copyright: zuul-registry contributors
# Apache License 2.0 (see setup.cfg)
"""Ansible module: a registry mirror first in containers' registries.conf."""

from __future__ import annotations

DOCUMENTATION = r'''
---
module: containers_registries_conf
short_description: Make a registry the first mirror of registries in registries.conf
description:
  - Edits a containers-registries.conf(5) file (version 2 format), as read
    by podman, buildah, skopeo and cri-o, so that for each namespace in
    I(namespaces) the C([[registry]]) entry with that prefix has
    C(MIRROR/NAMESPACE) as its first C([[registry.mirror]]).
  - An entry that does not exist is added (prefix and location both the
    namespace). An existing entry keeps its other settings and mirrors;
    the mirror is moved to the front if it was further back.
  - Puts I(search_registries) first in C(unqualified-search-registries),
    in their order, followed by the registries the file already listed
    there (in theirs). With an empty I(search_registries) the setting is
    left as it is.
  - With I(mirror_only), the entry's C(location) is the mirror too, so
    that a pull the mirror cannot serve fails instead of going to the
    registry itself (registries.conf tries the mirrors, then the
    location); an entry without C(prefix) gets one (it was the location).
    Without I(mirror_only), a location that is the mirror (an earlier run
    with I(mirror_only)) becomes the namespace again.
  - Every other line, comments included, is kept as it was. The file is
    written only if something changed, and only after reading the result
    back showed exactly the intended change.
  - A file in the version 1 format (C([registries.search])) is refused,
    and so are C([[registry]]) entries or mirrors written as inline arrays.
  - Supports check mode and diff mode.
options:
  path:
    description: The registries.conf file.
    type: path
    required: true
  mirror:
    description: The mirror registry as C(HOST:PORT).
    type: str
    required: true
  namespaces:
    description: The registries (C(docker.io), C(quay.io), ...) to mirror;
      each is mirrored into C(MIRROR/NAMESPACE).
    type: list
    elements: str
    required: true
  search_registries:
    description: The registries that must come first in
      C(unqualified-search-registries); the others listed there stay,
      after them.
    type: list
    elements: str
    default: [docker.io]
  mirror_only:
    description: Make the mirror the entries' location too, so that pulls
      never fall back to the registry itself.
    type: bool
    default: false
  mode:
    description: Mode of the file if it is created.
    type: raw
    default: '0644'
requirements:
  - Python 3.11 or newer, or the tomli or toml package
author:
  - zuul-registry contributors
'''

EXAMPLES = r'''
- name: Mirror docker.io and quay.io through the buildset registry
  containers_registries_conf:
    path: /etc/containers/registries.conf
    mirror: 203.0.113.5:5000
    namespaces: [docker.io, quay.io]
'''

RETURN = r'''
path:
  description: The file.
  returned: always
  type: str
'''

import copy

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.config_file import finish
from ansible.module_utils.config_file import read_text
from ansible.module_utils.toml_text import Document
from ansible.module_utils.toml_text import TomlEditError
from ansible.module_utils.toml_text import array
from ansible.module_utils.toml_text import loads
from ansible.module_utils.toml_text import string

REGISTRY = ('registry',)
MIRROR = ('registry', 'mirror')
SEARCH = 'unqualified-search-registries'


def _prefix(entry):
    return entry.get('prefix', entry.get('location'))


def _location(namespace, location, mirror_only):
    """The entry's location: the mirror's with mirror_only, else the
    namespace itself."""
    return location if mirror_only else namespace


def intended(data, mirror, namespaces, search_registries, *,
             mirror_only=False):
    """What the file must mean afterwards."""
    data = copy.deepcopy(data)
    registries = data.setdefault('registry', [])
    for namespace in namespaces:
        location = '%s/%s' % (mirror, namespace)
        entry = next((entry for entry in registries
                      if _prefix(entry) == namespace), None)
        if entry is None:
            registries.append({
                'prefix': namespace,
                'location': _location(namespace, location, mirror_only),
                'mirror': [{'location': location}]})
            continue
        mirrors = entry.get('mirror', [])
        ours = [m for m in mirrors if m.get('location') == location]
        others = [m for m in mirrors if m.get('location') != location]
        entry['mirror'] = (ours[:1] or [{'location': location}]) + others
        if mirror_only:
            entry.setdefault('prefix', namespace)
            entry['location'] = location
        elif entry.get('location') == location:
            entry['location'] = namespace
    if not registries:
        del data['registry']
    if search_registries:
        data[SEARCH] = search_list(data.get(SEARCH, []), search_registries)
    return data


def search_list(existing, search_registries):
    """Ours first, then what the file listed, each once."""
    result = []
    for name in list(search_registries) + list(existing):
        if name not in result:
            result.append(name)
    return result


def _mirror_block(location):
    return '[[registry.mirror]]\nlocation = %s\n' % string(location)


def _registry_mirrors(doc, header):
    """Header lines of the [[registry.mirror]] tables of one registry."""
    end = len(doc.lines)
    following = doc.headers(REGISTRY, array=True)
    later = [index for index in following if index > header]
    if later:
        end = later[0]
    return [index for index in doc.headers(MIRROR, array=True)
            if header < index < end]


def _entry(doc, namespace):
    """(header line, entry) of the namespace's [[registry]], or None."""
    entries = loads(doc.text).get('registry', [])
    headers = doc.headers(REGISTRY, array=True)
    if len(headers) != len(entries):
        raise TomlEditError('registry entries must be written as '
                            '[[registry]] tables')
    for header, entry in zip(headers, entries):
        if _prefix(entry) == namespace:
            return header, entry
    return None


def _set_location(doc, namespace, location):
    """The namespace's entry gets ``location`` (and an explicit prefix,
    which was its location)."""
    header, entry = _entry(doc, namespace)
    if entry.get('location') == location:
        return
    end = doc.block_end(header)
    span = doc.find_statement(header + 1, end, ('location',))
    line = 'location = %s\n' % string(location)
    if 'prefix' not in entry:
        line = 'prefix = %s\n%s' % (string(namespace), line)
    if span is None:
        doc.insert(doc.content_end(header, end), line)
    else:
        doc.replace(span[0], span[1], line)


def edit(text, mirror, namespaces, search_registries, *, mirror_only=False):
    """Return the edited text; raise TomlEditError if it cannot be done."""
    data = loads(text)
    if 'registries' in data:
        raise TomlEditError(
            'the file uses the version 1 format ([registries.search]); '
            'only the version 2 format can be edited')
    want = intended(data, mirror, namespaces, search_registries,
                    mirror_only=mirror_only)
    doc = Document(text)
    for namespace in namespaces:
        location = '%s/%s' % (mirror, namespace)
        found = _entry(doc, namespace)
        if found is None:
            doc.append_block('[[registry]]\nprefix = %s\nlocation = %s\n\n%s'
                             % (string(namespace), string(_location(
                                 namespace, location, mirror_only)),
                                _mirror_block(location)))
            continue
        if mirror_only or found[1].get('location') == location:
            _set_location(doc, namespace,
                          _location(namespace, location, mirror_only))
        _mirror_first(doc, namespace, location)
    if search_registries and data.get(SEARCH) != want[SEARCH]:
        line = '%s = %s\n' % (SEARCH, array(want[SEARCH]))
        span = doc.find_statement(0, doc.first_header(), (SEARCH,))
        if SEARCH in data and span is None:
            raise TomlEditError('%s must be set at the top of the file'
                                % SEARCH)
        if span is None:
            doc.insert(doc.first_header(), line + '\n')
        else:
            doc.replace(span[0], span[1], line)
    result = doc.text
    if loads(result) != want:
        raise TomlEditError('the edited file would not mean what was '
                            'intended; it was left alone')
    return result


def _mirror_first(doc, namespace, location):
    """Our mirror first among the namespace's [[registry.mirror]]s."""
    header, entry = _entry(doc, namespace)
    mirrors = entry.get('mirror', [])
    mirror_headers = _registry_mirrors(doc, header)
    if len(mirror_headers) != len(mirrors):
        raise TomlEditError('the mirrors of registry %s must be written '
                            'as [[registry.mirror]] tables' % namespace)
    if mirrors and mirrors[0].get('location') == location:
        return
    # Remove ours where it is further back, last first.
    for position in reversed(range(len(mirrors))):
        if mirrors[position].get('location') == location:
            start = mirror_headers[position]
            doc.replace(start, doc.block_end(start), '')
    mirror_headers = _registry_mirrors(doc, header)
    if mirror_headers:
        at = doc.leading_comments(mirror_headers[0])
        doc.insert(at, _mirror_block(location) + '\n')
    else:
        at = doc.content_end(header, doc.block_end(header))
        doc.insert(at, '\n' + _mirror_block(location))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            mirror=dict(type='str', required=True),
            namespaces=dict(type='list', elements='str', required=True),
            search_registries=dict(type='list', elements='str',
                                   default=['docker.io']),
            mirror_only=dict(type='bool', default=False),
            mode=dict(type='raw', default='0644'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    before = read_text(params['path'])
    try:
        after = edit(before or '', params['mirror'], params['namespaces'],
                     params['search_registries'],
                     mirror_only=params['mirror_only'])
    except TomlEditError as error:
        module.fail_json(msg='%s: %s' % (params['path'], error))
    finish(module, params['path'], before, after,
           mode=int(str(params['mode']), 8))


if __name__ == '__main__':
    main()
