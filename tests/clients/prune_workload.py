"""The clients of tests/clients/test_prune_online.py: a workload of
pushes, pulls and deletes against two servers, and the record of what
was acknowledged, to check afterwards.

`Registry` sends every request to one of the servers at random and
keeps: the bytes of every blob it knows, the images acknowledged with
201 and not deleted (by repository and digest, with their tags), the
answers 4xx it got (by what was asked, status and code), the answers
5xx and lost connections (fatal), and the broken promises it saw
(anomalies).  The operations (a)-(e) are described in the test's
docstring.
"""

import asyncio
import collections
import contextlib
import hashlib
import json
import os
import random
import time

import aiohttp

OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
CONFIG_TYPE = 'application/vnd.oci.image.config.v1+json'
LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip'


def digest_of(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def manifest_body(config, layers, content):
    return json.dumps({
        'schemaVersion': 2,
        'mediaType': OCI_MANIFEST,
        'config': {'mediaType': CONFIG_TYPE, 'digest': config,
                   'size': len(content[config])},
        'layers': [{'mediaType': LAYER_TYPE, 'digest': d,
                    'size': len(content[d])} for d in layers],
    }, indent=1).encode()


class Fatal(Exception):
    """A 5xx or a lost connection: the test fails."""


class Image:
    """An image acknowledged with 201 and not deleted (as far as the
    clients know): a manifest in a repository, with its tags."""

    def __init__(self, repository, body, blobs):
        self.repository = repository
        self.body = body
        self.digest = digest_of(body)
        self.blobs = list(blobs)
        self.tags = set()
        self.busy = False     # a delete (or a race) is in progress
        self.version = 0      # bumped by every delete or race

    @property
    def key(self):
        return (self.repository, self.digest)


class Base:

    def __init__(self, repository, config, layers, content):
        self.repository = repository
        self.prefix = repository[:-len('base/' + repository.split('/')[-1])]
        self.config = config
        self.layers = layers
        self.blobs = [config] + layers
        self.body = manifest_body(config, layers, content)
        self.digest = digest_of(self.body)


class Response:

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def code(self):
        try:
            return json.loads(self.body)['errors'][0]['code']
        except (ValueError, KeyError, IndexError, TypeError):
            return 'no body'


class Registry:
    """Two servers on one root, the clients' record, and the counts."""

    def __init__(self, servers, session, seed):
        self.servers = servers
        self.urls = [server.url for server in servers]
        self.session = session
        self.rng = random.Random(seed)
        self.content = {}              # digest -> bytes, every blob known
        self.bases = []
        self.images = {}               # (repository, digest) -> Image
        self.locks = collections.defaultdict(asyncio.Lock)
        self.counts = collections.Counter()
        self.rejected = collections.Counter()   # (what, status, code)
        self.race_outcomes = collections.Counter()
        self.fatal = []                # 5xx, lost connections
        self.anomalies = []            # broken promises, seen by clients
        self.serial = 0
        self.cold_until = 0.0

    def usable_bases(self):
        if time.monotonic() < self.cold_until:
            return self.bases[:len(self.bases) // 2]
        return self.bases

    def next_serial(self):
        self.serial += 1
        return self.serial

    def remember(self, data):
        digest = digest_of(data)
        self.content[digest] = data
        return digest

    # -- requests ---------------------------------------------------------

    async def request(self, method, path, *, what, expect, data=None,
                      headers=None, url=None):
        """Send to a server picked at random; a Response.

        A status outside `expect` that is 4xx is counted under `what`;
        5xx or a lost connection is fatal.
        """
        url = url or self.rng.choice(self.urls)
        answered = ''
        sent = time.time()
        try:
            async with self.session.request(
                    method, url + path, data=data, headers=headers,
                    allow_redirects=False) as response:
                # Said if the body then breaks (or never ends).
                answered = ' (after %d, Content-Length %s)' % (
                    response.status,
                    response.headers.get('Content-Length'))
                body = await response.read()
                result = Response(response.status, response.headers, body)
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            self.fatal.append('%s %s%s: %r%s; sent at %s, %.1f s before' % (
                method, url, path, e, answered,
                time.strftime('%H:%M:%S', time.localtime(sent)),
                time.time() - sent))
            raise Fatal(self.fatal[-1]) from None
        if result.status >= 500:
            self.fatal.append('%s %s%s -> %d %s' % (
                method, url, path, result.status, body[:500]))
            raise Fatal(self.fatal[-1])
        if result.status not in expect:
            self.rejected[(what, result.status, result.code)] += 1
        return result

    # -- blobs ------------------------------------------------------------

    async def upload(self, repository, digest, how):
        """Upload a blob again; whether it was answered 201."""
        data = self.content[digest]
        if how == 'monolithic':
            response = await self.request(
                'POST', '/v2/%s/blobs/uploads/?digest=%s'
                % (repository, digest), what='monolithic upload',
                expect=(201,), data=data,
                headers={'Content-Type': 'application/octet-stream'})
            return response.status == 201
        response = await self.request(
            'POST', '/v2/%s/blobs/uploads/' % repository,
            what='start upload', expect=(202,))
        if response.status != 202:
            return False
        return await self.upload_into(response.headers['Location'], digest)

    async def upload_into(self, location, digest):
        """PATCH the blob in pieces into an upload session, then PUT."""
        data = self.content[digest]
        cuts = sorted(self.rng.sample(range(1, len(data)),
                                      self.rng.randint(0, 2)))
        offset = 0
        for end in cuts + [len(data)]:
            response = await self.request(
                'PATCH', location, what='upload chunk', expect=(202,),
                data=data[offset:end], headers={
                    'Content-Type': 'application/octet-stream',
                    'Content-Range': '%d-%d' % (offset, end - 1)})
            if response.status != 202:
                return False
            location = response.headers['Location']
            offset = end
            if self.rng.random() < 0.2:
                await asyncio.sleep(self.rng.uniform(0, 0.3))
        separator = '&' if '?' in location else '?'
        response = await self.request(
            'PUT', '%s%sdigest=%s' % (location, separator, digest),
            what='finish upload', expect=(201,),
            headers={'Content-Length': '0'})
        return response.status == 201

    async def mount(self, repository, digest, source):
        """Mount (from `source`, or the namespace); upload into the
        session the server opens instead when it cannot."""
        query = '?mount=%s' % digest + ('&from=%s' % source if source
                                        else '')
        response = await self.request(
            'POST', '/v2/%s/blobs/uploads/%s' % (repository, query),
            what='mount', expect=(201, 202))
        if response.status == 201:
            self.counts['mounted' if source else 'mounted without from'] += 1
            return True
        if response.status != 202:
            return False
        self.counts['mount fell back to upload'] += 1
        return await self.upload_into(response.headers['Location'], digest)

    async def reuse(self, repository, digest, source):
        """Get a blob another repository has into `repository`, one of
        the ways clients do."""
        how = self.rng.choice(('head and mount', 'mount without from',
                               'monolithic', 'chunked'))
        self.counts['layer by ' + how] += 1
        if how == 'head and mount':
            response = await self.request(
                'HEAD', '/v2/%s/blobs/%s' % (repository, digest),
                what='head', expect=(200, 404))
            if response.status == 200:
                return True
            return await self.mount(repository, digest, source)
        if how == 'mount without from':
            return await self.mount(repository, digest, None)
        return await self.upload(repository, digest, how)

    # -- manifests --------------------------------------------------------

    async def put_manifest(self, repository, reference, body, *, what):
        response = await self.request(
            'PUT', '/v2/%s/manifests/%s' % (repository, reference),
            what=what, expect=(201,), data=body,
            headers={'Content-Type': OCI_MANIFEST})
        if response.status == 201:
            got = response.headers.get('Docker-Content-Digest')
            if got != digest_of(body):
                self.anomalies.append('PUT %s:%s answered digest %s, not %s'
                                      % (repository, reference, got,
                                         digest_of(body)))
        return response

    def acknowledge(self, repository, body, blobs, tag):
        key = (repository, digest_of(body))
        image = self.images.get(key)
        if image is None:
            image = self.images[key] = Image(repository, body, blobs)
        if tag:
            image.tags.add(tag)
        self.counts['pushes acknowledged'] += 1
        return image

    # -- the operations ---------------------------------------------------

    async def push_new(self, client):
        """(a) A new image in a new repository, on a base's layers."""
        base = self.rng.choice(self.usable_bases())
        serial = self.next_serial()
        repository = '%snew/c%d-%d' % (base.prefix, client, serial)
        layers = self.rng.sample(base.layers,
                                 self.rng.randint(1, len(base.layers)))
        config = self.remember(json.dumps({
            'architecture': 'amd64', 'os': 'linux',
            'config': {'Labels': {'serial': str(serial)}},
            'rootfs': {'type': 'layers', 'diff_ids': []}}).encode())
        fresh = self.remember(self.rng.randbytes(
            self.rng.randint(1024, 6 * 1024)))
        steps = [self.upload(repository, config, self.rng.choice(
                     ('monolithic', 'chunked'))),
                 self.upload(repository, fresh, self.rng.choice(
                     ('monolithic', 'chunked')))]
        steps += [self.reuse(repository, layer, base.repository)
                  for layer in layers]
        self.rng.shuffle(steps)
        for step in steps:
            if not await step:
                for rest in steps:
                    rest.close()
                self.counts['pushes given up before the manifest'] += 1
                return
        layers = layers + [fresh]
        self.rng.shuffle(layers)
        body = manifest_body(config, layers, self.content)
        tag = None if self.rng.random() < 0.2 else 't%d' % serial
        response = await self.put_manifest(
            repository, tag or digest_of(body), body, what='new manifest')
        if response.status == 201:
            self.acknowledge(repository, body, [config] + layers, tag)
            self.counts['new repositories'] += 1
        else:
            self.counts['pushes refused'] += 1

    async def push_base_again(self):
        """(b) A base manifest again, under a new tag, in its
        repository: HEAD every blob, upload the ones that went."""
        base = self.rng.choice(self.usable_bases())
        async with self.locks[(base.repository, base.digest)]:
            for digest in base.blobs:
                response = await self.request(
                    'HEAD', '/v2/%s/blobs/%s' % (base.repository, digest),
                    what='head', expect=(200, 404))
                if response.status == 200:
                    continue
                self.counts['base blobs uploaded again'] += 1
                if not await self.upload(
                        base.repository, digest,
                        self.rng.choice(('monolithic', 'chunked'))):
                    self.counts['pushes given up before the manifest'] += 1
                    return
            tag = 'again%d' % self.next_serial()
            response = await self.put_manifest(
                base.repository, tag, base.body, what='base manifest again')
            if response.status == 201:
                self.acknowledge(base.repository, base.body, base.blobs, tag)
                self.counts['bases pushed again'] += 1
            else:
                self.counts['pushes refused'] += 1

    def _pick(self):
        candidates = [image for image in self.images.values()
                      if not image.busy]
        return self.rng.choice(candidates) if candidates else None

    @contextlib.asynccontextmanager
    async def _claim(self):
        """An acknowledged image, locked and marked busy (its promise may
        change while a client deletes it); None when there is none."""
        image = self._pick()
        if image is None:
            yield None
            return
        async with self.locks[image.key]:
            if self.images.get(image.key) is not image:
                yield None
                return
            image.busy = True
            image.version += 1
            yield image

    def _still_promised(self, image, version, reference):
        return (self.images.get(image.key) is image and not image.busy
                and image.version == version
                and (reference.startswith('sha256:')
                     or reference in image.tags))

    async def pull(self):
        """(c) An acknowledged image, manifest and blobs, verified."""
        image = self._pick()
        if image is None:
            return
        version = image.version
        reference = self.rng.choice(sorted(image.tags) + [image.digest])
        response = await self.request(
            'GET', '/v2/%s/manifests/%s' % (image.repository, reference),
            what='pull manifest', expect=(200,),
            headers={'Accept': OCI_MANIFEST})
        problems = []
        if response.status != 200:
            problems.append('manifest -> %d %s' % (response.status,
                                                   response.body[:300]))
        elif response.body != image.body:
            problems.append('manifest body differs')
        for digest in image.blobs:
            response = await self.request(
                'GET', '/v2/%s/blobs/%s' % (image.repository, digest),
                what='pull blob', expect=(200,))
            if response.status != 200:
                problems.append('blob %s -> %d %s' % (
                    digest, response.status, response.body[:300]))
            elif digest_of(response.body) != digest:
                problems.append('blob %s: wrong bytes' % digest)
        if problems and self._still_promised(image, version, reference):
            self.anomalies.append('pull of %s@%s (%s) failed: %s' % (
                image.repository, image.digest, reference,
                '; '.join(problems)))
        self.counts['pulls' if not problems else 'pulls failed'] += 1

    async def delete(self):
        """(d) An acknowledged image, by digest."""
        async with self._claim() as image:
            if image is None:
                return
            response = await self.request(
                'DELETE', '/v2/%s/manifests/%s' % (image.repository,
                                                   image.digest),
                what='delete', expect=(202,))
            if response.status == 202:
                del self.images[image.key]
                self.counts['deleted'] += 1
            else:
                self.anomalies.append(
                    'DELETE of acknowledged %s@%s -> %d %s' % (
                        image.repository, image.digest, response.status,
                        response.body[:300]))
                image.busy = False

    async def race_delete_and_put(self):
        """(e) DELETE by digest racing a PUT of the same manifest under
        a new tag; then see what won, and keep the record right."""
        async with self._claim() as image:
            if image is None:
                return
            tag = 'race%d' % self.next_serial()

            async def delete():
                await asyncio.sleep(self.rng.uniform(0, 0.01))
                return await self.request(
                    'DELETE', '/v2/%s/manifests/%s' % (image.repository,
                                                       image.digest),
                    what='racing delete', expect=(202,))

            async def put():
                await asyncio.sleep(self.rng.uniform(0, 0.01))
                return await self.put_manifest(
                    image.repository, tag, image.body,
                    what='racing manifest')

            deleted, put = await asyncio.gather(delete(), put())
            await self._settle_race(image, tag, deleted.status, put.status)

    async def _settle_race(self, image, tag, deleted, put):
        by_digest = await self.request(
            'GET', '/v2/%s/manifests/%s' % (image.repository, image.digest),
            what='look after race', expect=(200, 404),
            headers={'Accept': OCI_MANIFEST})
        resolving = set()
        for name in sorted(image.tags | {tag}):
            response = await self.request(
                'GET', '/v2/%s/manifests/%s' % (image.repository, name),
                what='look after race', expect=(200, 404),
                headers={'Accept': OCI_MANIFEST})
            if response.status == 200:
                resolving.add(name)
        listed = await self.request(
            'GET', '/v2/%s/tags/list?n=100000' % image.repository,
            what='look after race', expect=(200, 404))
        names = set(json.loads(listed.body).get('tags') or []) \
            if listed.status == 200 else set()
        dangling = (names & (image.tags | {tag})) - resolving
        if dangling:
            self.anomalies.append('after a DELETE (%d) racing a PUT (%d) '
                                  'of %s@%s: tags %s listed but dangling'
                                  % (deleted, put, image.repository,
                                     image.digest, sorted(dangling)))
        if by_digest.status == 200:
            if by_digest.body != image.body:
                self.anomalies.append('after race: %s@%s has other bytes'
                                      % (image.repository, image.digest))
            outcome = ('put won' if tag in resolving else
                       'manifest kept, untagged')
            image.tags = resolving
            image.busy = False
        else:
            outcome = 'delete won'
            if resolving:
                self.anomalies.append('after race: %s@%s gone but tags %s '
                                      'resolve' % (image.repository,
                                                   image.digest,
                                                   sorted(resolving)))
            del self.images[image.key]
        self.race_outcomes['%s (DELETE %d, PUT %d)' % (outcome, deleted,
                                                       put)] += 1

    async def client(self, number, deadline):
        operations = ((self.push_new, 4), (self.push_base_again, 2),
                      (self.pull, 4), (self.delete, 1),
                      (self.race_delete_and_put, 1))
        choices = [op for op, weight in operations for _ in range(weight)]
        while time.monotonic() < deadline and not self.fatal:
            operation = self.rng.choice(choices)
            try:
                if operation == self.push_new:
                    await operation(number)
                else:
                    await operation()
            except Fatal:
                return

    # -- checks afterwards ------------------------------------------------

    async def check_complete(self, when):
        """Every image in the record is whole, on both servers."""
        limit = asyncio.Semaphore(8)

        async def check(image):
            async with limit:
                problems = []
                for url in self.urls:
                    for reference in sorted(image.tags) + [image.digest]:
                        response = await self.request(
                            'GET', '/v2/%s/manifests/%s' % (
                                image.repository, reference),
                            what='check', expect=(200,), url=url,
                            headers={'Accept': OCI_MANIFEST})
                        if response.status != 200:
                            problems.append('%s on %s -> %d %s' % (
                                reference, url, response.status,
                                response.body[:200]))
                        elif response.body != image.body:
                            problems.append('%s on %s: other bytes'
                                            % (reference, url))
                for digest in image.blobs:
                    response = await self.request(
                        'GET', '/v2/%s/blobs/%s' % (image.repository,
                                                    digest),
                        what='check', expect=(200,))
                    if response.status != 200:
                        problems.append('blob %s -> %d %s' % (
                            digest, response.status, response.body[:200]))
                    elif digest_of(response.body) != digest:
                        problems.append('blob %s: wrong bytes' % digest)
                return image, problems

        results = await asyncio.gather(*[check(image) for image in
                                         list(self.images.values())])
        lost = ['%s %s@%s (tags %s): %s' % (
            when, image.repository, image.digest, sorted(image.tags),
            '; '.join(problems)) for image, problems in results if problems]
        return lost

    async def check_tags(self):
        """Every tag listed names a manifest that is there; the tagged
        manifests that are incomplete (from refused PUTs) are counted."""
        url = self.urls[0]
        response = await self.request('GET', '/v2/_catalog?n=100000',
                                      what='check', expect=(200,), url=url)
        dangling = []
        for repository in json.loads(response.body)['repositories']:
            listed = await self.request(
                'GET', '/v2/%s/tags/list?n=100000' % repository,
                what='check', expect=(200, 404), url=url)
            if listed.status != 200:
                continue
            for tag in json.loads(listed.body).get('tags') or []:
                self.counts['tags listed at the end'] += 1
                got = await self.request(
                    'GET', '/v2/%s/manifests/%s' % (repository, tag),
                    what='check', expect=(200,), url=url,
                    headers={'Accept': OCI_MANIFEST})
                if got.status != 200:
                    dangling.append('%s:%s -> %d %s' % (
                        repository, tag, got.status, got.body[:200]))
                    continue
                doc = json.loads(got.body)
                for descriptor in [doc['config']] + doc['layers']:
                    blob = await self.request(
                        'HEAD', '/v2/%s/blobs/%s' % (repository,
                                                     descriptor['digest']),
                        what='check tagged', expect=(200, 404), url=url)
                    if blob.status != 200:
                        self.counts['tagged manifests incomplete '
                                    '(not acknowledged)'] += 1
                        break
        return dangling


# -- the set-up ---------------------------------------------------------------


async def push_bases(registry, names):
    rng = registry.rng
    shared = registry.remember(rng.randbytes(4096))  # in several bases
    for index, repository in enumerate(names):
        layers = [registry.remember(rng.randbytes(rng.randint(2048, 8192)))
                  for _ in range(rng.randint(2, 3))]
        if index % 2 == 0:
            layers.insert(0, shared)
        config = registry.remember(json.dumps({
            'architecture': 'amd64', 'os': 'linux',
            'config': {'Labels': {'base': repository}}}).encode())
        base = Base(repository, config, layers, registry.content)
        for digest in base.blobs:
            assert await registry.upload(repository, digest, 'monolithic')
        response = await registry.put_manifest(repository, 'v1', base.body,
                                               what='base')
        assert response.status == 201, response.body
        registry.bases.append(base)


def age(root, seconds):
    """Make every file under root (but scratch) `seconds` older."""
    then = time.time() - seconds
    for directory, subdirectories, files in os.walk(root):
        if directory == root and '.tmp' in subdirectories:
            subdirectories.remove('.tmp')
        for name in files:
            os.utime(os.path.join(directory, name), (then, then))
