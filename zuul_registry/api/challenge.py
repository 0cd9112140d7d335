"""The Bearer challenge of a 401: where to fetch a token, and for what.

The realm is `public-url` when configured.  Otherwise it is built from
the Host header, so that clients reach the token endpoint the way they
reached us; but only a Host that is a host name or IP address with an
optional port is used, else the address the connection came in on, so
that a client cannot put quotes or junk into the header.  Every value is
sent as an RFC 9110 quoted-string.
"""

import re

from zuul_registry import auth as auth_module
from zuul_registry import oci
from zuul_registry.api import base

# Host names in any case (Host is case-insensitive), IPv4, or [IPv6].
_LABEL = r'[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?'
_HOST_RE = re.compile(r'(?:%s(?:\.%s)*|\[[0-9A-Fa-f:.]+\])(?::%s)?'
                      % (_LABEL, _LABEL, oci.PORT_PATTERN), re.ASCII)


def bearer(request, scope=None, *, error=None):
    """The WWW-Authenticate value asking for a token for `scope`.

    `error` is RFC 6750's: "insufficient_scope" tells a client whose
    valid token lacks the access that it is denied (docker says so),
    rather than that it should log in.
    """
    value = 'Bearer realm=%s,service=%s' % (_quoted(realm(request)),
                                            _quoted(auth_module.SERVICE))
    if scope:
        value += ',scope=%s' % _quoted(scope)
    if error:
        value += ',error=%s' % _quoted(error)
    return value


def repository_scope(name, actions):
    return 'repository:%s:%s' % (name, ','.join(actions))


def realm(request):
    public_url = request.app[base.CONFIG].public_url
    if public_url:
        return public_url + '/auth/token'
    return '%s://%s/auth/token' % (request.scheme, _authority(request))


def _authority(request):
    """The Host header if it is a valid host[:port], else our address."""
    host = request.headers.get('Host', '')
    if _HOST_RE.fullmatch(host):
        return host
    sockname = request.transport.get_extra_info('sockname') \
        if request.transport is not None else None
    if sockname:
        address, port = sockname[:2]
    else:
        config = request.app[base.CONFIG]
        address, port = config.address, config.port
    return ('[%s]:%d' if ':' in address else '%s:%d') % (address, port)


def _quoted(text):
    return '"%s"' % text.replace('\\', '\\\\').replace('"', '\\"')
