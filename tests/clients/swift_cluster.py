"""Several zuul-registry processes on one Swift container (or any shared
storage, such as an S3 bucket), behind haproxy.

Everything listens on 127.0.0.1.  The processes share the config: the same
container on the shared test Swift (tests/drivers/swift_server), or the
`storage` given, the same secret and users, so that any of them may take
any request.
"""

import os
import socket
import subprocess
import time

from tests.clients.tools import require_tools
from tests.drivers import swift_server
from tests.server_process import ServerProcess, free_port

SECRET = 'swift-cluster-secret-' + 'x' * 20
USER, PASSWORD = 'zuul', 'cluster-password'

_HAPROXY = """\
global
    maxconn 256
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    # Close each server connection after its response, so that every
    # request is balanced on its own.
    option http-server-close
    retries 3
    option redispatch
frontend registry
    bind 127.0.0.1:{port}
    default_backend servers
backend servers
    balance {balance}
{servers}
"""


class Balancer:
    """haproxy in front of `ports`: round robin, or `first` (every request
    to the first server that is up)."""

    def __init__(self, directory, ports, *, balance='roundrobin'):
        require_tools('haproxy')
        self.directory = str(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.ports = list(ports)
        self.balance = balance
        self.port = free_port()
        self.process = None

    @property
    def host_port(self):
        return '127.0.0.1:%d' % self.port

    @property
    def url(self):
        return 'http://' + self.host_port

    def start(self):
        config = os.path.join(self.directory, 'haproxy.cfg')
        servers = '\n'.join(
            '    server s%d 127.0.0.1:%d check inter 300ms fall 1 rise 1%s'
            % (n, port, ' maxconn 8' if self.balance == 'first' else '')
            for n, port in enumerate(self.ports))
        with open(config, 'w') as f:
            f.write(_HAPROXY.format(port=self.port, balance=self.balance,
                                    servers=servers))
        log = open(os.path.join(self.directory, 'haproxy.log'), 'ab')
        with log:
            self.process = subprocess.Popen(
                ['haproxy', '-db', '-f', config], stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=swift_server.die_with_parent)
        deadline = time.monotonic() + 10
        while True:
            if self.process.poll() is not None:
                raise RuntimeError('haproxy exited: %s' % self.log())
            try:
                socket.create_connection(('127.0.0.1', self.port),
                                         timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log(self):
        with open(os.path.join(self.directory, 'haproxy.log'),
                  errors='replace') as f:
            return f.read()


def shared_config(storage):
    """The registry section every process of a cluster on `storage` has."""
    return {
        'secret': SECRET,
        'users': [{'name': USER, 'pass': PASSWORD, 'access': 'write'}],
        'storage': storage,
    }


def registry_config(container, *, swift=None):
    swift = swift or swift_server.shared()
    return shared_config({'driver': 'swift', 'container': container,
                          'auth-url': swift.auth_url,
                          'user': swift_server.USER,
                          'key': swift_server.KEY})


def start_servers(directory, count, *, swift=None, storage=None):
    """`count` registry processes on one new container, or on the
    `storage` section given."""
    if storage is not None:
        config = shared_config(storage)
    else:
        config = registry_config(swift_server.new_container(), swift=swift)
    servers = []
    try:
        for n in range(count):
            servers.append(ServerProcess(
                os.path.join(str(directory), 'registry%d' % n),
                registry=config).start())
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers
