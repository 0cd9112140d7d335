"""The token endpoint: GET (docker, podman, skopeo) and POST (containerd).

GET /auth/token?service=&scope=... with optional Basic credentials.
POST /auth/token with a form: grant_type=password (username, password)
or grant_type=refresh_token (refresh_token), and scope, possibly several
scopes separated by spaces.

When anonymous pull is allowed, credentials that do not match still get
an anonymous token rather than 401: the docker daemon forwards the
user's Docker Hub credentials to a mirror, and could not pull otherwise.
"""

import logging

from aiohttp import web

from zuul_registry import auth as auth_module
from zuul_registry.api import base, errors

log = logging.getLogger('zuul_registry.api.token')

_FORM_LIMIT = 64 * 1024


def _refused(message):
    return errors.Unauthorized(message, headers={
        'WWW-Authenticate': 'Basic realm="%s"' % auth_module.SERVICE})


def _identity(auth, name, password):
    """(subject, actions) for credentials, with the anonymous fallback."""
    actions = auth.user_actions(name, password)
    if actions is not None:
        return name, actions
    if auth_module.PULL in auth.anonymous_actions:
        log.info('Unknown credentials for %r; issuing an anonymous token',
                 name)
        return None, auth.anonymous_actions
    raise _refused('invalid user name or password')


async def get_token(request):
    auth = request.app[base.AUTH]
    try:
        credentials = auth.basic_credentials(
            request.headers.get('Authorization'))
    except auth_module.AuthError as e:
        raise _refused(str(e)) from None
    if credentials is None:
        subject, actions = None, auth.anonymous_actions
    else:
        subject, actions = _identity(auth, *credentials)
    token = auth.issue_token(subject, actions,
                             request.query.getall('scope', []))
    token['access_token'] = token['token']
    return web.json_response(token)


async def post_token(request):
    auth = request.app[base.AUTH]
    if request.content_length and request.content_length > _FORM_LIMIT:
        raise errors.TooLarge('form too large')
    form = await request.post()
    grant_type = form.get('grant_type')
    if grant_type == 'password':
        subject, actions = _identity(auth, form.get('username', ''),
                                     form.get('password', ''))
    elif grant_type == 'refresh_token':
        try:
            subject = auth.refresh_subject(form.get('refresh_token', ''))
        except auth_module.AuthError as e:
            raise _refused(str(e)) from None
        actions = auth_module.ACCESS_ACTIONS[auth.users[subject].access]
    else:
        raise errors.Unsupported('grant_type must be password or '
                                 'refresh_token')
    token = auth.issue_token(subject, actions, form.getall('scope', []))
    response = {'access_token': token['token'],
                'expires_in': token['expires_in'],
                'issued_at': token['issued_at'],
                'scope': ' '.join(form.getall('scope', []))}
    if subject is not None:
        response['refresh_token'] = auth.issue_refresh_token(subject)
    return web.json_response(response)
