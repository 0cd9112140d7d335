"""Multipart uploads for the S3 driver: `Upload`, and streamed writes.

An object made of parts becomes visible only at CompleteMultipartUpload;
until then its parts are private to the upload, which is aborted when
anything fails (and collected by `collect_leftovers` if even that could
not be done).  S3 wants every part but the last to hold at least 5 MiB,
at most 5 GiB, and 10,000 parts at most.
"""

import asyncio
import collections
import logging

from zuul_registry.drivers import base
from zuul_registry.drivers.s3_client import (
    S3Error, describe, error_code, is_not_found, status_of, wrap)

log = logging.getLogger('zuul_registry.drivers.s3')

MAX_PARTS = 10000


class Upload:
    """One multipart upload of `key`, made by the driver `driver`."""

    def __init__(self, driver, key):
        self.driver = driver
        self.client = driver.client
        self.bucket = driver.bucket
        self.key = key
        self.upload_id = None
        self.token = driver.new_token()

    async def start(self):
        try:
            response = await self.client.call(
                'create_multipart_upload', Bucket=self.bucket, Key=self.key,
                Metadata=dict(self.driver.stamp(), writer=self.token))
        except Exception as e:
            raise S3Error('CreateMultipartUpload %s: %s'
                          % (self.key, describe(e))) from None
        self.upload_id = response['UploadId']

    async def upload(self, number, data):
        """Upload `data` as part `number`; its ETag."""
        try:
            response = await self.client.call(
                'upload_part', Bucket=self.bucket, Key=self.key,
                UploadId=self.upload_id, PartNumber=number, Body=data)
        except Exception as e:
            raise S3Error('UploadPart %s: %s' % (self.key, describe(e))) \
                from None
        return response['ETag']

    async def copy(self, number, source):
        """Have the server copy `source` into part `number`; its ETag."""
        try:
            response = await self.client.call(
                'upload_part_copy', Bucket=self.bucket, Key=self.key,
                UploadId=self.upload_id, PartNumber=number,
                CopySource={'Bucket': self.bucket, 'Key': source.key},
                CopySourceRange='bytes=%d-%d' % (source.start,
                                                 source.end - 1),
                CopySourceIfMatch=source.etag)
        except Exception as e:
            raise source_error(source.key, e) from None
        return response['CopyPartResult']['ETag']

    async def complete(self, etags):
        """Publish the object from the parts' `etags`, in order.  The
        ETag of the answer is not used: radosgw 16.2 sends it empty.
        """
        try:
            await self.client.call(
                'complete_multipart_upload', Bucket=self.bucket,
                Key=self.key, UploadId=self.upload_id,
                MultipartUpload={'Parts': [
                    {'PartNumber': number, 'ETag': etag}
                    for number, etag in enumerate(etags, 1)]})
        except Exception as e:
            # A retry of a completion whose answer was lost finds the
            # upload gone (404): ours if the object carries our token.
            if status_of(e) == 404 and \
                    await self.driver.writer_of(self.key) == self.token:
                return
            raise S3Error('CompleteMultipartUpload %s: %s'
                          % (self.key, describe(e))) from None

    async def abort(self):
        """Abort, best effort: what stays is collected later."""
        if self.upload_id is None:
            return
        try:
            await asyncio.shield(self.client.call(
                'abort_multipart_upload', Bucket=self.bucket, Key=self.key,
                UploadId=self.upload_id))
        except Exception as e:
            if not is_not_found(e):
                log.warning('Could not abort the upload %s of %s: %s',
                            self.upload_id, self.key, describe(e))


def source_error(key, error):
    # A part gone or replaced since it was looked at: it is not there as
    # it was, so the consumption that wanted it fails as for a missing one.
    if status_of(error) == 412 or error_code(error) == 'PreconditionFailed':
        return base.ObjectNotFound('%s: changed meanwhile' % key)
    return wrap(key, error)


async def gather(tasks):
    """Await every task; on the first failure cancel the others."""
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class Pieces:
    """Chunks held until they make a part, joined once when taken (a
    bytearray grown chunk by chunk, then sliced, copied every byte three
    times: a fifth of the registry's CPU in a push to S3)."""

    def __init__(self):
        self._pieces = collections.deque()
        self.size = 0

    def add(self, chunk):
        if chunk:
            if not isinstance(chunk, bytes):
                chunk = bytes(chunk)   # the writer may reuse its buffer
            self._pieces.append(chunk)
            self.size += len(chunk)

    def take(self, size=None):
        """The first `size` bytes (None: all) as one bytes object."""
        need = self.size if size is None else min(size, self.size)
        taken = []
        self.size -= need
        while need:
            piece = self._pieces[0]
            if len(piece) <= need:
                taken.append(self._pieces.popleft())
                need -= len(piece)
            else:
                view = memoryview(piece)
                taken.append(view[:need])
                self._pieces[0] = view[need:]
                need = 0
        return b''.join(taken)


async def head_of(chunks, size):
    """Read `chunks` until at least `size` bytes are held: the Pieces,
    and the iterator of the rest (None: the chunks ended first)."""
    iterator = chunks.__aiter__()
    held = Pieces()
    async for chunk in iterator:
        held.add(chunk)
        if held.size >= size:
            return held, iterator
    return held, None


async def write(driver, key, held, iterator):
    """Stream `held` (Pieces of at least `part_size` bytes), then what
    `iterator` yields, into `key` as a multipart upload with a few parts
    in flight.  Returns the size.  (Exclusive writes go through the link
    that names the object: s3_links.)"""
    part_size = driver.part_size
    upload = Upload(driver, key)
    in_flight = asyncio.Semaphore(driver.parts_in_flight)
    tasks = []

    async def send(number, data):
        try:
            return await upload.upload(number, data)
        finally:
            in_flight.release()

    async def flush(data):
        await in_flight.acquire()
        if len(tasks) >= MAX_PARTS:
            in_flight.release()
            raise S3Error('%s: more than %d parts' % (key, MAX_PARTS))
        tasks.append(asyncio.ensure_future(send(len(tasks) + 1, data)))
        for task in tasks:   # surface a failed part early
            if task.done() and task.exception() is not None:
                raise task.exception()

    size = 0
    try:
        await upload.start()
        while True:
            while held.size >= part_size:
                size += part_size
                await flush(held.take(part_size))
            try:
                held.add(await iterator.__anext__())
            except StopAsyncIteration:
                break
        if held.size or not tasks:
            size += held.size
            await flush(held.take())
        etags = await asyncio.gather(*tasks)
        await upload.complete(etags)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await upload.abort()
        raise
    return size
