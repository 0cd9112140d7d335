"""boto3 from asyncio: a bounded thread pool, retries, error mapping.

boto3 blocks, so every request runs in this client's own thread pool of
`concurrency` threads; the event loop never waits on a socket.  One
boto3 client serves every thread (boto3 clients are thread-safe) with a
connection pool of the same size.

Retries are botocore's "standard" mode (`retries` retries after the
first attempt, with jittered exponential backoff): a request is sent
again after a connection error, a 5xx, a throttling answer or a
timeout.  Every request the driver makes can be repeated: bodies are
bytes held in memory (botocore rewinds them), copies and deletes are
idempotent, and a conditional write that a lost answer makes us repeat
is recognised by its writer token (s3.py).  A streamed GET that breaks
mid-body is resumed from where it stopped, only while the object is
unchanged (If-Match on the ETag first seen).  Both kinds of requests
sent again are reported to `on_retry`, botocore's as its answers count
them (RetryAttempts): the retries of a request that never got an answer
(the server unreachable to the end) go uncounted.

Checksums are sent and checked only where the S3 API requires them
(botocore's "when_required"): servers such as radosgw 16.2 predate the
newer default of trailing CRC checksums.  Over an https endpoint request
bodies are not hashed into their signatures (UNSIGNED-PAYLOAD); over
plain http they are.
"""

import asyncio
import concurrent.futures
import logging

import boto3
import botocore.exceptions
from botocore.config import Config

from zuul_registry.drivers import base

log = logging.getLogger('zuul_registry.drivers.s3')
# botocore logs at DEBUG every request (with its signed headers).
logging.getLogger('botocore').setLevel(logging.WARNING)
# A pool connection held by a streamed read is replaced, not waited for.
logging.getLogger('urllib3.connectionpool').setLevel(logging.ERROR)

_NOT_FOUND = {'404', 'NoSuchKey', 'NotFound'}
_TRANSIENT = (botocore.exceptions.ConnectionError,
              botocore.exceptions.ReadTimeoutError,
              botocore.exceptions.ResponseStreamingError,
              botocore.exceptions.IncompleteReadError,
              ConnectionError, TimeoutError)


class S3Error(base.DriverError):
    pass


def error_code(error):
    """The S3 error code of a ClientError ("NoSuchKey", "412"...)."""
    if isinstance(error, botocore.exceptions.ClientError):
        return str(error.response.get('Error', {}).get('Code', ''))
    return None


def status_of(error):
    if isinstance(error, botocore.exceptions.ClientError):
        return error.response.get('ResponseMetadata', {}).get(
            'HTTPStatusCode')
    return None


def is_not_found(error):
    return error_code(error) in _NOT_FOUND or status_of(error) == 404


def describe(error):
    """One line saying what went wrong, never a credential."""
    if isinstance(error, botocore.exceptions.ClientError):
        info = error.response.get('Error', {})
        return ('%s %s: %s' % (status_of(error) or '', info.get('Code', ''),
                               info.get('Message', ''))).strip()
    return str(error) or type(error).__name__


def _count_nothing(count):
    """The `on_retry` of a client whose retries nobody counts."""


def _checked_read(check, response, size):
    check(response)
    return response['Body'].read(size)


def _s3_options(endpoint):
    options = {'addressing_style': 'path' if endpoint else 'auto'}
    if endpoint is None or endpoint.lower().startswith('https:'):
        # Over TLS a body needs no SHA-256 of its own in the signature
        # (UNSIGNED-PAYLOAD): TLS protects it on the way.  botocore
        # skips that hash over TLS only for bodies sent with a checksum,
        # which ours are not (request_checksum_calculation, below).
        # Measured on SeaweedFS over TLS, 256 MiB written: 0.37 s of
        # CPU against 0.57, 169 MiB/s against 140.
        options['payload_signing_enabled'] = False
    return options


def _retry_attempts(response):
    """How many times botocore sent the request of `response` again."""
    try:
        return int(response['ResponseMetadata']['RetryAttempts'])
    except (KeyError, TypeError, ValueError):
        return 0


def wrap(what, error):
    """A DriverError for `error`, ObjectNotFound for a missing object."""
    if is_not_found(error):
        return base.ObjectNotFound(what)
    return S3Error('%s: %s' % (what, describe(error)))


class S3Client:
    """Run boto3 S3 calls in threads, `concurrency` at most."""

    def __init__(self, *, endpoint=None, region=None, access_key=None,
                 secret_key=None, ca=None, concurrency=32, retries=5,
                 connect_timeout=10, read_timeout=300, on_retry=None):
        # Called with each count of requests sent again.
        self._on_retry = on_retry or _count_nothing
        config = Config(
            region_name=region,
            retries={'mode': 'standard', 'max_attempts': retries},
            max_pool_connections=concurrency,
            connect_timeout=connect_timeout, read_timeout=read_timeout,
            # SigV4 everywhere, presigned URLs too (botocore would
            # presign with the deprecated SigV2 otherwise).
            signature_version='s3v4',
            request_checksum_calculation='when_required',
            response_checksum_validation='when_required',
            # A custom endpoint (Ceph, SeaweedFS...) rarely has a DNS
            # name per bucket; AWS prefers virtual hosts.
            s3=_s3_options(endpoint))
        session = boto3.session.Session()
        self.s3 = session.client(
            's3', endpoint_url=endpoint, aws_access_key_id=access_key,
            aws_secret_access_key=secret_key, verify=ca or None,
            config=config)
        self.endpoint = endpoint or self.s3.meta.endpoint_url
        self.retries = retries
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix='s3')

    def close(self):
        self._executor.shutdown(wait=True)
        self.s3.close()

    async def run(self, func, *args):
        """Run the blocking `func(*args)` in a thread of the pool.

        Cancelled, it still waits for the thread, which goes on anyway:
        whatever the call does (an object it writes) is done before the
        caller, cancelled, cleans up after itself.
        """
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, func, *args)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait((future,))
            raise

    async def call(self, operation, **kwargs):
        """Call the boto3 client method `operation` (retried by botocore)."""
        method = getattr(self.s3, operation)
        try:
            response = await self.run(lambda: method(**kwargs))
        except botocore.exceptions.ClientError as e:
            self._on_retry(_retry_attempts(e.response))
            raise
        self._on_retry(_retry_attempts(response))
        return response

    async def get_stream(self, bucket, key, *, start, end, chunk_size,
                         etag=None, check=None):
        """Yield the bytes [start, end) of the object (end None: to its
        end) in pieces of `chunk_size` (the last shorter).

        A missing object raises ObjectNotFound, as does one whose ETag is
        no longer `etag` (if given); a start at or past the end yields
        nothing.  `check`, if given, is called in the pool with the first
        answer before any byte is read; what it raises (but a broken
        connection) ends the stream.
        """
        position, resumed = start, 0
        while end is None or position < end:
            kwargs = {'Bucket': bucket, 'Key': key}
            if position or end is not None:
                kwargs['Range'] = 'bytes=%d-%s' % (
                    position, '' if end is None else end - 1)
            if etag is not None:
                kwargs['IfMatch'] = etag
            try:
                response = await self.call('get_object', **kwargs)
            except botocore.exceptions.ClientError as e:
                if error_code(e) == 'InvalidRange' or status_of(e) == 416:
                    return
                if etag is not None and status_of(e) == 412:
                    raise base.ObjectNotFound('%s: changed meanwhile' % key) \
                        from None
                raise wrap(key, e) from None
            except botocore.exceptions.BotoCoreError as e:
                # Unreachable endpoint, timeouts (after botocore's retries).
                raise S3Error('GET %s: %s' % (key, describe(e))) from None
            etag = etag or response.get('ETag')
            body = response['Body']
            try:
                while True:
                    if check is None:
                        piece = await self.run(body.read, chunk_size)
                    else:
                        # With the first read: no extra trip to the pool.
                        piece = await self.run(_checked_read, check,
                                               response, chunk_size)
                        check = None
                    if not piece:
                        return
                    position += len(piece)
                    yield piece
            except _TRANSIENT as error:
                if resumed >= self.retries or etag is None:
                    raise S3Error('GET %s: %s' % (key, describe(error))) \
                        from None
                resumed += 1
                log.warning('S3 GET %s broke at byte %d (%s); resuming',
                            key, position, describe(error))
                self._on_retry(1)
            finally:
                body.close()
