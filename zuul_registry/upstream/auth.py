"""Answering an upstream's challenges: Bearer tokens and Basic credentials.

The flow is driven by the upstream (the Docker "token authentication
specification", which Docker Hub, quay.io, ghcr.io and Distribution
follow): a request without (or with a stale) authorization gets 401 with
``WWW-Authenticate``.

* ``Bearer realm=...,service=...,scope=...``: GET the realm with the
  ``service`` and ``scope`` query parameters, with Basic credentials when
  a username is configured and anonymously otherwise.  The answer is JSON
  with ``token`` (or the OAuth2 name ``access_token``) and ``expires_in``
  (60 seconds when absent).  The token is cached per scope until shortly
  before it expires; concurrent requests of one scope share one token
  request.
* ``Basic``: the configured credentials, sent with every later request
  too.

Credentials go only to the registry's own origin and to the realm it
names; aiohttp drops ``Authorization`` when a redirect leaves the origin.
Neither a password nor a token is ever logged or put into a message.
"""

import asyncio
import base64
import json
import logging
import re
import time

import aiohttp
import yarl

from zuul_registry.upstream import challenge as challenge_module
from zuul_registry.upstream.errors import UpstreamUnavailable
from zuul_registry.upstream.transport import describe

log = logging.getLogger('zuul_registry.upstream.auth')

DEFAULT_EXPIRES_IN = 60
# A token is renewed this long before it expires (at most a fifth of its
# lifetime), so that it never expires between check and use.
_RENEW_MARGIN = 10.0
_TOKEN_RESPONSE_LIMIT = 1024 * 1024
_ERROR_RE = re.compile(r'[A-Za-z0-9_]{1,64}')
# What can go into an Authorization header: visible ASCII, no spaces.
_TOKEN_RE = re.compile(r'[\x21-\x7e]+')


def repository_scope(repository):
    return 'repository:%s:pull' % repository


class Authenticator:
    def __init__(self, transport, *, username=None, password=None):
        self.transport = transport
        self.username = username
        self._basic = (_basic(username, password or '')
                       if username is not None else None)
        self._use_basic = False
        self._tokens = {}       # scope -> (header value, renew at)
        self._locks = {}        # scope -> asyncio.Lock

    @property
    def url(self):
        return self.transport.url

    def header(self, scope):
        """The Authorization value to try first for ``scope``, or None."""
        if self._use_basic:
            return self._basic
        cached = self._tokens.get(scope)
        if cached is None:
            return None
        value, renew_at = cached
        if time.monotonic() >= renew_at:
            del self._tokens[scope]
            return None
        return value

    def refused(self, what, response=None):
        """The error of a 401 that persists after authenticating.

        Some registries (Docker Hub) answer so for a repository that does
        not exist, with ``error="insufficient_scope"``: say that too.
        """
        status = '401'
        error = _challenge_error(response)
        if error:
            status += ' ' + error
        hint = ('; the repository may not exist'
                if error == 'insufficient_scope' else '')
        if self.username is None:
            return UpstreamUnavailable(
                '%s: anonymous access refused (%s); credentials may be '
                'needed%s' % (what, status, hint), url=self.url)
        return UpstreamUnavailable(
            '%s: the credentials of user %r were refused (%s)%s'
            % (what, self.username, status, hint), url=self.url)

    async def answer(self, response, scope, *, stale=None, what):
        """The Authorization value answering the 401 ``response``.

        ``stale`` is what the refused request carried: a token that has
        just been refused is not handed out again.
        """
        values = response.headers.getall('WWW-Authenticate', [])
        try:
            challenges = challenge_module.parse_all(values)
        except challenge_module.ChallengeError as e:
            raise UpstreamUnavailable('%s: unreadable challenge: %s'
                                      % (what, e), url=self.url) from None
        bearer = challenge_module.find(challenges, 'bearer')
        if bearer is not None and bearer.realm:
            return await self._token(bearer, scope, stale)
        if challenge_module.find(challenges, 'basic') is not None:
            if self._basic is None:
                raise UpstreamUnavailable(
                    '%s: Basic credentials are needed and none are '
                    'configured' % what, url=self.url)
            if stale == self._basic:
                raise self.refused(what)
            self._use_basic = True
            return self._basic
        raise UpstreamUnavailable(
            '%s: 401 without a challenge we can answer (%s)'
            % (what, ', '.join(c.scheme for c in challenges) or 'none'),
            url=self.url)

    async def _token(self, bearer, scope, stale):
        lock = self._locks.setdefault(scope, asyncio.Lock())
        async with lock:
            current = self.header(scope)
            if current is not None and current != stale:
                return current  # another request renewed it meanwhile
            value, expires_in = await self._fetch(bearer, scope)
            margin = min(_RENEW_MARGIN, expires_in / 5)
            self._tokens[scope] = (value, time.monotonic() + expires_in
                                   - margin)
            return value

    async def _fetch(self, bearer, scope):
        try:
            realm = yarl.URL(bearer.realm)
        except ValueError:
            realm = None
        if realm is None or realm.scheme not in ('http', 'https') \
                or not realm.host:
            raise UpstreamUnavailable('the token realm %r is not an HTTP URL'
                                      % bearer.realm[:200], url=self.url)
        if (self._basic is not None and realm.scheme == 'http'
                and yarl.URL(self.url).scheme == 'https'):
            raise UpstreamUnavailable(
                'refusing to send credentials to the plain-http token '
                'realm %s' % describe(realm), url=self.url)
        params = {}
        if bearer.params.get('service'):
            params['service'] = bearer.params['service']
        # The scope the upstream asked for, else the one we need.
        params['scope'] = bearer.params.get('scope') or scope
        headers = {'Authorization': self._basic} if self._basic else {}
        what = 'token request to %s' % describe(realm)
        response = await self.transport.request(
            'GET', realm, headers=headers, params=params, what=what)
        try:
            if response.status == 401:
                raise self.refused(what)
            if response.status != 200:
                raise UpstreamUnavailable('%s answered %d'
                                          % (what, response.status),
                                          url=self.url)
            body = await _read_capped(response, _TOKEN_RESPONSE_LIMIT)
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            raise UpstreamUnavailable('%s failed: %s'
                                      % (what, str(e)[:300] or
                                         type(e).__name__),
                                      url=self.url) from None
        finally:
            response.release()
        value, expires_in = _token_of(body, what, self.url)
        log.info('Upstream %s: token for %s (%s), valid %ds',
                 self.url, params['scope'],
                 'as %s' % self.username if self._basic else 'anonymous',
                 expires_in)
        return 'Bearer ' + value, expires_in


def _challenge_error(response):
    """The ``error`` parameter of a 401's Bearer challenge, if any."""
    if response is None:
        return None
    try:
        bearer = challenge_module.find(challenge_module.parse_all(
            response.headers.getall('WWW-Authenticate', [])), 'bearer')
    except challenge_module.ChallengeError:
        return None
    error = bearer.params.get('error') if bearer else None
    # A token of RFC 6750's grammar only: nothing odd goes into messages.
    return error if error and _ERROR_RE.fullmatch(error) else None


def _basic(username, password):
    credentials = ('%s:%s' % (username, password)).encode('utf-8')
    return 'Basic ' + base64.b64encode(credentials).decode('ascii')


async def _read_capped(response, limit):
    body = bytearray()
    async for piece in response.content.iter_chunked(64 * 1024):
        body += piece
        if len(body) > limit:
            return None
    return bytes(body)


def _token_of(body, what, url):
    """(token, expires_in) from a token response body."""
    try:
        data = json.loads(body) if body is not None else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamUnavailable('%s: the answer is not a JSON object'
                                  % what, url=url)
    token = data.get('token') or data.get('access_token')
    if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
        raise UpstreamUnavailable('%s: the answer holds no usable token'
                                  % what, url=url)
    expires_in = data.get('expires_in')
    if isinstance(expires_in, bool) or not isinstance(
            expires_in, (int, float)) or expires_in <= 0:
        expires_in = DEFAULT_EXPIRES_IN
    return token, int(expires_in)
