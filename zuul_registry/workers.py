"""The supervisor of N serving processes (`workers: N`, or `auto`).

The supervisor binds one listening socket per listen address and forks
one worker per slot; it never serves a request itself. The workers all
accept from those sockets, sharing new connections out evenly: one
holding more connections than another leaves the next to it (balance.py).
The supervisor keeps the sockets open, also while workers are dead:
connections wait in the backlog until a worker accepts them, instead of
being reset.

- A worker that dies is logged with its exit status and replaced. A slot
  is restarted at most once a second; while its workers keep dying
  within 10 s of starting, the delay doubles up to 30 s.
- A worker that cannot start (storage unreachable, ...) in the first
  generation ends the whole server with status 1: the configuration or
  the environment is wrong, and a restart would fail the same way.
- SIGTERM or SIGINT to the supervisor: it closes its copies of the
  sockets and sends SIGTERM to every worker. A worker stops accepting,
  lets requests in flight finish for up to SHUTDOWN_TIMEOUT seconds,
  closes the storage and exits 0. The supervisor exits 0 once all have
  exited; a worker still running STOP_GRACE seconds later is killed and
  the supervisor exits 1. Workers ignore SIGINT: a ^C in a terminal
  reaches the whole process group, and the supervisor relays it.
- Scheduled pruning (`prune-interval`) runs in slot 0 only: prunes in
  several processes would be safe, but are wasted work on one storage.

Beyond the storage and the configuration, workers share private
directories the supervisor makes (and removes at the end): with
upstreams, one in which they share blob fills, so that one worker
fetches a blob while the others read along (storage/fill_sharing.py);
with metrics-port, one in which each writes its metrics, so that any
worker answers a scrape for all (api/metrics.py).  An upload continues on any
worker (one that lacks the hash state re-hashes what is stored), and
tokens are signed with the configured secret, so every worker accepts
them.
"""

import asyncio
import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import sys
import tempfile
import time

from zuul_registry import balance

log = logging.getLogger('zuul_registry.workers')

#: Seconds a stopping worker lets requests in flight finish.
SHUTDOWN_TIMEOUT = 30.0
#: Seconds beyond SHUTDOWN_TIMEOUT the supervisor waits before SIGKILL.
STOP_GRACE = 10.0
#: Exit status of a worker that could not start serving.
STARTUP_FAILED = 3

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
RESTART_DELAY = 1.0
RESTART_DELAY_MAX = 30.0
STABLE_AFTER = 10.0

LOG_FORMAT = '%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s'


def cpu_count():
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worker_count(setting):
    """How many serving processes `workers` (a count or 'auto') means."""
    return cpu_count() if setting == 'auto' else setting


def bind_sockets(hosts, port):
    """A listening socket per address of `hosts` (a host or a list, as
    cli.listen_hosts says).  Without SO_REUSEPORT: a port already in use,
    even by a server using SO_REUSEPORT, is an error, never shared."""
    if isinstance(hosts, str):
        hosts = [hosts]
    addresses = {}
    for host in hosts:
        for family, kind, proto, _, address in socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM,
                flags=socket.AI_PASSIVE):
            addresses.setdefault((family, address), (family, kind, proto,
                                                     address))
    sockets = []
    try:
        for family, kind, proto, address in addresses.values():
            sockets.append(_socket(family, kind, proto))
            sockets[-1].bind(address)
            sockets[-1].listen(128)
    except BaseException:
        _close(sockets)
        raise
    return sockets


def _socket(family, kind, proto):
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        # As asyncio does: '::' is IPv6 only, IPv4 has its own socket.
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    return sock


def _close(sockets):
    for sock in sockets:
        sock.close()


def _describe_exit(code):
    if code is not None and code < 0:
        try:
            return 'killed by %s' % signal.Signals(-code).name
        except ValueError:
            return 'killed by signal %d' % -code
    return 'exited with status %s' % code


class _Slot:

    def __init__(self, index, sockets):
        self.index = index
        self.sockets = sockets
        self.process = None
        self.started = None
        self.delay = RESTART_DELAY
        self.restart_at = 0.0
        self.generation = 0


class Supervisor:
    """Keeps one worker running per slot until told to stop.

    `serve(index, sockets)` runs in each forked worker and returns its
    exit status; `on_death(pid)` is called for each worker that ended.
    Slots may share sockets.  A dead worker's slot is vacated on `board`
    (a balance.Board), if given.
    """

    def __init__(self, slots, serve, *, on_death=None, board=None):
        self.slots = [_Slot(index, sockets)
                      for index, sockets in enumerate(slots)]
        self.serve = serve
        self.on_death = on_death
        self.board = board
        self.context = multiprocessing.get_context('fork')
        self.stopping = None   # the signal that asked us to stop

    def run(self):
        """Supervise until SIGTERM/SIGINT; return the exit status."""
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        self._wake = (wake_read, wake_write)
        previous = {signum: signal.signal(signum, self._on_signal)
                    for signum in _STOP_SIGNALS}
        previous_wakeup = signal.set_wakeup_fd(wake_write)
        try:
            for slot in self.slots:
                self._start(slot)
            status = self._supervise()
            if status is None:
                status = self._stop()
            return status
        finally:
            signal.set_wakeup_fd(previous_wakeup)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            os.close(wake_read)
            os.close(wake_write)

    def _on_signal(self, signum, frame):
        if self.stopping is None:
            self.stopping = signum

    def _start(self, slot):
        slot.generation += 1
        slot.started = time.monotonic()
        slot.process = self.context.Process(
            target=self._worker_main, args=(slot,),
            name='zuul-registry-worker-%d' % slot.index)
        # Until the child has undone the supervisor's handlers, a stop
        # signal must wait: SIGTERM is then fatal to it, as it should be.
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            slot.process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        log.info('Started worker %d (pid %d)', slot.index, slot.process.pid)

    def _worker_main(self, slot):
        # In the forked child: undo the supervisor's signal handling.
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        os.close(self._wake[0])
        os.close(self._wake[1])
        _close(sock for other in self.slots if other is not slot
               for sock in other.sockets if sock not in slot.sockets)
        sys.exit(self.serve(slot.index, slot.sockets))

    def _supervise(self):
        """Wait for deaths and signals; None when asked to stop, or the
        exit status when the server cannot run."""
        while self.stopping is None:
            now = time.monotonic()
            waiting = [slot for slot in self.slots if slot.process is None]
            for slot in waiting:
                if slot.restart_at <= now:
                    self._start(slot)
            pending = [slot.restart_at for slot in self.slots
                       if slot.process is None]
            timeout = max(min(pending) - now, 0) if pending else None
            sentinels = {slot.process.sentinel: slot for slot in self.slots
                         if slot.process is not None}
            ready = multiprocessing.connection.wait(
                list(sentinels) + [self._wake[0]],
                timeout=timeout)
            self._drain_wakeup()
            for sentinel in ready:
                slot = sentinels.get(sentinel)
                if slot is not None and self._reap(slot):
                    return self._stop(failed=True)
        return None

    def _drain_wakeup(self):
        try:
            while os.read(self._wake[0], 512):
                pass
        except BlockingIOError:
            pass

    def _reap(self, slot):
        """Log a dead worker and schedule its restart; True when it was
        a first worker that could not start."""
        slot.process.join()
        code = slot.process.exitcode
        pid = slot.process.pid
        slot.process.close()
        slot.process = None
        if self.board is not None:
            self.board.vacate(slot.index)
        if self.on_death is not None:
            try:
                self.on_death(pid)
            except Exception:
                log.exception('Cleaning up after worker %d (pid %d)',
                              slot.index, pid)
        lived = time.monotonic() - slot.started
        if code == STARTUP_FAILED and slot.generation == 1:
            log.error('Worker %d (pid %d) could not start; stopping',
                      slot.index, pid)
            return True
        if lived >= STABLE_AFTER:
            slot.delay = RESTART_DELAY
        slot.restart_at = slot.started + slot.delay
        if lived < STABLE_AFTER:   # a crash loop: wait longer next time
            slot.delay = min(slot.delay * 2, RESTART_DELAY_MAX)
        wait = max(slot.restart_at - time.monotonic(), 0)
        log.error('Worker %d (pid %d) %s after %.1fs; restarting it in '
                  '%.1fs', slot.index, pid, _describe_exit(code), lived,
                  wait)
        return False

    def _stop(self, *, failed=False):
        """Stop every worker; the supervisor's exit status."""
        if self.stopping is not None:
            log.info('%s: stopping %d workers (in-flight requests get up '
                     'to %ds)', signal.Signals(self.stopping).name,
                     sum(slot.process is not None for slot in self.slots),
                     SHUTDOWN_TIMEOUT)
        _close(sock for slot in self.slots for sock in slot.sockets)
        running = [slot for slot in self.slots if slot.process is not None]
        for slot in running:
            try:
                os.kill(slot.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + SHUTDOWN_TIMEOUT + STOP_GRACE
        status = 1 if failed else 0
        for slot in running:
            slot.process.join(max(deadline - time.monotonic(), 0))
            if slot.process.exitcode is None:
                log.error('Worker %d (pid %d) still running after %ds; '
                          'killing it', slot.index, slot.process.pid,
                          SHUTDOWN_TIMEOUT + STOP_GRACE)
                slot.process.kill()
                slot.process.join()
                status = 1
            elif slot.process.exitcode != 0:
                log.warning('Worker %d (pid %d) %s while stopping',
                            slot.index, slot.process.pid,
                            _describe_exit(slot.process.exitcode))
        if not failed:
            log.info('All workers stopped')
        return status


def serve_worker(config, ssl_context, index, sockets, *, count, board,
                 shared=None):
    """Run one worker's server on `sockets` until SIGTERM, sharing
    connections out with the others on `board`; its exit status."""
    if index != 0 and config.prune_interval:
        config = dataclasses.replace(config, prune_interval=None)
    return asyncio.run(_serve(config, ssl_context, index, sockets,
                              count=count, shared=shared or Shared(),
                              board=board))


async def _serve(config, ssl_context, index, sockets, *, count, shared,
                 board):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        return await _run_site(config, ssl_context, index, sockets,
                               count=count, shared=shared, board=board,
                               stop=stop)
    finally:
        # Before asyncio.run closes the loop: closing it shuts the pipe
        # its handler writes the signal to first, and a SIGTERM between
        # the two (the supervisor stopping the others as one fails)
        # would raise EBADF in the handler.  From now on SIGTERM ends
        # the process outright.
        loop.remove_signal_handler(signal.SIGTERM)


async def _run_site(config, ssl_context, index, sockets, *, count, shared,
                    board, stop):
    from aiohttp import web

    from zuul_registry.app import make_app
    from zuul_registry.balance_site import BalancedSite
    from zuul_registry.drivers.base import DriverError

    loop = asyncio.get_running_loop()
    runner = web.AppRunner(make_app(config, fill_directory=shared.fills,
                                    metrics_directory=shared.metrics),
                           handle_signals=False,
                           shutdown_timeout=SHUTDOWN_TIMEOUT,
                           access_log=logging.getLogger('aiohttp.access'))
    try:
        try:
            await runner.setup()
            load = balance.Load(board, index)
            load.watch(runner.server)
            for sock in sockets:
                await BalancedSite(runner, sock, load,
                                   ssl_context=ssl_context).start()
        except DriverError as e:
            sys.stderr.write('cannot use the storage: %s\n' % e)
            return STARTUP_FAILED
        except Exception:
            log.exception('Worker %d (pid %d) could not start', index,
                          os.getpid())
            return STARTUP_FAILED
        log.info('Worker %d of %d (pid %d) serving%s', index, count,
                 os.getpid(), ' and pruning' if config.prune_interval else '')
        await stop.wait()
        log.info('Worker %d (pid %d) stopping', index, os.getpid())
        transports = [handler.transport
                      for handler in runner.server._connections
                      if handler.transport is not None]
    finally:
        await runner.cleanup()
    await _flushed(transports, deadline=loop.time() + STOP_GRACE / 2)
    return 0


def _unsent(transport):
    size = transport.get_write_buffer_size()
    # A TLS transport's buffer does not count the encrypted bytes that
    # wait in the socket transport under it.
    inner = getattr(getattr(transport, '_ssl_protocol', None),
                    '_transport', None)
    if inner is not None:
        size += inner.get_write_buffer_size()
    return size


async def _flushed(transports, *, deadline):
    """Wait until responses written to closed connections have left.

    A handler that returned may leave its last bytes in the transport's
    buffer; ending the event loop then would cut the response short.
    """
    loop = asyncio.get_running_loop()
    while loop.time() < deadline and any(map(_unsent, transports)):
        await asyncio.sleep(0.05)


def run(config, ssl_context, count):
    """Serve with `count` worker processes; the exit status."""
    from zuul_registry.cli import listen_hosts

    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    try:
        sockets = bind_sockets(listen_hosts(config.address), config.port)
    except OSError as e:
        sys.stderr.write('cannot listen on %s port %d: %s\n'
                         % (config.address, config.port, e.strerror or e))
        return 1
    log.info('Supervisor (pid %d) starting %d workers', os.getpid(), count)
    shared = Shared.make(config)
    board = balance.Board(count)

    def serve(index, sockets):
        return serve_worker(config, ssl_context, index, sockets,
                            count=count, shared=shared, board=board)

    try:
        return Supervisor([sockets] * count, serve, on_death=shared.forget,
                          board=board).run()
    finally:
        shared.remove()


@dataclasses.dataclass(frozen=True)
class Shared:
    """The private directories the workers of one server share: blob
    fills (with upstreams), and metrics (with metrics-port)."""

    fills: str = None
    metrics: str = None

    @classmethod
    def make(cls, config):
        def directory(purpose, needed):
            return tempfile.mkdtemp(prefix='zuul-registry-%s-' % purpose) \
                if needed else None
        return cls(fills=directory('fills', config.upstreams),
                   metrics=directory('metrics', config.metrics_port))

    def forget(self, pid):
        """A worker died."""
        if self.metrics is not None:
            from zuul_registry.api.metrics import forget_process
            forget_process(self.metrics, pid)

    def remove(self):
        for path in (self.fills, self.metrics):
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
