"""HTTP/1.1 as the benchmark's client speaks it: requests, response heads,
body framing, and the checks every measurement makes on an answer.

The connections that use this live in :mod:`bench.connections`.
"""

import dataclasses
import ssl
import urllib.parse

HEAD_END = b'\r\n\r\n'
CRLF = b'\r\n'
MAX_HEAD = 64 * 1024
RECV_SIZE = 1 << 20
MAX_CHUNKS = 1 << 20      # bound on the chunks of one chunked body
MAX_INTERIM = 5           # bound on 1xx answers before the real one
BODY_METHODS = ('POST', 'PUT', 'PATCH')
OCTETS = {'Content-Type': 'application/octet-stream'}


class ProtocolError(Exception):
    """The registry answered something the benchmark cannot accept."""


@dataclasses.dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    ssl_context: ssl.SSLContext = None

    @property
    def authority(self):
        return '%s:%d' % (self.host, self.port)

    @property
    def url(self):
        scheme = 'https' if self.ssl_context else 'http'
        return '%s://%s' % (scheme, self.authority)


@dataclasses.dataclass
class Response:
    method: str
    target: str
    status: int
    reason: str
    headers: dict          # lower-case names; repeated fields joined by ', '
    body: bytes = b''

    def describe(self):
        """The request and the answer, as an error message shows them."""
        text = '%s %s -> %d %s' % (self.method, self.target, self.status,
                                   self.reason)
        shown = ('content-type', 'content-length', 'location', 'range',
                 'docker-content-digest', 'transfer-encoding')
        headers = ['%s: %s' % (k, v) for k, v in self.headers.items()
                   if k in shown]
        if headers:
            text += '\n    ' + '\n    '.join(headers)
        if self.body:
            text += '\n    body: %r' % self.body[:400]
        return text


def expect(response, status, what):
    """Return ``response`` if it has ``status``, else raise ProtocolError."""
    if response.status != status:
        raise ProtocolError('%s: expected %d, got %s' % (
            what, status, response.describe()))
    return response


def location_target(response, what):
    """The path and query of the response's ``Location`` header."""
    location = response.headers.get('location')
    if not location:
        raise ProtocolError('%s: no Location header in %s' % (
            what, response.describe()))
    parts = urllib.parse.urlsplit(location)
    target = parts.path or '/'
    if parts.query:
        target += '?' + parts.query
    return target


def location_endpoint(response, what):
    """(Endpoint, target) of a redirect's ``Location`` on a plain HTTP
    server (an S3 server the registry sends a blob GET to)."""
    target = location_target(response, what)
    parts = urllib.parse.urlsplit(response.headers['location'])
    if parts.scheme != 'http' or not parts.hostname:
        raise ProtocolError('%s: redirect to %s: only plain http:// '
                            'locations are followed' % (
                                what, response.describe()))
    return Endpoint(parts.hostname, parts.port or 80), target


def with_query(target, **params):
    """``target`` with ``params`` appended to its query (``?`` or ``&``)."""
    separator = '&' if '?' in target else '?'
    return target + separator + urllib.parse.urlencode(params)


def encode_request(method, target, authority, headers, length):
    lines = ['%s %s HTTP/1.1' % (method, target), 'Host: ' + authority,
             'User-Agent: zuul-registry-bench']
    lines.extend('%s: %s' % item for item in (headers or {}).items())
    if length is not None:
        lines.append('Content-Length: %d' % length)
    return ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1')


def parse_head(block, method, target):
    """Status line and header fields of one response head (no final CRLF)."""
    lines = block.decode('latin-1').split('\r\n')
    version, _, rest = lines[0].partition(' ')
    code, _, reason = rest.partition(' ')
    if not version.startswith('HTTP/1.') or not code.isdigit():
        raise ProtocolError('%s %s: malformed status line %r' % (
            method, target, lines[0]))
    headers = {}
    for line in lines[1:]:
        name, separator, value = line.partition(':')
        if not separator:
            raise ProtocolError('%s %s: malformed header line %r' % (
                method, target, line))
        name, value = name.strip().lower(), value.strip()
        headers[name] = headers[name] + ', ' + value if name in headers \
            else value
    return Response(method, target, int(code), reason, headers)


def framing(response):
    """How the body is delimited: (kind, length); kind is one of
    ``none``, ``length``, ``chunked``, ``close``."""
    if (response.method == 'HEAD' or response.status in (204, 304)
            or response.status < 200):
        return 'none', 0
    if 'chunked' in response.headers.get('transfer-encoding', '').lower():
        return 'chunked', None
    length = response.headers.get('content-length')
    if length is not None:
        if not length.isdigit():
            raise ProtocolError('%s %s: bad Content-Length %r' % (
                response.method, response.target, length))
        return 'length', int(length)
    return 'close', None


def keeps_alive(response):
    return 'close' not in response.headers.get('connection', '').lower()


def chunk_size(line, response):
    try:
        return int(line.split(b';', 1)[0].strip(), 16)
    except ValueError:
        raise ProtocolError('%s %s: bad chunk size line %r' % (
            response.method, response.target, line[:80])) from None


def check_digest_header(response, digest, what):
    header = response.headers.get('docker-content-digest')
    if header is not None and header != digest:
        raise ProtocolError('%s: Docker-Content-Digest %s, expected %s: %s' % (
            what, header, digest, response.describe()))
