"""The one mapping from registry objects to driver paths.

The whole tree, for a namespace NS (a registry host such as "docker.io"
when namespaces are on, "_default" otherwise)::

    NS/_blobs/ALG/HEX[:2]/HEX                  blob bytes, content-addressed
    NS/_quarantine/ALG/HEX[:2]/HEX             blob bytes garbage collection
                                               took out, until purged
    NS/_quarantine_since/ALG/HEX               empty: since when (mtime)
    NS/_purging/TOKEN/ALG/HEX                  a blob a purge took out of
                                               the quarantine, until it has
                                               checked it may destroy it;
                                               TOKEN is TIME-RANDOM
    NS/_uploads/ID/_info                       JSON: repository, start time
    NS/_uploads/ID/_alive                      empty: rewritten while a chunk
                                               streams in
    NS/_uploads/ID/_chunks/OFFSET              one object per received chunk;
                                               a driver that can append grows
                                               the last one instead
    NS/_repositories/REPO/_layers/ALG/HEX      blob HEX is visible in REPO
    NS/_repositories/REPO/_revisions/ALG/HEX   JSON: media type of manifest
    NS/_repositories/REPO/_tags/TAG            text: the tag's digest
    NS/_repositories/REPO/_upstream_tags/TAG   JSON: digest an upstream's tag
                                               named, and when it was checked
                                               (pull-through; pushed tags win)
    NS/_repositories/REPO/_served/_tags/TAG/ALG/HEX
    NS/_repositories/REPO/_served/_digests/ALG/HEX
                                               JSON: a manifest was served by
                                               that tag (as ALG:HEX) or
                                               digest: source, first, last
    NS/_repositories/REPO/_referrers/ALG/HEX/RALG/RHEX
                                               JSON: descriptor of manifest
                                               RALG:RHEX, whose subject is
                                               ALG:HEX
    _namespaces/NS                             empty: NS holds repositories
    _health/PROBE                              a readiness check's object,
                                               written, read and removed

REPO is the repository name, which may span several components
("org/image").  A repository is a directory under _repositories that has
one of the reserved children in REPOSITORY_PARTS (_layers, _revisions ...);
the catalog walks the tree looking for them (a repository "org" and a
repository "org/image" can both exist).  _namespaces names every
namespace that ever held a repository, because the root of the tree
itself cannot be listed.

Every reserved component starts with "_", which the spec's repository
grammar never allows, so a repository such as "org/_tags" cannot exist
and nothing collides; no registry host starts with "_" either, so
_namespaces is no namespace.  Tags live only as leaves under _tags, so a
tag starting with "_" is harmless too.  OFFSET is zero-padded so that
chunks list in order.
"""

DEFAULT_NAMESPACE_DIR = '_default'
NAMESPACE_MARKERS = '_namespaces'
#: The children that make a directory under _repositories a repository.
REPOSITORY_PARTS = ('_layers', '_referrers', '_revisions', '_tags',
                    '_upstream_tags')
_OFFSET_WIDTH = 20


def namespace_root(namespace):
    return namespace or DEFAULT_NAMESPACE_DIR


def blob(namespace, digest):
    return '%s/_blobs/%s/%s/%s' % (namespace_root(namespace),
                                   digest.algorithm, digest.hex[:2],
                                   digest.hex)


def quarantine(namespace):
    return '%s/_quarantine' % namespace_root(namespace)


def quarantined(namespace, digest):
    return '%s/%s/%s/%s' % (quarantine(namespace), digest.algorithm,
                            digest.hex[:2], digest.hex)


def quarantine_stamps(namespace):
    return '%s/_quarantine_since' % namespace_root(namespace)


def quarantine_since(namespace, digest):
    return '%s/%s/%s' % (quarantine_stamps(namespace), digest.algorithm,
                         digest.hex)


def purging(namespace):
    return '%s/_purging' % namespace_root(namespace)


def purging_blob(namespace, token, digest):
    return '%s/%s/%s/%s' % (purging(namespace), token, digest.algorithm,
                            digest.hex)


def uploads(namespace):
    return '%s/_uploads' % namespace_root(namespace)


def upload(namespace, upload_id):
    return '%s/%s' % (uploads(namespace), upload_id)


def upload_info(namespace, upload_id):
    return upload(namespace, upload_id) + '/_info'


def upload_alive(namespace, upload_id):
    return upload(namespace, upload_id) + '/_alive'


def upload_chunks(namespace, upload_id):
    return upload(namespace, upload_id) + '/_chunks'


def upload_chunk(namespace, upload_id, offset):
    return '%s/%0*d' % (upload_chunks(namespace, upload_id), _OFFSET_WIDTH,
                        offset)


def chunk_offset(name):
    return int(name)


def repositories(namespace):
    return '%s/_repositories' % namespace_root(namespace)


def repository(namespace, repository_name):
    return '%s/%s' % (repositories(namespace), repository_name)


def layer_link(namespace, repository_name, digest):
    return '%s/_layers/%s/%s' % (repository(namespace, repository_name),
                                 digest.algorithm, digest.hex)


def revisions(namespace, repository_name):
    return repository(namespace, repository_name) + '/_revisions'


def revision(namespace, repository_name, digest):
    return '%s/%s/%s' % (revisions(namespace, repository_name),
                         digest.algorithm, digest.hex)


def tags(namespace, repository_name):
    return repository(namespace, repository_name) + '/_tags'


def tag(namespace, repository_name, tag_name):
    return '%s/%s' % (tags(namespace, repository_name), tag_name)


def upstream_tag(namespace, repository_name, tag_name):
    return '%s/_upstream_tags/%s' % (repository(namespace, repository_name),
                                     tag_name)


def served(namespace, repository_name):
    return repository(namespace, repository_name) + '/_served'


def served_record(namespace, repository_name, reference, digest):
    """Where provenance notes that `reference` (a tag, or the digest
    itself) served the manifest `digest`."""
    base = served(namespace, repository_name)
    if reference == str(digest):
        return '%s/_digests/%s/%s' % (base, digest.algorithm, digest.hex)
    return '%s/_tags/%s/%s/%s' % (base, reference, digest.algorithm,
                                  digest.hex)


def referrers(namespace, repository_name, subject):
    return '%s/_referrers/%s/%s' % (repository(namespace, repository_name),
                                    subject.algorithm, subject.hex)


def referrer(namespace, repository_name, subject, digest):
    return '%s/%s/%s' % (referrers(namespace, repository_name, subject),
                         digest.algorithm, digest.hex)


def namespace_marker(namespace):
    return '%s/%s' % (NAMESPACE_MARKERS, namespace_root(namespace))


def health_probe(token):
    return '_health/%s' % token
