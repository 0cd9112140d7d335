"""Manifests: validated, stored as blobs, found by digest or tag.

A manifest's bytes are kept exactly as pushed, in the namespace's blob
store; the repository gets a revision record holding its media type, and
a tag is a small object naming a digest.
"""

import json
import logging
from typing import NamedTuple, Optional

from zuul_registry import oci
from zuul_registry.drivers import base as driver_base
from zuul_registry.storage import errors, paths, referrers

# The empty JSON object "{}": the config of artifacts that have none.  A
# manifest may name it without pushing it; we know its bytes.
EMPTY_JSON = b'{}'
EMPTY_JSON_DIGEST = oci.Digest.of(EMPTY_JSON)

log = logging.getLogger('zuul_registry.storage.manifests')

# Content-Type values that say nothing about the manifest's kind.
_GENERIC_TYPES = ('', 'application/json', 'application/octet-stream',
                  '*/*')


class Manifest(NamedTuple):
    digest: oci.Digest
    media_type: str
    body: bytes
    upstream: Optional[str] = None   # URL it was fetched from, if it was


class Descriptor(NamedTuple):
    digest: oci.Digest
    size: int
    media_type: str
    urls: bool


class Parsed(NamedTuple):
    media_type: str
    blobs: list      # Descriptors of blobs the namespace must hold
    children: list   # Descriptors of manifests the repository must hold
    subject: Optional[oci.Digest]
    doc: dict


class Stored(NamedTuple):
    """What `Manifests.put` stored: the digest, and the subject if any."""
    digest: oci.Digest
    subject: Optional[oci.Digest]


def _not_json(constant):
    raise ValueError('%s is not JSON' % constant)


def parse(body, content_type):
    """Check a manifest body and say what it references."""
    try:
        # JSON as RFC 8259 and every registry client have it: UTF-8 (a
        # BOM ignored), no NaN or Infinity, which json.loads would take.
        doc = json.loads(body.decode('utf-8-sig'),
                         parse_constant=_not_json)
    except RecursionError:
        raise errors.ManifestInvalid('manifest nests too deeply') from None
    except (ValueError, UnicodeDecodeError) as e:
        raise errors.ManifestInvalid('manifest is not JSON: %s' % e) from None
    if not isinstance(doc, dict):
        raise errors.ManifestInvalid('manifest is not a JSON object')
    media_type = _media_type(doc, content_type)
    if doc.get('schemaVersion') != 2:
        raise errors.ManifestInvalid('schemaVersion must be 2')
    subject = referrers.subject_of(doc)
    if media_type in oci.INDEX_TYPES:
        children = _descriptors(doc, 'manifests', required=True)
        return Parsed(media_type, [], children, subject, doc)
    blobs = [_descriptor(doc.get('config'), 'config')]
    blobs += _descriptors(doc, 'layers', required=True)
    return Parsed(media_type, blobs, [], subject, doc)


def _media_type(doc, content_type):
    declared = doc.get('mediaType')
    header = (content_type or '').split(';')[0].strip().lower()
    if header in _GENERIC_TYPES:
        header = ''
    if declared is not None and not isinstance(declared, str):
        raise errors.ManifestInvalid('mediaType must be a string')
    if header and declared and header != declared:
        raise errors.ManifestInvalid(
            'Content-Type %s does not match the mediaType %s of the body'
            % (header, declared))
    media_type = header or declared
    if not media_type:
        # An OCI manifest may leave its mediaType out; tell by shape.
        media_type = oci.OCI_INDEX if 'manifests' in doc \
            else oci.OCI_MANIFEST
    if media_type not in oci.MANIFEST_TYPES:
        raise errors.ManifestInvalid(
            'unsupported manifest media type %r; supported: %s'
            % (media_type[:200], ', '.join(oci.MANIFEST_TYPES)))
    return media_type


def _descriptors(doc, key, *, required):
    items = doc.get(key)
    if items is None and not required:
        return []
    if not isinstance(items, list):
        raise errors.ManifestInvalid('%s must be a list' % key)
    return [_descriptor(item, '%s[%d]' % (key, i))
            for i, item in enumerate(items)]


def _descriptor(item, where):
    if not isinstance(item, dict):
        raise errors.ManifestInvalid('%s must be a descriptor object' % where)
    try:
        digest = oci.Digest.parse(item.get('digest'))
    except oci.GrammarError as e:
        raise errors.ManifestInvalid('%s.digest: %s' % (where, e)) from None
    size = item.get('size')
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise errors.ManifestInvalid('%s.size must be a non-negative '
                                     'integer' % where)
    media_type = item.get('mediaType')
    if not isinstance(media_type, str):
        raise errors.ManifestInvalid('%s.mediaType must be a string'
                                     % where)
    return Descriptor(digest, size, media_type, bool(item.get('urls')))


def _distributable(descriptor):
    """Whether a blob must be in this registry: not a foreign layer.

    `urls` alone does not make a blob foreign: an ordinary layer may
    name mirrors and must still be pushed.
    """
    return descriptor.media_type not in oci.FOREIGN_LAYER_TYPES


def _revision(media_type, upstream=None):
    record = {'mediaType': media_type}
    if upstream:
        # Fetched by pull-through: prune expires it by its own rule.
        record['upstream'] = upstream
    return json.dumps(record).encode('utf8')


class Manifests:

    def __init__(self, driver, blobs, referrer_store=None):
        self.driver = driver
        self.blobs = blobs
        self.referrers = referrer_store or referrers.Referrers(driver)

    async def put(self, repository, reference, body, content_type, *,
                  upstream=None):
        """Validate and store a manifest; tag it if `reference` is a tag.

        A manifest with a subject is recorded as its referrer, whether
        or not the subject exists.  Returns a Stored.  A manifest with
        an `upstream` (the registry's URL) was fetched from there by
        pull-through: the blobs it references are fetched when asked
        for, so they need not be here.
        """
        digest = oci.Digest.of(body)
        if oci.is_digest(reference):
            claimed = oci.Digest.parse(reference)
            if claimed.algorithm != 'sha256':
                digest = oci.Digest.of(body, claimed.algorithm)
            if claimed != digest:
                raise errors.DigestMismatch(
                    'manifest body has digest %s, not %s'
                    % (digest, claimed))
        media_type, blobs, children, subject, doc = parse(body,
                                                          content_type)
        entry = None if subject is None else referrers.descriptor(
            doc, digest, len(body), media_type)
        if upstream:
            blobs, children = [], []
        else:
            await self._check_references(repository, blobs, children)
        await self.blobs.put_small(repository, digest, body)
        await self.driver.put(
            paths.revision(repository.namespace, repository.name, digest),
            _revision(media_type, upstream))
        if not oci.is_digest(reference):
            # Written even when it already names the digest: its fresh
            # time tells garbage collection the manifest was just pushed.
            await self.driver.put(
                paths.tag(repository.namespace, repository.name, reference),
                str(digest).encode('ascii'))
        if subject is not None:
            await self.referrers.add(repository, subject, entry)
        await self._settle(repository, reference, digest, body,
                           _revision(media_type, upstream), blobs, children)
        log.info('Manifest %s (%s) stored in %s as %s', digest, media_type,
                 repository, reference)
        return Stored(digest, subject)

    async def _settle(self, repository, reference, digest, body, record,
                      blobs, children):
        """Check, after every write, that all this PUT acknowledges is
        there, and put back what a concurrent DELETE or prune took.

        A DELETE removes the revision before the tags, and prune restores
        a revision a fresh tag names, so a check made after our tag was
        written sees any removal that could leave the tag dangling.
        Blobs a prune quarantined meanwhile are restored by the lookups;
        one purged is an error, and nothing is acknowledged.
        """
        namespace, name = repository.namespace, repository.name
        # Links were written before (put_small, _check_references) and
        # only a purge removes them, of blobs that are gone: checking
        # that the blobs are here is enough.
        if await self.blobs.stat(namespace, digest) is None:
            await self.driver.put(paths.blob(namespace, digest), body)
        # The tag before the revision, the reverse of a DELETE's order:
        # a tag put back here is then either seen by a DELETE still
        # listing tags, or its revision, removed earlier, is put back
        # just below.  Never a tag without its revision.  A revision
        # removed meanwhile means a DELETE or an expiry ran into this
        # PUT, and may have taken the tag after we looked: look again.
        await self._settle_tag(repository, reference, digest)
        revision = paths.revision(namespace, name, digest)
        if await self.driver.stat(revision) is None:
            await self.driver.put(revision, record)
            log.info('Manifest %s of %s: revision removed meanwhile, '
                     'restored', digest, repository)
            await self._settle_tag(repository, reference, digest)
        for descriptor in blobs:
            if not _distributable(descriptor):
                continue
            if await self.blobs.stat(namespace, descriptor.digest) is None:
                raise errors.ManifestBlobUnknown(
                    'blob %s was collected while the manifest was stored'
                    % descriptor.digest)
        for descriptor in children:
            if await self.blobs.stat(namespace, descriptor.digest) is None:
                raise errors.ManifestBlobUnknown(
                    'manifest %s was collected while the index was stored'
                    % descriptor.digest)
            child = paths.revision(namespace, name, descriptor.digest)
            if await self.driver.stat(child) is None:
                await self.driver.put(child, _revision(
                    descriptor.media_type))

    async def _settle_tag(self, repository, reference, digest):
        """Put the tag back if it went (a tag naming another manifest
        was moved there since, and stays)."""
        if oci.is_digest(reference):
            return
        tag = paths.tag(repository.namespace, repository.name, reference)
        if await self.driver.stat(tag) is None:
            await self.driver.put(tag, str(digest).encode('ascii'))

    async def _check_references(self, repository, blobs, children):
        namespace = repository.namespace
        for descriptor in blobs:
            if not _distributable(descriptor):
                continue
            size = await self.blobs.stat(namespace, descriptor.digest)
            if size is None and descriptor.digest == EMPTY_JSON_DIGEST:
                await self.blobs.put_small(repository, descriptor.digest,
                                           EMPTY_JSON)
                size = len(EMPTY_JSON)
            if size is None:
                raise errors.ManifestBlobUnknown(
                    'blob %s is unknown' % descriptor.digest)
            if size != descriptor.size:
                raise errors.ManifestInvalid(
                    'blob %s has %d bytes, the manifest says %d'
                    % (descriptor.digest, size, descriptor.size))
        for descriptor in children:
            try:
                await self.get(repository, str(descriptor.digest))
            except errors.ManifestUnknown:
                raise errors.ManifestBlobUnknown(
                    'manifest %s is unknown' % descriptor.digest) from None
        # Blobs already in the namespace become visible here too.
        for descriptor in blobs:
            if _distributable(descriptor):
                await self.blobs.link(repository, descriptor.digest)

    async def resolve(self, repository, reference):
        """The digest a tag or digest reference names in `repository`."""
        if oci.is_digest(reference):
            return oci.Digest.parse(reference)
        try:
            text = await self.driver.get(
                paths.tag(repository.namespace, repository.name, reference))
        except driver_base.ObjectNotFound:
            raise errors.ManifestUnknown(
                'tag %s unknown in %s' % (reference, repository)) from None
        return oci.Digest.parse(text.decode('ascii'))

    async def get(self, repository, reference):
        digest = await self.resolve(repository, reference)
        try:
            revision = json.loads(await self.driver.get(paths.revision(
                repository.namespace, repository.name, digest)))
        except driver_base.ObjectNotFound:
            raise errors.ManifestUnknown(
                'manifest %s unknown in %s' % (digest, repository)) from None
        try:
            body = await self.blobs.get_small(repository.namespace, digest)
        except errors.BlobUnknown:
            raise errors.ManifestUnknown(
                'manifest %s missing from storage' % digest) from None
        return Manifest(digest, revision['mediaType'], body,
                        revision.get('upstream'))

    async def tags(self, repository):
        """Sorted tag names; NameUnknown if the repository has none."""
        names = await self.driver.list(
            paths.tags(repository.namespace, repository.name))
        if not names and not await self.driver.list(
                paths.repository(repository.namespace, repository.name)):
            raise errors.NameUnknown('repository %s unknown' % repository)
        return names

    async def delete(self, repository, reference):
        """Delete a tag, or a manifest with every tag that names it.

        Deleting a manifest also drops it from the referrers of its
        subject.  The blobs it references stay (garbage collection's
        job); so does its body in the namespace's blob store.
        """
        namespace, name = repository.namespace, repository.name
        if not oci.is_digest(reference):
            path = paths.tag(namespace, name, reference)
            if await self.driver.stat(path) is None:
                raise errors.ManifestUnknown(
                    'tag %s unknown in %s' % (reference, repository))
            await self.driver.delete(path)
            log.info('Tag %s deleted from %s', reference, repository)
            return
        digest = oci.Digest.parse(reference)
        revision = paths.revision(namespace, name, digest)
        existed = await self.driver.stat(revision) is not None
        # The revision goes first, the tags after: a PUT of the same
        # manifest racing this checks its revision after writing its tag
        # (Manifests._settle), so it either sees this removal and undoes
        # it, or its tag is listed below.  A crash half-way leaves tags
        # naming a missing revision; the client's retry removes them.
        await self.driver.delete(revision)
        tags = await self.tags_naming(repository, digest)
        if not existed and not tags:
            raise errors.ManifestUnknown(
                'manifest %s unknown in %s' % (digest, repository))
        subject = await self.stored_subject(namespace, digest)
        for tag in tags:
            await self.driver.delete(paths.tag(namespace, name, tag))
            log.info('Tag %s of %s deleted with manifest %s', tag,
                     repository, digest)
        if subject is not None:
            await self.referrers.remove(repository, subject, digest)
        log.info('Manifest %s deleted from %s', digest, repository)

    async def tags_naming(self, repository, digest):
        """The tags of `repository` that name `digest`."""
        namespace, name = repository.namespace, repository.name
        found = []
        for tag in await self.driver.list(paths.tags(namespace, name)):
            try:
                named = await self.driver.get(paths.tag(namespace, name, tag))
            except driver_base.ObjectNotFound:
                continue
            if named.decode('ascii', 'replace') == str(digest):
                found.append(tag)
        return found

    async def stored_subject(self, namespace, digest):
        try:
            doc = json.loads(await self.blobs.get_small(namespace, digest))
            return referrers.subject_of(doc) if isinstance(doc, dict) \
                else None
        except (errors.BlobUnknown, errors.ManifestInvalid, ValueError):
            return None
