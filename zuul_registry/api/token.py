"""The token endpoint: GET (docker, podman, skopeo) and POST (containerd).

GET /auth/token?service=&scope=... with optional Basic credentials.
POST /auth/token with a form: grant_type=password (username, password)
or grant_type=refresh_token (refresh_token), and scope, possibly several
scopes separated by spaces.  The form must be urlencoded UTF-8 (RFC 6749);
any other body is 400 with the usual error body.

When anonymous pull is allowed, credentials that do not match (a
password, or a refresh token) still get an anonymous token rather than
401 for a request that names a scope: the docker daemon forwards the
user's Docker Hub credentials (or identity token) to a mirror with the
scope of the pull, and could not pull otherwise.  A request without a
scope is a login (`docker login` asks for none); it is told the truth,
so a wrong password is never reported as a successful login.
"""

import logging
import urllib.parse

from aiohttp import web
from multidict import MultiDict

from zuul_registry import auth as auth_module
from zuul_registry.api import base, errors

log = logging.getLogger('zuul_registry.api.token')

_FORM_LIMIT = 64 * 1024
_FORM_FIELDS = 100
_FORM_TYPE = 'application/x-www-form-urlencoded'
_UTF8 = ('utf-8', 'utf8')


def _refused(message):
    return errors.Unauthorized(message, headers={
        'WWW-Authenticate': 'Basic realm="%s"' % auth_module.SERVICE})


def _anonymous_fallback(auth, scopes):
    return bool(scopes) and auth_module.PULL in auth.anonymous_actions


async def _identity(auth, name, password, scopes):
    """(subject, actions) for credentials, with the anonymous fallback."""
    actions = await auth.user_actions(name, password)
    if actions is not None:
        return name, actions
    if _anonymous_fallback(auth, scopes):
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
    scopes = request.query.getall('scope', [])
    if credentials is None:
        subject, actions = None, auth.anonymous_actions
    else:
        subject, actions = await _identity(auth, *credentials, scopes)
    token = auth.issue_token(subject, actions, scopes)
    token['access_token'] = token['token']
    return web.json_response(token)


async def _form(request):
    """The body as a form; FormInvalid unless it is urlencoded UTF-8.

    RFC 6749 asks for application/x-www-form-urlencoded, which is what
    token clients send; parsing it here, strictly and under a cap, keeps
    every malformed body a client error (multipart is refused).
    """
    if 'Content-Type' in request.headers and (
            request.content_type != _FORM_TYPE
            or (request.charset or 'utf-8').lower() not in _UTF8):
        raise errors.FormInvalid(
            'the body must be %s in UTF-8, not %r'
            % (_FORM_TYPE, request.headers['Content-Type'][:100]))
    body = await base.read_capped(request, _FORM_LIMIT)
    try:
        return MultiDict(urllib.parse.parse_qsl(
            body.decode('utf-8'), keep_blank_values=True,
            encoding='utf-8', errors='strict',
            max_num_fields=_FORM_FIELDS))
    except ValueError as e:   # UnicodeDecodeError included
        raise errors.FormInvalid('malformed form: %s'
                                 % str(e)[:200]) from None


async def post_token(request):
    auth = request.app[base.AUTH]
    form = await _form(request)
    grant_type = form.get('grant_type')
    scopes = form.getall('scope', [])
    if grant_type == 'password':
        subject, actions = await _identity(
            auth, form.get('username', ''), form.get('password', ''),
            scopes)
    elif grant_type == 'refresh_token':
        try:
            subject = auth.refresh_subject(form.get('refresh_token', ''))
            actions = auth_module.ACCESS_ACTIONS[
                auth.users[subject].access]
        except auth_module.AuthError as e:
            if not _anonymous_fallback(auth, scopes):
                raise _refused(str(e)) from None
            # Someone else's identity token (docker's Hub login).
            log.info('Unknown refresh token; issuing an anonymous token')
            subject, actions = None, auth.anonymous_actions
    else:
        # 400, as RFC 6749 (5.2) has it: POST itself is allowed here.
        raise errors.FormInvalid('grant_type must be password or '
                                 'refresh_token')
    token = auth.issue_token(subject, actions, scopes)
    response = {'access_token': token['token'],
                'expires_in': token['expires_in'],
                'issued_at': token['issued_at'],
                'scope': ' '.join(scopes)}
    if subject is not None:
        response['refresh_token'] = auth.issue_refresh_token(subject)
    return web.json_response(response)
