"""The use-buildset-registry modules: registries.conf, buildkitd.toml and
JSON client files, edited structurally."""

import json
import re
import tomllib

import pytest

from tests.roles.modules import library
from tests.roles.modules import module_util

toml_text = module_util('toml_text')
registries = library('containers_registries_conf')
buildkitd = library('buildkitd_toml')
json_config = library('registry_json_config')

MIRROR = '198.51.100.7:5000'


def edit_registries(text, namespaces=('docker.io',), search=('docker.io',),
                    **options):
    return registries.edit(text, MIRROR, list(namespaces), list(search),
                           **options)


# -- toml_text ---------------------------------------------------------------

def test_parse_key():
    assert toml_text.parse_key('registry') == ('registry',)
    assert toml_text.parse_key(' registry . "docker.io" ') == (
        'registry', 'docker.io')
    assert toml_text.parse_key("a.'b.c'.d") == ('a', 'b.c', 'd')
    assert toml_text.parse_key('"a\\"b"') == ('a"b',)
    assert toml_text.parse_key('a b') is None


def test_nothing_inside_strings_or_arrays_is_a_header():
    doc = toml_text.Document(
        'a = [\n  "x",\n  ["y"],\n]\n'
        'b = """\n[not.a.header]\n"""\n'
        "c = '[x]' # [y]\n"
        '[real] # comment\n'
        '[[array."of.tables"]]\n')
    assert [doc.info[i].name for i in doc.headers()] == [
        ('real',), ('array', 'of.tables')]
    assert doc.find_statement(0, len(doc.lines), ('a',)) == (0, 4)
    assert doc.find_statement(0, len(doc.lines), ('b',)) == (4, 7)


# -- registries.conf ---------------------------------------------------------

def test_empty_file_gets_search_registries_and_mirrors():
    text = edit_registries('', ['docker.io', 'quay.io'])
    assert tomllib.loads(text) == {
        'unqualified-search-registries': ['docker.io'],
        'registry': [
            {'prefix': 'docker.io', 'location': 'docker.io',
             'mirror': [{'location': MIRROR + '/docker.io'}]},
            {'prefix': 'quay.io', 'location': 'quay.io',
             'mirror': [{'location': MIRROR + '/quay.io'}]}]}


def test_mirror_goes_first_and_the_rest_stays():
    text = ('# head\n'
            '[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n'
            'blocked = false\n\n'
            '# site mirror\n[[registry.mirror]]\nlocation = "m.example"\n'
            'insecure = true\n')
    result = edit_registries(text, search=['quay.io'])
    data = tomllib.loads(result)
    assert data['registry'][0]['mirror'] == [
        {'location': MIRROR + '/docker.io'},
        {'location': 'm.example', 'insecure': True}]
    assert data['registry'][0]['blocked'] is False
    assert data['unqualified-search-registries'] == ['quay.io']
    # The comment still sits right above the mirror it describes.
    assert '# site mirror\n[[registry.mirror]]\nlocation = "m.example"' in (
        result)
    assert result.startswith('# head\n')


def test_a_mirror_further_back_moves_to_the_front():
    text = ('unqualified-search-registries = []\n'
            '[[registry]]\nlocation = "docker.io"\n'
            '[[registry.mirror]]\nlocation = "m.example"\n'
            '[[registry.mirror]]\nlocation = "%s/docker.io"\n' % MIRROR)
    data = tomllib.loads(edit_registries(text))
    assert [m['location'] for m in data['registry'][0]['mirror']] == [
        MIRROR + '/docker.io', 'm.example']
    # The search registries asked for come first (issue 10).
    assert data['unqualified-search-registries'] == ['docker.io']


def test_search_registries_go_first_and_the_others_stay():
    text = ('# head\nunqualified-search-registries = ["quay.io", '
            '"docker.io"]\nshort-name-mode = "enforcing"\n')
    result = edit_registries(text, search=['docker.io', 'ghcr.io'])
    data = tomllib.loads(result)
    assert data['unqualified-search-registries'] == [
        'docker.io', 'ghcr.io', 'quay.io']
    assert data['short-name-mode'] == 'enforcing'
    assert result.startswith('# head\nunqualified-search-registries')
    assert edit_registries(result, search=['docker.io', 'ghcr.io']) == result
    # None asked for: the setting is left as it is.
    assert edit_registries(text, search=[]).count(
        'unqualified-search-registries = ["quay.io", "docker.io"]') == 1


def test_json_entries_if_absent_never_replace_a_value():
    before = {'auths': {'hub': {'auth': 'theirs'}}, 'credsStore': 'x'}
    after = json_config.merge(before, {}, {'auths': {'r': {'auth': 'ours'}}},
                              {'auths': {'hub': {'auth': 'ours'},
                                         'new': {'auth': 'ours'}}})
    assert after == {'auths': {'hub': {'auth': 'theirs'},
                               'r': {'auth': 'ours'},
                               'new': {'auth': 'ours'}},
                     'credsStore': 'x'}
    assert json_config.kept_entries(before, {'auths': {
        'hub': {'auth': 'ours'}}}) == ['hub']


def test_editing_twice_changes_nothing():
    once = edit_registries('short-name-mode = "permissive"\n',
                           ['docker.io', 'ghcr.io'])
    assert edit_registries(once, ['docker.io', 'ghcr.io']) == once


@pytest.mark.parametrize('text, message', [
    ('[registries.search]\nregistries = []\n', 'version 1'),
    ('registry = [{prefix = "docker.io", location = "docker.io"}]\n',
     '[[registry]] tables'),
    ('[[registry]]\nlocation = "docker.io"\n'
     'mirror = [{location = "m.example"}]\n', '[[registry.mirror]] tables'),
    ('this is = not toml [', 'not valid TOML'),
])
def test_refuses_what_it_cannot_edit_safely(text, message):
    with pytest.raises(toml_text.TomlEditError, match=re.escape(message)):
        edit_registries(text)


# -- registries.conf, mirror only ------------------------------------------

SITE_ENTRY = ('# head\n'
              '[[registry]]\n# Docker Hub.\nlocation = "docker.io"\n'
              'blocked = false\n\n'
              '# site mirror\n[[registry.mirror]]\nlocation = "m.example"\n')


def test_mirror_only_the_registry_is_the_location_of_new_entries():
    text = edit_registries('', ['docker.io', 'quay.io'], mirror_only=True)
    assert tomllib.loads(text)['registry'] == [
        {'prefix': namespace, 'location': '%s/%s' % (MIRROR, namespace),
         'mirror': [{'location': '%s/%s' % (MIRROR, namespace)}]}
        for namespace in ('docker.io', 'quay.io')]


def test_mirror_only_an_existing_entry_gets_the_registry_as_its_location():
    result = edit_registries(SITE_ENTRY, mirror_only=True)
    entry = tomllib.loads(result)['registry'][0]
    # The prefix was the location: it is written out, so the entry still
    # applies to docker.io images.
    assert entry == {
        'prefix': 'docker.io', 'location': MIRROR + '/docker.io',
        'blocked': False,
        'mirror': [{'location': MIRROR + '/docker.io'},
                   {'location': 'm.example'}]}
    assert '[[registry]]\n# Docker Hub.\nprefix = "docker.io"\n' in result
    assert result.startswith('# head\n')
    assert '# site mirror\n[[registry.mirror]]\nlocation = "m.example"' in (
        result)
    assert edit_registries(result, mirror_only=True) == result


def test_mirror_only_off_gives_the_upstream_its_location_back():
    only = edit_registries(SITE_ENTRY, mirror_only=True)
    again = edit_registries(only)
    entry = tomllib.loads(again)['registry'][0]
    assert entry['location'] == 'docker.io'
    assert entry['prefix'] == 'docker.io'
    assert entry['mirror'][0] == {'location': MIRROR + '/docker.io'}
    assert edit_registries(again) == again


# -- buildkitd.toml ----------------------------------------------------------

def edit_buildkitd(text, mirrors=None, ca=None):
    return buildkitd.edit(text, buildkitd.changes(
        mirrors or {'docker.io': MIRROR + '/docker.io'}, ca or {}))


def test_buildkitd_new_file():
    text = edit_buildkitd('', ca={MIRROR: '/etc/ca.crt'})
    assert tomllib.loads(text) == {'registry': {
        'docker.io': {'mirrors': [MIRROR + '/docker.io']},
        MIRROR: {'ca': ['/etc/ca.crt']}}}


def test_buildkitd_keeps_other_mirrors_keys_and_comments():
    text = ('# top comment\n[registry."docker.io"]\n  http = true\n'
            '  mirrors = [\n    "a.example",  # first\n    "b.example",\n'
            '  ]\n\n[worker.oci]\n  gc = false\n')
    result = edit_buildkitd(text)
    assert tomllib.loads(result) == {
        'registry': {'docker.io': {
            'http': True,
            'mirrors': [MIRROR + '/docker.io', 'a.example', 'b.example']}},
        'worker': {'oci': {'gc': False}}}
    assert result.startswith('# top comment\n')
    assert edit_buildkitd(result) == result


def test_buildkitd_adds_a_missing_key_to_an_existing_table():
    result = edit_buildkitd('[registry."docker.io"]\n  http = true\n')
    assert tomllib.loads(result)['registry']['docker.io'] == {
        'http': True, 'mirrors': [MIRROR + '/docker.io']}


def test_buildkitd_refuses_a_dotted_table():
    with pytest.raises(toml_text.TomlEditError, match='table'):
        edit_buildkitd('[registry]\n"docker.io".mirrors = ["x"]\n')


# -- JSON files --------------------------------------------------------------

def test_json_merge_first_in_list_and_entries():
    before = {'registry-mirrors': ['https://m', 'https://r'], 'x': 1,
              'auths': {'a': {'auth': 'b'}}}
    after = json_config.merge(before, {'registry-mirrors': 'https://r'},
                              {'auths': {'c': {'auth': 'd'}}})
    assert after == {'registry-mirrors': ['https://r', 'https://m'], 'x': 1,
                     'auths': {'a': {'auth': 'b'}, 'c': {'auth': 'd'}}}
    assert before['auths'] == {'a': {'auth': 'b'}}


def test_json_refuses_wrong_types():
    with pytest.raises(json_config.JsonConfigError):
        json_config.merge({'registry-mirrors': 'x'},
                          {'registry-mirrors': 'y'}, {})
    with pytest.raises(json_config.JsonConfigError):
        json_config.load('[1, 2]')


# -- through Ansible: check mode, diff, idempotence -------------------------

def test_registries_conf_module(ansible, tmp_path):
    path = tmp_path / 'registries.conf'
    args = dict(path=str(path), mirror=MIRROR, namespaces=['docker.io'])
    check = ansible.module('containers_registries_conf', args, check=True,
                           diff=True)
    assert check['changed'] and not path.exists()
    assert '+location = "%s/docker.io"' % MIRROR in check['_output']
    assert ansible.module('containers_registries_conf', args)['changed']
    assert path.exists()
    assert not ansible.module('containers_registries_conf', args)['changed']


def test_buildkitd_module(ansible, tmp_path):
    path = tmp_path / 'buildkit' / 'buildkitd.toml'
    args = dict(path=str(path), mirrors={'docker.io': MIRROR + '/docker.io'})
    assert ansible.module('buildkitd_toml', args, check=True)['changed']
    assert not path.exists()
    assert ansible.module('buildkitd_toml', args)['changed']
    assert not ansible.module('buildkitd_toml', args)['changed']


def test_json_module_hides_credentials_and_ignores_formatting(ansible,
                                                              tmp_path):
    path = tmp_path / 'docker' / 'config.json'
    args = dict(path=str(path),
                entries={'auths': {MIRROR: {'auth': 'c2VjcmV0'}}})
    check = ansible.module('registry_json_config', args, check=True,
                           diff=True)
    assert check['changed'] and not path.exists()
    assert 'c2VjcmV0' not in check['_output']
    assert 'auths' in check['_output']  # the diff names the changed key
    assert ansible.module('registry_json_config', args)['changed']
    assert oct(path.stat().st_mode & 0o777) == '0o600'
    assert oct(path.parent.stat().st_mode & 0o777) == '0o700'
    # Same meaning, other formatting: not a change, file left alone.
    path.write_text(json.dumps(json.loads(path.read_text())))
    before = path.read_text()
    assert not ansible.module('registry_json_config', args)['changed']
    assert path.read_text() == before
