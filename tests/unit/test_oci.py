"""The OCI Distribution grammar: names, tags, digests, upload ids."""

import hashlib
import uuid

import pytest

from zuul_registry import oci

SHA256_HEX = hashlib.sha256(b'x').hexdigest()
SHA512_HEX = hashlib.sha512(b'x').hexdigest()


# -- repository names ---------------------------------------------------------

@pytest.mark.parametrize('name', [
    'a', '0', 'alpine', 'library/alpine', 'a/b/c/d', 'org-name/image',
    'a.b', 'a_b', 'a__b', 'a-b', 'a---b', 'a.b_c__d-e/f0', 'x' * 255,
    '/'.join(['abc'] * 63) + '/abc',
])
def test_name_matching_the_grammar_is_accepted(name):
    assert oci.check_name(name) == name


@pytest.mark.parametrize('name', [
    '', 'Alpine', 'library/Alpine', '/a', 'a/', 'a//b', '_a', 'a_', 'a/_b',
    '-a', 'a-', '.a', 'a.', 'a..b', 'a.-b', 'a___b', 'a_-b', 'a b', 'a:b',
    'a@b', '../a', 'a/../b', 'a/./b', 'a\nb', 'a\n', 'é',
    'library/_tags', 'a/_blobs', '_default',
])
def test_name_outside_the_grammar_is_refused(name):
    with pytest.raises(oci.GrammarError):
        oci.check_name(name)


def test_name_may_be_255_characters_long_but_no_longer():
    name = '/'.join(['abcdefghi'] * 25) + '/abcde'
    assert len(name) == 255
    assert oci.check_name(name) == name
    with pytest.raises(oci.GrammarError):
        oci.check_name(name + 'f')
    with pytest.raises(oci.GrammarError):
        oci.check_name('x' * 256)


# -- tags ---------------------------------------------------------------------

@pytest.mark.parametrize('tag', [
    'latest', 'v1.0.0', '1', 'A', '_', '_private', 'UPPER_lower-1.2',
    'a' * 128, 'a..b', 'a--', 'sha256-' + SHA256_HEX[:40],
])
def test_tag_matching_the_grammar_is_accepted(tag):
    assert oci.check_tag(tag) == tag


@pytest.mark.parametrize('tag', [
    '', 'a' * 129, '.a', '-a', 'a:b', 'a/b', 'a b', 'a@b', 'a+b', '..',
    'latest\n', 'é',
])
def test_tag_outside_the_grammar_is_refused(tag):
    with pytest.raises(oci.GrammarError):
        oci.check_tag(tag)


def test_a_reference_is_a_digest_when_it_has_a_colon():
    assert oci.is_digest('sha256:' + SHA256_HEX)
    assert not oci.is_digest('latest')


# -- digests ------------------------------------------------------------------

def test_sha256_digest_is_parsed_into_algorithm_and_hex():
    digest = oci.Digest.parse('sha256:' + SHA256_HEX)
    assert (digest.algorithm, digest.hex) == ('sha256', SHA256_HEX)
    assert str(digest) == 'sha256:' + SHA256_HEX


def test_sha512_digest_is_parsed():
    digest = oci.Digest.parse('sha512:' + SHA512_HEX)
    assert (digest.algorithm, digest.hex) == ('sha512', SHA512_HEX)


def test_digest_of_bytes_is_their_sha256_by_default():
    assert str(oci.Digest.of(b'')) == 'sha256:' + hashlib.sha256().hexdigest()
    assert oci.Digest.of(b'').hex.startswith('e3b0c44298fc1c14')
    assert oci.Digest.of(b'x', 'sha512') == \
        oci.Digest.parse('sha512:' + SHA512_HEX)


def test_digests_compare_and_hash_by_value():
    a = oci.Digest.parse('sha256:' + SHA256_HEX)
    b = oci.Digest.of(b'x')
    assert a == b and hash(a) == hash(b)
    assert a != oci.Digest.of(b'y')
    assert a != str(a)
    assert len({a, b}) == 1


def test_digest_hasher_uses_the_digest_algorithm():
    hasher = oci.Digest.parse('sha512:' + SHA512_HEX).hasher()
    hasher.update(b'x')
    assert hasher.hexdigest() == SHA512_HEX


@pytest.mark.parametrize('text', [
    'md5:' + hashlib.md5(b'x').hexdigest(),
    'sha1:' + hashlib.sha1(b'x').hexdigest(),
    'sha384:' + hashlib.sha384(b'x').hexdigest(),
    'multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8',
])
def test_digest_with_an_unsupported_algorithm_is_refused(text):
    with pytest.raises(oci.GrammarError, match='unsupported'):
        oci.Digest.parse(text)


@pytest.mark.parametrize('text', [
    'sha256:' + SHA256_HEX[:-1],
    'sha256:' + SHA256_HEX + '0',
    'sha256:',
    'sha512:' + SHA256_HEX,
    'sha256:' + SHA512_HEX,
])
def test_digest_of_the_wrong_length_is_refused(text):
    with pytest.raises(oci.GrammarError):
        oci.Digest.parse(text)


def test_digest_with_uppercase_hex_is_refused():
    with pytest.raises(oci.GrammarError):
        oci.Digest.parse('sha256:' + SHA256_HEX.upper())
    with pytest.raises(oci.GrammarError):
        oci.Digest.parse('SHA256:' + SHA256_HEX)


@pytest.mark.parametrize('text', [
    None, '', SHA256_HEX, ':' + SHA256_HEX, 'sha256' + SHA256_HEX,
    'sha256:' + SHA256_HEX[:-1] + 'g', 'sha256:' + SHA256_HEX + '\n',
    ' sha256:' + SHA256_HEX, 'sha256::' + SHA256_HEX,
    'sha256:' + SHA256_HEX[:-2] + '/x', 'latest',
])
def test_malformed_digest_is_refused(text):
    with pytest.raises(oci.GrammarError):
        oci.Digest.parse(text)


@pytest.mark.parametrize('value', [
    5, 0, 1.5, True, [], ['sha256:' + SHA256_HEX], {}, b'sha256:x',
])
def test_a_digest_that_is_no_string_is_refused(value):
    # A manifest descriptor's digest may be any JSON value (was TypeError).
    with pytest.raises(oci.GrammarError):
        oci.Digest.parse(value)


# -- hosts --------------------------------------------------------------------

@pytest.mark.parametrize('component', [
    'docker.io', 'quay.io', 'localhost', 'localhost:5000', 'host:5000',
    '127.0.0.1', 'registry.example.com:5000',
])
def test_component_with_a_dot_or_port_or_localhost_is_a_host(component):
    assert oci.is_host(component)


@pytest.mark.parametrize('component', [
    'library', 'alpine', 'my-org', 'a_b', 'localhost2', 'mylocalhost',
])
def test_plain_component_is_not_a_host(component):
    assert not oci.is_host(component)


@pytest.mark.parametrize('host', [
    'docker.io', 'quay.io', 'quay.io:443', 'localhost', 'localhost:5000',
    '127.0.0.1', '127.0.0.1:5000', 'registry.example.com:5000', 'a-b.c',
    'a--b.io', 'xn--bcher-kva.example', 'host:1', 'host:9999',
    'host:59999', 'host:64999', 'host:65499', 'host:65529', 'host:65535',
])
def test_registry_host_grammar_accepts_hosts_and_ports(host):
    assert oci.HOST_RE.fullmatch(host)


@pytest.mark.parametrize('host', [
    'quay..io', '.quay.io', 'quay.io.', '-a.io', 'a-.io', 'a.-b.io',
    'a.b-.io', 'localhost:0', 'localhost:00', 'quay.io:99999',
    'quay.io:65536', 'quay.io:70000', 'host:05000', 'host:', ':5000',
    'Host.io', 'a_b.io', 'host:5000:1', 'host:port', '',
])
def test_registry_host_grammar_refuses_empty_or_dashed_labels_and_bad_ports(
        host):
    assert not oci.HOST_RE.fullmatch(host)


# -- upload ids ---------------------------------------------------------------

def test_upload_id_is_a_random_uuid():
    upload_id = str(uuid.uuid4())
    assert oci.check_upload_id(upload_id) == upload_id


# Fixed examples (a random id per run would give each pytest-xdist
# worker other test ids): a version-4 UUID as hex, upper case, a
# version-1 UUID, a path escape, a trailing newline.
_V4 = '3f1c2a9e-8b47-4d2a-9c3e-5b7a1d6e0f42'


@pytest.mark.parametrize('upload_id', [
    '', 'a' * 32, _V4.replace('-', ''), _V4.upper(),
    'c232ab00-9414-11ec-b3c8-9f6bdeced846', '../' + _V4[3:],
    _V4 + '\n',
])
def test_malformed_upload_id_is_refused(upload_id):
    with pytest.raises(oci.GrammarError):
        oci.check_upload_id(upload_id)
