"""What the property-based fuzz tests share: the settings profile, the
spec's grammar written out independently of zuul_registry.oci, and
strategies that build valid and near-valid input from that grammar.

The "ci" profile (the default) is bounded and reproducible: a fixed
example count, derandomized, no example database.  Set
HYPOTHESIS_PROFILE=thorough to search much longer with fresh randomness.
"""

import hashlib
import os
import re
import uuid

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from zuul_registry import oci

settings.register_profile(
    'ci', max_examples=150, deadline=None, derandomize=True, database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow,
                           HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large,
                           HealthCheck.filter_too_much])
settings.register_profile(
    'thorough', parent=settings.get_profile('ci'), max_examples=5000,
    derandomize=False)
PROFILE = os.environ.get('HYPOTHESIS_PROFILE', 'ci')
settings.load_profile(PROFILE)


def examples(count):
    """`count` examples in CI; the thorough profile runs 30 times more.

    For tests that set their own count (a profile's count would not
    reach them).
    """
    return count * (30 if PROFILE == 'thorough' else 1)

# -- the grammar of the OCI Distribution spec, ASCII only ---------------------

SPEC_COMPONENT = r'[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*'
SPEC_NAME = re.compile(r'%s(?:/%s)*' % (SPEC_COMPONENT, SPEC_COMPONENT),
                       re.ASCII)
SPEC_TAG = re.compile(r'[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}', re.ASCII)
SPEC_DIGEST = re.compile(r'[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+',
                         re.ASCII)
SPEC_HEX = {'sha256': re.compile(r'[a-f0-9]{64}', re.ASCII),
            'sha512': re.compile(r'[a-f0-9]{128}', re.ASCII)}
# distribution/reference's domain, with the port a TCP port must be.
SPEC_HOST = re.compile(
    r'(?P<host>(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
    r'(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*)'
    r'(?::(?P<port>[0-9]+))?', re.ASCII)
NAME_MAX_LENGTH = 255


def spec_host(text):
    """Whether `text` is a registry host the spec's references allow."""
    match = SPEC_HOST.fullmatch(text)
    return bool(match) and (match.group('port') is None
                            or 0 < int(match.group('port')) < 65536)


# -- strategies ---------------------------------------------------------------

ALNUM_LOWER = 'abcdefghijklmnopqrstuvwxyz0123456789'
ALNUM = ALNUM_LOWER + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'
HEX = '0123456789abcdef'
# Characters that break grammars: separators in the wrong place, case,
# path syntax, URL syntax, control characters, non-ASCII look-alikes.
NASTY = ['_', '__', '___', '-', '.', '..', '/', '//', ':', '@', '%', '%2F',
         '%2e', ' ', '\t', '\n', '\r\n', '\x00', 'A', 'Z', 'é', '\u0663',
         '\uff41', '\u212a', '\ufeff', '+', '=', '*', '?', '#', '\\', '"',
         "'", '<', '~', '$', '{', ';', ',', '\udcff']


def _joined(parts, separators):
    return st.tuples(parts, st.lists(st.tuples(separators, parts),
                                     max_size=4)).map(
        lambda pair: pair[0] + ''.join(s + p for s, p in pair[1]))


alnum_run = st.text(ALNUM_LOWER, min_size=1, max_size=12)
component = _joined(alnum_run, st.sampled_from(['.', '_', '__', '-', '--',
                                                '---']))
long_component = st.integers(1, 260).map(lambda n: 'x' * n)
valid_names = st.lists(st.one_of(component, long_component), min_size=1,
                       max_size=8).map('/'.join).filter(
    lambda name: len(name) <= NAME_MAX_LENGTH)


@st.composite
def mutated(draw, base, alphabet=NASTY):
    """`base` with a few insertions, replacements or deletions."""
    text = draw(base)
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(['insert', 'replace', 'delete',
                                       'prefix', 'suffix']))
        piece = draw(st.sampled_from(alphabet))
        if action == 'insert':
            text = text[:position] + piece + text[position:]
        elif action == 'replace':
            text = text[:position] + piece + text[position + 1:]
        elif action == 'delete':
            text = text[:position] + text[position + 1:]
        elif action == 'prefix':
            text = piece + text
        else:
            text = text + piece
    return text


labels = st.text(ALNUM_LOWER + '-', min_size=1, max_size=10)
ports = st.one_of(st.integers(0, 70000), st.sampled_from([
    0, 1, 80, 443, 5000, 65535, 65536, 99999, 10 ** 6]))
valid_hosts = st.one_of(
    st.sampled_from(['docker.io', 'quay.io', 'localhost', 'localhost:5000',
                     'registry.example.com:5000', 'ghcr.io', '127.0.0.1',
                     '127.0.0.1:5000', 'a.b.c.d.e']),
    st.builds(lambda labels, port: '.'.join(labels) + (
        '' if port is None else ':%d' % port),
        st.lists(st.text(ALNUM_LOWER, min_size=1, max_size=8), min_size=2,
                 max_size=4),
        st.one_of(st.none(), st.integers(1, 65535))))
near_hosts = st.one_of(
    st.sampled_from(['quay..io', '.io', 'io.', '-a.io', 'a-.io',
                     'localhost:0', 'localhost:99999', 'localhost:',
                     ':5000', 'localhost:5000:1', 'LOCALHOST', 'Docker.io',
                     'localhost:00000', 'localhost:065535', 'a..',
                     '[::1]:5000', 'docker.io.', 'a_b.io', 'x' * 254 + '.io']),
    st.builds(lambda labels, sep, port: sep.join(labels) + port,
              st.lists(labels, min_size=1, max_size=4),
              st.sampled_from(['.', '..', ':', '-']),
              st.one_of(st.just(''), ports.map(lambda p: ':%d' % p))),
    mutated(valid_hosts))
hosts = st.one_of(valid_hosts, near_hosts)

names = st.one_of(
    valid_names,
    mutated(valid_names),
    st.builds(lambda host, name: host + '/' + name, hosts,
              st.one_of(valid_names, mutated(valid_names))),
    st.lists(st.sampled_from(['a', '_', '-', '.', '/', 'b', '..', '__']),
             max_size=10).map(''.join),
    st.text(max_size=40),
    st.integers(250, 300).map(lambda n: ('ab/' * n)[:n]),
)

valid_tags = st.tuples(st.sampled_from(ALNUM + '_'),
                       st.text(ALNUM + '._-', max_size=127)).map(''.join)
tags = st.one_of(valid_tags, mutated(valid_tags),
                 st.integers(120, 140).map(lambda n: 't' * n),
                 st.text(max_size=30))


def _hex_digest(algorithm, data):
    return '%s:%s' % (algorithm, hashlib.new(algorithm, data).hexdigest())


valid_digests = st.builds(_hex_digest, st.sampled_from(['sha256', 'sha512']),
                          st.binary(max_size=8))
near_digests = st.one_of(
    mutated(valid_digests, NASTY + ['F', 'g', '0', ':', 'sha256:']),
    st.builds(lambda algorithm, encoded: algorithm + ':' + encoded,
              st.sampled_from(['sha256', 'sha512', 'sha384', 'md5',
                               'blake3', 'sha256+b64', 'SHA256', 'sha-256',
                               'sha256.x', '', 'sha256_']),
              st.one_of(st.text(HEX, max_size=130),
                        st.text(HEX.upper(), min_size=64, max_size=64),
                        st.text(ALNUM + '=_-', max_size=130))),
)
digests = st.one_of(valid_digests, near_digests, st.text(max_size=30))

valid_upload_ids = st.uuids(version=4).map(str)
upload_ids = st.one_of(
    valid_upload_ids,
    mutated(valid_upload_ids, NASTY + ['F', 'g', '0', '-']),
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: '{%s}' % u),
    st.text(max_size=40))


def is_canonical_v4_uuid(text):
    try:
        value = uuid.UUID(text)
    except ValueError:
        return False
    return (str(value) == text and value.version == 4
            and value.variant == uuid.RFC_4122)


# -- manifests ----------------------------------------------------------------

MEDIA_TYPES = list(oci.MANIFEST_TYPES) + [
    'application/vnd.oci.image.config.v1+json', 'application/json',
    'text/plain', '', 'APPLICATION/VND.OCI.IMAGE.MANIFEST.V1+JSON']
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 2 ** 65),
                         st.floats(allow_nan=False), st.text(max_size=10))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=8), inner,
                                            max_size=3)),
    max_leaves=8)
descriptors = st.one_of(
    st.fixed_dictionaries({
        'digest': st.one_of(digests, json_values),
        'size': st.one_of(st.integers(-2, 2 ** 64), st.booleans(),
                          st.floats(), st.text(max_size=3), st.none()),
        'mediaType': st.one_of(st.sampled_from(MEDIA_TYPES + list(
            oci.FOREIGN_LAYER_TYPES)), json_scalars),
    }, optional={
        'urls': json_values,
        'annotations': json_values,
        'artifactType': json_values,
    }),
    json_values)
manifest_docs = st.fixed_dictionaries({}, optional={
    'schemaVersion': st.one_of(st.sampled_from([2, 2.0, '2', 1, True]),
                               json_scalars),
    'mediaType': st.one_of(st.sampled_from(MEDIA_TYPES), json_values),
    'config': descriptors,
    'layers': st.one_of(st.lists(descriptors, max_size=3), json_values),
    'manifests': st.one_of(st.lists(descriptors, max_size=3), json_values),
    'subject': descriptors,
    'artifactType': json_values,
    'annotations': st.one_of(st.dictionaries(st.text(max_size=5),
                                             json_values, max_size=2),
                             json_values),
})


def nested(depth, opener, closer):
    return (opener * depth + closer * depth).encode()


valid_descriptors = st.fixed_dictionaries({
    'digest': valid_digests,
    'size': st.integers(0, 2 ** 40),
    'mediaType': st.sampled_from([
        'application/vnd.oci.image.layer.v1.tar+gzip',
        'application/vnd.oci.image.config.v1+json',
        'application/vnd.oci.empty.v1+json'] + list(oci.MANIFEST_TYPES)),
}, optional={'annotations': st.dictionaries(st.text(max_size=5),
                                            st.text(max_size=5),
                                            max_size=2),
             'urls': st.lists(st.just('https://example.com/x'),
                              max_size=1)})
_image = st.fixed_dictionaries({
    'schemaVersion': st.just(2),
    'config': valid_descriptors,
    'layers': st.lists(valid_descriptors, max_size=3),
}, optional={'mediaType': st.sampled_from(oci.IMAGE_MANIFEST_TYPES)})
_index = st.fixed_dictionaries({
    'schemaVersion': st.just(2),
    'manifests': st.lists(valid_descriptors, max_size=3),
}, optional={'mediaType': st.sampled_from(oci.INDEX_TYPES)})
_extras = st.fixed_dictionaries({}, optional={
    'subject': valid_descriptors,
    'artifactType': st.one_of(st.sampled_from(
        ['application/vnd.example.sig', '']), json_values),
    'annotations': st.one_of(st.dictionaries(
        st.text(max_size=5), st.text(max_size=5), max_size=2), json_values),
})
valid_manifest_docs = st.builds(lambda doc, extras: {**doc, **extras},
                                st.one_of(_image, _index), _extras)


@st.composite
def near_manifest_docs(draw):
    """A valid manifest with one field replaced, removed or nested."""
    doc = draw(valid_manifest_docs)
    key = draw(st.sampled_from(sorted(doc) + ['mediaType', 'subject']))
    how = draw(st.sampled_from(['replace', 'remove', 'descriptor']))
    if how == 'remove':
        doc.pop(key, None)
    elif how == 'replace':
        doc[key] = draw(json_values)
    else:
        descriptor = draw(valid_descriptors)
        descriptor[draw(st.sampled_from(['digest', 'size', 'mediaType']))] \
            = draw(json_values)
        listed = 'manifests' if 'manifests' in doc else 'layers'
        doc[draw(st.sampled_from(['config', 'subject', listed]))] = (
            [descriptor] if draw(st.booleans()) else descriptor)
    return doc


any_manifest_docs = st.one_of(valid_manifest_docs, near_manifest_docs(),
                              manifest_docs)
