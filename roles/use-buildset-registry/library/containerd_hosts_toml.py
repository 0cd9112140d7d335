#!/usr/bin/python
# Copyright: zuul-registry contributors
# Apache License 2.0 (see setup.cfg)
"""Ansible module: a registry host first in a containerd hosts.toml."""

from __future__ import annotations

DOCUMENTATION = r'''
---
module: containerd_hosts_toml
short_description: Make a registry containerd's first host in a hosts.toml
description:
  - Edits a containerd C(hosts.toml) (C(certs.d/NAMESPACE/hosts.toml) under
    containerd's C(config_path)) so that the C([host."URL"]) table for
    I(host) is the first host table of the file, holding exactly
    I(capabilities), I(ca) and I(override_path). containerd tries the
    hosts in the order of the file, then the C(server).
  - Everything else is kept, C(server) (set to I(server) only if the file
    has none), every other C([host."..."]) table with its keys, other
    settings and comments. A table for I(host) that is already there is
    replaced rather than repeated, and tables for I(stale_hosts) (the same
    registry under an older name) are removed.
  - With I(mirror_only), I(host) is the C(server) as well, with the keys of
    its host table (capabilities, ca, override_path) at the top of the
    file, where containerd reads the server's settings; a pull that
    I(host) cannot serve then fails instead of going to the upstream
    registry. The
    site's other host tables stay, after ours. Without I(mirror_only), a
    C(server) that is I(host) (an earlier run with I(mirror_only)) becomes
    I(server) again, and those keys go.
  - The file is written only if its meaning or its host order changed,
    and only after reading the result back showed exactly the intended
    change. Host tables written as inline tables or dotted keys are
    refused, and so is a file that is not valid TOML.
  - Supports check mode and diff mode.
options:
  path:
    description: The hosts.toml file; created (with its directory) if
      missing.
    type: path
    required: true
  server:
    description: The upstream registry URL, used only when the file has
      no C(server).
    type: str
    required: true
  host:
    description: The URL of the registry to try first, such as
      C(https://HOST:PORT/v2/docker.io).
    type: str
    required: true
  capabilities:
    description: What the host may do.
    type: list
    elements: str
    default: [pull, resolve]
  ca:
    description: The CA certificate file for the host, if any.
    type: str
  override_path:
    description: Whether I(host)'s URL already holds the API path (so
      containerd does not add C(/v2)).
    type: bool
    default: false
  stale_hosts:
    description: URLs of host tables to remove (this registry under
      another name, written by an older run).
    type: list
    elements: str
    default: []
  mirror_only:
    description: Make I(host) the C(server) too, so that containerd never
      falls back to the upstream registry.
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
- name: containerd pulls docker.io images from the buildset registry first
  containerd_hosts_toml:
    path: /etc/containerd/certs.d/docker.io/hosts.toml
    server: https://registry-1.docker.io
    host: https://zuul-jobs.buildset-registry:5000/v2/docker.io
    ca: /etc/containerd/certs.d/zuul-jobs.buildset-registry:5000/ca.crt
    override_path: true
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

HOST = 'host'
NEW_FILE_COMMENT = (
    '# containerd tries the hosts below in this order, then the server.\n'
    '# The use-buildset-registry role keeps the buildset registry first.\n')


def entry(capabilities, ca, override_path):
    """Our host table, as data."""
    table = {'capabilities': list(capabilities)}
    if ca:
        table['ca'] = ca
    if override_path:
        table['override_path'] = True
    return table


def _value(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, list):
        return array(value)
    return string(value)


def block(url, table):
    lines = ['[host.%s]\n' % string(url)]
    for key, value in table.items():
        lines.append('  %s = %s\n' % (key, _value(value)))
    return ''.join(lines)


def intended(data, server, url, table, stale_hosts, *, mirror_only=False):
    data = copy.deepcopy(data)
    if mirror_only:
        # The keys at the top of the file configure the server.
        data['server'] = url
        data.update(copy.deepcopy(table))
    elif data.get('server') == url:
        data['server'] = server
        for key, value in table.items():
            if data.get(key) == value:
                del data[key]
    data.setdefault('server', server)
    hosts = data.get(HOST, {})
    data[HOST] = {url: table}
    data[HOST].update((name, value) for name, value in hosts.items()
                      if name != url and name not in stale_hosts)
    return data


def _host_tables(doc):
    """Header indexes of the [host."URL"] tables (not their subtables)."""
    return [index for index in doc.headers(array=False)
            if len(doc.info[index].name) == 2
            and doc.info[index].name[0] == HOST]


def _check_layout(doc, data):
    hosts = data.get(HOST, {})
    if not isinstance(hosts, dict) or not all(
            isinstance(value, dict) for value in hosts.values()):
        raise TomlEditError('"host" must be a table of [host."URL"] tables')
    named = {doc.info[index].name[1] for index in _host_tables(doc)}
    if named != set(hosts) or len(_host_tables(doc)) != len(hosts):
        raise TomlEditError('hosts must be written as [host."URL"] tables, '
                            'one for each host')


def _first_host(doc):
    tables = _host_tables(doc)
    return doc.info[tables[0]].name[1] if tables else None


def _root_keys(doc, data, want, keys):
    """The statements of ``keys`` before the first table as in ``want``:
    replaced, removed, or added (after ``server``)."""
    for key in keys:
        if data.get(key) == want.get(key) and (key in data) == (key in want):
            continue
        span = doc.find_statement(0, doc.first_header(), (key,))
        if key in data and span is None:
            raise TomlEditError('%s must be set at the top of the file'
                                % key)
        line = '%s = %s\n' % (key, _value(want[key])) if key in want else ''
        if span is not None:
            doc.replace(span[0], span[1], line)
            continue
        after = doc.find_statement(0, doc.first_header(), ('server',))
        if after is not None:
            doc.insert(after[1], line)
        else:
            doc.insert(doc.leading_comments(doc.first_header()), line + '\n')


def edit(text, server, url, table, stale_hosts=(), *, mirror_only=False):
    """Return the edited text; raise TomlEditError if it cannot be done."""
    data = loads(text)
    doc = Document(text)
    _check_layout(doc, data)
    want = intended(data, server, url, table, stale_hosts,
                    mirror_only=mirror_only)
    if data == want and _first_host(doc) == url:
        return text
    # Remove our table (and its subtables) and the stale ones, last first.
    drop = {url} | set(stale_hosts)
    for index in reversed(doc.headers()):
        name = doc.info[index].name
        if len(name) >= 2 and name[0] == HOST and name[1] in drop:
            # Comments after the last key belong to what follows: keep.
            end = doc.content_end(index, doc.block_end(index))
            while end < len(doc.lines) and doc.info[end].kind == 'blank':
                end += 1
            doc.replace(index, end, '')
    tables = _host_tables(doc)
    if tables:
        doc.insert(doc.leading_comments(tables[0]),
                   block(url, table) + '\n')
    else:
        doc.append_block(block(url, table))
    _root_keys(doc, data, want, ['server'] + list(table))
    if not text.strip():
        doc.insert(0, NEW_FILE_COMMENT)
    result = doc.text
    if loads(result) != want or _first_host(Document(result)) != url:
        raise TomlEditError('the edited file would not mean what was '
                            'intended; it was left alone')
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            server=dict(type='str', required=True),
            host=dict(type='str', required=True),
            capabilities=dict(type='list', elements='str',
                              default=['pull', 'resolve']),
            ca=dict(type='str'),
            override_path=dict(type='bool', default=False),
            stale_hosts=dict(type='list', elements='str', default=[]),
            mirror_only=dict(type='bool', default=False),
            mode=dict(type='raw', default='0644'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    before = read_text(params['path'])
    table = entry(params['capabilities'], params['ca'],
                  params['override_path'])
    try:
        after = edit(before or '', params['server'], params['host'], table,
                     [name for name in params['stale_hosts']
                      if name != params['host']],
                     mirror_only=params['mirror_only'])
    except TomlEditError as error:
        module.fail_json(msg='%s: %s' % (params['path'], error))
    finish(module, params['path'], before, after,
           mode=int(str(params['mode']), 8))


if __name__ == '__main__':
    main()
