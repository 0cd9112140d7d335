"""PUT, GET and HEAD /v2/<name>/manifests/<reference>."""

from aiohttp import web

from zuul_registry import oci
from zuul_registry.api import base

async def put_manifest(request):
    repository = base.repository(request)
    reference = base.reference(request)
    # Manifests are read whole, so their size is capped.
    body = await base.read_capped(
        request, request.app[base.CONFIG].manifest_size_limit)
    digest = await base.storage(request).manifests.put(
        repository, reference, body, request.headers.get('Content-Type'))
    return web.Response(status=201, headers={
        'Location': '/v2/%s/manifests/%s' % (request.match_info['name'],
                                             digest),
        oci.CONTENT_DIGEST_HEADER: str(digest),
        'Content-Length': '0',
    })


async def get_manifest(request):
    """The exact bytes pushed, whatever the Accept header says."""
    repository = base.repository(request)
    reference = base.reference(request)
    manifest = await base.storage(request).manifests.get(repository,
                                                         reference)
    headers = {
        oci.CONTENT_DIGEST_HEADER: str(manifest.digest),
        'Content-Type': manifest.media_type,
    }
    if request.method == 'HEAD':
        headers['Content-Length'] = str(len(manifest.body))
        return web.Response(headers=headers)
    return web.Response(body=manifest.body, headers=headers)
