"""The aiohttp session of one upstream, and requests that retry safely.

One :class:`Transport` per upstream holds one ``aiohttp.ClientSession``,
made on first use inside the running event loop.  TLS trusts the system
store, or only the PEM file ``ca`` when one is given.  ``connect_timeout``
bounds making a connection (TCP and TLS handshake); ``read_timeout``
bounds each wait for data, so a slow but moving blob never times out
while a silent upstream does.

Only GET and HEAD go through here, and they are repeated (up to
``retries`` more times, with a short growing pause) when the connection
could not be made, was reset before a response arrived, or the answer was
429, 502, 503 or 504.  A response that has started is never repeated
here: a body that breaks off is the caller's to report.
"""

import asyncio
import logging
import ssl

import aiohttp
import yarl

from zuul_registry.upstream.errors import UpstreamUnavailable

log = logging.getLogger('zuul_registry.upstream.transport')

RETRY_STATUSES = frozenset((429, 502, 503, 504))
_BACKOFF_START = 0.1
_BACKOFF_MAX = 2.0
# A Retry-After longer than this is not waited for: the caller has a
# client waiting, better to fail and let it retry.
_RETRY_AFTER_MAX = 5.0
# Failures that happen before any response: repeatable for GET and HEAD.
_CONNECT_ERRORS = (aiohttp.ClientConnectorError,
                   aiohttp.ConnectionTimeoutError,
                   aiohttp.ServerDisconnectedError,
                   aiohttp.ClientOSError)


def describe(url):
    """A URL for messages: no user info, no query (which may be secret)."""
    url = yarl.URL(url)
    return str(url.with_user(None).with_query(None).with_fragment(None))


class Transport:
    def __init__(self, url, *, ca=None, connect_timeout=10.0,
                 read_timeout=60.0, retries=3):
        self.url = url
        self.ca = ca
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retries = retries
        self._session = None

    def session(self):
        """The session, made now if this is the first request."""
        if self._session is None or self._session.closed:
            try:
                context = ssl.create_default_context(cafile=self.ca)
            except (OSError, ssl.SSLError) as e:
                raise UpstreamUnavailable(
                    'cannot load the CA file %s: %s' % (self.ca, e),
                    url=self.url) from None
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=self.connect_timeout,
                sock_read=self.read_timeout)
            # Bytes exactly as sent: a blob's digest is over them, and
            # Content-Length counts them.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=context),
                timeout=timeout, auto_decompress=False,
                headers={'Accept-Encoding': 'identity'})
        return self._session

    async def close(self):
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def request(self, method, url, *, headers=None, params=None,
                      what=None):
        """The response to ``method url``, after retries.

        The caller must release it.  ``what`` names the request in
        messages (default: method and URL, without the query).
        """
        what = what or '%s %s' % (method, describe(url))
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                response = await self.session().request(
                    method, url, headers=headers, params=params,
                    allow_redirects=True)
            except aiohttp.ClientSSLError as e:
                # A certificate that fails now fails on every attempt.
                raise UpstreamUnavailable('%s: TLS failed: %s'
                                          % (what, _reason(e)),
                                          url=self.url) from None
            except _CONNECT_ERRORS as e:
                if attempt == attempts:
                    raise UpstreamUnavailable(
                        '%s failed after %d attempts: %s'
                        % (what, attempts, _reason(e)),
                        url=self.url) from None
                log.warning('Upstream %s: %s failed (%s); attempt %d of %d',
                            self.url, what, _reason(e), attempt + 1,
                            attempts)
                await asyncio.sleep(_backoff(attempt))
                continue
            except asyncio.TimeoutError:
                raise UpstreamUnavailable(
                    '%s: no answer within %gs' % (what, self.read_timeout),
                    url=self.url) from None
            except aiohttp.ClientError as e:
                raise UpstreamUnavailable('%s failed: %s'
                                          % (what, _reason(e)),
                                          url=self.url) from None
            if response.status in RETRY_STATUSES and attempt < attempts:
                delay = _retry_after(response, _backoff(attempt))
                response.release()
                log.warning('Upstream %s: %s answered %d; attempt %d of %d '
                            'in %.1fs', self.url, what, response.status,
                            attempt + 1, attempts, delay)
                await asyncio.sleep(delay)
                continue
            return response


def _backoff(attempt):
    return min(_BACKOFF_START * 2 ** (attempt - 1), _BACKOFF_MAX)


def _retry_after(response, default):
    try:
        seconds = float(response.headers.get('Retry-After', ''))
    except ValueError:
        return default
    return max(default, min(seconds, _RETRY_AFTER_MAX))


def _reason(error):
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return 'connect timeout'
    text = str(error) or type(error).__name__
    return text[:300]
