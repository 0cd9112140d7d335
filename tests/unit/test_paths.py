"""The one mapping from registry objects to driver paths."""

import itertools

import pytest

from zuul_registry import oci
from zuul_registry.drivers.base import check_path
from zuul_registry.storage import paths

NAMESPACES = [None, 'docker.io', 'localhost:5000', 'quay.io']
REPOSITORIES = ['a', 'a/b', 'ab', 'a/b/c', 'library/alpine', 'x' * 255,
                '/'.join(['abcdefghi'] * 25) + '/abcde']
DIGESTS = [oci.Digest.of(b'x'), oci.Digest.of(b'y'),
           oci.Digest.of(b'x', 'sha512')]
TAGS = ['latest', '_tags', '_layers', 'a' * 128, 'v1.0', 'A']
UPLOAD_IDS = ['00000000-0000-4000-8000-000000000000',
              'ffffffff-ffff-4fff-bfff-ffffffffffff']
OFFSETS = [0, 1, 10, 2 ** 40, 2 ** 63 - 1]


def object_paths():
    """Every object path the mapper makes for the sample values."""
    made = {}

    def add(what, path):
        made.setdefault(path, []).append(what)

    for ns in NAMESPACES:
        for digest in DIGESTS:
            add(('blob', ns, digest), paths.blob(ns, digest))
        for upload_id in UPLOAD_IDS:
            add(('info', ns, upload_id), paths.upload_info(ns, upload_id))
            for offset in OFFSETS:
                add(('chunk', ns, upload_id, offset),
                    paths.upload_chunk(ns, upload_id, offset))
        for repo in REPOSITORIES:
            for digest in DIGESTS:
                add(('layer', ns, repo, digest),
                    paths.layer_link(ns, repo, digest))
                add(('revision', ns, repo, digest),
                    paths.revision(ns, repo, digest))
            for tag in TAGS:
                add(('tag', ns, repo, tag), paths.tag(ns, repo, tag))
            for subject, digest in itertools.product(DIGESTS, DIGESTS):
                add(('referrer', ns, repo, subject, digest),
                    paths.referrer(ns, repo, subject, digest))
        add(('namespace marker', ns), paths.namespace_marker(ns))
    return made


def test_sample_values_are_valid():
    for repo in REPOSITORIES:
        oci.check_name(repo)
    for tag in TAGS:
        oci.check_tag(tag)
    for upload_id in UPLOAD_IDS:
        oci.check_upload_id(upload_id)


def test_no_two_objects_map_to_the_same_path():
    collisions = {path: what for path, what in object_paths().items()
                  if len(what) > 1}
    assert collisions == {}


def test_no_object_path_lies_under_another_object():
    # A driver cannot hold both "p" and "p/q" (a file is not a directory).
    made = sorted(object_paths())
    for path, later in zip(made, made[1:]):
        assert not later.startswith(path + '/'), (path, later)


def test_every_path_passes_the_driver_path_check():
    for path in object_paths():
        assert check_path(path) == path
    for ns, repo in itertools.product(NAMESPACES, REPOSITORIES):
        for tree in (paths.tags(ns, repo), paths.revisions(ns, repo),
                     paths.repository(ns, repo), paths.repositories(ns),
                     paths.uploads(ns), paths.upload(ns, UPLOAD_IDS[0]),
                     paths.upload_chunks(ns, UPLOAD_IDS[0])):
            assert check_path(tree) == tree


def test_namespaces_are_separate_trees():
    roots = {paths.namespace_root(ns) for ns in NAMESPACES}
    assert len(roots) == len(NAMESPACES)
    assert paths.namespace_root(None) == paths.DEFAULT_NAMESPACE_DIR
    for ns in NAMESPACES:
        for path in (paths.blob(ns, DIGESTS[0]), paths.tag(ns, 'a', 'v'),
                     paths.upload_info(ns, UPLOAD_IDS[0])):
            assert path.split('/')[0] == paths.namespace_root(ns)


def test_default_namespace_dir_is_no_possible_host():
    # A reserved name: it starts with "_", which no host can.
    assert not oci.HOST_RE.fullmatch(paths.DEFAULT_NAMESPACE_DIR)


RESERVED = {paths.DEFAULT_NAMESPACE_DIR, '_blobs', '_uploads', '_info',
            '_chunks', '_repositories', '_layers', '_revisions', '_tags',
            '_referrers', paths.NAMESPACE_MARKERS}


def test_reserved_components_are_not_repository_name_components():
    # A repository named like a reserved tree ("a/_tags") would collide
    # with repository "a"'s tags; the grammar refuses it.
    for path in object_paths():
        components = path.split('/')
        if components[-2] == '_tags':   # a tag may start with "_" too
            components.pop()
        assert {c for c in components if c.startswith('_')} <= RESERVED
    for component in RESERVED:
        for name in (component, 'a/' + component, component + '/a'):
            with pytest.raises(oci.GrammarError):
                oci.check_name(name)


def test_repository_a_tags_cannot_name_repository_a_slash_tags():
    tag_path = paths.tag(None, 'a', 'latest')
    assert tag_path == '_default/_repositories/a/_tags/latest'
    with pytest.raises(oci.GrammarError):
        oci.check_name('a/_tags')
    with pytest.raises(oci.GrammarError):
        oci.check_name('a/_tags/latest')


def test_chunk_offsets_list_in_numeric_order_as_strings_sort():
    offsets = [0, 9, 10, 99, 100, 1024, 5 * 2 ** 20, 2 ** 40, 2 ** 63 - 1]
    names = [paths.upload_chunk(None, UPLOAD_IDS[0], offset).rsplit('/')[-1]
             for offset in reversed(offsets)]
    assert [paths.chunk_offset(name) for name in sorted(names)] == offsets


def test_chunk_names_lie_directly_under_the_upload_chunks():
    chunks = paths.upload_chunks('docker.io', UPLOAD_IDS[0])
    chunk = paths.upload_chunk('docker.io', UPLOAD_IDS[0], 42)
    parent, name = chunk.rsplit('/', 1)
    assert parent == chunks
    assert paths.chunk_offset(name) == 42


def test_an_upload_lies_under_the_uploads_of_its_namespace():
    upload = paths.upload('quay.io', UPLOAD_IDS[0])
    assert upload.startswith(paths.uploads('quay.io') + '/')
    for path in (paths.upload_info('quay.io', UPLOAD_IDS[0]),
                 paths.upload_chunk('quay.io', UPLOAD_IDS[0], 0)):
        assert path.startswith(upload + '/')


def test_repository_parts_are_the_reserved_children_of_a_repository():
    repo = paths.repository('quay.io', 'org/img')
    digest = DIGESTS[0]
    children = {path[len(repo) + 1:].split('/')[0] for path in (
        paths.layer_link('quay.io', 'org/img', digest),
        paths.revision('quay.io', 'org/img', digest),
        paths.tag('quay.io', 'org/img', 'v1'),
        paths.upstream_tag('quay.io', 'org/img', 'v1'),
        paths.referrer('quay.io', 'org/img', digest, digest))}
    assert children == set(paths.REPOSITORY_PARTS)


def test_namespace_markers_lie_outside_every_namespace():
    for ns in NAMESPACES:
        marker = paths.namespace_marker(ns)
        assert marker.split('/') == [paths.NAMESPACE_MARKERS,
                                     paths.namespace_root(ns)]
        assert paths.NAMESPACE_MARKERS != paths.namespace_root(ns)
