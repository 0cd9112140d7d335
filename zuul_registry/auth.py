"""Users, access levels and tokens.

A `write` user may pull, push and delete; a `read` user may pull.  With
no users configured, everyone may do everything (a loopback-only default;
zuul_registry.config refuses it on a network address unless told
explicitly).  Anonymous pull follows `Config.anonymous_pull`.

Tokens are JWTs signed (HS256) with the configured secret, so any server
process with the same secret accepts them.  Each carries the repositories
and actions it grants, in canonical form ("docker.io/library/alpine"), so
"library/alpine" and "docker.io/library/alpine" are one repository when
namespaces are on.  Refresh tokens (containerd asks for them) are JWTs of
their own type that name only the user; they never grant access
themselves.

Passwords are compared in constant time.  bcrypt checks (users with a
pass-hash) run in a few threads of their own, so the event loop keeps
serving while they work; a wrong password costs one bcrypt check whether
or not the user name exists, so timing does not tell which names do.
"""

import asyncio
import base64
import binascii
import concurrent.futures
import datetime
import hashlib
import hmac
import logging
import re
import secrets
import time

import bcrypt

from zuul_registry import oci

log = logging.getLogger('zuul_registry.auth')

PULL, PUSH, DELETE = 'pull', 'push', 'delete'
ALL_ACTIONS = frozenset((PULL, PUSH, DELETE))
ACCESS_ACTIONS = {'read': frozenset((PULL,)), 'write': ALL_ACTIONS}
ISSUER = 'zuul-registry'
SERVICE = 'zuul-registry'
REFRESH_EXPIRATION = 7 * 86400
# The scope clients ask for to list repositories, and the claim granting
# it, as CNCF Distribution spells them.
CATALOG_SCOPE = 'registry:catalog:*'
CATALOG_ACCESS = {'type': 'registry', 'name': 'catalog', 'actions': ['*']}
_CLOCK_SKEW = 30  # seconds of clock difference between server processes
_BCRYPT_THREADS = 2
_BCRYPT_MAX_BYTES = 72   # bcrypt reads no more; bcrypt >= 5 raises beyond
_BCRYPT_COST = re.compile(r'\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$')


def _jwt():
    """PyJWT, imported when a token is first made or read: it loads the
    `cryptography` package (about 9 MiB of a process's memory, measured),
    which a registry whose clients never use tokens does not need."""
    import jwt
    return jwt


class AuthError(Exception):
    """Credentials or a token that cannot be accepted."""


class Grants:
    """What a request may do: actions everywhere, and per repository."""

    def __init__(self, *, everywhere=frozenset(), repositories=None,
                 subject=None, catalog=False):
        self.everywhere = frozenset(everywhere)
        self.repositories = repositories or {}
        self.subject = subject
        self.catalog = catalog   # a token's grant to list every repository

    def allows(self, repository, action):
        return (action in self.everywhere
                or action in self.repositories.get(repository, ()))


class Auth:

    def __init__(self, config, namespaces):
        self.users = {user.name: user for user in config.users}
        self.enabled = bool(self.users)
        # The signing key is derived, so that any secret yields a full
        # 256-bit HMAC key; the secret's own strength is what counts.
        self._key = hmac.new((config.secret or '').encode('utf8'),
                             b'zuul-registry token key v1',
                             hashlib.sha256).digest()
        self._verified = {}   # (user, HMAC of password) -> True
        self._dummy_hash = _dummy_hash(config.users)
        self._bcrypt_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=_BCRYPT_THREADS, thread_name_prefix='bcrypt'
        ) if any(user.password_hash for user in config.users) else None
        if self.enabled and len(config.secret or '') < 32:
            log.warning('The token secret is shorter than 32 characters; '
                        'use a long random value')
        self.token_expiration = config.token_expiration
        self.public_url = config.public_url
        self.namespaces = namespaces
        self.anonymous_actions = (ALL_ACTIONS if not self.enabled else
                                  frozenset((PULL,)) if config.anonymous_pull
                                  else frozenset())

    def close(self):
        if self._bcrypt_pool is not None:
            self._bcrypt_pool.shutdown(wait=False, cancel_futures=True)

    # -- identities ---------------------------------------------------------

    async def user_actions(self, name, password):
        """The actions of a user whose password matches, else None."""
        user = self.users.get(name)
        given = (password or '').encode('utf8')
        if user is not None and user.password_hash:
            matches = await self._check_hash(user, given)
        else:
            # Compare even for unknown names, so timing says nothing.
            expected = user.password if user else secrets.token_hex(16)
            matches = hmac.compare_digest(expected.encode('utf8'), given)
            if not matches and self._dummy_hash:
                # As slow as a wrong password of a bcrypt user.
                await self._bcrypt(given, self._dummy_hash)
        if user is None or not matches:
            return None
        return ACCESS_ACTIONS[user.access]

    async def _check_hash(self, user, given):
        """bcrypt is slow on purpose; remember recent successes (keyed by
        an HMAC of the password, never the password) so Basic auth on
        every request does not stall the server."""
        key = (user.name, hmac.new(self._key, given, 'sha256').digest())
        if key in self._verified:
            return True
        matches = await self._bcrypt(given, user.password_hash)
        if matches:
            if len(self._verified) >= 1024:
                self._verified.clear()
            self._verified[key] = True
        return matches

    async def _bcrypt(self, given, hashed):
        """Whether `given` matches the bcrypt hash, checked in the bcrypt
        threads.  A password bcrypt cannot take (over 72 bytes) or a hash
        it cannot read matches nothing."""
        if len(given) > _BCRYPT_MAX_BYTES:
            return False
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._bcrypt_pool, bcrypt.checkpw, given,
                hashed.encode('ascii'))
        except ValueError:
            log.warning('A pass-hash is not a valid bcrypt hash')
            return False

    def basic_credentials(self, header):
        """(name, password) from a Basic Authorization header, or None."""
        scheme, _, value = (header or '').partition(' ')
        if scheme.lower() != 'basic':
            return None
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
            name, _, password = decoded.decode('utf8').partition(':')
        except (binascii.Error, UnicodeError, ValueError):
            # b64decode refuses non-ASCII text with a plain ValueError.
            raise AuthError('malformed Basic credentials') from None
        return name, password

    async def grants_for_request(self, header):
        """Grants of a request's Authorization header; AuthError if bad."""
        scheme, _, value = (header or '').partition(' ')
        if not header:
            return Grants(everywhere=self.anonymous_actions)
        if scheme.lower() == 'bearer':
            return self.verify_token(value.strip())
        credentials = self.basic_credentials(header)
        if credentials is None:
            raise AuthError('unsupported authorization scheme')
        actions = await self.user_actions(*credentials)
        if actions is None:
            raise AuthError('invalid user name or password')
        return Grants(everywhere=actions, subject=credentials[0])

    # -- tokens -------------------------------------------------------------

    def canonical(self, name):
        """The one spelling of a repository name, or None if invalid."""
        try:
            return str(self.namespaces.resolve(name))
        except oci.GrammarError:
            return None

    def issue_token(self, subject, actions, scopes):
        """Sign a token granting `actions` on the requested scopes."""
        access = []
        for name, requested in parse_scopes(scopes):
            canonical = self.canonical(name)
            granted = sorted(requested & actions)
            if canonical and granted:
                access.append({'type': 'repository', 'name': canonical,
                               'actions': granted})
        if PULL in actions and any(CATALOG_SCOPE in text.split()
                                   for text in scopes):
            # Listing every repository is for whoever may pull them all.
            access.append(dict(CATALOG_ACCESS))
        now = int(time.time())
        claims = {'iss': ISSUER, 'aud': SERVICE, 'sub': subject or '',
                  'iat': now, 'nbf': now - _CLOCK_SKEW,
                  'exp': now + self.token_expiration,
                  'jti': secrets.token_hex(8), 'access': access}
        log.debug('Issued token for %s: %s', subject or 'anonymous',
                  ', '.join('%s:%s' % (a['name'], ','.join(a['actions']))
                            for a in access) or 'no repository access')
        return {
            'token': self._sign(claims),
            'expires_in': self.token_expiration,
            'issued_at': datetime.datetime.fromtimestamp(
                now, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
        }

    def issue_refresh_token(self, subject):
        now = int(time.time())
        return self._sign({'iss': ISSUER, 'aud': SERVICE, 'sub': subject,
                           'typ': 'refresh', 'iat': now,
                           'exp': now + REFRESH_EXPIRATION})

    def refresh_subject(self, token):
        """The user a refresh token was issued to; AuthError otherwise."""
        claims = self._decode(token)
        if claims.get('typ') != 'refresh' or claims.get('sub') not in \
                self.users:
            raise AuthError('not a valid refresh token')
        return claims['sub']

    def verify_token(self, token):
        claims = self._decode(token)
        if claims.get('typ') is not None:
            raise AuthError('a refresh token is not an access token')
        repositories = {}
        for entry in claims.get('access') or ():
            if isinstance(entry, dict) and entry.get('type') == 'repository':
                repositories.setdefault(entry.get('name'), set()).update(
                    entry.get('actions') or ())
        return Grants(repositories=repositories,
                      subject=claims.get('sub') or None,
                      catalog=any(entry == CATALOG_ACCESS
                                  for entry in claims.get('access') or ()))

    def _sign(self, claims):
        return _jwt().encode(claims, self._key, algorithm='HS256')

    def _decode(self, token):
        if not token.isascii():
            # A JWT is base64url and dots; PyJWT cannot even encode a
            # header's undecodable bytes (surrogate escapes).
            raise AuthError('invalid token: not ASCII')
        jwt = _jwt()
        try:
            return jwt.decode(token, self._key, algorithms=['HS256'],
                              audience=SERVICE, issuer=ISSUER,
                              leeway=_CLOCK_SKEW,
                              options={'require': ['exp', 'iat', 'iss',
                                                   'aud', 'sub']})
        except jwt.InvalidTokenError as e:
            raise AuthError('invalid token: %s' % e) from None


def parse_scopes(scopes):
    """Yield (repository name, set of actions) from scope strings.

    Each string may hold several space-separated scopes, as containerd
    sends them; other resource types are skipped.
    """
    for text in scopes:
        for scope in text.split():
            kind, _, rest = scope.partition(':')
            name, _, actions = rest.rpartition(':')
            if kind != 'repository' or not name:
                continue
            wanted = set(actions.split(','))
            if '*' in wanted:
                wanted = set(ALL_ACTIONS)
            yield name, wanted & ALL_ACTIONS


def _dummy_hash(users):
    """A bcrypt hash no password matches, of the highest cost of the
    configured ones; None when no user has a pass-hash."""
    costs = [int(match.group(1)) for match in (
        _BCRYPT_COST.match(user.password_hash or '') for user in users)
        if match]
    if not costs:
        return None
    return bcrypt.gensalt(rounds=max(costs)).decode('ascii') + '.' * 31
