"""Run a registry server as a real child process for end-to-end tests.

:class:`ServerProcess` writes a zuul-registry config into a directory, starts
``python -m zuul_registry -d -c CONFIG serve`` on a free loopback port and
waits until ``GET /v2/`` answers 200 (or 401, the token challenge, when
users are configured). With ``tls-cert`` in the config it speaks HTTPS and
checks the server's certificate against ``tls_ca``. The port and the
storage root stay the same across :meth:`~ServerProcess.restart`, so a test
can kill the server and bring it back on the data it left behind.

:class:`DistributionProcess` runs the CNCF Distribution registry
(``docker-registry``) the same way. It is the reference implementation: the
client tests that need no namespaces can be pointed at it to check the tests
themselves.

Everything listens on 127.0.0.1 only.
"""

import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import time

import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class ServerError(Exception):
    pass


class ServerProcess:
    """A zuul-registry server in a child process.

    ``directory`` holds the config file, the log and (unless
    ``storage_root`` is given) the filesystem storage. ``registry`` entries
    are merged into the ``registry:`` section of the config as they are
    (for example ``users`` or ``tls-cert``). ``tls_ca`` is the CA file
    that signed ``tls-cert``; without it the certificate is not checked.
    """

    name = 'zuul-registry'

    def __init__(self, directory, *, namespaced=False, default_namespace=None,
                 storage_root=None, port=None, debug=True,
                 start_timeout=30.0, registry=None, tls_ca=None):
        self.directory = os.path.abspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.namespaced = namespaced
        self.default_namespace = default_namespace
        self.storage_root = storage_root or os.path.join(
            self.directory, 'storage')
        self.port = port or free_port()
        self.debug = debug
        self.start_timeout = start_timeout
        self.extra_registry = dict(registry or {})
        self.tls_ca = tls_ca
        self.config_path = os.path.join(self.directory, 'registry.yaml')
        self.log_path = os.path.join(self.directory, 'server.log')
        self.process = None

    # -- addresses ---------------------------------------------------------

    @property
    def host_port(self):
        """``127.0.0.1:PORT``, the registry part of an image reference."""
        return '127.0.0.1:%d' % self.port

    @property
    def tls(self):
        return bool(self.extra_registry.get('tls-cert'))

    @property
    def url(self):
        return '%s://%s' % ('https' if self.tls else 'http', self.host_port)

    # -- configuration and command -----------------------------------------

    def config(self):
        registry = {
            'address': '127.0.0.1',
            'port': self.port,
            'storage': {'driver': 'filesystem', 'root': self.storage_root},
        }
        if self.namespaced:
            registry['namespaced'] = True
        if self.default_namespace:
            registry['default-namespace'] = self.default_namespace
        registry.update(self.extra_registry)
        return {'registry': registry}

    def command(self):
        cmd = [sys.executable, '-m', 'zuul_registry']
        if self.debug:
            cmd.append('-d')
        return cmd + ['-c', self.config_path, 'serve']

    def environment(self):
        env = dict(os.environ)
        # Import this checkout's zuul_registry even when it isn't installed.
        env['PYTHONPATH'] = os.pathsep.join(
            [REPO_ROOT] + [p for p in [env.get('PYTHONPATH')] if p])
        env['PYTHONUNBUFFERED'] = '1'
        return env

    def write_config(self):
        with open(self.config_path, 'w') as f:
            yaml.safe_dump(self.config(), f, default_flow_style=False)

    # -- life cycle --------------------------------------------------------

    def start(self):
        if self.running:
            raise ServerError('%s already running' % self.name)
        os.makedirs(self.storage_root, exist_ok=True)
        self.write_config()
        log = open(self.log_path, 'ab')
        log.write(b'\n==== %s: %s\n' % (
            self.name.encode(), ' '.join(self.command()).encode()))
        log.flush()
        try:
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=self.environment(),
                cwd=self.directory, start_new_session=True)
        finally:
            log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + self.start_timeout
        last = 'no answer yet'
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError('%s exited with %s before it was ready; '
                                  'log:\n%s' % (self.name,
                                                self.process.returncode,
                                                self.log_text()))
            try:
                status = self.get_status('/v2/')
                if status == 200 or (
                        status == 401 and self.extra_registry.get('users')):
                    return
                last = 'GET /v2/ -> %d' % status
            except OSError as e:
                last = 'GET /v2/: %s' % e
            time.sleep(0.1)
        raise ServerError('%s not ready on %s after %.0fs (%s); log:\n%s' % (
            self.name, self.url, self.start_timeout, last, self.log_text()))

    def get_status(self, path, *, method='GET'):
        if self.tls:
            context = ssl.create_default_context(cafile=self.tls_ca)
            if not self.tls_ca:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection(
                '127.0.0.1', self.port, timeout=2, context=context)
        else:
            conn = http.client.HTTPConnection('127.0.0.1', self.port,
                                              timeout=2)
        try:
            conn.request(method, path)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def kill(self):
        """SIGKILL: no cleanup, no flushing, as a crash or an OOM kill."""
        self._signal(signal.SIGKILL, timeout=10)

    def stop(self, *, timeout=15):
        """SIGTERM and wait; SIGKILL if it does not exit within timeout."""
        if not self.running:
            return
        try:
            self._signal(signal.SIGTERM, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self):
        """Stop (if running) and start again on the same port and storage."""
        self.stop()
        return self.start()

    def _signal(self, signum, *, timeout):
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signum)
        self.process.wait(timeout=timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- logs --------------------------------------------------------------

    def log_offset(self):
        """Where the log ends now; pass it to log_text(since=...)."""
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def log_text(self, *, since=0):
        try:
            with open(self.log_path, 'rb') as f:
                f.seek(since)
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    def wait_for_log(self, predicate, *, since=0, timeout=5.0):
        """Wait until ``predicate(log_text)`` is true; return the log text.

        A server may write its access log line just after the response has
        gone out, so a client can be done before the line is there.
        """
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text(since=since)
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError('%s log never matched; log:\n%s'
                                     % (self.name, text))
            time.sleep(0.05)

    def wait_for_log_lines(self, since, *needles, timeout=5.0):
        """Wait until the log since ``since`` holds every needle."""
        return self.wait_for_log(
            lambda text: all(needle in text for needle in needles),
            since=since, timeout=timeout)


class DistributionProcess(ServerProcess):
    """The CNCF Distribution registry (Debian's ``docker-registry``).

    It has no namespaces; ``namespaced`` must stay false.
    """

    name = 'docker-registry'

    def __init__(self, directory, **kw):
        if kw.get('namespaced'):
            raise ValueError('docker-registry has no namespaces')
        super().__init__(directory, **kw)

    def config(self):
        return {
            'version': 0.1,
            'log': {'level': 'debug' if self.debug else 'info',
                    'accesslog': {'disabled': False}},
            'storage': {'filesystem': {'rootdirectory': self.storage_root},
                        'delete': {'enabled': True}},
            'http': {'addr': self.host_port},
        }

    def command(self):
        return ['docker-registry', 'serve', self.config_path]

    def environment(self):
        env = dict(os.environ)
        # Distribution takes REGISTRY_* variables as config overrides.
        for key in list(env):
            if key.startswith('REGISTRY_'):
                del env[key]
        return env
