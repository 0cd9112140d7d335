"""PUT, GET, HEAD and DELETE /v2/<name>/manifests/<reference>."""

from aiohttp import web

from zuul_registry import oci
from zuul_registry.api import base
from zuul_registry.storage import provenance


async def put_manifest(request):
    repository = base.repository(request)
    reference = base.reference(request)
    # Manifests are read whole, so their size is capped.
    body = await base.read_capped(
        request, request.app[base.CONFIG].manifest_size_limit)
    stored = await base.storage(request).manifests.put(
        repository, reference, body, request.headers.get('Content-Type'))
    headers = {
        'Location': '/v2/%s/manifests/%s' % (request.match_info['name'],
                                             stored.digest),
        oci.CONTENT_DIGEST_HEADER: str(stored.digest),
        'Content-Length': '0',
    }
    if stored.subject is not None:
        # Tells the client this registry keeps the referrers list itself.
        headers[oci.SUBJECT_HEADER] = str(stored.subject)
    return web.Response(status=201, headers=headers)


async def delete_manifest(request):
    """By digest: the manifest and every tag naming it.  By tag: the tag."""
    base.require_deletion(request)
    repository = base.repository(request)
    reference = base.reference(request)
    await base.storage(request).manifests.delete(repository, reference)
    return web.Response(status=202)


async def get_manifest(request):
    """The exact bytes pushed, whatever the Accept header says."""
    repository = base.repository(request)
    reference = base.reference(request)
    storage = base.storage(request)
    if storage.pullthrough is not None:
        manifest = await storage.pullthrough.manifest(repository, reference)
    else:
        manifest = await storage.manifests.get(repository, reference)
    storage.provenance.served(repository, reference, manifest.digest,
                              manifest.upstream or provenance.LOCAL)
    headers = {
        oci.CONTENT_DIGEST_HEADER: str(manifest.digest),
        'Content-Type': manifest.media_type,
    }
    if request.method == 'HEAD':
        headers['Content-Length'] = str(len(manifest.body))
        return web.Response(headers=headers)
    return web.Response(body=manifest.body, headers=headers)
