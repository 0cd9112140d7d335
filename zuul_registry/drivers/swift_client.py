"""python-swiftclient from asyncio: threads, a connection pool, retries.

swiftclient blocks, so every call runs in this client's own thread pool,
whose size is the driver's concurrency limit; the event loop never waits
on a socket.  A swiftclient Connection carries one HTTP connection, so an
operation takes one from the pool for as long as it needs it (a streamed
read or write: until its last byte) and gives it back, or closes it when
the operation failed half-way.

Retries: swiftclient's own are switched off (retries=0 keeps only its
re-authentication after a 401).  `call` retries a request that can be
sent again unchanged (everything but a streamed body) when Swift answers
5xx, 408 or 429 or the connection fails, with exponential backoff.  A
streamed PUT is never retried: its body is gone; the error propagates and
Swift, which saw no complete body, stores nothing.  A streamed GET that
breaks is resumed from where it stopped, only if the object is unchanged
(If-Match on its ETag).  Each request sent again (by these retries or by
swiftclient after a 401) is reported to `on_retry`.
"""

import asyncio
import concurrent.futures
import functools
import logging
import threading

import requests
import swiftclient
import urllib3
from keystoneauth1 import exceptions as keystone_errors
from swiftclient.exceptions import ClientException

log = logging.getLogger('zuul_registry.drivers.swift')
# swiftclient logs each answer that is not 2xx (a 404 is routine here) at
# INFO, with the first characters of the token; keystoneauth logs its
# requests at DEBUG.  Neither belongs in the registry's log.
for _name in ('swiftclient', 'keystoneauth'):
    logging.getLogger(_name).setLevel(logging.WARNING)

_TRANSIENT_STATUS = {408, 429, 498}
# A streamed PUT waits at most this long for the next piece of its body.
_BODY_TIMEOUT = 600
_MAX_IDLE_CONNECTIONS = 64


def status_of(error):
    return getattr(error, 'http_status', None)


def is_transient(error):
    """Whether `error` may pass if the same request is sent again."""
    if getattr(error, 'reauthenticate', False):
        return True
    # swiftclient's and keystoneauth's HTTP errors both carry http_status.
    status = getattr(error, 'http_status', None)
    if isinstance(status, int):
        return status >= 500 or status in _TRANSIENT_STATUS
    return isinstance(error, (requests.RequestException, OSError,
                              urllib3.exceptions.HTTPError,
                              keystone_errors.ConnectionError))


class _BodyAborted(Exception):
    """The source of a streamed body failed; the request is abandoned."""


class SwiftClient:
    """Run swiftclient Connection methods in threads, `concurrency` at most.

    `connect` makes a new swiftclient.Connection (authenticated or not);
    it is called with `preauthurl` and `preauthtoken` keywords so that new
    connections share the token the others already have.
    """

    def __init__(self, connect, *, concurrency=16, retries=4, backoff=0.5,
                 max_backoff=8.0, on_retry=None):
        self._connect = connect
        # Called on the event loop with each count of requests sent again.
        self._on_retry = on_retry or _count_nothing
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix='swift')
        # Streamed writes hold a thread for their whole body; leave the
        # other half of the threads to everything else.
        self._streams = asyncio.Semaphore(max(1, concurrency // 2))
        self._lock = threading.Lock()
        self._idle = []
        self._auth = (None, None)  # storage URL, token
        self._loop = None   # the event loop using this client

    def close(self):
        self._executor.shutdown(wait=True)
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # -- the connection pool (runs in threads) ----------------------------

    def _checkout(self):
        with self._lock:
            if self._idle:
                return self._idle.pop()
            url, token = self._auth
        return self._connect(preauthurl=url, preauthtoken=token)

    def _checkin(self, conn, *, reusable=True):
        if not reusable:
            conn.close()
            return
        with self._lock:
            if conn.url and conn.token:
                self._auth = (conn.url, conn.token)
            if len(self._idle) < _MAX_IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        conn.close()

    def _blocking(self, method, args, kwargs):
        conn = self._checkout()
        conn.attempts = 0   # methods swiftclient does not retry keep it
        try:
            try:
                result = getattr(conn, method)(*args, **kwargs)
            finally:
                # Read before the connection goes back to the pool; the
                # count reaches the loop before the result does.
                count = _resends(conn)
                if count:
                    self._loop.call_soon_threadsafe(self._on_retry, count)
        except ClientException as e:
            if conn.token is None:
                # A 401 made swiftclient drop the token: whatever failed
                # (a PUT it could not rewind) may be sent again.
                e.reauthenticate = True
                with self._lock:
                    self._auth = (None, None)
            # An HTTP error answer leaves the connection usable.
            self._checkin(conn, reusable=e.http_status is not None)
            raise
        except BaseException:
            self._checkin(conn, reusable=False)
            raise
        self._checkin(conn)
        return result

    def _run(self, func, *args):
        self._loop = asyncio.get_running_loop()
        return self._loop.run_in_executor(self._executor, func, *args)

    # -- requests -----------------------------------------------------------

    def retry_delay(self, attempt):
        """Seconds before sending again after failed attempt number
        `attempt` (0 the first): doubling from `backoff`, at most
        `max_backoff`."""
        return min(self.backoff * 2 ** attempt, self.max_backoff)

    async def retrying(self, what, request):
        """Await `request()` until it succeeds, sending it again after a
        transient failure, with backoff, at most `retries` times."""
        attempt = 0
        while True:
            try:
                return await request()
            except Exception as error:
                if attempt >= self.retries or not is_transient(error):
                    raise
                delay = self.retry_delay(attempt)
                attempt += 1
                log.warning('Swift %s failed (%s); retry %d in %.1fs',
                            what, describe(error), attempt, delay)
                await asyncio.sleep(delay)
                self._on_retry(1)

    async def call(self, method, *args, **kwargs):
        """Call Connection.`method`, retrying transient failures."""
        return await self.retrying(
            '%s %s' % (method, args[1:2]),
            lambda: self._run(self._blocking, method, args, kwargs))

    async def put_stream(self, container, name, chunks, *, headers):
        """PUT an object whose body is the async iterable `chunks`.

        Sent with chunked transfer encoding, once.  Returns
        (etag, bytes sent).  If `chunks` raises, the request is abandoned
        and that exception propagates.
        """
        loop = asyncio.get_running_loop()
        state = {'size': 0, 'error': None, 'pending': None}
        iterator = chunks.__aiter__()

        def body():
            while True:
                future = asyncio.run_coroutine_threadsafe(
                    _next_chunk(iterator), loop)
                state['pending'] = future
                try:
                    chunk = future.result(timeout=_BODY_TIMEOUT)
                except BaseException as e:
                    future.cancel()
                    state['error'] = e
                    raise _BodyAborted() from e
                if chunk is None:
                    return
                state['size'] += len(chunk)
                if chunk:
                    yield chunk

        async with self._streams:
            try:
                etag = await self._run(
                    self._blocking, 'put_object',
                    (container, name, body()), {'headers': headers})
            except asyncio.CancelledError:
                if state['pending'] is not None:
                    state['pending'].cancel()
                raise
            except Exception as error:
                if state['error'] is not None:
                    raise state['error'] from None
                raise error
        return etag, state['size']

    async def get_stream(self, container, name, *, start, end, chunk_size):
        """Yield the bytes [start, end) of the object (end None: to EOF).

        A connection that breaks mid-way is resumed from the position
        reached, with If-Match on the ETag first seen, so that the bytes of
        an object replaced meanwhile are never spliced into the old ones.
        """
        position, resumed, etag = start, 0, None
        while end is None or position < end:
            headers = {}
            if position or end is not None:
                headers['Range'] = 'bytes=%d-%s' % (
                    position, '' if end is None else end - 1)
            if etag and resumed:
                headers['If-Match'] = etag
            try:
                response, body, conn = await self._open(container, name,
                                                        headers, chunk_size)
                etag = etag or response.get('etag')
            except ClientException as e:
                if e.http_status == 416:
                    return   # start at or past the end
                raise
            try:
                while True:
                    chunk = await self._run(body.read, chunk_size)
                    if not chunk:
                        self._checkin(conn)
                        conn = None
                        return
                    position += len(chunk)
                    yield chunk
            except Exception as error:
                if not is_transient(error) or resumed >= self.retries:
                    raise
                resumed += 1
                log.warning('Swift GET %s broke at byte %d (%s); resuming',
                            name, position, describe(error))
                self._on_retry(1)
            finally:
                if conn is not None:
                    body.close()
                    self._checkin(conn, reusable=False)

    async def _open(self, container, name, headers, chunk_size):
        attempt = 0
        while True:
            conn = await self._run(self._checkout)
            try:
                response, body = await self._run(functools.partial(
                    conn.get_object, container, name,
                    resp_chunk_size=chunk_size, headers=headers))
                self._on_retry(_resends(conn))
                return response, body, conn
            except Exception as error:
                self._on_retry(_resends(conn))
                self._checkin(conn, reusable=status_of(error) is not None)
                if attempt >= self.retries or not is_transient(error):
                    raise
                await asyncio.sleep(self.retry_delay(attempt))
                attempt += 1
                self._on_retry(1)


async def _next_chunk(iterator):
    try:
        return bytes(await iterator.__anext__())
    except StopAsyncIteration:
        return None


def _count_nothing(count):
    """The `on_retry` of a client whose retries nobody counts."""


def _resends(conn):
    """How many times swiftclient sent its last request again: with
    retries=0, once after a 401 made it fetch a new token."""
    return max(0, conn.attempts - 1)


def describe(error):
    if isinstance(error, ClientException) and error.http_status:
        return '%s %s' % (error.http_status, error.http_reason or '')
    return type(error).__name__


def connection_factory(options, *, timeout=60):
    """A `connect` for SwiftClient from validated connection options.

    `options` holds swiftclient.Connection keywords (see swift_auth).
    """
    def connect(*, preauthurl=None, preauthtoken=None):
        return swiftclient.Connection(
            retries=0, timeout=timeout, preauthurl=preauthurl,
            preauthtoken=preauthtoken, **options)
    return connect
