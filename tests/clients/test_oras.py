"""oras (the ORAS Python SDK, PyPI ``oras``) pushes and pulls artifacts
and attaches a referrer; the referrers API lists and forgets it."""

import json
import os

import pytest

from tests import images
from tests.clients.tools import registry_get

oras_client = pytest.importorskip('oras.client')
oras_oci = pytest.importorskip('oras.oci')

TEXT = 'application/vnd.example.text.v1'
SBOM = 'application/vnd.example.sbom.v1'


@pytest.fixture
def oras(registry):
    return oras_client.OrasClient(hostname=registry.host_port,
                                  insecure=True)


def write(directory, name, data):
    path = os.path.join(directory, name)
    with open(path, 'wb') as f:
        f.write(data)
    return path


def manifest_of(registry, repository, reference):
    status, headers, body = registry_get('%s/v2/%s/manifests/%s' % (
        registry.url, repository, reference))
    assert status == 200, body
    return headers['Docker-Content-Digest'], body


def test_artifact_push_and_pull_round_trip(oras, registry, tmp_path):
    source = tmp_path / 'source'
    source.mkdir()
    files = {'notes.txt': b'release notes\n', 'data.bin': bytes(range(256))}
    paths = ['%s:%s' % (write(source, name, data), TEXT)
             for name, data in files.items()]
    target = '%s/test/artifact:v1' % registry.host_port
    response = oras.push(target=target, files=paths,
                         disable_path_validation=True,
                         manifest_annotations={'org.example.kind': 'docs'})
    assert response.status_code == 201

    digest, body = manifest_of(registry, 'test/artifact', 'v1')
    manifest = json.loads(body)
    assert digest == images.sha256_digest(body)
    assert [layer['mediaType'] for layer in manifest['layers']] == \
        [TEXT, TEXT]
    assert manifest['annotations'] == {'org.example.kind': 'docs'}

    out = tmp_path / 'out'
    pulled = oras.pull(target=target, outdir=str(out))
    assert sorted(os.path.basename(path) for path in pulled) == \
        sorted(files)
    for name, data in files.items():
        assert (out / name).read_bytes() == data


def test_attach_referrer_list_it_and_delete_it(oras, registry, tmp_path):
    if registry.name != 'zuul-registry':
        pytest.skip('%s has no referrers API' % registry.name)
    host = registry.host_port
    image = write(tmp_path, 'image.txt', b'the subject\n')
    oras.push(target='%s/test/signed:v1' % host, files=[image],
              disable_path_validation=True)
    subject_digest, subject_body = manifest_of(registry, 'test/signed', 'v1')
    subject = oras_oci.Subject(mediaType=images.OCI_MANIFEST,
                               digest=subject_digest,
                               size=len(subject_body))

    sbom = write(tmp_path, 'sbom.json', b'{"packages": []}')
    # A config path that does not exist: oras pushes the empty "{}"
    # config with this media type, the artifact's type.
    response = oras.push(
        target='%s/test/signed:sbom' % host, files=['%s:%s' % (sbom, SBOM)],
        disable_path_validation=True, subject=subject,
        manifest_config='%s:%s' % (tmp_path / 'no-config', SBOM),
        manifest_annotations={'org.example.tool': 'oras'})
    assert response.status_code == 201
    assert response.headers['OCI-Subject'] == subject_digest
    referrer_digest, referrer_body = manifest_of(registry, 'test/signed',
                                                 'sbom')

    status, headers, body = registry_get('%s/v2/test/signed/referrers/%s' % (
        registry.url, subject_digest))
    assert status == 200
    assert headers['Content-Type'] == images.OCI_INDEX
    assert json.loads(body)['manifests'] == [{
        'mediaType': images.OCI_MANIFEST, 'digest': referrer_digest,
        'size': len(referrer_body), 'artifactType': SBOM,
        'annotations': {'org.example.tool': 'oras'}}]
    status, headers, body = registry_get(
        '%s/v2/test/signed/referrers/%s?artifactType=%s' % (
            registry.url, subject_digest, 'application/other'))
    assert headers['OCI-Filters-Applied'] == 'artifactType'
    assert json.loads(body)['manifests'] == []

    # The referrer pulls by digest like any artifact.
    out = tmp_path / 'out'
    oras.pull(target='%s/test/signed@%s' % (host, referrer_digest),
              outdir=str(out))
    assert (out / 'sbom.json').read_bytes() == b'{"packages": []}'

    # oras deletes a tag by deleting the manifest it names.
    assert oras.delete_tags('%s/test/signed' % host, 'sbom') == ['sbom']
    status, _, body = registry_get('%s/v2/test/signed/referrers/%s' % (
        registry.url, subject_digest))
    assert status == 200
    assert json.loads(body)['manifests'] == []
    status, _, _ = registry_get('%s/v2/test/signed/manifests/%s' % (
        registry.url, referrer_digest))
    assert status == 404
