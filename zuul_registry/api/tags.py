"""GET /v2/<name>/tags/list."""

from aiohttp import web

from zuul_registry.api import base, errors


async def list_tags(request):
    repository = base.repository(request)
    tags = await base.storage(request).manifests.tags(repository)
    last = request.query.get('last')
    if last:
        tags = [tag for tag in tags if tag > last]
    headers = {}
    if 'n' in request.query:
        try:
            n = int(request.query['n'])
        except ValueError:
            raise errors.Unsupported('n must be an integer') from None
        if n < 0:
            raise errors.Unsupported('n must not be negative')
        if len(tags) > n and n > 0:
            headers['Link'] = '</v2/%s/tags/list?n=%d&last=%s>; rel="next"' % (
                request.match_info['name'], n, tags[n - 1])
        tags = tags[:n]
    return web.json_response({'name': request.match_info['name'],
                              'tags': tags}, headers=headers)
