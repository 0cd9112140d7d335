"""skopeo copies images into the registry and back, digests intact.

Every skopeo call against the test registry passes ``--*-tls-verify=false``:
the test server speaks plain HTTP on loopback.
"""

import hashlib
import json
import tarfile

from tests import images
from tests.clients.tools import registry_get

NO_TLS_DEST = '--dest-tls-verify=false'
NO_TLS_SRC = '--src-tls-verify=false'


def _manifest_url(server, repository, reference):
    return '%s/v2/%s/manifests/%s' % (server.url, repository, reference)


def _assert_layout_holds(layout_dir, tag, image):
    """The OCI layout names ``image`` by ``tag`` and holds all its blobs."""
    index = images.read_layout_index(layout_dir)
    [entry] = [m for m in index['manifests']
               if m['annotations'][images.REF_NAME] == tag]
    assert entry['digest'] == image.digest
    if isinstance(image, images.ImageIndex):
        members = image.images
        assert images.read_layout_blob(layout_dir, image.digest) == \
            image.index.data
    else:
        members = (image,)
    for member in members:
        assert images.read_layout_blob(layout_dir, member.digest) == \
            member.manifest.data
        for blob in member.blobs:
            assert images.read_layout_blob(layout_dir, blob.digest) == \
                blob.data


def test_oci_layout_round_trip_preserves_manifest_and_blob_digests(
        skopeo, registry, oci_image, tmp_path):
    image = oci_image.image
    ref = 'docker://%s/test/oci-image:v1' % registry.host_port
    skopeo.skopeo('copy', NO_TLS_DEST, oci_image.ref, ref)

    # The registry serves exactly the manifest bytes we wrote.
    status, headers, body = registry_get(
        _manifest_url(registry, 'test/oci-image', 'v1'))
    assert status == 200
    assert body == image.manifest.data
    assert headers['Docker-Content-Digest'] == image.digest
    assert headers['Content-Type'] == images.OCI_MANIFEST
    for blob in image.blobs:
        status, _, data = registry_get('%s/v2/test/oci-image/blobs/%s' % (
            registry.url, blob.digest), accept='*/*')
        assert status == 200
        assert data == blob.data

    out = tmp_path / 'out-layout'
    skopeo.skopeo('copy', NO_TLS_SRC, ref, 'oci:%s:copied' % out)
    _assert_layout_holds(out, 'copied', image)


def test_docker_archive_round_trip_as_docker_schema2(
        skopeo, registry, docker_archive, oci_image, tmp_path):
    source = 'docker-archive:%s' % docker_archive
    source_config = json.loads(skopeo.skopeo(
        'inspect', '--raw', source).stdout)['config']
    ref = 'docker://%s/test/archive:v1' % registry.host_port
    skopeo.skopeo('copy', NO_TLS_DEST, source, ref)

    status, headers, body = registry_get(
        _manifest_url(registry, 'test/archive', 'v1'))
    assert status == 200
    manifest = json.loads(body)
    assert headers['Content-Type'] == images.DOCKER_MANIFEST
    assert manifest['mediaType'] == images.DOCKER_MANIFEST
    assert headers['Docker-Content-Digest'] == images.sha256_digest(body)
    # The config is copied as it is; skopeo compressed the layers on push.
    assert manifest['config']['digest'] == source_config['digest']
    assert [layer['mediaType'] for layer in manifest['layers']] == \
        ['application/vnd.docker.image.rootfs.diff.tar.gzip'] * 2

    # Back out to a new archive: same config, same uncompressed layers.
    out = tmp_path / 'out.tar'
    skopeo.skopeo('copy', NO_TLS_SRC, ref,
                  'docker-archive:%s:test/archive:copied' % out)
    with tarfile.open(out) as archive:
        [entry] = json.load(archive.extractfile('manifest.json'))
        config = archive.extractfile(entry['Config']).read()
        diff_ids = [hashlib.sha256(archive.extractfile(name).read())
                    .hexdigest() for name in entry['Layers']]
        assert entry['RepoTags'] == ['docker.io/test/archive:copied']
    assert images.sha256_digest(config) == source_config['digest']
    assert ['sha256:' + d for d in diff_ids] == \
        [layer.diff_id for layer in oci_image.image.layers]


def test_copy_all_preserves_two_platform_index(
        skopeo, registry, multiarch_image, tmp_path):
    index = multiarch_image.image
    ref = 'docker://%s/test/multiarch:v1' % registry.host_port
    skopeo.skopeo('copy', '--all', '--preserve-digests', NO_TLS_DEST,
                  multiarch_image.ref, ref)

    raw = skopeo.inspect_raw(ref)
    assert raw == index.index.data
    served = json.loads(raw)
    assert served['mediaType'] == images.OCI_INDEX
    assert sorted((m['platform']['os'], m['platform']['architecture'],
                   m['digest']) for m in served['manifests']) == \
        sorted(('linux', image.platform['architecture'], image.digest)
               for image in index.images)

    # Each platform resolves to its own manifest and config.
    for image in index.images:
        arch = image.platform['architecture']
        info = skopeo.inspect(ref, '--override-arch', arch,
                              '--override-os', 'linux')
        # skopeo reports the digest of what the tag names: the index.
        assert info['Digest'] == index.digest
        assert info['Architecture'] == arch
        assert info['Layers'] == [layer.blob.digest for layer in image.layers]
        status, headers, body = registry_get(
            _manifest_url(registry, 'test/multiarch', image.digest))
        assert status == 200 and body == image.manifest.data

    out = tmp_path / 'out-multiarch'
    skopeo.skopeo('copy', '--all', '--preserve-digests', NO_TLS_SRC, ref,
                  'oci:%s:copied' % out)
    _assert_layout_holds(out, 'copied', index)


def test_namespaces_keep_same_name_and_tag_apart(
        skopeo, namespaced_registry, tmp_path):
    host = namespaced_registry.host_port
    quay = images.build_layout(tmp_path / 'quay', 'v1', label='from quay.io')
    docker = images.build_layout(tmp_path / 'docker', 'v1',
                                 label='from docker.io')
    assert quay.digest != docker.digest
    skopeo.skopeo('copy', NO_TLS_DEST, 'oci:%s:v1' % (tmp_path / 'quay'),
                  'docker://%s/quay.io/x/y:1' % host)
    skopeo.skopeo('copy', NO_TLS_DEST, 'oci:%s:v1' % (tmp_path / 'docker'),
                  'docker://%s/docker.io/x/y:1' % host)

    assert skopeo.inspect_raw('docker://%s/quay.io/x/y:1' % host) == \
        quay.manifest.data
    assert skopeo.inspect_raw('docker://%s/docker.io/x/y:1' % host) == \
        docker.manifest.data
    # The bare name is the default namespace, docker.io.
    assert skopeo.inspect_raw('docker://%s/x/y:1' % host) == \
        docker.manifest.data

    # Neither namespace serves the other's manifest or layers.
    url = namespaced_registry.url
    status, _, _ = registry_get(
        _manifest_url(namespaced_registry, 'docker.io/x/y', quay.digest))
    assert status == 404
    status, _, _ = registry_get(
        _manifest_url(namespaced_registry, 'quay.io/x/y', docker.digest))
    assert status == 404
    for layer in quay.layers:
        status, _, _ = registry_get('%s/v2/docker.io/x/y/blobs/%s' % (
            url, layer.blob.digest), accept='*/*')
        assert status == 404, layer.blob.digest

    # Round trip out of each namespace gives back its own image.
    for namespace, image in (('quay.io', quay), ('docker.io', docker)):
        out = tmp_path / ('out-' + namespace)
        skopeo.skopeo('copy', NO_TLS_SRC,
                      'docker://%s/%s/x/y:1' % (host, namespace),
                      'oci:%s:1' % out)
        _assert_layout_holds(out, '1', image)


def test_list_tags_names_every_pushed_tag(skopeo, registry, oci_image):
    for tag in ('v1', 'latest', 'release-1.0'):
        skopeo.skopeo('copy', NO_TLS_DEST, oci_image.ref,
                      'docker://%s/test/tags:%s' % (registry.host_port, tag))
    result = skopeo.skopeo('list-tags', '--tls-verify=false',
                           'docker://%s/test/tags' % registry.host_port)
    listing = json.loads(result.stdout)
    assert sorted(listing['Tags']) == ['latest', 'release-1.0', 'v1']


def test_registry_to_registry_copy_between_repositories(
        skopeo, registry, oci_image, tmp_path):
    """skopeo mounts blobs across repositories of one registry (POST
    ?mount=&from=); the copy must be complete wherever it lands."""
    host = registry.host_port
    skopeo.skopeo('copy', NO_TLS_DEST, oci_image.ref,
                  'docker://%s/test/source:v1' % host)
    skopeo.skopeo('copy', NO_TLS_SRC, NO_TLS_DEST,
                  'docker://%s/test/source:v1' % host,
                  'docker://%s/other/target:v1' % host)
    out = tmp_path / 'out-target'
    skopeo.skopeo('copy', NO_TLS_SRC, 'docker://%s/other/target:v1' % host,
                  'oci:%s:v1' % out)
    _assert_layout_holds(out, 'v1', oci_image.image)


def test_copy_from_one_namespace_to_another_is_complete(
        skopeo, namespaced_registry, oci_image, tmp_path):
    """Whether or not the server mounts across namespaces, the target
    namespace ends up with the whole image."""
    host = namespaced_registry.host_port
    skopeo.skopeo('copy', NO_TLS_DEST, oci_image.ref,
                  'docker://%s/docker.io/x/y:1' % host)
    skopeo.skopeo('copy', NO_TLS_SRC, NO_TLS_DEST,
                  'docker://%s/docker.io/x/y:1' % host,
                  'docker://%s/quay.io/x/y:1' % host)
    for layer in oci_image.image.layers:
        status, _, data = registry_get('%s/v2/quay.io/x/y/blobs/%s' % (
            namespaced_registry.url, layer.blob.digest), accept='*/*')
        assert status == 200 and data == layer.blob.data
    out = tmp_path / 'out-quay'
    skopeo.skopeo('copy', NO_TLS_SRC, 'docker://%s/quay.io/x/y:1' % host,
                  'oci:%s:1' % out)
    _assert_layout_holds(out, '1', oci_image.image)
