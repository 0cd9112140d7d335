"""Property-based fuzzing of every parser of client (and operator) input.

Each parser gets arbitrary text and near-valid input built from the
spec's grammar (tests/fuzz.py).  The properties: it answers a valid value
or raises its documented error, never anything else; what it accepts
satisfies the OCI Distribution grammar and round-trips; what the grammar
allows is accepted; accepted names map to storage paths the driver
accepts, inside their namespace.
"""

import base64
import json
import math
import re
import uuid

import bcrypt
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from tests import fuzz
from zuul_registry import auth as auth_module
from zuul_registry import oci
from zuul_registry.api import base, errors
from zuul_registry.config import Config, ConfigError, StorageConfig, User
from zuul_registry.config import load_config, parse_config
from zuul_registry.drivers.base import check_path
from zuul_registry.storage import errors as storage_errors
from zuul_registry.storage import manifests, paths, referrers
from zuul_registry.storage.namespaces import Namespaces

DEFAULT_NAMESPACE = 'docker.io'
FLAT = Namespaces()
NAMESPACED = Namespaces(namespaced=True, default_namespace=DEFAULT_NAMESPACE)


# -- repository names ---------------------------------------------------------

@given(fuzz.names)
@example('a' * 255)
@example('a' * 256)
@example('a\n')
@example('a..b')
@example('a/_tags')
def test_check_name_accepts_exactly_the_spec_grammar(name):
    expected = (len(name) <= fuzz.NAME_MAX_LENGTH
                and bool(fuzz.SPEC_NAME.fullmatch(name)))
    try:
        accepted = oci.check_name(name)
    except oci.GrammarError:
        assert not expected, 'a valid name was refused: %r' % name
    else:
        assert expected, 'an invalid name was accepted: %r' % name
        assert accepted == name


@given(fuzz.valid_names)
def test_every_name_the_grammar_allows_is_accepted(name):
    assert oci.check_name(name) == name
    assert FLAT.resolve(name).name == name


def _repository_paths(repository, digest, tag, upload_id):
    ns, name = repository.namespace, repository.name
    return [
        paths.repository(ns, name), paths.tags(ns, name),
        paths.tag(ns, name, tag), paths.revisions(ns, name),
        paths.revision(ns, name, digest), paths.layer_link(ns, name, digest),
        paths.referrers(ns, name, digest),
        paths.referrer(ns, name, digest, digest),
        paths.blob(ns, digest), paths.upload_info(ns, upload_id),
        paths.upload_chunk(ns, upload_id, 2 ** 63 - 1),
        paths.namespace_marker(ns),
    ]


def _check_storage_paths(repository):
    """Every path of `repository` passes the driver's check, lies in its
    namespace's tree, and names the repository in its own components."""
    digest = oci.Digest.of(b'x', 'sha512')
    upload_id = str(uuid.uuid4())
    root = paths.namespace_root(repository.namespace)
    for path in _repository_paths(repository, digest, 'T' * 128, upload_id):
        assert check_path(path) == path
        components = path.split('/')
        assert '..' not in components and '.' not in components
        if components[0] == paths.NAMESPACE_MARKERS:
            assert components[1:] == [root]
        else:
            assert components[0] == root
    repository_path = paths.repository(repository.namespace, repository.name)
    assert repository_path == '%s/_repositories/%s' % (root, repository.name)
    # No repository component is reserved, so no two objects collide.
    assert not any(part.startswith('_')
                   for part in repository.name.split('/'))


@given(fuzz.names)
@example('docker.io/library/alpine')
@example('quay..io/x')
@example('localhost:0/x')
@example('localhost:99999/x')
@example('a.b/_x')
def test_namespaced_resolution_accepts_only_spec_names_inside_namespaces(
        name):
    try:
        repository = NAMESPACED.resolve(name)
    except oci.GrammarError:
        return
    assert len(name) <= fuzz.NAME_MAX_LENGTH
    assert fuzz.SPEC_NAME.fullmatch(repository.name), repository
    if repository.namespace == DEFAULT_NAMESPACE and \
            str(repository) != name:
        assert repository.name == name
    else:
        # A host named the namespace: it round-trips.
        assert str(repository) == name
        assert fuzz.spec_host(repository.namespace), repository
        assert oci.is_host(repository.namespace)
    assert NAMESPACED.resolve(str(repository)) == repository
    _check_storage_paths(repository)


@given(fuzz.names)
def test_flat_resolution_accepts_only_spec_names(name):
    try:
        repository = FLAT.resolve(name)
    except oci.GrammarError:
        return
    assert repository.namespace is None
    assert str(repository) == repository.name == name
    assert fuzz.SPEC_NAME.fullmatch(name) and len(name) <= 255
    _check_storage_paths(repository)


@given(fuzz.valid_hosts, fuzz.valid_names)
def test_every_spec_host_names_a_namespace(host, name):
    full = host + '/' + name
    assume(len(full) <= fuzz.NAME_MAX_LENGTH)
    repository = NAMESPACED.resolve(full)
    assert repository.namespace == host and repository.name == name


@given(fuzz.hosts, fuzz.component)
@example('quay..io', 'x')
@example('localhost:0', 'x')
@example('localhost:99999', 'x')
@example('localhost:00000', 'x')
def test_an_accepted_registry_host_is_a_spec_host(host, name):
    try:
        repository = NAMESPACED.resolve(host + '/' + name)
    except oci.GrammarError:
        return
    if repository.namespace != DEFAULT_NAMESPACE or host == DEFAULT_NAMESPACE:
        assert fuzz.spec_host(repository.namespace), repository


# -- tags ---------------------------------------------------------------------

@given(fuzz.tags)
@example('a' * 128)
@example('a' * 129)
@example('latest\n')
@example('\u0663')
def test_check_tag_accepts_exactly_the_spec_grammar(tag):
    expected = bool(fuzz.SPEC_TAG.fullmatch(tag))
    try:
        accepted = oci.check_tag(tag)
    except oci.GrammarError:
        assert not expected, 'a valid tag was refused: %r' % tag
        return
    assert expected, 'an invalid tag was accepted: %r' % tag
    assert accepted == tag
    assert not oci.is_digest(tag)
    path = paths.tag('docker.io', 'a/b', tag)
    assert check_path(path) == path
    assert path.rsplit('/', 2)[1:] == ['_tags', tag]


# -- digests ------------------------------------------------------------------

@given(fuzz.digests)
@example('sha256:' + 'A' * 64)
@example('sha256:' + 'a' * 64 + '\n')
@example('sha512:' + '0' * 64)
def test_digest_parse_accepts_only_verifiable_spec_digests(text):
    try:
        digest = oci.Digest.parse(text)
    except oci.GrammarError:
        return
    assert str(digest) == text
    assert fuzz.SPEC_DIGEST.fullmatch(text)
    assert fuzz.SPEC_HEX[digest.algorithm].fullmatch(digest.hex)
    assert oci.Digest.parse(str(digest)) == digest
    assert oci.is_digest(text)
    path = paths.blob('docker.io', digest)
    assert check_path(path) == path


@given(fuzz.valid_digests)
def test_every_verifiable_digest_is_accepted(text):
    assert str(oci.Digest.parse(text)) == text


@given(st.one_of(st.none(), st.integers(), st.floats(), st.booleans(),
                 st.lists(st.text(max_size=3), max_size=2),
                 st.dictionaries(st.text(max_size=3), st.integers(),
                                 max_size=2),
                 st.binary(max_size=10)))
def test_digest_parse_refuses_what_is_not_text(value):
    # Manifests are JSON: a descriptor's digest may be any JSON value.
    with pytest.raises(oci.GrammarError):
        oci.Digest.parse(value)


@given(fuzz.digests)
def test_the_api_maps_a_bad_digest_to_digest_invalid(text):
    try:
        digest = base.digest(text)
    except errors.DigestInvalid as error:
        assert error.status == 400 and error.code == 'DIGEST_INVALID'
    else:
        assert str(digest) == text


# -- upload ids ---------------------------------------------------------------

@given(fuzz.upload_ids)
def test_check_upload_id_accepts_only_canonical_random_uuids(text):
    try:
        accepted = oci.check_upload_id(text)
    except oci.GrammarError:
        assert not fuzz.is_canonical_v4_uuid(text), text
        return
    assert accepted == text
    assert fuzz.is_canonical_v4_uuid(text)
    path = paths.upload_chunk('localhost:5000', text, 0)
    assert check_path(path) == path


@given(fuzz.valid_upload_ids)
def test_every_upload_id_we_make_is_accepted(text):
    assert oci.check_upload_id(text) == text


# -- the Range header ---------------------------------------------------------

_integers = st.one_of(st.integers(0, 40), st.integers(0, 2 ** 70))
_numbers = st.one_of(_integers.map(str), st.just(''),
                     st.sampled_from(['-1', '+1', ' 1', '1 ', '0x10',
                                      '1_0', '1.0', '\u0663', '\uff11',
                                      '00', '1' * 5000]))
range_headers = st.one_of(
    st.builds(lambda unit, first, last: '%s%s-%s' % (unit, first, last),
              st.sampled_from(['bytes=', 'BYTES=', 'bytes =', 'bytes= ',
                               ' bytes=', 'items=', '']),
              _numbers, _numbers),
    st.builds(lambda ranges: 'bytes=' + ','.join(ranges),
              st.lists(st.builds('{}-{}'.format, _numbers, _numbers),
                       min_size=2, max_size=3)),
    st.text(max_size=30),
    st.none())


@given(range_headers, st.one_of(st.integers(0, 50), st.integers(0, 2 ** 64)))
@example('bytes=' + '1' * 5000 + '-', 10)
@example('bytes=-' + '1' * 5000, 10)
@example('bytes=\u0661-\u0662', 10)
@example('bytes=-0', 10)
@example('bytes=0-', 0)
def test_byte_range_is_one_satisfiable_range_or_range_invalid(header, size):
    try:
        span = base.byte_range(header, size)
    except errors.RangeInvalid as error:
        assert error.status == 416
        assert error.headers == {'Content-Range': 'bytes */%d' % size}
        return
    if span is None:
        return
    start, length = span
    assert 0 <= start < size and 1 <= length and start + length <= size
    # Only what RFC 9110 calls a single byte range is honoured, with its
    # meaning: first-last (last capped at the end), or a suffix.
    match = re.fullmatch(r'bytes=([0-9]*)-([0-9]*)', header.strip(),
                         re.ASCII)
    assert match, 'range taken from a header outside the grammar: %r' \
        % header
    first, last = match.groups()
    if first:
        assert start == int(first)
        end = min(int(last), size - 1) if last else size - 1
        assert length == end - start + 1
    else:
        assert last and int(last) > 0
        assert length == min(int(last), size) and start + length == size


# -- manifests ----------------------------------------------------------------

manifest_bodies = st.one_of(
    fuzz.any_manifest_docs.map(lambda doc: json.dumps(doc).encode()),
    fuzz.valid_manifest_docs.map(lambda doc: json.dumps(doc).encode(
        'utf-16')),
    fuzz.any_manifest_docs.map(
        lambda doc: b'\xef\xbb\xbf' + json.dumps(doc).encode()),
    st.builds(lambda depth, pair: fuzz.nested(depth, *pair),
              st.sampled_from([10, 100, 1000]),
              st.sampled_from([('[', ']'), ('{"a":', '}')])),
    st.sampled_from([b'', b'null', b'[]', b'"x"', b'{', b'{"schemaVersion": 2'
                     b', "layers": [], "config": {"size": NaN}}',
                     b'{"schemaVersion": 2, "annotations": {"a": Infinity}}',
                     b'\xff\xfe', b'{"schemaVersion": ' + b'9' * 5000 + b'}']),
    st.binary(max_size=50))
content_types = st.one_of(st.none(), st.sampled_from(fuzz.MEDIA_TYPES),
                          st.sampled_from(fuzz.MEDIA_TYPES).map(
                              lambda t: t + '; charset=utf-8'),
                          st.text(max_size=20))


def _strict_json(body):
    """The document, if `body` is JSON as RFC 8259 has it: UTF-8 (a BOM
    may be ignored), no NaN or Infinity."""
    def refuse(constant):
        raise ValueError('not JSON: %s' % constant)
    text = body.decode('utf-8-sig')
    return json.loads(text, parse_constant=refuse)


def _check_descriptor(descriptor):
    assert isinstance(descriptor.digest, oci.Digest)
    assert fuzz.SPEC_DIGEST.fullmatch(str(descriptor.digest))
    assert isinstance(descriptor.size, int) and descriptor.size >= 0
    assert not isinstance(descriptor.size, bool)
    assert isinstance(descriptor.media_type, str)


@given(manifest_bodies, content_types)
@example(b'[' * 100000 + b']' * 100000, None)
@example(b'{"a":' * 100000 + b'}' * 100000, None)
@example(b'{"schemaVersion": 2, "manifests": [], "annotations": {"a": NaN}}',
         None)
@example(json.dumps({'schemaVersion': 2, 'manifests': []}).encode('utf-16'),
         None)
@example(json.dumps({'schemaVersion': 2, 'layers': [], 'config': {
    'digest': 5, 'size': 1, 'mediaType': 'x'}}).encode(), None)
def test_manifest_parse_accepts_only_valid_manifests(body, content_type):
    try:
        parsed = manifests.parse(body, content_type)
    except storage_errors.ManifestInvalid:
        return
    doc = _strict_json(body)
    assert isinstance(doc, dict) and doc['schemaVersion'] == 2
    assert parsed.doc == doc
    assert parsed.media_type in oci.MANIFEST_TYPES
    header = (content_type or '').split(';')[0].strip().lower()
    if header in oci.MANIFEST_TYPES:
        assert parsed.media_type == header
    if isinstance(doc.get('mediaType'), str) and doc['mediaType']:
        assert parsed.media_type == doc['mediaType']
    if parsed.media_type in oci.INDEX_TYPES:
        assert parsed.blobs == [] and isinstance(doc['manifests'], list)
        assert len(parsed.children) == len(doc['manifests'])
    else:
        assert parsed.children == [] and isinstance(doc['layers'], list)
        assert len(parsed.blobs) == len(doc['layers']) + 1
    for descriptor in parsed.blobs + parsed.children:
        _check_descriptor(descriptor)
    if parsed.subject is None:
        assert doc.get('subject') is None
        return
    assert str(parsed.subject) == doc['subject']['digest']
    # What the referrers API will answer for it is valid JSON.
    digest = oci.Digest.of(body)
    try:
        entry = referrers.descriptor(doc, digest, len(body),
                                     parsed.media_type)
    except storage_errors.ManifestInvalid:
        return
    assert entry['digest'] == str(digest) and entry['size'] == len(body)
    assert isinstance(entry.get('artifactType', ''), str)
    assert _strict_json(json.dumps(entry).encode()) == entry


# -- the token endpoint's parsers ---------------------------------------------

SECRET = 'fuzz-secret-0123456789-0123456789-0123456789'
AUTH_CONFIG = Config(
    storage=StorageConfig(driver='filesystem', root='/nonexistent'),
    users=(User(name='writer', password='w-pass', access='write'),
           User(name='reader', password='r-pass', access='read'),
           User(name='hashed', password=None, access='read',
                password_hash=bcrypt.hashpw(
                    b'h-pass', bcrypt.gensalt(4)).decode('ascii'))),
    secret=SECRET)
AUTH = auth_module.Auth(AUTH_CONFIG, NAMESPACED)
credentials_text = st.one_of(st.text(max_size=20),
                             st.sampled_from(['writer', 'reader', 'hashed',
                                              'w-pass', 'h-pass', 'x' * 73,
                                              'é' * 40]))
authorization_headers = st.one_of(
    st.builds(lambda scheme, value: scheme + value,
              st.sampled_from(['Basic ', 'basic ', 'Bearer ', 'BEARER ',
                               'Digest ', 'Basic', 'Bearer', '']),
              st.one_of(st.text(max_size=40), st.sampled_from([
                  'é', '\udcff', '====', 'a', 'YWJj', '\x00',
                  'eyJhbGciOiJub25lIn0.e30.', 'a.b.c', '..',
                  'eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.\udcff.x']))),
    st.builds(lambda name, password: 'Basic ' + base64.b64encode(
        ('%s:%s' % (name, password)).encode('utf8')).decode(),
        credentials_text, credentials_text))
scopes = st.one_of(
    st.text(max_size=40),
    st.builds(lambda kind, name, actions: '%s:%s:%s' % (kind, name, actions),
              st.sampled_from(['repository', 'registry', '', 'Repository']),
              fuzz.names,
              st.lists(st.sampled_from(['pull', 'push', 'delete', '*', '',
                                        'PULL', 'x']), max_size=3).map(
                  ','.join)))


@given(st.lists(scopes, max_size=3))
def test_parse_scopes_yields_names_and_known_actions(texts):
    for name, actions in auth_module.parse_scopes(texts):
        assert isinstance(name, str) and name
        assert actions <= auth_module.ALL_ACTIONS


@given(st.lists(scopes, max_size=3), st.sampled_from([
    frozenset(), auth_module.ALL_ACTIONS, frozenset(['pull'])]))
def test_tokens_grant_only_canonical_repositories(texts, actions):
    token = AUTH.issue_token('writer', actions, texts)
    grants = AUTH.verify_token(token['token'])
    assert grants.subject == 'writer' and not grants.everywhere
    for name, granted in grants.repositories.items():
        assert AUTH.canonical(name) == name
        assert granted and granted <= actions


@given(authorization_headers)
@example('Basic é')
@example('Bearer \udcff')
@example('Basic ' + base64.b64encode(b'hashed:' + b'x' * 100).decode())
async def test_authorization_header_gives_grants_or_auth_error(header):
    try:
        grants = await AUTH.grants_for_request(header)
    except auth_module.AuthError:
        return
    assert isinstance(grants, auth_module.Grants)
    assert grants.everywhere <= auth_module.ALL_ACTIONS


@given(authorization_headers)
def test_basic_credentials_are_a_pair_none_or_auth_error(header):
    try:
        credentials = AUTH.basic_credentials(header)
    except auth_module.AuthError:
        return
    if credentials is not None:
        name, password = credentials
        assert isinstance(name, str) and isinstance(password, str)
        assert ':' not in name


@given(credentials_text.filter(lambda s: '\udcff' not in s),
       st.one_of(st.text(max_size=20), st.text(min_size=70, max_size=80),
                 st.sampled_from(['h-pass', 'h-pass' + 'x' * 70])))
async def test_user_actions_are_known_actions_or_none(name, password):
    actions = await AUTH.user_actions(name, password)
    assert actions is None or actions <= auth_module.ALL_ACTIONS
    if actions is not None:
        assert (name, password) in (('writer', 'w-pass'),
                                    ('reader', 'r-pass'),
                                    ('hashed', 'h-pass'))


@given(st.one_of(st.text(max_size=60), authorization_headers.map(
    lambda h: h.partition(' ')[2])))
def test_refresh_tokens_are_checked_with_auth_error(token):
    with pytest.raises(auth_module.AuthError):
        AUTH.refresh_subject(token)


# -- configuration ------------------------------------------------------------

REGISTRY_KEYS = ['address', 'port', 'public-url', 'tls-cert', 'tls-key',
                 'secret', 'users', 'storage', 'expiration', 'namespaced',
                 'default-namespace', 'anonymous-push', 'anonymous-read',
                 'token-expiration', 'manifest-size-limit', 'delete',
                 'unknown']
STORAGE_KEYS = ['driver', 'root', 'container', 'cloud', 'auth-url',
                'auth-version', 'user', 'key', 'username', 'password',
                'project-name', 'expiration']
config_scalars = st.one_of(
    fuzz.json_scalars, fuzz.hosts, st.sampled_from([
        'filesystem', 'swift', 'read', 'write', '/srv/x', '%(ZUUL_X)',
        '%(HOME)', 'http://[', 'http://[::1', 'https://a:99999',
        'http://u:p@h', 'http://h/?q', 'http://h', 'https://[::1]:5000',
        'http:///x', 0, 65535, 65536, 1024, 7 * 86400]))
config_users = st.lists(st.one_of(st.fixed_dictionaries({}, optional={
    'name': config_scalars, 'pass': config_scalars,
    'pass-hash': st.one_of(config_scalars, st.just(
        '$2b$12$' + 'a' * 53)),
    'access': config_scalars}), config_scalars), max_size=3)
config_docs = st.one_of(
    st.fixed_dictionaries({'registry': st.one_of(st.dictionaries(
        st.sampled_from(REGISTRY_KEYS),
        st.one_of(config_scalars, config_users, st.dictionaries(
            st.sampled_from(STORAGE_KEYS), config_scalars, max_size=5))),
        config_scalars)}),
    fuzz.json_values)


def _check_config(config):
    assert isinstance(config, Config)
    assert 0 < config.port < 65536
    assert fuzz.spec_host(config.default_namespace)
    if config.users:
        assert config.secret and not config.anonymous_push
    if config.public_url:
        assert config.public_url.split('://')[0] in ('http', 'https')


@given(config_docs)
def test_parse_config_gives_a_config_or_config_error(data):
    try:
        config = parse_config(data, environ={'ZUUL_X': 'x'})
    except ConfigError as error:
        assert error.problems
        assert all(isinstance(problem, str) for problem in error.problems)
        return
    _check_config(config)


yaml_texts = st.one_of(
    st.text(max_size=60),
    st.builds(lambda key, value: 'registry:\n  storage: {driver: filesystem'
              ', root: /x}\n  %s: %s\n' % (key, value),
              st.sampled_from(REGISTRY_KEYS), st.one_of(
                  st.text(max_size=20), config_scalars.map(json.dumps))),
    st.sampled_from(['[' * 50, '{a: ' * 50, '- ' * 50 + 'x',
                     'registry: &a [*a]', 'a: !!python/object:os.system x',
                     'registry:\n  port: 1\n  port: 2\n', '\ufeffregistry:',
                     'registry: !!binary aGk=', '%YAML 9.9\n---\n']))


@settings(max_examples=fuzz.examples(60))
@given(yaml_texts)
@example('[' * 1100)
@example('{a: ' * 1100)
@example('- ' * 1100 + 'x')
@example('registry:\n  storage: {driver: filesystem, root: /x}\n'
         '  public-url: "http://["\n')
def test_load_config_gives_a_config_or_config_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp('config') / 'registry.yaml'
    path.write_bytes(text.encode('utf8', 'surrogatepass'))
    try:
        config = load_config(str(path), environ={})
    except ConfigError as error:
        assert error.problems
        return
    _check_config(config)


def test_strict_json_helper_refuses_what_rfc_8259_refuses():
    # The helper the manifest property relies on must itself be strict.
    for body in (b'{"a": NaN}', '{}'.encode('utf-16'), b'\xff'):
        with pytest.raises(ValueError):
            _strict_json(body)
    assert _strict_json(b'\xef\xbb\xbf{}') == {}
    assert not math.isnan(_strict_json(b'{"a": 1.5}')['a'])
