"""Start, probe, measure and stop one registry under test.

Each registry runs as a child process listening on a free port on
127.0.0.1, with its config, log and storage in its own directory. The
process started is the server itself (no shell in between), so its
``/proc/<pid>`` tells its memory and CPU time.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import yaml

from bench.connections import Connection
from bench.wire import Endpoint, ProtocolError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = '127.0.0.1'
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')
ERROR_MARKS = ('Traceback', ' ERROR ', 'level=error', 'level=fatal',
               'panic:')


class StartError(Exception):
    """A registry did not come up."""


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Registry:
    """One registry under test; subclasses say how to configure and run it.

    ``key`` names it in options and JSON, ``title`` in the table.
    """

    key = title = None

    def __init__(self, directory, *, tls=None, start_timeout=30.0):
        self.directory = os.path.abspath(directory)
        self.storage = os.path.join(self.directory, 'storage')
        self.config_path = os.path.join(self.directory, 'config.yaml')
        self.log_path = os.path.join(self.directory, 'server.log')
        self.tls = tls
        self.start_timeout = start_timeout
        self.port = None
        self.process = None
        self._endpoint = None
        self.peaks = {}             # pid -> largest VmHWM seen, KiB

    # -- what subclasses provide ------------------------------------------

    def config(self):
        raise NotImplementedError

    def command(self):
        raise NotImplementedError

    def environment(self):
        return dict(os.environ)

    # -- life cycle --------------------------------------------------------

    @property
    def endpoint(self):
        """Where to reach it, with the client TLS context if any."""
        if self._endpoint is None or self._endpoint.port != self.port:
            context = self.tls.client_context() if self.tls else None
            self._endpoint = Endpoint(HOST, self.port, context)
        return self._endpoint

    @property
    def pid(self):
        return self.process.pid

    def start(self):
        os.makedirs(self.storage, exist_ok=True)
        self.port = free_port()
        with open(self.config_path, 'w') as f:
            yaml.safe_dump(self.config(), f, default_flow_style=False)
        with open(self.log_path, 'ab') as log:
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=self.environment(),
                cwd=self.directory, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + self.start_timeout
        last = 'no answer'
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StartError('%s exited with status %s before answering '
                                 'GET /v2/; %s' % (self.title,
                                                   self.process.returncode,
                                                   self.log_tail()))
            try:
                with Connection(self.endpoint, timeout=2.0) as conn:
                    response = conn.request('GET', '/v2/')
                if response.status == 200:
                    return
                last = response.describe()
            except (OSError, ProtocolError) as error:
                last = str(error)
            time.sleep(0.1)
        raise StartError('%s did not answer 200 to GET /v2/ on %s within '
                         '%.0f s (last: %s); %s' % (
                             self.title, self.endpoint.url,
                             self.start_timeout, last, self.log_tail()))

    def stop(self, *, timeout=15.0):
        """SIGTERM; SIGKILL if it has not exited within ``timeout``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def check_alive(self):
        if self.process.poll() is not None:
            raise StartError('%s exited with status %s during the benchmark; '
                             '%s' % (self.title, self.process.returncode,
                                     self.log_tail()))

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def log_tail(self, lines=30, *, since=0):
        """The log from ``since`` on: from its first error if it has one
        (a traceback, an ERROR line, a panic), else its last lines."""
        try:
            with open(self.log_path, 'rb') as f:
                f.seek(since)
                text = f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return 'no log'
        found = text.splitlines()
        if not found:
            return 'nothing new in its log (%s)' % self.log_path
        first = next((i for i, line in enumerate(found) if any(
            mark in line for mark in ERROR_MARKS)), None)
        if first is None:
            shown, where = found[-lines:], 'last lines'
        else:
            shown, where = found[first:first + lines], 'first error'
        return '%s of %s:\n    %s' % (where, self.log_path,
                                      '\n    '.join(shown))

    # -- measurements --------------------------------------------------------

    def memory_kib(self):
        """``{'VmHWM': kib, 'VmRSS': kib}`` of the server process now."""
        return read_status(self.pid)

    def cpu_seconds(self):
        """User plus system CPU time of the server process (all threads),
        of its live children (workers) and of those it has reaped."""
        fields = _stat_fields(self.pid)
        # fields[0] is the state, field 3; utime and stime are fields 14,
        # 15; cutime and cstime (children waited for) 16, 17
        total = sum(int(v) for v in fields[11:15])
        for child in children(self.pid):
            try:
                total += sum(int(v) for v in _stat_fields(child)[11:13])
            except (OSError, IndexError):
                pass            # exited meanwhile: counted in cutime
        return total / CLOCK_TICKS

    def pids(self):
        """The server process and its children (with ``workers``: the
        supervisor, then each worker)."""
        return [self.pid] + children(self.pid)

    def process_peaks(self):
        """``{pid: VmHWM KiB}`` of the server's processes now."""
        found = {}
        for pid in self.pids():
            try:
                found[pid] = read_status(pid).get('VmHWM', 0)
            except OSError:
                pass
        return found

    def checkpoint_memory(self):
        """Fold the processes' VmHWM into ``peaks`` (the largest seen per
        process, over resets); return what was read."""
        now = self.process_peaks()
        for pid, kib in now.items():
            self.peaks[pid] = max(self.peaks.get(pid, 0), kib)
        return now

    def reset_peaks(self):
        """Checkpoint, then reset every process's VmHWM to its current RSS
        (``5`` to ``/proc/PID/clear_refs``), so that the VmHWM read after
        a scenario is that scenario's peak. False if the kernel refused."""
        self.checkpoint_memory()
        done = True
        for pid in self.pids():
            try:
                with open('/proc/%d/clear_refs' % pid, 'w') as f:
                    f.write('5')
            except OSError:
                done = False
        return done

    def memory_roles(self):
        """The largest VmHWM seen per process, split by role:
        ``{'main': kib, 'workers': [kib, ...]}`` (no workers: a single
        process, or the reference)."""
        self.checkpoint_memory()
        main = self.peaks.get(self.pid, 0)
        workers = [kib for pid, kib in self.peaks.items() if pid != self.pid]
        return {'main': main, 'workers': sorted(workers, reverse=True)}


def _stat_fields(pid):
    with open('/proc/%d/stat' % pid) as f:
        return f.read().rpartition(')')[2].split()


def read_status(pid):
    """``{'VmHWM': kib, 'VmRSS': kib}`` of process ``pid``."""
    found = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            name, _, value = line.partition(':')
            if name in ('VmHWM', 'VmRSS'):
                found[name] = int(value.split()[0])
    return found


def children(pid):
    """Live child processes of ``pid`` (a scan of /proc; no
    /proc/PID/task/TID/children on every kernel)."""
    found = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            fields = _stat_fields(int(name))
        except (OSError, IndexError):
            continue
        if len(fields) > 1 and fields[1] == str(pid) and fields[0] != 'Z':
            found.append(int(name))
    return sorted(found)


def cpu_count():
    """The CPUs this process may run on, as ``workers: auto`` counts."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worker_label(workers):
    """``1``, ``4``, ``auto(2)``: how a row names a worker count."""
    if workers == 'auto':
        return 'auto(%d)' % cpu_count()
    return str(workers)


class Ours(Registry):
    """zuul-registry from this checkout: ``python -m zuul_registry``.

    With ``workers`` (a count or ``'auto'``) its config sets ``workers``,
    and key and title name it (``ours-w1``, ``zuul-registry w=1``);
    without, the config leaves the key out (one process)."""

    key = 'ours'
    title = 'zuul-registry'

    def __init__(self, directory, *, workers=None, **kw):
        super().__init__(directory, **kw)
        self.workers = workers
        if workers is not None:
            self.key = 'ours-w%s' % workers
            self.title = 'zuul-registry w=%s' % worker_label(workers)

    def config(self):
        registry = {
            'address': HOST,
            'port': self.port,
            'storage': {'driver': 'filesystem', 'root': self.storage},
        }
        if self.workers is not None:
            registry['workers'] = self.workers
        if self.tls:
            registry['tls-cert'] = self.tls.cert
            registry['tls-key'] = self.tls.key
        return {'registry': registry}

    def command(self):
        return [sys.executable, '-m', 'zuul_registry',
                '-c', self.config_path, 'serve']

    def environment(self):
        env = dict(os.environ)
        env['PYTHONPATH'] = os.pathsep.join(
            [REPO_ROOT] + [p for p in [env.get('PYTHONPATH')] if p])
        return env


class Reference(Registry):
    """CNCF Distribution 2.8 (Debian's ``docker-registry``).

    Quiet logging (errors only, no access log), as a benchmark wants.
    """

    key = 'reference'
    title = 'docker-registry'

    def __init__(self, directory, *, binary='docker-registry', **kw):
        super().__init__(directory, **kw)
        self.binary = binary

    def config(self):
        http = {'addr': '%s:%d' % (HOST, self.port)}
        if self.tls:
            http['tls'] = {'certificate': self.tls.cert, 'key': self.tls.key}
        return {
            'version': 0.1,
            'log': {'level': 'error', 'accesslog': {'disabled': True}},
            'storage': {'filesystem': {'rootdirectory': self.storage},
                        'delete': {'enabled': True}},
            'http': http,
        }

    def command(self):
        return [self.binary, 'serve', self.config_path]

    def environment(self):
        # REGISTRY_* variables would override the config file.
        return {k: v for k, v in os.environ.items()
                if not k.startswith('REGISTRY_')}


REGISTRIES = {cls.key: cls for cls in (Ours, Reference)}
