"""The grammar of the OCI Distribution API: names, references, digests.

Everything a client sends is checked here before it reaches storage, so
no request can name a path outside the storage root.
"""

import hashlib
import re

API_VERSION_HEADER = 'Docker-Distribution-API-Version'
API_VERSION = 'registry/2.0'
CONTENT_DIGEST_HEADER = 'Docker-Content-Digest'
UPLOAD_UUID_HEADER = 'Docker-Upload-UUID'
SUBJECT_HEADER = 'OCI-Subject'
FILTERS_APPLIED_HEADER = 'OCI-Filters-Applied'

# Repository name components; the spec's grammar.  A component can never
# start with "_", which is what keeps reserved storage names apart.
_COMPONENT = r'[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*'
NAME_RE = re.compile(r'%s(?:/%s)*' % (_COMPONENT, _COMPONENT))
NAME_MAX_LENGTH = 255
TAG_RE = re.compile(r'[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}')
# A registry host as the first component of a namespaced name:
# "docker.io", "localhost", "registry.example.com:5000", "127.0.0.1:5000".
# Dot-separated labels, none empty nor starting or ending with "-"; a port
# 1-65535 without leading zeros, so one host:port has one spelling (one
# namespace).
_HOST_LABEL = r'[a-z0-9](?:[a-z0-9-]*[a-z0-9])?'
PORT_PATTERN = (r'(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}'
         r'|655[0-2][0-9]|6553[0-5])')
HOST_RE = re.compile(r'%s(?:\.%s)*(?::%s)?' % (_HOST_LABEL, _HOST_LABEL,
                                               PORT_PATTERN))
DIGEST_RE = re.compile(r'([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)')
# A random (version 4) UUID in its canonical form, as the spec asks.
UPLOAD_ID_RE = re.compile(
    r'[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}')

# The algorithms we can verify, with the length of their hex encoding.
DIGEST_ALGORITHMS = {'sha256': 64, 'sha512': 128}

DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
DOCKER_MANIFEST_LIST = \
    'application/vnd.docker.distribution.manifest.list.v2+json'
OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
IMAGE_MANIFEST_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEX_TYPES = (DOCKER_MANIFEST_LIST, OCI_INDEX)
MANIFEST_TYPES = IMAGE_MANIFEST_TYPES + INDEX_TYPES
# Layers that clients fetch from elsewhere; their bytes never reach us.
FOREIGN_LAYER_TYPES = (
    'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
    'application/vnd.oci.image.layer.nondistributable.v1.tar',
    'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
    'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
)


class GrammarError(ValueError):
    """A client-supplied value does not match the spec's grammar."""


def is_host(component):
    """Whether a first name component names a registry host.

    The rule docker uses to split "host/path" references: a component is
    a host when it contains "." or ":", or is "localhost".
    """
    return ('.' in component or ':' in component
            or component == 'localhost')


def check_name(name):
    if len(name) > NAME_MAX_LENGTH or not NAME_RE.fullmatch(name):
        raise GrammarError('invalid repository name %r' % name[:300])
    return name


def check_tag(tag):
    if not TAG_RE.fullmatch(tag):
        raise GrammarError('invalid tag %r' % tag[:200])
    return tag


def is_digest(reference):
    return ':' in reference


class Digest:
    """A validated digest such as sha256:<64 hex>."""

    __slots__ = ('algorithm', 'hex')

    def __init__(self, algorithm, hex_):
        self.algorithm = algorithm
        self.hex = hex_

    @classmethod
    def parse(cls, text):
        if text is not None and not isinstance(text, str):
            # A manifest's descriptor may hold any JSON value.
            raise GrammarError('a digest must be a string, not %s'
                               % type(text).__name__)
        match = DIGEST_RE.fullmatch(text or '')
        if not match:
            raise GrammarError('invalid digest %r' % (text or '')[:200])
        algorithm, encoded = match.groups()
        length = DIGEST_ALGORITHMS.get(algorithm)
        if length is None:
            raise GrammarError('unsupported digest algorithm %r' % algorithm)
        if len(encoded) != length or not re.fullmatch('[0-9a-f]+', encoded):
            raise GrammarError('invalid %s digest %r' % (algorithm, text))
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data, algorithm='sha256'):
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self):
        return hashlib.new(self.algorithm)

    def __str__(self):
        return '%s:%s' % (self.algorithm, self.hex)

    def __repr__(self):
        return 'Digest(%s)' % self

    def __eq__(self, other):
        return (isinstance(other, Digest) and self.algorithm == other.algorithm
                and self.hex == other.hex)

    def __hash__(self):
        return hash((self.algorithm, self.hex))


def check_upload_id(upload_id):
    if not UPLOAD_ID_RE.fullmatch(upload_id):
        raise GrammarError('invalid upload id')
    return upload_id
