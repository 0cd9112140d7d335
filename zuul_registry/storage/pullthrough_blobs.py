"""Pull-through of blobs: the half of storage/pullthrough.py that serves
blobs nobody pushed here, filled from the namespace's upstream while
every client asking for them reads along (storage/fills.py), once per
server (storage/fill_sharing.py)."""

import asyncio
import contextlib

from zuul_registry.storage import errors, fill_sharing
from zuul_registry.storage.fills import Fill
from zuul_registry.upstream import errors as upstream_errors


class BlobPullThrough:
    """Blob methods of PullThrough, which provides `storage`, `count()`,
    `fill_directory`, `upstream()`, `_shared()`, `_fills` and `_tasks`."""

    async def blob_size(self, repository, digest):
        """The size of a blob, asking the upstream when it is not here."""
        blobs = self.storage.blobs
        try:
            return await blobs.size_in(repository, digest)
        except errors.BlobUnknown:
            upstream = self.upstream(repository)
            if upstream is None:
                raise
        fill = self._fills.get(_key(repository, digest))
        if fill is not None and fill.size is not None:
            return fill.size
        return await self._head_upstream(repository, digest, upstream)

    async def _head_upstream(self, repository, digest, upstream):
        """The blob's size as the upstream says; BlobUnknown if it has
        none, UpstreamUnavailable if it cannot tell."""
        with _blob_errors(repository, digest, upstream):
            return await upstream.client.head_blob(upstream.name(repository),
                                                   str(digest))

    async def blob(self, repository, digest):
        """A BlobSource of a blob here, or a Fill bringing it in."""
        blobs = self.storage.blobs
        # A fill under way first: its readers finish from the blob once
        # it is committed, and it is forgotten only after that.
        key = _key(repository, digest)
        fill = self._fills.get(key)
        if fill is not None and fill.error is None:
            return fill
        try:
            source = await blobs.source(repository, digest)
            if self.upstream(repository) is not None:
                self.count('hits', 'blob')
            return source
        except errors.BlobUnknown:
            upstream = self.upstream(repository)
            if upstream is None:
                raise
        if await blobs.stat(repository.namespace, digest) is not None:
            # Here for another repository: link it once the upstream
            # confirms this repository has it too.
            await self._head_upstream(repository, digest, upstream)
            await blobs.link(repository, digest)
            return await blobs.source(repository, digest)
        return await self._shared(('fill',) + key, self._start_fill, key,
                                  repository, digest, upstream)

    async def _start_fill(self, key, repository, digest, upstream):
        # A fill may have started, or even finished, since the caller
        # looked.
        fill = self._fills.get(key)
        if fill is not None and fill.error is None:
            return fill
        if self.fill_directory is None:
            return await self._fill(key, repository, digest, upstream, None)
        role, shared = await fill_sharing.follow_or_lead(
            self.storage, self.fill_directory, key, repository, digest)
        if role == 'follow':
            return shared
        try:
            return await self._fill(key, repository, digest, upstream,
                                    shared)
        finally:
            if not shared.handed_over:   # no fill of ours: let others
                shared.release()

    async def _fill(self, key, repository, digest, upstream, leadership):
        """Start filling the blob unless it is here by now; with
        `leadership`, tell the other workers, and release it at the
        end."""
        try:
            return await self.storage.blobs.source(repository, digest)
        except errors.BlobUnknown:
            pass
        stack = contextlib.AsyncExitStack()
        self.count('fetches', 'blob')
        try:
            with _blob_errors(repository, digest, upstream):
                stream = await stack.enter_async_context(
                    upstream.client.open_blob(upstream.name(repository),
                                              str(digest)))
        except errors.StorageError as e:
            await stack.aclose()
            if isinstance(e, errors.UpstreamUnavailable):
                self.count('errors', 'blob')
            raise
        # Another request may have started the same fill meanwhile.
        fill = self._fills.get(key)
        if fill is not None and fill.error is None:
            await stack.aclose()
            return fill
        fill = Fill(self.storage, repository, digest, stream.size,
                    source=upstream.url, on_started=leadership and
                    leadership.announce)
        self._fills[key] = fill
        if leadership is not None:
            leadership.handed_over = True   # run() releases it

        async def run():
            try:
                async with stack:
                    await fill.run(stream.chunks)
                if fill.error is not None:
                    self.count('errors', 'blob')
            finally:
                if self._fills.get(key) is fill:
                    del self._fills[key]
                if leadership is not None:
                    leadership.release()

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return fill


def _key(repository, digest):
    """What a fill is known by."""
    return repository.namespace, repository.name, str(digest)


@contextlib.contextmanager
def _blob_errors(repository, digest, upstream):
    """An upstream's failures for a blob, as storage errors."""
    try:
        yield
    except upstream_errors.UpstreamNotFound:
        raise errors.BlobUnknown('blob %s unknown to %s and to %s' % (
            digest, repository, upstream.url)) from None
    except upstream_errors.UpstreamError as e:
        raise errors.UpstreamUnavailable(str(e)) from None
