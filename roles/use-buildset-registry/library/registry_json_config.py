#!/usr/bin/python
# Copyright: zuul-registry contributors
# Apache License 2.0 (see setup.cfg)
"""Ansible module: merge registry settings into a JSON client config."""

from __future__ import annotations

DOCUMENTATION = r'''
---
module: registry_json_config
short_description: Merge registry mirrors or credentials into a JSON file
description:
  - Edits a JSON configuration file such as docker's C(daemon.json), docker's
    C(config.json) or the containers C(auth.json) structurally, keeping
    every key it is not asked to change.
  - I(first_in_list) puts a value first in a top-level list (for
    C(registry-mirrors)), keeping the list's other values in their order.
  - I(entries) sets entries of a top-level mapping (for C(auths)),
    keeping the mapping's other entries.
  - I(entries_if_absent) sets entries of a top-level mapping only where
    the mapping has no such entry; an entry that is there, whatever its
    value, is kept as it is (for Docker Hub's key in docker's
    C(config.json), which may hold the user's own login).
  - The file is rewritten only if its meaning changes, so formatting alone
    is never a change.
  - Supports check mode. Diff mode shows the changed keys only, never the
    values of I(entries), which may be credentials.
options:
  path:
    description: The JSON file; created (with its directory) if missing.
    type: path
    required: true
  first_in_list:
    description: Top-level key to the value that must be first in it.
    type: dict
    default: {}
  entries:
    description: Top-level key to a mapping of entries to set in it.
    type: dict
    default: {}
  entries_if_absent:
    description: Top-level key to a mapping of entries to set in it only
      where no entry of that name exists yet.
    type: dict
    default: {}
  mode:
    description: Mode of the file if it is created.
    type: raw
    default: '0600'
  dir_mode:
    description: Mode of the directory if it is created.
    type: raw
    default: '0700'
author:
  - zuul-registry contributors
'''

EXAMPLES = r'''
- name: Docker's first registry mirror
  registry_json_config:
    path: /etc/docker/daemon.json
    first_in_list:
      registry-mirrors: https://203.0.113.5:5000
    mode: '0644'
    dir_mode: '0755'

- name: Credentials for the buildset registry
  registry_json_config:
    path: ~/.config/containers/auth.json
    entries:
      auths:
        203.0.113.5:5000:
          auth: "{{ 'zuul:secret' | b64encode }}"
  no_log: true
'''

RETURN = r'''
path:
  description: The file.
  returned: always
  type: str
changed_keys:
  description: The top-level keys whose value changed.
  returned: always
  type: list
  elements: str
kept_entries:
  description: The names of I(entries_if_absent) entries that were left
    alone because the file already had a different value for them.
  returned: always
  type: list
  elements: str
'''

import copy
import json

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.config_file import read_text
from ansible.module_utils.config_file import write_text


class JsonConfigError(Exception):
    pass


def _mapping(data, key):
    mapping = data.get(key, {})
    if not isinstance(mapping, dict):
        raise JsonConfigError('%s is not a mapping' % key)
    return dict(mapping)


def merge(data, first_in_list, entries, entries_if_absent=None):
    """Return a changed copy of ``data``."""
    data = copy.deepcopy(data)
    for key, value in first_in_list.items():
        values = data.get(key, [])
        if not isinstance(values, list):
            raise JsonConfigError('%s is not a list' % key)
        data[key] = [value] + [item for item in values if item != value]
    for key, items in entries.items():
        mapping = _mapping(data, key)
        mapping.update(items)
        data[key] = mapping
    for key, items in (entries_if_absent or {}).items():
        mapping = _mapping(data, key)
        for name, value in items.items():
            mapping.setdefault(name, value)
        data[key] = mapping
    return data


def kept_entries(data, entries_if_absent):
    """Names of entries_if_absent that the file holds with another value."""
    return sorted(
        name for key, items in entries_if_absent.items()
        if isinstance(data.get(key), dict)
        for name, value in items.items()
        if name in data[key] and data[key][name] != value)


def load(text):
    if text is None or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as error:
        raise JsonConfigError('not valid JSON: %s' % error) from None
    if not isinstance(data, dict):
        raise JsonConfigError('not a JSON object')
    return data


def dump(data):
    return json.dumps(data, indent=4) + '\n'


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            first_in_list=dict(type='dict', default={}),
            entries=dict(type='dict', default={}, no_log=True),
            entries_if_absent=dict(type='dict', default={}, no_log=True),
            mode=dict(type='raw', default='0600'),
            dir_mode=dict(type='raw', default='0700'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    path = params['path']
    text = read_text(path)
    try:
        before = load(text)
        after = merge(before, params['first_in_list'], params['entries'],
                      params['entries_if_absent'])
    except JsonConfigError as error:
        module.fail_json(msg='%s: %s' % (path, error))
    changed_keys = sorted(key for key in after
                          if before.get(key) != after[key])
    changed = bool(changed_keys) or text is None
    if changed and not module.check_mode:
        write_text(module, path, dump(after),
                   mode=int(str(params['mode']), 8),
                   dir_mode=int(str(params['dir_mode']), 8))
    result = dict(changed=changed, path=path, changed_keys=changed_keys,
                  kept_entries=kept_entries(before,
                                            params['entries_if_absent']))
    if module._diff:
        visible = [key for key in changed_keys
                   if key not in params['entries']
                   and key not in params['entries_if_absent']]
        result['diff'] = dict(
            before=dump({key: before.get(key) for key in visible}),
            after=dump({key: after[key] for key in visible}),
            before_header=path, after_header=path)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
