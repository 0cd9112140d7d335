"""Two completions of one upload (a client retrying): one wins, the
other is told the upload is unknown; never a digest error or a 500."""

import asyncio
import os

from tests.api.helpers import digest_of


async def start_chunked(client, chunks):
    response = await client.post('/v2/org/img/blobs/uploads/')
    location = response.headers['Location']
    offset = 0
    for chunk in chunks:
        response = await client.patch(location, data=chunk, headers={
            'Content-Range': '%d-%d' % (offset, offset + len(chunk) - 1)})
        assert response.status == 202, await response.text()
        offset += len(chunk)
    return location


async def test_concurrent_completions_of_one_upload(client):
    for round_ in range(8):
        chunks = [os.urandom(300 * 1024) for _ in range(3)]
        data = b''.join(chunks)
        location = await start_chunked(client, chunks)
        url = location + '?digest=' + digest_of(data)
        responses = await asyncio.gather(*[client.put(url)
                                           for _ in range(3)])
        statuses = sorted(response.status for response in responses)
        bodies = [await response.text() for response in responses]
        assert statuses[0] == 201, bodies
        for response, body in zip(responses, bodies):
            if response.status != 201:
                assert response.status == 404, body
                assert 'BLOB_UPLOAD_UNKNOWN' in body, body
        response = await client.get('/v2/org/img/blobs/' + digest_of(data))
        assert await response.read() == data


async def test_a_completion_racing_a_last_chunk_put(client):
    # One PUT carries the last chunk, its twin does not: whichever wins,
    # the blob is intact and the loser gets a clear 4xx.
    chunks = [os.urandom(200 * 1024) for _ in range(2)]
    data = b''.join(chunks)
    location = await start_chunked(client, chunks[:1])
    url = location + '?digest=' + digest_of(data)
    first, second = await asyncio.gather(client.put(url, data=chunks[1]),
                                         client.put(url, data=chunks[1]))
    statuses = sorted([first.status, second.status])
    assert statuses[0] == 201, (await first.text(), await second.text())
    assert statuses[1] in (201, 400, 404, 416), await second.text()
    response = await client.get('/v2/org/img/blobs/' + digest_of(data))
    assert await response.read() == data


async def test_twin_puts_with_the_whole_body_on_an_empty_upload(client):
    # A monolithic PUT sent twice: the first body to land ends the
    # upload; the twin may not add its bytes after it.
    for round_ in range(8):
        data = os.urandom(500 * 1024)
        location = await start_chunked(client, [])
        url = location + '?digest=' + digest_of(data)
        responses = await asyncio.gather(client.put(url, data=data),
                                         client.put(url, data=data))
        statuses = sorted(response.status for response in responses)
        bodies = [await response.text() for response in responses]
        assert statuses[0] == 201, bodies
        assert statuses[1] in (201, 404, 416), bodies
        response = await client.get('/v2/org/img/blobs/' + digest_of(data))
        assert await response.read() == data
