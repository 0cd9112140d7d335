"""Property-based fuzzing of every route through aiohttp's test client.

Hypothesis chooses the method, the path (valid and malformed names,
references, digests and upload ids, percent-encoded or not, long
components), query parameters, headers and bodies; each test function
runs one registry, holding an image, a referrer and two uploads, in an
anonymous and in a token-auth configuration.  Another test sends raw
bytes no client library would (undecodable UTF-8 in paths and headers),
and a model-based one pushes chunks with fuzzed Content-Range headers and
completes the upload with a right or wrong digest.

The properties, for every answer: no 5xx; the API version header; every
error (4xx) but to HEAD carries the spec's JSON error body with known
codes; every 401 a well-formed challenge; every 405 an Allow header;
digests, locations, links and ranges in headers are well-formed; bytes
served as a blob or manifest hash to their digest, and a 206 serves the
range it names.

Paths, headers and bodies stay under aiohttp's own limits (8190 bytes of
request line or header, 1 MiB of form): beyond them the HTTP server
refuses the request before the application sees it.
"""

import asyncio
import hashlib
import json
import re
import urllib.parse

import bcrypt
import pytest
from aiohttp import ClientTimeout
from hypothesis import example, given, settings
from hypothesis import strategies as st
from yarl import URL

from tests import fuzz
from tests.api.helpers import (OCI_MANIFEST, basic_auth, digest_of,
                               make_config, push_blob, push_image)
from zuul_registry import config as config_module
from zuul_registry import oci
from zuul_registry.app import make_app

SECRET = 'fuzz-secret-0123456789-0123456789-0123456789'
WRITER = config_module.User(name='writer', password='w-pass-123',
                            access='write')
READER = config_module.User(name='reader', password='r-pass-456',
                            access='read')
HASHED = config_module.User(
    name='hashed', password=None, access='write',
    password_hash=bcrypt.hashpw(b'h-pass', bcrypt.gensalt(4)).decode())
# Anonymous push and pull with namespaces; token auth with users, without
# namespaces and with deletion switched off.
CONFIGS = {
    'anonymous': dict(namespaced=True),
    'users': dict(users=(WRITER, READER, HASHED), secret=SECRET,
                  delete_enabled=False),
}
REPOSITORY = 'library/alpine'
# What a registry answers, per the spec's table of error codes.
ERROR_CODES = {
    'BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN',
    'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN', 'MANIFEST_INVALID',
    'MANIFEST_UNKNOWN', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID',
    'UNAUTHORIZED', 'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS', 'UNKNOWN',
    'TAG_INVALID'}
_QUOTED = r'"(?:[^"\\\x00-\x1f\x7f]|\\[\x20-\x7e])*"'
CHALLENGE = re.compile(r'(?:Bearer realm=%s,service=%s(?:,scope=%s)?'
                       r'(?:,error="insufficient_scope")?'
                       r'|Basic realm=%s)' % ((_QUOTED,) * 4))
# Within every component of a URL path, these need no encoding.
_SAFE = "-._~!$&'()*+,;=:@"
TIMEOUT = ClientTimeout(total=30)


class Registry:
    """A running app and what it holds."""

    def __init__(self, client, config_name):
        self.client = client
        self.users = config_name == 'users'
        self.names = [REPOSITORY, 'docker.io/' + REPOSITORY, 'org/empty']
        self.digests = []
        self.upload_ids = []
        self.blobs = {}          # digest -> bytes
        self.authorization = []  # valid Authorization values

    async def prepare(self):
        writer = {'Authorization': basic_auth(WRITER.name,
                                              WRITER.password)} \
            if self.users else {}
        self.authorization.append(writer.get('Authorization'))
        layer = b'layer-bytes ' * 100
        manifest, _ = await push_image(self.client, REPOSITORY, 'latest',
                                       layer=layer, headers=writer)
        self.blobs[digest_of(layer)] = layer
        await push_blob(self.client, REPOSITORY, b'{}', headers=writer)
        referrer = json.dumps({
            'schemaVersion': 2, 'mediaType': OCI_MANIFEST,
            'artifactType': 'application/vnd.example.sig',
            'config': {'mediaType': 'application/vnd.oci.empty.v1+json',
                       'digest': digest_of(b'{}'), 'size': 2},
            'layers': [],
            'subject': {'mediaType': OCI_MANIFEST, 'digest': manifest,
                        'size': 1}}).encode()
        response = await self.client.put(
            '/v2/%s/manifests/%s' % (REPOSITORY, digest_of(referrer)),
            data=referrer, headers={'Content-Type': OCI_MANIFEST, **writer})
        assert response.status == 201, await response.text()
        self.digests = [manifest, digest_of(referrer), digest_of(layer),
                        digest_of(b'{}'), digest_of(b'never pushed')]
        for _ in range(2):
            response = await self.client.post(
                '/v2/%s/blobs/uploads/' % REPOSITORY, headers=writer)
            assert response.status == 202, await response.text()
            self.upload_ids.append(response.headers['Docker-Upload-UUID'])
        if self.users:
            response = await self.client.get('/auth/token', params={
                'service': 'zuul-registry',
                'scope': 'repository:%s:pull,push,delete' % REPOSITORY},
                headers=writer)
            token = (await response.json())['token']
            response = await self.client.post('/auth/token', data={
                'grant_type': 'password', 'username': WRITER.name,
                'password': WRITER.password, 'scope': ''})
            refresh = (await response.json())['refresh_token']
            self.authorization += [
                'Bearer ' + token, 'Bearer ' + refresh,
                basic_auth(READER.name, READER.password),
                basic_auth(HASHED.name, 'h-pass')]
            self.refresh_token = refresh
        else:
            self.refresh_token = 'x'


@pytest.fixture(params=sorted(CONFIGS))
async def registry(request, aiohttp_client, tmp_path):
    client = await aiohttp_client(make_app(make_config(
        tmp_path / 'data', **CONFIGS[request.param])))
    registry = Registry(client, request.param)
    await registry.prepare()
    return registry


# -- strategies ---------------------------------------------------------------

def encoded(strategy):
    """A path component as a client might send it: percent-encoded as
    needed, with every "/" encoded, or encoded twice."""
    def encode(pair):
        text, how = pair
        data = text.encode('utf-8', 'surrogatepass')
        if how == 'needed':
            return urllib.parse.quote(data, safe=_SAFE + '/')
        if how == 'all':
            return urllib.parse.quote(data, safe='')
        return urllib.parse.quote(urllib.parse.quote(data, safe='/'),
                                  safe='/')
    return st.tuples(strategy, st.sampled_from(
        ['needed'] * 6 + ['all', 'twice'])).map(encode)


def known_or(known, strategy):
    """Mostly what the registry holds, else anything `strategy` makes."""
    return st.one_of(st.sampled_from(known), st.sampled_from(known),
                     strategy)


# aiohttp's client sends no control character but tab in a header.
_CONTROL = set(chr(c) for c in range(32) if c != 9) | {'\x7f'}
header_values = st.text(max_size=40).filter(
    lambda value: not set(value) & _CONTROL)
# More digits than Python converts to int by default (4300).
_numbers = st.one_of(st.integers(0, 20).map(str),
                     st.integers(0, 2 ** 64).map(str),
                     st.sampled_from(['', '-1', '1' * 4400, '\u0663']))
range_values = st.one_of(
    st.builds('{}{}-{}{}'.format,
              st.sampled_from(['bytes=', 'bytes ', '', 'BYTES=', 'items=']),
              _numbers, _numbers,
              st.sampled_from(['', '', '/*', '/10', '/x', ',0-1'])),
    header_values).filter(lambda value: len(value) < 8000)
query_values = st.one_of(
    st.integers(-5, 2 ** 70).map(str),
    st.sampled_from(['', '0', '1', '1_0', '\u0663', '1' * 5000, 'latest',
                     'sha256:x', 'repository:%s:pull,push' % REPOSITORY,
                     'repository:%s:*' % REPOSITORY, 'zuul-registry',
                     'application/vnd.example.sig']),
    fuzz.names, fuzz.digests, fuzz.tags, st.text(max_size=30))
# Methods the HTTP parser knows (it refuses others before the app).
METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS',
           'TRACE', 'PROPFIND']
# Each route: its path (NAME, DIGEST, REFERENCE, UPLOAD filled in), the
# methods it answers, and the query parameters it reads.
ROUTES = [
    ('/v2/', ['GET', 'HEAD'], []),
    ('/v2/_catalog', ['GET', 'HEAD'], ['n', 'last']),
    ('/auth/token', ['GET', 'POST'], ['scope', 'service', 'account']),
    ('/v2/NAME/blobs/uploads/', ['POST'], ['digest', 'mount', 'from']),
    ('/v2/NAME/blobs/uploads/UPLOAD', ['PATCH', 'PUT', 'GET', 'DELETE'],
     ['digest']),
    ('/v2/NAME/blobs/DIGEST', ['GET', 'HEAD', 'DELETE'], []),
    ('/v2/NAME/manifests/REFERENCE', ['GET', 'HEAD', 'PUT', 'DELETE'], []),
    ('/v2/NAME/tags/list', ['GET', 'HEAD'], ['n', 'last']),
    ('/v2/NAME/referrers/DIGEST', ['GET', 'HEAD'], ['artifactType']),
    # Near misses of the routes above.
    ('/v2', METHODS, []), ('/v2/NAME', METHODS, []),
    ('/v2/NAME/blobs/', METHODS, []), ('/v2/NAME/manifests/', METHODS, []),
    ('/v2/NAME/blobs/uploads', METHODS, []), ('/auth/token/', METHODS, []),
    ('/v2/_catalog/NAME', METHODS, []), ('/NAME', METHODS, []),
    ('/v2/../v2/_catalog', METHODS, []),
    ('/v2/NAME/../NAME/tags/list', METHODS, []),
]
ALL_QUERY_KEYS = sorted({key for _, _, keys in ROUTES for key in keys} | {
    'grant_type', 'offline_token', 'client_id'})


@st.composite
def queries(draw, registry, keys=(), known=()):
    keys = st.sampled_from(list(keys) or ALL_QUERY_KEYS)
    pairs = draw(st.lists(st.tuples(
        st.one_of(keys, keys, keys, st.sampled_from(ALL_QUERY_KEYS),
                  st.text(max_size=5)),
        known_or(registry.digests + registry.names + list(known),
                 query_values)),
        max_size=4))
    query = '&'.join(
        '%s=%s' % (urllib.parse.quote(key.encode('utf-8', 'surrogatepass'),
                                      safe=''),
                   urllib.parse.quote(value.encode('utf-8', 'surrogatepass'),
                                      safe=':/,'))
        for key, value in pairs)
    # The request line must stay under aiohttp's 8190 bytes.
    query = query[:6000]
    junk = draw(st.sampled_from([''] * 8 + ['&', '%', '%zz', '%ff', '=',
                                            'n', 'n=1&n=2', '&&last']))
    return '&'.join(part for part in (query, junk) if part)


def authorization_values(registry):
    return known_or(
        [value for value in registry.authorization if value] + [
            basic_auth(WRITER.name, 'wrong'),
            basic_auth(HASHED.name, 'x' * 100), 'Basic é', 'Basic ====',
            'Bearer junk', 'Bearer a.b.c', 'Basic', 'Negotiate x',
            'Bearer ' + 'x' * 4000],
        header_values)


@st.composite
def headers(draw, registry):
    options = {
        'Content-Type': known_or(
            list(oci.MANIFEST_TYPES) + [
                'application/x-www-form-urlencoded',
                'application/x-www-form-urlencoded; charset=latin-1',
                'multipart/form-data; boundary=x', 'application/json',
                'application/octet-stream', OCI_MANIFEST + '; charset=x'],
            header_values),
        'Content-Range': range_values,
        'Range': range_values,
        'Authorization': authorization_values(registry),
        'Accept': known_or(list(oci.MANIFEST_TYPES) + ['*/*', ''],
                           header_values),
        'Host': known_or(['registry.example.com:5000', 'a"b', 'a b', '',
                          'host:99999', '[::1', 'é', 'x' * 300],
                         header_values),
        'Content-Encoding': st.sampled_from(['gzip', 'deflate', 'br',
                                             'identity', 'zstd', 'x']),
        'If-None-Match': header_values,
        'If-Range': header_values,
    }
    chosen = {}
    for name in draw(st.sets(st.sampled_from(sorted(options)), max_size=3)):
        chosen[name] = draw(options[name])
    if 'Authorization' not in chosen and registry.users and draw(
            st.sampled_from([True, True, True, False])):
        # Mostly get past authentication, to fuzz what lies behind.
        chosen['Authorization'] = draw(st.sampled_from(
            [value for value in registry.authorization if value]))
    return chosen


def _manifest_body(doc):
    return json.dumps(doc).encode()


def real_manifests(registry):
    """Manifests whose blobs the registry holds, with fuzzed extras."""
    layer = next(iter(registry.blobs))
    real = {'schemaVersion': 2, 'mediaType': OCI_MANIFEST,
            'config': {'mediaType': 'application/vnd.oci.empty.v1+json',
                       'digest': digest_of(b'{}'), 'size': 2},
            'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1'
                                     '.tar+gzip', 'digest': layer,
                        'size': len(registry.blobs[layer])}]}
    return st.builds(lambda extra: _manifest_body({**real, **extra}),
                     st.fixed_dictionaries({}, optional={
                         'subject': st.one_of(
                             fuzz.valid_descriptors,
                             st.sampled_from(registry.digests).map(
                                 lambda digest: {
                                     'mediaType': OCI_MANIFEST,
                                     'digest': digest, 'size': 10})),
                         'annotations': fuzz.json_values,
                         'artifactType': fuzz.json_values}))


def forms(registry):
    grants = st.sampled_from([
        [('grant_type', 'password'), ('username', WRITER.name),
         ('password', WRITER.password)],
        [('grant_type', 'password'), ('username', HASHED.name),
         ('password', 'h-pass')],
        [('grant_type', 'refresh_token'),
         ('refresh_token', registry.refresh_token)]])
    valid = st.builds(lambda grant, scopes: urllib.parse.urlencode(
        grant + [('scope', scope) for scope in scopes], encoding='utf-8',
        errors='surrogatepass').encode(),
        grants, st.lists(known_or(['repository:%s:pull,push' % REPOSITORY,
                                   'repository:a:* repository:b:pull'],
                                  query_values), max_size=2))
    return st.one_of(valid, valid, st.lists(st.tuples(
        st.sampled_from(['grant_type', 'username', 'password',
                         'refresh_token', 'scope', 'service', 'client_id']),
        known_or(['password', 'refresh_token', 'writer', 'w-pass-123',
                  'hashed', 'h-pass', registry.refresh_token,
                  'repository:%s:pull' % REPOSITORY], query_values)),
        max_size=5).map(lambda pairs: urllib.parse.urlencode(
            pairs, encoding='utf-8', errors='surrogatepass').encode()))


def bodies(registry):
    return st.one_of(
        st.just(b''),
        st.binary(max_size=64),
        real_manifests(registry),
        fuzz.any_manifest_docs.map(_manifest_body),
        st.sampled_from([fuzz.nested(100000, '[', ']'),
                         fuzz.nested(3000, '{"a":', '}'),
                         b'{"schemaVersion": 2, "a": NaN}',
                         json.dumps({'schemaVersion': 2,
                                     'manifests': []}).encode('utf-16'),
                         b'\x1f\x8b\x08\x00junk', b'x' * 70000]),
        forms(registry),
        st.sampled_from([b'grant_type=password&username=%ff',
                         b'%', b'a=%zz', b'grant_type=' + b'x' * 70000]))


@st.composite
def requests(draw, registry, routes=ROUTES):
    """(method, path, query, headers, body): mostly a method the route
    answers, with the body and headers it reads, else anything."""
    template, methods, keys = draw(st.sampled_from(routes))
    method = draw(st.one_of(st.sampled_from(methods),
                            st.sampled_from(methods),
                            st.sampled_from(methods),
                            st.sampled_from(METHODS)))
    request_headers = draw(headers(registry))
    body = draw(bodies(registry))
    if '/manifests/' in template and method == 'PUT':
        body = draw(st.one_of(real_manifests(registry), st.just(body)))
        content_type = draw(st.one_of(st.none(), st.sampled_from(
            oci.MANIFEST_TYPES)))
        if content_type:
            request_headers.setdefault('Content-Type', content_type)
    if template == '/auth/token' and method == 'POST':
        body = draw(st.one_of(forms(registry), forms(registry),
                              st.just(body)))
        request_headers.setdefault('Content-Type', draw(st.sampled_from(
            ['application/x-www-form-urlencoded'] * 3 + [
                'application/x-www-form-urlencoded; charset=UTF-8',
                'application/octet-stream'])))
    if '/blobs/' in template and method == 'GET' and draw(st.booleans()):
        satisfiable = st.builds('bytes={}-{}'.format, st.integers(0, 1300),
                                st.one_of(st.just(''),
                                          st.integers(0, 1300).map(str)))
        request_headers['Range'] = draw(st.one_of(satisfiable, satisfiable,
                                                  range_values))
    reference = draw(known_or(
        ['latest', 'v1'] + registry.digests + [digest_of(body)],
        st.one_of(fuzz.tags, fuzz.digests)))
    path = template
    for marker, value in (
            ('NAME', known_or(registry.names, fuzz.names)),
            ('DIGEST', known_or(registry.digests, fuzz.digests)),
            ('REFERENCE', st.just(reference)),
            ('UPLOAD', known_or(registry.upload_ids + [NEW_UPLOAD] * 3,
                                fuzz.upload_ids))):
        if marker in path:
            path = path.replace(marker, draw(encoded(value)))
    query = draw(queries(registry, keys, [digest_of(body)]))
    if '/uploads/' in template and draw(st.booleans()):
        # Complete the upload with this body.
        query = 'digest=%s&%s' % (digest_of(body), query)
    return method, path, query, request_headers, body


# -- the properties -----------------------------------------------------------

async def check_response(registry, method, url, response):
    status = response.status
    where = '%s %s -> %d' % (method, url, status)
    data = await response.read()
    assert status < 500, '%s: %r' % (where, data[:500])
    assert response.headers.get(oci.API_VERSION_HEADER) == oci.API_VERSION, \
        where
    if status == 401:
        challenge = response.headers.get('WWW-Authenticate', '')
        assert CHALLENGE.fullmatch(challenge), '%s: %r' % (where, challenge)
    if status == 405:
        assert response.headers.get('Allow'), where
    if status >= 400 and method != 'HEAD':
        assert response.content_type == 'application/json', \
            '%s: %s %r' % (where, response.content_type, data[:200])
        errors = json.loads(data)['errors']
        assert errors and isinstance(errors, list), where
        for error in errors:
            assert error['code'] in ERROR_CODES, (where, error)
            assert isinstance(error['message'], str), (where, error)
            assert set(error) <= {'code', 'message', 'detail'}, where
    if method == 'HEAD':
        assert data == b'', where
    digest = response.headers.get(oci.CONTENT_DIGEST_HEADER)
    if digest is not None:
        parsed = oci.Digest.parse(digest)
        if status == 200 and method == 'GET':
            # What is served is what the digest names.
            assert hashlib.new(parsed.algorithm, data).hexdigest() == \
                parsed.hex, where
    if status == 206:
        match = re.fullmatch(r'bytes (\d+)-(\d+)/(\d+)',
                             response.headers['Content-Range'])
        assert match, where
        first, last, size = map(int, match.groups())
        assert first <= last < size and len(data) == last - first + 1
        blob = registry.blobs.get(digest)
        if blob is not None:
            assert data == blob[first:last + 1], where
    if status == 416 and 'Content-Range' in response.headers:
        assert re.fullmatch(r'bytes \*/\d+',
                            response.headers['Content-Range']), where
    location = response.headers.get('Location')
    if location is not None:
        assert location.startswith('/v2/') or location.startswith(
            'http'), where
    link = response.headers.get('Link')
    if link is not None:
        # The next page of a list: its own path, n and last.
        match = re.fullmatch(r'<(/v2/(?:(.+)/tags/list|_catalog))\?'
                             r'n=([0-9]+)&last=([^>&]+)>; rel="next"', link)
        assert match, (where, link)
        assert match.group(2) is None or \
            fuzz.SPEC_NAME.fullmatch(match.group(2)), (where, link)
        assert 0 < int(match.group(3)), (where, link)
    upload_id = response.headers.get(oci.UPLOAD_UUID_HEADER)
    if upload_id is not None:
        assert oci.check_upload_id(upload_id) == upload_id
        assert re.fullmatch(r'0-\d+', response.headers['Range']), where


# In a path, the id of an upload started just before the request.
NEW_UPLOAD = 'NEWUPLOAD'


async def send(registry, method, path, query, headers, body):
    client = registry.client
    if NEW_UPLOAD in path:
        response = await client.post(
            '/v2/%s/blobs/uploads/' % REPOSITORY,
            headers={'Authorization': registry.authorization[0]}
            if registry.users else {})
        assert response.status == 202, await response.text()
        path = path.replace(NEW_UPLOAD,
                            response.headers['Docker-Upload-UUID'])
    url = URL.build(scheme='http', host=client.host, port=client.port,
                    path=path, query_string=query, encoded=True)
    async with client.session.request(
            method, url, headers=headers, data=body if body else None,
            timeout=TIMEOUT, allow_redirects=False) as response:
        await check_response(registry, method, str(url)[:300], response)


# One test per route (so that each gets its share of examples), and one
# for the near misses.
ROUTE_GROUPS = {template.replace('/', '_').strip('_') or 'v2': [route]
                for route in ROUTES[:9] for template in [route[0]]}
ROUTE_GROUPS['near_misses'] = ROUTES[9:]


@pytest.mark.parametrize('routes', ROUTE_GROUPS.values(), ids=ROUTE_GROUPS)
@settings(max_examples=fuzz.examples(60))
@given(data=st.data())
async def test_any_request_gets_a_spec_answer(registry, routes, data):
    await send(registry, *data.draw(requests(registry, routes), 'request'))


@settings(max_examples=fuzz.examples(60))
@given(chunks=st.lists(st.tuples(
    st.binary(min_size=0, max_size=20),
    st.one_of(st.none(), range_values,
              st.tuples(st.integers(0, 40), st.integers(-1, 40)).map(
                  lambda pair: '%d-%d' % pair))), min_size=1, max_size=5),
       last=st.binary(max_size=20),
       claimed=st.one_of(st.sampled_from(['sha256', 'sha512', 'sha256']),
                         fuzz.digests))
@example(chunks=[(b'x', '0-' + '1' * 4400)], last=b'', claimed='sha256')
@example(chunks=[(b'abcd', '\u0660-\u0663')], last=b'', claimed='sha256')
@example(chunks=[(b'ab', '0-1'), (b'cd', '0-1'), (b'cd', '2-3/4')],
         last=b'e', claimed='sha512')
@example(chunks=[(b'', '\x85'), (b'ab', ' 0-1 '), (b'c', '')], last=b'',
         claimed='sha256')
async def test_an_upload_is_its_chunks_in_order_under_their_digest(
        registry, chunks, last, claimed):
    """PATCH with Content-Range: a chunk is appended exactly when its range
    starts where the upload ends and spans the body; otherwise 416.  The
    final PUT publishes the blob exactly when the digest is that of every
    byte appended, and the blob then serves those bytes."""
    auth = {'Authorization': registry.authorization[0]} \
        if registry.users else {}
    response = await registry.client.post(
        '/v2/%s/blobs/uploads/' % REPOSITORY, headers=auth)
    assert response.status == 202
    location = response.headers['Location']
    size = 0
    content = b''
    for body, content_range in chunks:
        headers = dict(auth)
        if content_range is not None:
            headers['Content-Range'] = content_range
        response = await registry.client.patch(location, data=body,
                                               headers=headers)
        await check_response(registry, 'PATCH', location, response)
        match = re.fullmatch(r'(?:bytes[ =])?([0-9]{1,20})-([0-9]{1,20})'
                             r'(?:/[0-9]+|/\*)?',
                             (content_range or '').strip(), re.ASCII)
        # An empty Content-Range (HTTP strips spaces and tabs only) is
        # taken as none.
        fits = not (content_range or '').strip(' \t') or (
            match is not None and int(match.group(1)) == size
            and int(match.group(2)) - int(match.group(1)) + 1 == len(body))
        if fits:
            assert response.status == 202, (content_range, size, len(body))
            size += len(body)
        else:
            assert response.status in (400, 416), (content_range, size,
                                                   len(body))
        assert response.headers.get('Range', '0-%d' % max(size - 1, 0)) \
            == '0-%d' % max(size - 1, 0)
        if response.status == 202:
            content += body
    content += last
    if claimed in ('sha256', 'sha512'):
        claimed = '%s:%s' % (claimed, hashlib.new(claimed,
                                                  content).hexdigest())
    response = await registry.client.put(
        location, params={'digest': claimed}, data=last, headers=auth)
    await check_response(registry, 'PUT', location, response)
    expected = '%s:%s' % (claimed.partition(':')[0], hashlib.new(
        claimed.partition(':')[0], content).hexdigest()) \
        if claimed.partition(':')[0] in ('sha256', 'sha512') else None
    if claimed == expected:
        assert response.status == 201, await response.text()
        assert response.headers['Docker-Content-Digest'] == claimed
        response = await registry.client.get(response.headers['Location'],
                                              headers=auth)
        assert response.status == 200
        assert await response.read() == content
    else:
        assert response.status == 400, (claimed, expected)


def test_the_challenge_pattern_refuses_what_it_must():
    # The property above is only as strict as this pattern.
    assert CHALLENGE.fullmatch('Bearer realm="http://h/auth/token",'
                               'service="zuul-registry"')
    assert CHALLENGE.fullmatch('Basic realm="zuul-registry"')
    for value in ('Bearer realm="a"b",service="s"', 'Bearer realm=x',
                  'Bearer realm="a\nb",service="s"', ''):
        assert not CHALLENGE.fullmatch(value)


# -- raw bytes ----------------------------------------------------------------

raw_values = st.binary(max_size=40).filter(
    lambda value: not set(value) & set(b'\r\n\x00')).map(
    lambda value: value.strip(b' \t'))


@st.composite
def raw_requests(draw, registry):
    """Requests with bytes no client library sends: undecodable UTF-8 in
    the path and in header values, as aiohttp's server still takes."""
    method, path, query, request_headers, body = draw(requests(registry))
    raw_path = path.encode('latin-1', 'replace')
    if draw(st.booleans()):
        raw_path += draw(st.sampled_from([b'\xff', b'\xc3', b'%ff\xfe',
                                          b'/\x80']))
    target = raw_path + (b'?' + query.encode('utf-8', 'surrogatepass')
                         if query else b'')
    lines = [b'%s %s HTTP/1.1' % (method.encode(), target),
             b'Host: test', b'Connection: close',
             b'Content-Length: %d' % len(body)]
    for name, value in request_headers.items():
        if name.lower() != 'host':
            lines.append(b'%s: %s' % (name.encode(), value.encode(
                'utf-8', 'surrogatepass')))
    for name in draw(st.lists(st.sampled_from([
            b'Authorization', b'Range', b'Content-Range', b'Content-Type',
            b'Accept']), max_size=2, unique=True)):
        scheme = draw(st.sampled_from([b'', b'Basic ', b'Bearer ',
                                       b'bytes=']))
        lines.append(b'%s: %s%s' % (name, scheme, draw(raw_values)))
    return method, b'\r\n'.join(lines) + b'\r\n\r\n' + body


async def send_raw(registry, method, request):
    server = registry.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(request)
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    head, _, body = response.partition(b'\r\n\r\n')
    status_line, *header_lines = head.split(b'\r\n')
    status = int(status_line.split()[1])
    response_headers = {}
    for line in header_lines:
        name, _, value = line.partition(b':')
        response_headers[name.strip().lower()] = value.strip()
    where = '%r -> %d %r' % (request[:200], status, body[:300])
    assert status < 500, where
    if b'docker-distribution-api-version' not in response_headers:
        # aiohttp's HTTP parser refused the request before the app saw it
        # (it answers such with a bare 400); the app never does that.
        assert status == 400, where
        return
    if status == 401:
        assert CHALLENGE.fullmatch(
            response_headers[b'www-authenticate'].decode('latin-1')), where
    if status >= 400 and method != 'HEAD':
        assert response_headers[b'content-type'].startswith(
            b'application/json'), where
        if response_headers.get(b'transfer-encoding') != b'chunked':
            errors = json.loads(body)['errors']
            assert errors and all(error['code'] in ERROR_CODES
                                  for error in errors), where


@settings(max_examples=fuzz.examples(100))
@given(data=st.data())
async def test_undecodable_bytes_get_a_spec_answer(registry, data):
    await send_raw(registry, *data.draw(raw_requests(registry), 'request'))
