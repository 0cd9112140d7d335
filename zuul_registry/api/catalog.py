"""GET /v2/_catalog: the repositories this client may pull from.

The spec leaves the catalog to implementations; this one answers
Distribution's shape, ``{"repositories": [...]}``, paged like tags.  With
namespaces on, each name carries its namespace ("docker.io/library/x"),
the spelling that reaches it through /v2/<name>/.  The list holds only
the repositories the request may pull: everything for anonymous clients
when anonymous pull is allowed and for users authenticated with Basic
credentials; with a Bearer token, everything when the token grants the
scope `registry:catalog:*` (issued to whoever may pull everything), else
the repositories the token grants pull on (access.py refuses anonymous
clients outright when anonymous pull is off, so that they learn to
authenticate).
"""

from aiohttp import web

from zuul_registry.api import access, base, pagination


async def list_catalog(request):
    names = await base.storage(request).catalog.repositories()
    grants = request.get(access.GRANTS)
    if not (grants and grants.catalog):
        names = [name for name in names if access.may_pull(request, name)]
    names, headers = pagination.page(request, names, '/v2/_catalog')
    return web.json_response({'repositories': names}, headers=headers)
