"""The containerd_hosts_toml module: our host first in a hosts.toml, merged
structurally with what the site wrote there."""

import re
import tomllib

import pytest

from tests.roles.modules import library
from tests.roles.modules import module_util

toml_text = module_util('toml_text')
hosts_toml = library('containerd_hosts_toml')

SERVER = 'https://registry-1.docker.io'
OURS = 'https://zuul-jobs.buildset-registry:5000/v2/docker.io'
OLD = 'https://203.0.113.5:5000/v2/docker.io'
TABLE = hosts_toml.entry(['pull', 'resolve'], '/etc/ca.crt', True)
SITE = '''\
# Site settings.
server = "https://docker.example.com"

# The site mirror: keep this comment.
[host."https://mirror.example.com"]
  capabilities = ["pull", "resolve"]
  skip_verify = true

[host."https://other.example.com"]
  capabilities = ["pull"]
  [host."https://other.example.com".header]
    x-site = ["yes"]
'''


def edit(text, stale=(), **options):
    return hosts_toml.edit(text, SERVER, OURS, TABLE, list(stale), **options)


def hosts_in_order(text):
    return [toml_text.Document(text).info[index].name[1]
            for index in hosts_toml._host_tables(toml_text.Document(text))]


def test_new_file():
    text = edit('')
    assert tomllib.loads(text) == {'server': SERVER, 'host': {OURS: {
        'capabilities': ['pull', 'resolve'], 'ca': '/etc/ca.crt',
        'override_path': True}}}
    assert text.startswith('#')


def test_site_hosts_and_server_stay_ours_goes_first():
    text = edit(SITE)
    data = tomllib.loads(text)
    assert data['server'] == 'https://docker.example.com'
    assert hosts_in_order(text) == [OURS, 'https://mirror.example.com',
                                    'https://other.example.com']
    assert data['host']['https://mirror.example.com'] == {
        'capabilities': ['pull', 'resolve'], 'skip_verify': True}
    assert data['host']['https://other.example.com'] == {
        'capabilities': ['pull'], 'header': {'x-site': ['yes']}}
    # Every line of the site's file is still there; the comment still sits
    # above the table it describes.
    for line in SITE.splitlines():
        assert line in text.splitlines()
    assert ('# The site mirror: keep this comment.\n'
            '[host."https://mirror.example.com"]') in text


def test_editing_twice_changes_nothing():
    once = edit(SITE)
    assert edit(once) == once


def test_an_older_entry_of_ours_is_replaced_not_repeated():
    text = SITE + '\n[host."%s"]\n  capabilities = ["pull"]\n' % OURS
    result = edit(text)
    assert hosts_in_order(result) == [OURS, 'https://mirror.example.com',
                                      'https://other.example.com']
    assert tomllib.loads(result)['host'][OURS] == TABLE


def test_our_registry_under_its_old_name_is_removed():
    text = ('[host."%s"]\n  capabilities = ["pull"]\n\n'
            '# Mirror.\n[host."https://mirror.example.com"]\n'
            '  capabilities = ["pull"]\n' % OLD)
    result = edit(text, stale=[OLD])
    assert hosts_in_order(result) == [OURS, 'https://mirror.example.com']
    assert '# Mirror.\n[host."https://mirror.example.com"]' in result
    assert tomllib.loads(result)['server'] == SERVER


def test_the_template_of_older_versions_is_already_right():
    old = ('# Written by the use-buildset-registry role.\n'
           'server = "%s"\n\n[host."%s"]\n'
           '  capabilities = ["pull", "resolve"]\n  ca = "/etc/ca.crt"\n'
           '  override_path = true\n' % (SERVER, OURS))
    assert edit(old) == old


# -- mirror only: the registry is the server too ----------------------------

def test_mirror_only_new_file_the_registry_is_the_server():
    text = edit('', mirror_only=True)
    # The keys at the top are the server's: containerd reads them so.
    assert tomllib.loads(text) == dict(TABLE, server=OURS, host={OURS: TABLE})
    assert edit(text, mirror_only=True) == text


def test_mirror_only_replaces_the_site_server_and_keeps_its_hosts():
    text = edit(SITE, mirror_only=True)
    data = tomllib.loads(text)
    assert data['server'] == OURS
    assert {key: data[key] for key in TABLE} == TABLE
    assert hosts_in_order(text) == [OURS, 'https://mirror.example.com',
                                    'https://other.example.com']
    assert data['host']['https://mirror.example.com'] == {
        'capabilities': ['pull', 'resolve'], 'skip_verify': True}
    assert ('# The site mirror: keep this comment.\n'
            '[host."https://mirror.example.com"]') in text
    assert text.startswith('# Site settings.\n')
    assert edit(text, mirror_only=True) == text


def test_mirror_only_off_gives_the_upstream_back_as_the_server():
    text = edit(edit(SITE, mirror_only=True))
    data = tomllib.loads(text)
    assert data['server'] == SERVER
    assert not set(TABLE) & set(data)
    assert hosts_in_order(text)[0] == OURS
    assert edit(text) == text


def test_mirror_only_module(ansible, tmp_path):
    path = tmp_path / 'certs.d' / 'docker.io' / 'hosts.toml'
    args = dict(path=str(path), server=SERVER, host=OURS, ca='/etc/ca.crt',
                override_path=True, mirror_only=True)
    assert ansible.module('containerd_hosts_toml', args, check=True)[
        'changed']
    assert not path.exists()
    assert ansible.module('containerd_hosts_toml', args)['changed']
    assert tomllib.loads(path.read_text())['server'] == OURS
    assert not ansible.module('containerd_hosts_toml', args)['changed']


@pytest.mark.parametrize('text, message', [
    ('server = "x"\nhost = {"https://m" = {capabilities = ["pull"]}}\n',
     '[host."URL"] tables'),
    ('[host]\n"https://m".capabilities = ["pull"]\n', '[host."URL"] tables'),
    ('server = "x"\nhost = "https://m"\n', 'table of [host."URL"] tables'),
    ('[host."https://m"\ncapabilities = 1\n', 'not valid TOML'),
])
def test_refuses_what_it_cannot_edit_safely(text, message):
    with pytest.raises(toml_text.TomlEditError, match=re.escape(message)):
        edit(text)


def test_module_check_mode_diff_and_idempotence(ansible, tmp_path):
    path = tmp_path / 'certs.d' / 'docker.io' / 'hosts.toml'
    args = dict(path=str(path), server=SERVER, host=OURS,
                ca='/etc/ca.crt', override_path=True, stale_hosts=[OLD])
    check = ansible.module('containerd_hosts_toml', args, check=True,
                           diff=True)
    assert check['changed'] and not path.exists()
    assert '+[host."%s"]' % OURS in check['_output']
    assert ansible.module('containerd_hosts_toml', args)['changed']
    assert tomllib.loads(path.read_text())['host'] == {OURS: TABLE}
    assert not ansible.module('containerd_hosts_toml', args)['changed']


def test_module_fails_clearly_on_a_broken_file(ansible, tmp_path):
    path = tmp_path / 'hosts.toml'
    path.write_text('[host."https://m"\n')
    result = ansible.module('containerd_hosts_toml', dict(
        path=str(path), server=SERVER, host=OURS))
    assert result['failed']
    assert 'not valid TOML' in result['msg']
    assert path.read_text() == '[host."https://m"\n'
