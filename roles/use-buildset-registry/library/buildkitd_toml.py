#!/usr/bin/python
# Copyright: zuul-registry contributors
# Apache License 2.0 (see setup.cfg)
"""Ansible module: registry mirrors and CAs in BuildKit's buildkitd.toml."""

from __future__ import annotations

DOCUMENTATION = r'''
---
module: buildkitd_toml
short_description: Put registry mirrors and CA files into buildkitd.toml
description:
  - Edits BuildKit's C(buildkitd.toml) so that, for each registry named in
    I(mirrors), C([registry."NAME"] mirrors) starts with the given mirror,
    and for each registry named in I(ca), C([registry."NAME"] ca) starts
    with the given CA file. Other entries of those lists are kept.
  - Every other line, comments included, is kept as it was. The file is
    written only if something changed, and only after reading the result
    back showed exactly the intended change. Tables written as inline
    tables or dotted keys are refused.
  - Supports check mode and diff mode.
options:
  path:
    description: The buildkitd.toml file.
    type: path
    required: true
  mirrors:
    description: Registry name to mirror (C(HOST:PORT/PATH)).
    type: dict
    default: {}
  ca:
    description: Registry name (C(HOST:PORT)) to CA certificate file.
    type: dict
    default: {}
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
- name: Mirror docker.io through the buildset registry
  buildkitd_toml:
    path: /etc/buildkit/buildkitd.toml
    mirrors:
      docker.io: 203.0.113.5:5000/docker.io
    ca:
      203.0.113.5:5000: /etc/buildkit/certs/203.0.113.5:5000/ca.crt
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


def changes(mirrors, ca):
    """(registry, key, value) for every list that must start with value."""
    return ([(name, 'mirrors', value) for name, value in mirrors.items()]
            + [(name, 'ca', value) for name, value in ca.items()])


def _first(values, value):
    return [value] + [item for item in values if item != value]


def intended(data, edits):
    data = copy.deepcopy(data)
    for name, key, value in edits:
        table = data.setdefault('registry', {}).setdefault(name, {})
        table[key] = _first(table.get(key, []), value)
    return data


def edit(text, edits):
    data = loads(text)
    want = intended(data, edits)
    doc = Document(text)
    for name, key, value in edits:
        table = loads(doc.text).get('registry', {}).get(name)
        if table is not None and table.get(key, [])[:1] == [value]:
            continue
        headers = doc.headers(('registry', name), array=False)
        if not headers:
            if table is not None:
                raise TomlEditError('registry %s must be written as a '
                                    '[registry."%s"] table' % (name, name))
            doc.append_block('[registry.%s]\n  %s = %s\n' % (
                string(name), key, array([value])))
            continue
        header = headers[0]
        line = '%s = %s\n' % (key, array(_first(table.get(key, []), value)))
        span = doc.find_statement(header + 1, doc.block_end(header), (key,))
        if span is None:
            doc.insert(header + 1, '  ' + line)
        else:
            old = doc.lines[span[0]]
            indent = old[:len(old) - len(old.lstrip())]
            doc.replace(span[0], span[1], indent + line)
    result = doc.text
    if loads(result) != want:
        raise TomlEditError('the edited file would not mean what was '
                            'intended; it was left alone')
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            mirrors=dict(type='dict', default={}),
            ca=dict(type='dict', default={}),
            mode=dict(type='raw', default='0644'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    before = read_text(params['path'])
    try:
        after = edit(before or '', changes(params['mirrors'], params['ca']))
    except TomlEditError as error:
        module.fail_json(msg='%s: %s' % (params['path'], error))
    finish(module, params['path'], before, after,
           mode=int(str(params['mode']), 8))


if __name__ == '__main__':
    main()
