"""Referrers (OCI 1.1): the manifests whose `subject` names a digest.

Each repository keeps, per subject digest, one small object per referring
manifest holding the descriptor the referrers API answers with.  It is
written when a manifest with a subject is pushed and removed when that
manifest is deleted, so listing never parses manifests.  The subject
itself need not exist: a client may push a signature before its image.
"""

import json
import logging

from zuul_registry import oci
from zuul_registry.drivers import base as driver_base
from zuul_registry.storage import errors, paths

log = logging.getLogger('zuul_registry.storage.referrers')


def subject_of(doc):
    """The digest a manifest's `subject` names, or None; validated."""
    subject = doc.get('subject')
    if subject is None:
        return None
    if not isinstance(subject, dict):
        raise errors.ManifestInvalid('subject must be a descriptor object')
    try:
        digest = oci.Digest.parse(subject.get('digest'))
    except oci.GrammarError as e:
        raise errors.ManifestInvalid('subject.digest: %s' % e) from None
    size = subject.get('size')
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise errors.ManifestInvalid('subject.size must be a non-negative '
                                     'integer')
    if not isinstance(subject.get('mediaType'), str):
        raise errors.ManifestInvalid('subject.mediaType must be a string')
    return digest


def descriptor(doc, digest, size, media_type):
    """The referrers-list entry of a manifest, as the spec wants it.

    artifactType is the manifest's own, else (for an image manifest) its
    config's media type; an index without one gets none.  The manifest's
    annotations are copied.
    """
    entry = {'mediaType': media_type, 'digest': str(digest), 'size': size}
    artifact_type = doc.get('artifactType')
    if not artifact_type and media_type not in oci.INDEX_TYPES:
        artifact_type = (doc.get('config') or {}).get('mediaType')
    if artifact_type:
        if not isinstance(artifact_type, str):
            raise errors.ManifestInvalid('artifactType must be a string')
        entry['artifactType'] = artifact_type
    annotations = doc.get('annotations')
    if annotations:
        if not isinstance(annotations, dict):
            raise errors.ManifestInvalid('annotations must be an object')
        entry['annotations'] = annotations
    return entry


class Referrers:

    def __init__(self, driver):
        self.driver = driver

    async def add(self, repository, subject, entry):
        digest = oci.Digest.parse(entry['digest'])
        await self.driver.put(
            paths.referrer(repository.namespace, repository.name, subject,
                           digest),
            json.dumps(entry, sort_keys=True).encode('utf8'))
        log.info('Manifest %s of %s refers to %s', digest, repository,
                 subject)

    async def remove(self, repository, subject, digest):
        await self.driver.delete(paths.referrer(
            repository.namespace, repository.name, subject, digest))
        log.info('Manifest %s of %s no longer refers to %s', digest,
                 repository, subject)

    async def list(self, repository, subject):
        """The descriptors of every referrer of `subject`, by digest.

        An unknown subject, or repository, has none.
        """
        tree = paths.referrers(repository.namespace, repository.name,
                               subject)
        entries = []
        for algorithm in await self.driver.list(tree):
            for hex_ in await self.driver.list(tree + '/' + algorithm):
                digest = oci.Digest(algorithm, hex_)
                try:
                    data = await self.driver.get(paths.referrer(
                        repository.namespace, repository.name, subject,
                        digest))
                except driver_base.ObjectNotFound:
                    continue   # removed while we listed
                entries.append(json.loads(data))
        return entries
