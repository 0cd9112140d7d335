"""The middleware that lets a request through only with the access it needs.

GET and HEAD need `pull`, DELETE needs `delete` (but cancelling an upload
is part of a push), every other method `push`, on the repository the URL
names.  The API base `/v2/` needs any valid credentials once users exist,
because clients learn from its 401 challenge where to fetch tokens.  The
catalog needs valid credentials, or none when anonymous pull is allowed;
it then lists only what the request may pull (api/catalog.py); its
challenge names the scope `registry:catalog:*`.  A request without valid
credentials gets 401 with a Bearer challenge (api/challenge.py) naming
the scope it needs; a user who authenticated but lacks the access gets
403 DENIED.  The token endpoint and the health checks (/healthz,
/readyz) need no credentials.
"""

import logging

from aiohttp import web

from zuul_registry import auth as auth_module
from zuul_registry.api import base, challenge, errors, health

log = logging.getLogger('zuul_registry.api.access')

# aiohttp 3.12 added typed request keys; older ones take a string.
GRANTS = (web.RequestKey('grants', object) if hasattr(web, 'RequestKey')
          else 'zuul_registry.grants')


def required_action(method, *, upload=False):
    if method in ('GET', 'HEAD'):
        return auth_module.PULL
    if method == 'DELETE' and not upload:
        return auth_module.DELETE
    return auth_module.PUSH


def challenge_actions(action):
    # Clients that push also pull; asking for both spares a second token.
    return (auth_module.PULL, auth_module.PUSH) \
        if action == auth_module.PUSH else (action,)


@web.middleware
async def access_middleware(request, handler):
    auth = request.app[base.AUTH]
    if request.path.startswith('/auth/') or request.path in health.PATHS:
        return await handler(request)
    try:
        grants = await auth.grants_for_request(
            request.headers.get('Authorization'))
    except auth_module.AuthError as e:
        log.info('Refused credentials for %s %s: %s', request.method,
                 request.path, e)
        grants = None
    request[GRANTS] = grants
    if not auth.enabled:
        return await handler(request)
    name = request.match_info.get('name')
    if name is None:
        # The API base, the catalog and unknown paths: any valid
        # credentials will do.
        anonymous = 'Authorization' not in request.headers
        catalog = request.path == '/v2/_catalog'
        if grants is None or (anonymous and request.path == '/v2/') or (
                anonymous and catalog
                and auth_module.PULL not in grants.everywhere):
            raise errors.Unauthorized(headers={
                'WWW-Authenticate': challenge.bearer(
                    request, auth_module.CATALOG_SCOPE if catalog
                    else None)})
        return await handler(request)
    action = required_action(request.method,
                             upload='upload_id' in request.match_info)
    name = base.repository_name(request)   # with containerd's ?ns=
    repository = auth.canonical(name)
    if repository is None:
        raise errors.NameInvalid('invalid repository name %r' % name[:300])
    if grants is not None and grants.allows(repository, action):
        return await handler(request)
    if grants is not None and grants.subject and not _bearer(request):
        raise errors.Denied('%s may not %s %s'
                            % (grants.subject, action, name))
    # A valid token without the access: RFC 6750's insufficient_scope.
    insufficient = grants is not None and _bearer(request)
    raise errors.Unauthorized(
        'authentication required to %s %s' % (action, name), headers={
            'WWW-Authenticate': challenge.bearer(
                request, challenge.repository_scope(
                    name, challenge_actions(action)),
                error='insufficient_scope' if insufficient else None)})


def _bearer(request):
    return request.headers.get('Authorization', '').lower().startswith(
        'bearer ')


def may_pull_everywhere(request):
    """Whether this request may read every repository (mount by digest)."""
    grants = request.get(GRANTS)
    return not request.app[base.AUTH].enabled or bool(
        grants and auth_module.PULL in grants.everywhere)


def may_pull(request, name):
    """Whether this request may also read `name` (cross-repo mounts)."""
    auth = request.app[base.AUTH]
    grants = request.get(GRANTS)
    if not auth.enabled:
        return True
    repository = auth.canonical(name)
    return bool(grants and repository
                and grants.allows(repository, auth_module.PULL))
