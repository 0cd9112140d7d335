"""The one mapping from registry objects to driver paths.

The whole tree, for a namespace NS (a registry host such as "docker.io"
when namespaces are on, "_default" otherwise)::

    NS/_blobs/ALG/HEX[:2]/HEX                  blob bytes, content-addressed
    NS/_uploads/ID/_info                       JSON: repository, start time
    NS/_uploads/ID/_chunks/OFFSET              one object per received chunk
    NS/_repositories/REPO/_layers/ALG/HEX      blob HEX is visible in REPO
    NS/_repositories/REPO/_revisions/ALG/HEX   JSON: media type of manifest
    NS/_repositories/REPO/_tags/TAG            text: the tag's digest

REPO is the repository name, which may span several components
("org/image").  Every reserved component starts with "_", which the
spec's repository grammar never allows, so a repository such as
"org/_tags" cannot exist and nothing collides.  Tags live only as leaves
under _tags, so a tag starting with "_" is harmless too.  OFFSET is
zero-padded so that chunks list in order.
"""

DEFAULT_NAMESPACE_DIR = '_default'
_OFFSET_WIDTH = 20


def namespace_root(namespace):
    return namespace or DEFAULT_NAMESPACE_DIR


def blob(namespace, digest):
    return '%s/_blobs/%s/%s/%s' % (namespace_root(namespace),
                                   digest.algorithm, digest.hex[:2],
                                   digest.hex)


def uploads(namespace):
    return '%s/_uploads' % namespace_root(namespace)


def upload(namespace, upload_id):
    return '%s/%s' % (uploads(namespace), upload_id)


def upload_info(namespace, upload_id):
    return upload(namespace, upload_id) + '/_info'


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
