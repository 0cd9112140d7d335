"""A chunked push on the filesystem grows one file, and its completion
hands that file over to the blob store: no byte is copied again."""

import os

from zuul_registry.app import make_app
from tests.api.helpers import digest_of, make_config


def upload_files(root):
    found = []
    for directory, _, files in os.walk(root):
        if '_uploads' in directory.split(os.sep):
            found.extend(os.path.join(directory, name) for name in files
                         if name not in ('_info', '_alive'))
    return found


async def test_a_chunked_push_completes_by_renaming_its_file(
        aiohttp_client, tmp_path):
    root = tmp_path / 'data'
    client = await aiohttp_client(make_app(make_config(root)))
    pieces = [os.urandom(100_000), os.urandom(50_000), os.urandom(70_000)]
    data = b''.join(pieces)
    response = await client.post('/v2/org/img/blobs/uploads/')
    assert response.status == 202
    location = response.headers['Location']
    offset = 0
    for piece in pieces:
        response = await client.patch(location, data=piece, headers={
            'Content-Type': 'application/octet-stream',
            'Content-Range': '%d-%d' % (offset, offset + len(piece) - 1)})
        assert response.status == 202, await response.text()
        offset += len(piece)
        location = response.headers['Location']
        # One file holds every byte so far.
        [stored] = upload_files(root)
        assert os.path.getsize(stored) == offset
    inode = os.stat(stored).st_ino

    digest = digest_of(data)
    response = await client.put(location + '&digest=' + digest
                                if '?' in location else
                                location + '?digest=' + digest)
    assert response.status == 201, await response.text()
    blob = os.path.join(root, '_default', '_blobs', 'sha256', digest[7:9],
                        digest[7:])
    assert os.stat(blob).st_ino == inode   # the same file, renamed
    assert upload_files(root) == []
    response = await client.get('/v2/org/img/blobs/' + digest)
    assert await response.read() == data


async def test_a_patch_after_completion_began_is_refused_not_added(
        aiohttp_client, tmp_path):
    root = tmp_path / 'data'
    client = await aiohttp_client(make_app(make_config(root)))
    response = await client.post('/v2/org/img/blobs/uploads/')
    location = response.headers['Location']
    response = await client.patch(location, data=b'abc', headers={
        'Content-Type': 'application/octet-stream'})
    location = response.headers['Location']
    sep = '&' if '?' in location else '?'
    # A completion with the wrong digest freezes the file, then discards
    # the upload: nothing may be added to it in between or after.
    response = await client.put(location + sep + 'digest=' + digest_of(
        b'abx'))
    assert response.status == 400
    response = await client.patch(location, data=b'd', headers={
        'Content-Type': 'application/octet-stream'})
    assert response.status == 404
