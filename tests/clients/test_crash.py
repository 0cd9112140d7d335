"""A registry killed with SIGKILL mid-upload loses no committed blob and
never serves a partial one.

Thirty chunked blob uploads (POST, a PATCH per 64 KiB piece, PUT ?digest=)
run at once; once some of them have been answered 201 Created, the server
gets SIGKILL just after another PUT went out, while the rest are still
sending PATCHes. The server is started again on the same port and storage,
and then:

* every blob whose PUT was answered 201 is served whole, with its digest;
* every blob whose PUT was never sent is 404 Not Found;
* a blob whose PUT was sent but not answered is either of those, never a
  truncated or corrupted body;
* every file in the storage directory's blob store hashes to the digest its
  path names.
"""

import asyncio
import hashlib
import os
import random
import re
import urllib.parse

import aiohttp

BLOBS = 30
REPOSITORIES = ('crash/one', 'crash/two', 'crash/three')
PIECE = 64 * 1024
KILL_AFTER_COMMITTED = 8

# States of one upload, in order.
WAITING, UPLOADING, PUT_SENT, COMMITTED = range(4)
STATE_NAMES = ('waiting', 'uploading', 'put-sent', 'committed')


class Upload:

    def __init__(self, index, rng):
        self.repository = REPOSITORIES[index % len(REPOSITORIES)]
        size = rng.randrange(4, 24) * PIECE + rng.randrange(PIECE)
        self.data = rng.randbytes(size)
        self.digest = 'sha256:' + hashlib.sha256(self.data).hexdigest()
        self.start_delay = rng.uniform(0, 0.6)
        self.piece_delay = rng.uniform(0.005, 0.03)
        self.state = WAITING
        self.error = None


def _next_location(base, response):
    location = response.headers['Location']
    return urllib.parse.urljoin(base, location)


async def _upload(session, base, upload, committed):
    await asyncio.sleep(upload.start_delay)
    upload.state = UPLOADING
    url = '%s/v2/%s/blobs/uploads/' % (base, upload.repository)
    async with session.post(url) as response:
        assert response.status == 202, await response.text()
        location = _next_location(base, response)
    offset = 0
    while offset < len(upload.data):
        piece = upload.data[offset:offset + PIECE]
        headers = {'Content-Type': 'application/octet-stream',
                   'Content-Range': '%d-%d' % (offset,
                                               offset + len(piece) - 1)}
        async with session.patch(location, data=piece,
                                 headers=headers) as response:
            assert response.status == 202, await response.text()
            location = _next_location(base, response)
        offset += len(piece)
        await asyncio.sleep(upload.piece_delay)
    separator = '&' if urllib.parse.urlsplit(location).query else '?'
    put_url = '%s%sdigest=%s' % (location, separator, upload.digest)
    upload.state = PUT_SENT
    async with session.put(put_url, headers={'Content-Length': '0'}) \
            as response:
        assert response.status == 201, await response.text()
        upload.state = COMMITTED
    committed.set()


async def _upload_and_kill(server, uploads, kill_delay):
    """Run every upload; SIGKILL the server once enough are committed and,
    if possible, while another PUT is being handled.

    Returns the states of the uploads at the moment of the kill.
    """
    committed = asyncio.Event()
    put_on_wire = asyncio.Event()

    async def headers_sent(session, context, params):
        if params.method == 'PUT':
            put_on_wire.set()

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(headers_sent)
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector,
                                     trace_configs=[trace]) as session:
        tasks = [asyncio.ensure_future(
            _upload(session, server.url, upload, committed))
            for upload in uploads]
        while sum(u.state == COMMITTED for u in uploads) < \
                KILL_AFTER_COMMITTED:
            failed = [t for t in tasks if t.done() and t.exception()]
            pending = [t for t in tasks if not t.done()]
            if failed or not pending:
                for task in pending:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                if failed:
                    # The server refused a request before any kill.
                    raise failed[0].exception()
                break
            committed.clear()
            waiter = asyncio.ensure_future(committed.wait())
            await asyncio.wait(pending + [waiter], timeout=60,
                               return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        # Aim the kill at a commit: wait briefly for a PUT on the wire,
        # then give the server a moment to start on it.
        put_on_wire.clear()
        try:
            await asyncio.wait_for(put_on_wire.wait(), timeout=2)
        except asyncio.TimeoutError:
            pass
        await asyncio.sleep(kill_delay)
        states_at_kill = [u.state for u in uploads]
        server.process.kill()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().run_in_executor(None, server.kill)
    for upload, result in zip(uploads, results):
        upload.error = result
    return states_at_kill


async def _fetch(server, upload):
    url = '%s/v2/%s/blobs/%s' % (server.url, upload.repository,
                                 upload.digest)
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            return response.status, response.headers, await response.read()


async def _fetch_all(server, uploads):
    return await asyncio.gather(*(_fetch(server, u) for u in uploads))


DIGEST_NAME = re.compile(r'^(?:sha256[:_-]?)?([0-9a-f]{64})$')
# The content-addressed store is the subtree below a directory of this name:
# zuul-registry keeps NS/_blobs/sha256/AB/HEX, Distribution keeps
# .../blobs/sha256/AB/HEX/data. Files named by a digest elsewhere are links
# (zuul-registry's _layers/ and _revisions/ markers), not content.
BLOB_STORE_NAMES = ('_blobs', 'blobs')


def _content_addressed_files(root):
    """(path, hex digest its path names) for every file in a blob store
    under root: files named by a digest, and files named ``data`` in a
    directory named by one."""
    for directory, _, files in os.walk(root):
        parts = os.path.relpath(directory, root).split(os.sep)
        if not any(part in BLOB_STORE_NAMES for part in parts):
            continue
        parent = DIGEST_NAME.match(os.path.basename(directory))
        for name in files:
            match = DIGEST_NAME.match(name)
            if match is None and name == 'data' and parent is not None:
                match = parent
            if match is not None:
                yield os.path.join(directory, name), match.group(1)


def _sha256_file(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def test_sigkill_mid_upload_keeps_committed_blobs_and_no_partial_ones(
        registry):
    rng = random.Random(20240607)
    uploads = [Upload(i, rng) for i in range(BLOBS)]
    states_at_kill = asyncio.run(_upload_and_kill(
        registry, uploads, kill_delay=rng.uniform(0, 0.004)))

    summary = {name: states_at_kill.count(state)
               for state, name in enumerate(STATE_NAMES)}
    # The kill really hit the server mid-flight.
    assert summary['committed'] >= KILL_AFTER_COMMITTED, summary
    assert summary['uploading'] + summary['put-sent'] >= 5, summary

    registry.start()
    answers = asyncio.run(_fetch_all(registry, uploads))
    for upload, (status, headers, body) in zip(uploads, answers):
        what = '%s@%s (%s, %d bytes, %r)' % (
            upload.repository, upload.digest, STATE_NAMES[upload.state],
            len(upload.data), upload.error)
        if upload.state == COMMITTED:
            assert status == 200, what
            assert body == upload.data, what
            assert headers.get('Docker-Content-Digest',
                               upload.digest) == upload.digest, what
        elif upload.state == PUT_SENT:
            # Committed or not: the server may have done either before it
            # died, but it must not be anything in between.
            assert status in (200, 404), what
            if status == 200:
                assert body == upload.data, what
        else:
            assert status == 404, what

    checked = 0
    for path, hexdigest in _content_addressed_files(registry.storage_root):
        assert _sha256_file(path) == hexdigest, path
        checked += 1
    # The walk found the committed blobs at least.
    assert checked >= sum(u.state == COMMITTED for u in uploads), checked
