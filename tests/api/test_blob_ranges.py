"""Range requests on GET /v2/<name>/blobs/<digest>, on both code paths.

Over plain HTTP a blob the driver holds as a local file goes out with
sendfile; otherwise (TLS, the memory or Swift driver) it is streamed from
driver reads.  Both must answer every Range header alike (RFC 9110,
section 14): one satisfiable byte range is 206, an unsatisfiable one 416
with `Content-Range: bytes */SIZE` and the JSON error body, and a range
unit we do not know, a malformed header or several ranges get the whole
blob with 200.  (The unit is matched as "bytes" only, and positions of
more than 20 digits are malformed: ignoring is always allowed.)
"""

import pytest

from zuul_registry.app import make_app
from zuul_registry.drivers.memory import MemoryDriver
from tests.api.helpers import assert_error, make_config, push_blob

DATA = bytes(range(256)) * 40


@pytest.fixture(params=['sendfile', 'streamed'])
async def blob(request, aiohttp_client, tmp_path):
    """(client, url) of DATA, served by the path the parameter names."""
    driver = MemoryDriver() if request.param == 'streamed' else None
    client = await aiohttp_client(make_app(make_config(tmp_path),
                                           driver=driver))
    digest = await push_blob(client, 'org/img', DATA)
    return client, '/v2/org/img/blobs/%s' % digest


@pytest.mark.parametrize('header', [
    'potato', 'items=0-3', 'bytes=0-1,5-6', 'bytes=-1,0-', 'bytes=',
    'bytes=-', 'bytes=5-2', 'bytes=a-b', 'bytes=0-1 junk', 'bytes 0-1',
    'BYTES=1-2', 'bytes=\u0661-\u0662', 'bytes=%s-' % ('9' * 5000),
    'bytes=1-%s' % ('9' * 5000), 'bytes=-%s' % ('9' * 5000),
])
async def test_unknown_unit_malformed_or_multiple_ranges_get_the_whole_blob(
        blob, header):
    client, url = blob
    response = await client.get(url, headers={'Range': header})
    assert response.status == 200, await response.text()
    assert response.headers.keys() & {'Content-Range', 'ETag',
                                      'Last-Modified'} == set()
    assert response.headers['Content-Length'] == str(len(DATA))
    assert await response.read() == DATA


@pytest.mark.parametrize('header, start, end', [
    ('bytes=0-0', 0, 0), ('bytes=100-199', 100, 199),
    ('bytes=10000-', 10000, len(DATA) - 1),
    ('bytes=10000-99999999', 10000, len(DATA) - 1),
    ('bytes=-10', len(DATA) - 10, len(DATA) - 1),
    ('bytes=-99999999', 0, len(DATA) - 1), ('bytes=00001-2', 1, 2),
    ('bytes=1-%s' % ('9' * 20), 1, len(DATA) - 1),
])
async def test_one_satisfiable_range_is_206_with_content_range(
        blob, header, start, end):
    client, url = blob
    response = await client.get(url, headers={'Range': header})
    assert response.status == 206
    assert response.headers['Content-Range'] == 'bytes %d-%d/%d' % (
        start, end, len(DATA))
    assert response.headers['Content-Length'] == str(end - start + 1)
    assert await response.read() == DATA[start:end + 1]


@pytest.mark.parametrize('header', [
    'bytes=%d-' % len(DATA), 'bytes=%d-%d' % (len(DATA), len(DATA) + 5),
    'bytes=-0', 'bytes=-000', 'bytes=%s-' % ('9' * 20),
])
async def test_unsatisfiable_range_is_416_with_size_and_error_body(
        blob, header):
    client, url = blob
    response = await client.get(url, headers={'Range': header})
    await assert_error(response, 416, 'BLOB_UPLOAD_INVALID')
    assert response.headers['Content-Range'] == 'bytes */%d' % len(DATA)


async def test_conditional_headers_do_not_change_the_answer(blob):
    client, url = blob
    response = await client.get(url, headers={
        'If-None-Match': '*', 'If-Modified-Since':
        'Wed, 21 Oct 2099 07:28:00 GMT', 'Range': 'bytes=0-3',
        'If-Range': 'Wed, 21 Oct 1999 07:28:00 GMT'})
    assert response.status == 206
    assert await response.read() == DATA[:4]
