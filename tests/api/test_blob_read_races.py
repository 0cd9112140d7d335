"""A blob GET racing prune: the blob is moved into the quarantine
between the GET's lookup and its read.

Found by tests/clients/test_prune_online.py on Swift (a pull hung until
the client's 60 s timeout, the servers logging nothing), then made to
happen for certain here:

1. Prune marks; no manifest needs layer B yet (an old blob).
2. A manifest naming B is PUT: 201 (after the mark, so the mark does
   not know it; by design, prune.py rule 3 and quarantine.py).
3. A GET of B looks it up (Blobs.source: B is in the blob store).
4. Prune's sweep moves B into the quarantine.
5. The GET reads B: gone.

The image is acknowledged and not deleted, so the GET must answer 200
with B's bytes (restoring B, as every lookup does).  It used to answer
200 with B's length, then, as the read failed after the headers were
sent, a second answer (404 BLOB_UNKNOWN) written into the first one's
body on a connection kept open: the client waited for the rest of the
body until its timeout, or, for a blob shorter than that 404, read
wrong bytes.

On the filesystem the same interleaving ended in a bare 404 (no body):
the sendfile answer opened the blob's path only when it was prepared,
and the path was gone; it now sends the file it opened at the lookup.

The last two tests pin down the answer when the bytes really are gone
(no quarantine to bring them back from): a clean 404 before any header,
or, once bytes went out, a connection closed short; never a second
answer inside the first.
"""

import asyncio
import json
import tempfile

import aiohttp
import pytest

from tests.api.helpers import digest_of, make_config, push_blob
from tests.api import test_prune_races as races
from tests.api.test_prune_races import Interleaved, old_base, put_manifest, \
    reuse
from zuul_registry import oci
from zuul_registry.app import make_app
from zuul_registry.drivers import base as driver_base
from zuul_registry.drivers.memory import MemoryDriver
from zuul_registry.storage import blobs as blobs_module, paths

WAIT = 10   # seconds; any step of these tests takes far less

# The fixtures of the prune races: prune on the test's storage.
run_prune = races.run_prune
storage_driver = races.storage_driver


async def _read(response):
    """The body, or why there is none; a body that never ends fails."""
    try:
        return await asyncio.wait_for(response.read(), WAIT)
    except asyncio.TimeoutError:
        pytest.fail('%d with Content-Length %s: the body never ends'
                    % (response.status,
                       response.headers.get('Content-Length')))


async def test_a_blob_quarantined_between_a_gets_lookup_and_read_is_served(
        client, run_prune, monkeypatch, request):
    _, old = await old_base(client, run_prune)
    new = reuse(old)
    layer = json.loads(old)['layers'][0]['digest']
    looked_up = asyncio.Event()
    real_source = blobs_module.Blobs.source

    async def source(self, repository, digest):
        found = await real_source(self, repository, digest)
        if str(digest) == layer and not looked_up.is_set():
            looked_up.set()                                          # 3.
            # On until prune has moved it (4.), then read it (5.).
            path = paths.blob(repository.namespace, digest)
            for _ in range(WAIT * 20):
                if await self.driver.stat(path) is None:
                    break
                await asyncio.sleep(0.05)
        return found

    monkeypatch.setattr(blobs_module.Blobs, 'source', source)
    getting = []

    async def push_then_get():
        await put_manifest(client, 'old/base', 'v2', new)            # 2.
        getting.append(asyncio.ensure_future(
            client.get('/v2/old/base/blobs/%s' % layer)))
        await asyncio.wait_for(looked_up.wait(), WAIT)

    # 1. and 4.: prune, the push and the lookup just before it moves B.
    hook = Interleaved(None, 'move', oci.Digest.parse(layer).hex,
                       push_then_get)
    await run_prune(wrap=lambda driver: setattr(hook, '_driver', driver)
                    or hook)
    assert hook.ran
    response = await asyncio.wait_for(getting[0], WAIT)
    body = await _read(response)
    assert response.status == 200, body[:300]
    assert digest_of(body) == layer


def _memory_client(aiohttp_client, driver):
    return aiohttp_client(make_app(make_config(tempfile.mkdtemp()),
                                   driver=driver))


async def test_a_blob_gone_before_its_read_is_a_clean_404(
        aiohttp_client, monkeypatch):
    # The memory driver has no local files: the streamed path, as Swift.
    client = await _memory_client(aiohttp_client, MemoryDriver())
    data = b'gone for good ' * 300
    digest = await push_blob(client, 'org/img', data)
    real_source = blobs_module.Blobs.source

    async def source(self, repository, digest):
        found = await real_source(self, repository, digest)
        await self.driver.delete(found.path)   # not even quarantined
        return found

    monkeypatch.setattr(blobs_module.Blobs, 'source', source)
    response = await client.get('/v2/org/img/blobs/%s' % digest)
    try:
        body = await _read(response)
    except aiohttp.ClientPayloadError:
        return   # cut short: the client knows it has not got it all
    assert response.status == 404, body[:300]
    assert json.loads(body)['errors'][0]['code'] == 'BLOB_UNKNOWN'


class _BreakingDriver:
    """A memory driver whose reads of `part` break after one chunk."""

    def __init__(self, part):
        self._driver = MemoryDriver()
        self._part = part

    def __getattr__(self, name):
        return getattr(self._driver, name)

    async def read(self, path, **kwargs):
        async for chunk in self._driver.read(path, **kwargs):
            yield chunk
            if self._part in path:
                raise driver_base.ObjectNotFound(path)


async def test_a_blob_breaking_after_its_first_bytes_closes_the_connection(
        aiohttp_client):
    client = await _memory_client(aiohttp_client, _BreakingDriver('/_blobs/'))
    data = bytes(range(256)) * 9000   # several read chunks
    digest = await push_blob(client, 'org/img', data)
    response = await client.get('/v2/org/img/blobs/%s' % digest)
    with pytest.raises(aiohttp.ClientPayloadError):
        await _read(response)
