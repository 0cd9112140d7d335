"""GET /v2/<name>/tags/list."""

from aiohttp import web

from zuul_registry.api import base, pagination


async def list_tags(request):
    repository = base.repository(request)
    tags = await base.storage(request).manifests.tags(repository)
    name = request.match_info['name']
    tags, headers = pagination.page(request, tags,
                                    '/v2/%s/tags/list' % name)
    return web.json_response({'name': name, 'tags': tags}, headers=headers)
