"""The aiohttp site of a worker: it accepts from the listening socket
all workers share, one connection at a time, as balance.Load allows
(see balance.py)."""

import asyncio
import logging
import select

from aiohttp import web

log = logging.getLogger('zuul_registry.balance')

#: Seconds a worker holding more connections than another leaves a new
#: connection to it.
DEFER = 0.005
#: Seconds without accepting after accept() failed (out of descriptors).
ACCEPT_RETRY = 1.0


class BalancedSite(web.BaseSite):
    """An aiohttp site accepting from the shared socket `sock` as `load`
    allows."""

    def __init__(self, runner, sock, load, *, ssl_context=None):
        super().__init__(runner, ssl_context=ssl_context)
        self._sock = sock
        self._load = load
        self._deferred = False
        self._later = None
        self._connecting = set()   # handshake tasks

    @property
    def name(self):
        scheme = 'https' if self._ssl_context else 'http'
        host, port = self._sock.getsockname()[:2]
        return '%s://%s:%d' % (scheme, host, port)

    async def start(self):
        await super().start()
        self._sock.setblocking(False)
        self._server = _Accepting(self)
        self._watch()

    def _watch(self):
        asyncio.get_running_loop().add_reader(self._sock.fileno(),
                                              self._ready)

    def _ready(self):
        # One connection per call: while more wait, the loop calls again,
        # and the counts are weighed again for each.
        loop = asyncio.get_running_loop()
        if not self._deferred and self._load.should_wait():
            # Leave it to the worker holding fewer, for a moment.
            self._pause(DEFER)
            self._deferred = True
            return
        try:
            conn, _ = self._sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            self._deferred = False
            return   # another worker took it, or its client left
        except OSError as e:
            # Out of file descriptors, or the like: as asyncio does,
            # stop watching for a second instead of spinning.
            log.warning('Cannot accept a connection: %s', e)
            self._pause(ACCEPT_RETRY)
            return
        if self._deferred and self._load.should_wait():
            log.debug('Took a connection out of turn: the worker holding '
                      'fewer left it waiting %g s', DEFER)
        self._deferred = False
        conn.setblocking(False)
        self._load.accepted()
        task = loop.create_task(self._connect(conn))
        # The loop keeps only a weak reference to a task.
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    def _pause(self, seconds):
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._sock.fileno())
        self._later = loop.call_later(seconds, self._resume)

    def _resume(self):
        self._later = None
        # A connection still waiting after DEFER is taken out of turn;
        # none waiting, the next one is weighed as usual.
        self._deferred = _waiting(self._sock)
        self._watch()

    async def _connect(self, conn):
        loop = asyncio.get_running_loop()
        transport = None
        try:
            transport, _ = await loop.connect_accepted_socket(
                self._runner.server, conn, ssl=self._ssl_context)
        except (OSError, asyncio.TimeoutError) as e:
            # A client gone, or a failed TLS handshake: its own problem.
            log.debug('Connection dropped before it was served: %s', e)
            conn.close()
        finally:
            self._load.connected(transport)

    def close(self):
        """Stop accepting here; the socket stays open in the others."""
        loop = asyncio.get_running_loop()
        if self._later is not None:
            self._later.cancel()
            self._later = None
        if self._sock.fileno() != -1:
            loop.remove_reader(self._sock.fileno())
            self._sock.close()


def _waiting(sock):
    """Whether a connection waits to be accepted on `sock`."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class _Accepting:
    """What BaseSite.stop closes."""

    def __init__(self, site):
        self._site = site

    def close(self):
        self._site.close()

