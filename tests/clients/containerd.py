"""A private containerd daemon for client tests, and its ``ctr``.

:class:`Containerd` starts ``containerd`` from the Debian package with
everything under one temporary directory: its config, root (content store,
snapshots, metadata), state, and the gRPC/ttrpc sockets (under a short
directory of its own: a unix socket path must stay under 108 bytes).
Nothing is read from or written to /etc, /var/lib or /run/containerd.

The CRI plugin is disabled: it is what kubelet and crictl talk to, and it
would want CNI and cgroups set up. ``ctr`` does not need it, because ``ctr
images pull/push`` resolve registries and fetch tokens in the ``ctr``
process itself, from the ``hosts.toml`` files under ``--hosts-dir``; the
daemon only stores content and unpacks it. Snapshots use the ``native``
snapshotter (plain directory copies), which needs no overlay mounts.

:func:`write_hosts_toml` writes the ``certs.d/HOST:PORT/hosts.toml`` that
trusts a CA for one registry: the same file a CI node puts under
``/etc/containerd/certs.d`` (containerd's ``config_path``).
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

NAMESPACE = 'zuul-registry-tests'
SNAPSHOTTER = 'native'
_DISABLED_PLUGINS = [
    'io.containerd.grpc.v1.cri',
    'io.containerd.internal.v1.opt',      # would create /opt/containerd
    'io.containerd.internal.v1.tracing',
    'io.containerd.tracing.processor.v1.otlp',
    'io.containerd.snapshotter.v1.aufs',
    'io.containerd.snapshotter.v1.btrfs',
    'io.containerd.snapshotter.v1.devmapper',
    'io.containerd.snapshotter.v1.zfs',
]


class CtrFailed(AssertionError):
    pass


def _toml(value):
    # A JSON string (or list of strings) is valid TOML for these values.
    return json.dumps(value)


def write_hosts_toml(hosts_dir, host_port, *, ca):
    """Trust ``ca`` for ``https://host_port``; returns ``hosts_dir``."""
    directory = os.path.join(hosts_dir, host_port)
    os.makedirs(directory, exist_ok=True)
    url = 'https://%s' % host_port
    with open(os.path.join(directory, 'hosts.toml'), 'w') as f:
        f.write('server = %s\n\n[host.%s]\n  capabilities = %s\n'
                '  ca = %s\n' % (_toml(url), _toml(url),
                                 _toml(['pull', 'resolve', 'push']),
                                 _toml(str(ca))))
    return hosts_dir


class Containerd:

    def __init__(self, base):
        self.base = os.path.abspath(base)
        os.makedirs(self.base, exist_ok=True)
        self.run_dir = tempfile.mkdtemp(prefix='zr-ctr-')
        self.address = os.path.join(self.run_dir, 'containerd.sock')
        self.config_path = os.path.join(self.base, 'config.toml')
        self.log_path = os.path.join(self.base, 'containerd.log')
        self.process = None

    def config(self):
        return '\n'.join([
            'version = 2',
            'root = %s' % _toml(os.path.join(self.base, 'root')),
            'state = %s' % _toml(os.path.join(self.run_dir, 'state')),
            'disabled_plugins = %s' % _toml(_DISABLED_PLUGINS),
            '',
            '[grpc]',
            '  address = %s' % _toml(self.address),
            '[ttrpc]',
            '  address = %s' % _toml(self.address + '.ttrpc'),
            '[debug]',
            '  address = ""',
            '  level = "debug"',
            '[metrics]',
            '  address = ""',
            '',
        ])

    def start(self, *, timeout=30):
        with open(self.config_path, 'w') as f:
            f.write(self.config())
        with open(self.log_path, 'ab') as log:
            self.process = subprocess.Popen(
                ['containerd', '--config', self.config_path],
                stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise CtrFailed('containerd exited %s; log:\n%s'
                                % (self.process.returncode, self.log_text()))
            if os.path.exists(self.address) and self.ctr(
                    'version', check=False, timeout=10).returncode == 0:
                return self
            if time.monotonic() > deadline:
                raise CtrFailed('containerd not ready after %ss; log:\n%s'
                                % (timeout, self.log_text()))
            time.sleep(0.05)

    def ctr(self, *args, check=True, timeout=120):
        cmd = ['ctr', '--address', self.address, '--namespace', NAMESPACE]
        cmd += [str(arg) for arg in args]
        result = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True,
                                timeout=timeout, cwd=self.base)
        if check and result.returncode != 0:
            raise CtrFailed('%s exited %d\nstdout:\n%s\nstderr:\n%s' % (
                ' '.join(cmd), result.returncode, result.stdout,
                result.stderr))
        return result

    def image_digests(self):
        """{name: target digest} of the images in our namespace."""
        lines = self.ctr('images', 'ls').stdout.splitlines()[1:]
        return {fields[0]: fields[2]
                for fields in (line.split() for line in lines) if fields}

    def log_text(self):
        try:
            with open(self.log_path, errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def stop(self, *, timeout=15):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
