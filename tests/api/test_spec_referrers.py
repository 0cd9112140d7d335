"""OCI Distribution 1.1: manifests with a subject, and the referrers API."""

import json

from zuul_registry import config as config_module
from tests.api.helpers import (OCI_INDEX, OCI_MANIFEST, assert_error,
                               digest_of, push_blob, push_image)

SBOM = 'application/vnd.example.sbom.v1'
SIGNATURE = 'application/vnd.example.signature.v1'
EMPTY = 'application/vnd.oci.empty.v1+json'
EMPTY_DIGEST = digest_of(b'{}')
SECRET = 'referrers-test-secret-0123456789abcdef'
READER = config_module.User(name='reader', password='r-pass',
                            access='read')


def artifact(subject_digest, *, artifact_type=SBOM, annotations=None,
             layers=(), config_type=EMPTY, subject_size=123):
    """An OCI image manifest used as an artifact referring to a subject."""
    doc = {
        'schemaVersion': 2,
        'mediaType': OCI_MANIFEST,
        'config': {'mediaType': config_type, 'digest': EMPTY_DIGEST,
                   'size': 2},
        'layers': [{'mediaType': media_type, 'digest': digest, 'size': size}
                   for media_type, digest, size in layers],
        'subject': {'mediaType': OCI_MANIFEST, 'digest': subject_digest,
                    'size': subject_size},
    }
    if artifact_type is not None:
        doc['artifactType'] = artifact_type
    if annotations:
        doc['annotations'] = annotations
    return json.dumps(doc).encode()


async def put_manifest(client, name, reference, body, *, expect=201,
                       media_type=OCI_MANIFEST):
    response = await client.put('/v2/%s/manifests/%s' % (name, reference),
                                data=body,
                                headers={'Content-Type': media_type})
    assert response.status == expect, await response.text()
    return response


async def push_referrer(client, name, subject, **kwargs):
    await push_blob(client, name, b'{}')
    body = artifact(subject, **kwargs)
    digest = digest_of(body)
    response = await put_manifest(client, name, digest, body)
    return digest, body, response


async def referrers(client, name, subject, query=''):
    response = await client.get('/v2/%s/referrers/%s%s'
                                % (name, subject, query))
    assert response.status == 200, await response.text()
    assert response.headers['Content-Type'] == OCI_INDEX
    index = json.loads(await response.read())
    assert index['schemaVersion'] == 2
    assert index['mediaType'] == OCI_INDEX
    return response, index['manifests']


async def test_manifest_with_unknown_subject_is_accepted_with_oci_subject(
        client):
    subject = digest_of(b'an image pushed later')
    digest, body, response = await push_referrer(client, 'org/img',
                                                 subject)
    assert response.headers['OCI-Subject'] == subject
    response = await client.get('/v2/org/img/manifests/%s' % digest)
    assert await response.read() == body


async def test_manifest_without_subject_has_no_oci_subject_header(client):
    await push_blob(client, 'org/img', b'{}')
    body = json.loads(artifact(digest_of(b'x')))
    del body['subject']
    response = await put_manifest(client, 'org/img', 'v1',
                                  json.dumps(body).encode())
    assert 'OCI-Subject' not in response.headers


async def test_referrers_list_holds_descriptor_artifact_type_annotations(
        client):
    subject, _ = await push_image(client, 'org/img', 'v1')
    annotations = {'org.example.created': '2024-01-01'}
    digest, body, _ = await push_referrer(client, 'org/img', subject,
                                          annotations=annotations)
    _, entries = await referrers(client, 'org/img', subject)
    assert entries == [{'mediaType': OCI_MANIFEST, 'digest': digest,
                        'size': len(body), 'artifactType': SBOM,
                        'annotations': annotations}]


async def test_referrer_without_artifact_type_gets_config_media_type(
        client):
    subject = digest_of(b'subject')
    digest, _, _ = await push_referrer(client, 'org/img', subject,
                                       artifact_type=None,
                                       config_type=SIGNATURE)
    _, [entry] = await referrers(client, 'org/img', subject)
    assert entry['artifactType'] == SIGNATURE
    assert 'annotations' not in entry


async def test_index_referrer_without_artifact_type_has_none(client):
    subject = digest_of(b'subject')
    child, _ = await push_image(client, 'org/img', 'child')
    index = json.dumps({
        'schemaVersion': 2, 'mediaType': OCI_INDEX,
        'manifests': [{'mediaType': OCI_MANIFEST, 'digest': child,
                       'size': 1}],
        'subject': {'mediaType': OCI_MANIFEST, 'digest': subject,
                    'size': 1}}).encode()
    response = await put_manifest(client, 'org/img', digest_of(index),
                                  index, media_type=OCI_INDEX)
    assert response.headers['OCI-Subject'] == subject
    _, [entry] = await referrers(client, 'org/img', subject)
    assert entry == {'mediaType': OCI_INDEX, 'digest': digest_of(index),
                     'size': len(index)}


async def test_artifact_type_filter_sets_oci_filters_applied(client):
    subject = digest_of(b'subject')
    sbom, _, _ = await push_referrer(client, 'org/img', subject)
    signature, _, _ = await push_referrer(client, 'org/img', subject,
                                          artifact_type=SIGNATURE)
    response, entries = await referrers(client, 'org/img', subject)
    assert 'OCI-Filters-Applied' not in response.headers
    assert {entry['digest'] for entry in entries} == {sbom, signature}
    response, entries = await referrers(
        client, 'org/img', subject, '?artifactType=%s' % SIGNATURE)
    assert response.headers['OCI-Filters-Applied'] == 'artifactType'
    assert [entry['digest'] for entry in entries] == [signature]
    response, entries = await referrers(
        client, 'org/img', subject, '?artifactType=application/other')
    assert response.headers['OCI-Filters-Applied'] == 'artifactType'
    assert entries == []


async def test_unknown_subject_digest_is_an_empty_index_not_404(client):
    await push_image(client, 'org/img', 'v1')
    for name in ('org/img', 'org/never-pushed'):
        _, entries = await referrers(client, name, digest_of(b'unknown'))
        assert entries == []


async def test_invalid_referrers_digest_is_400(client):
    response = await client.get('/v2/org/img/referrers/sha256:nothex')
    await assert_error(response, 400, 'DIGEST_INVALID')


async def test_deleting_a_referrer_removes_it_from_the_list(client):
    subject = digest_of(b'subject')
    first, _, _ = await push_referrer(client, 'org/img', subject)
    second, _, _ = await push_referrer(client, 'org/img', subject,
                                       artifact_type=SIGNATURE)
    response = await client.delete('/v2/org/img/manifests/%s' % first)
    assert response.status == 202
    _, entries = await referrers(client, 'org/img', subject)
    assert [entry['digest'] for entry in entries] == [second]


async def test_deleting_a_referrers_tag_keeps_it_in_the_list(client):
    subject = digest_of(b'subject')
    await push_blob(client, 'org/img', b'{}')
    body = artifact(subject)
    await put_manifest(client, 'org/img', 'sbom', body)
    response = await client.delete('/v2/org/img/manifests/sbom')
    assert response.status == 202
    _, [entry] = await referrers(client, 'org/img', subject)
    assert entry['digest'] == digest_of(body)


async def test_referrers_are_listed_per_repository(client):
    subject = digest_of(b'subject')
    await push_referrer(client, 'org/one', subject)
    _, entries = await referrers(client, 'org/two', subject)
    assert entries == []


async def test_referrers_are_listed_per_namespace(make_client):
    client = await make_client(namespaced=True)
    subject = digest_of(b'subject')
    await push_referrer(client, 'quay.io/org/img', subject)
    _, entries = await referrers(client, 'docker.io/org/img', subject)
    assert entries == []
    _, entries = await referrers(client, 'quay.io/org/img', subject)
    assert len(entries) == 1


async def test_malformed_subject_is_manifest_invalid(client):
    await push_blob(client, 'org/img', b'{}')
    for subject in ('sha256:abc', {'digest': 'nope', 'size': 1,
                                   'mediaType': OCI_MANIFEST},
                    {'digest': digest_of(b'x'), 'size': -1,
                     'mediaType': OCI_MANIFEST}):
        body = json.loads(artifact(digest_of(b'x')))
        body['subject'] = subject
        response = await client.put(
            '/v2/org/img/manifests/v1', data=json.dumps(body).encode(),
            headers={'Content-Type': OCI_MANIFEST})
        await assert_error(response, 400, 'MANIFEST_INVALID')


async def test_referrers_need_pull_access(make_client):
    client = await make_client(users=(READER,), secret=SECRET)
    response = await client.get('/v2/org/img/referrers/%s'
                                % digest_of(b'x'))
    await assert_error(response, 401, 'UNAUTHORIZED')
    assert 'scope="repository:org/img:pull"' in \
        response.headers['WWW-Authenticate']
