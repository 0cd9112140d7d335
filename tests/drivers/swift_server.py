"""A real one-node OpenStack Swift on loopback, for the tests.

Four server processes (account, container, object, proxy) from the
`swift` package, each with ``workers = 0`` so that the process we start
is the server, run under a temporary directory: one device, one-replica
rings, tempauth with the user ``test:tester`` / ``testing``.  tempauth
needs a cache; instead of memcached the proxy gets swift_cache, a dict in
the proxy process.  The object server's device is in memory where tmpfs
takes user xattrs (Linux 6.6 and later), which spares the disk's fsyncs.

SLO manifests are limited to MAX_MANIFEST_SEGMENTS segments, so that
tests reach the nesting code with tens of segments, not thousands, and
small segments are not rate-limited (tests make many tiny ones).
(swift.conf's [swift-constraints], such as the listing limit, are read
from /etc/swift before swift_dir applies; the driver's own page size is
lowered instead.)

    python -m tests.drivers.swift_server [DIR]   # run one until Ctrl-C
"""

import atexit
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

from tests.drivers import server_roots, swift_config

USER, KEY, ACCOUNT = 'test:tester', 'testing', 'AUTH_test'
MAX_MANIFEST_SEGMENTS = 10
SERVERS = swift_config.SERVERS
_MODULES = {'account': 'swift.account.server',
            'container': 'swift.container.server',
            'object': 'swift.obj.server', 'proxy': 'swift.proxy.server'}
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
_START_TIMEOUT = 30


def die_with_parent():
    """In a child before exec: SIGKILL it when its parent dies, so that
    no server outlives a test run that was killed."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class SwiftServer:
    """Swift under `root`; start() it, stop() it, or stop one server."""

    def __init__(self, root, *, devices=None):
        self.root = root
        self.devices = devices or os.path.join(root, 'srv')
        self.ports = {kind: _free_port() for kind in SERVERS}
        self.processes = {}

    @property
    def auth_url(self):
        return 'http://127.0.0.1:%d/auth/v1.0' % self.ports['proxy']

    @property
    def storage_url(self):
        return 'http://127.0.0.1:%d/v1/%s' % (self.ports['proxy'], ACCOUNT)

    def start(self):
        self._write_config()
        for kind in ('account', 'container', 'object'):
            self.start_server(kind, wait=False)
        subprocess.run([sys.executable, '-m', 'tests.drivers.swift_config',
                        self.root] +
                       [str(self.ports[kind]) for kind in SERVERS[:3]],
                       check=True, cwd=_REPO, env=self._environ())
        self.start_server('proxy', wait=False)
        for kind in SERVERS:
            self._wait_listening(kind)
        self._wait_for_auth()
        return self

    def start_server(self, kind, *, wait=True):
        log = open(os.path.join(self.root, kind + '.log'), 'ab')
        with log:
            self.processes[kind] = subprocess.Popen(
                [sys.executable, '-m', _MODULES[kind],
                 os.path.join(self.root, kind + '.conf')],
                stdout=log, stderr=subprocess.STDOUT, cwd=_REPO,
                env=self._environ(), start_new_session=True,
                preexec_fn=die_with_parent)
        if wait:
            self._wait_listening(kind)

    def stop_server(self, kind):
        process = self.processes.pop(kind, None)
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self):
        for kind in SERVERS:
            self.stop_server(kind)

    def log(self, kind):
        with open(os.path.join(self.root, kind + '.log'), errors='replace') \
                as f:
            return f.read()

    # -- internals --------------------------------------------------------

    def _environ(self):
        env = dict(os.environ, EVENTLET_NO_GREENDNS='yes',
                   PYTHONPATH=_REPO)
        return env

    def _write_config(self):
        os.makedirs(os.path.join(self.devices, 'sda1'), exist_ok=True)
        swift_config.write(self.root, devices=self.devices,
                           ports=self.ports, user=_user(),
                           max_segments=MAX_MANIFEST_SEGMENTS)

    def _wait_listening(self, kind):
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            process = self.processes[kind]
            if process.poll() is not None:
                raise RuntimeError('swift %s server exited:\n%s'
                                   % (kind, self.log(kind)[-3000:]))
            try:
                socket.create_connection(
                    ('127.0.0.1', self.ports[kind]), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError('swift %s server did not start' % kind)

    def _wait_for_auth(self):
        """Until tempauth hands out a token (the proxy is fully up)."""
        request = urllib.request.Request(
            self.auth_url, headers={'X-Auth-User': USER, 'X-Auth-Key': KEY})
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.headers.get('X-Auth-Token'):
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)


def _memory_devices():
    """A directory in memory for the object server, if it takes user
    xattrs (tmpfs does from Linux 6.6): no fsync, so no disk waits."""
    try:
        devices = server_roots.make('swift', '/dev/shm')
    except OSError:
        return None
    try:
        os.setxattr(devices, 'user.zuul-registry', b'x' * 4096)
        return devices
    except OSError:
        shutil.rmtree(devices, ignore_errors=True)
        return None


def _user():
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name


@contextlib.contextmanager
def private(directory):
    """A Swift of its own under `directory`, for tests that stop servers."""
    devices = _memory_devices()
    server = SwiftServer(str(directory), devices=devices)
    try:
        yield server.start()
    finally:
        server.stop()
        if devices:
            shutil.rmtree(devices, ignore_errors=True)


_shared = None


def connection_options(server):
    return {'authurl': server.auth_url, 'user': USER, 'key': KEY,
            'auth_version': '1'}


def new_container():
    return 'test-' + uuid.uuid4().hex[:12]


def contract_driver(tmp_path, **kwargs):
    """The contract suite's Swift driver: a new container on the shared
    Swift, with segments, joins and listing pages so small that the tests
    reach segmented writes, nested manifests, joined and copied segments
    and listing markers."""
    from zuul_registry.drivers.swift import SwiftDriver
    from zuul_registry.drivers.swift_client import connection_factory
    server = shared()
    container = new_container()
    options = dict(retries=1, backoff=0.05, segment_size=5, page_size=3,
                   join_under=3, join_target=6)
    options.update(kwargs)
    driver = SwiftDriver(container, connection_factory(
        connection_options(server)), **options)
    return driver, lambda: leftover_segments(server, container)


def api_driver(container):
    """A driver as the server makes one, quicker to give up."""
    from zuul_registry.drivers.swift import SwiftDriver
    from zuul_registry.drivers.swift_client import connection_factory
    return SwiftDriver(container, connection_factory(
        connection_options(shared())), retries=1, backoff=0.05)


def leftover_segments(server, container):
    """Segment objects that no manifest in `container` refers to (and
    claims of sets none does)."""
    import swiftclient
    conn = swiftclient.Connection(retries=0, **connection_options(server))
    try:
        _, listing = conn.get_container(container, full_listing=True)
        used = set()
        for entry in listing:
            if 'slo_etag' in entry:
                used.update(_referenced(conn, container, entry['name']))
        # A claim stays with its set while a manifest needs the set.
        needed = {name.rsplit('/', 1)[0] for name in used}
        return sorted(entry['name'] for entry in listing
                      if entry['name'].startswith('.segments/') and
                      entry['name'] not in used and not (
                          entry['name'].endswith('/claim') and
                          entry['name'].rsplit('/', 1)[0] in needed))
    finally:
        conn.close()


def _referenced(conn, container, name):
    _, data = conn.get_object(container, name,
                              query_string='multipart-manifest=get')
    names = []
    for item in json.loads(data):
        names.append(item['name'].split('/', 2)[2])
        if item.get('sub_slo'):
            names += _referenced(conn, container, names[-1])
    return names


def shared():
    """One Swift for this test process, started on first use."""
    global _shared
    if _shared is None:
        root = server_roots.make('swift', '/var/tmp')
        devices = _memory_devices()
        server = SwiftServer(root, devices=devices)
        for directory in filter(None, (root, devices)):
            atexit.register(shutil.rmtree, directory, ignore_errors=True)
        atexit.register(server.stop)
        _shared = server.start()
    return _shared


def _main(argv):
    root = argv[0] if argv else tempfile.mkdtemp(prefix='zr-swift-')
    started = time.monotonic()
    server = SwiftServer(root).start()
    print('Swift up in %.2fs: %s (user %s, key %s) under %s'
          % (time.monotonic() - started, server.auth_url, USER, KEY, root))
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while all(p.poll() is None for p in server.processes.values()):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == '__main__':
    _main(sys.argv[1:])
