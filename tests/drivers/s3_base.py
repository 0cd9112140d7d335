"""What the real S3 servers of the tests share: a temporary root, free
loopback ports, child processes that die with the test run, and a
readiness check that is an S3 request signed with the server's keys.

The servers themselves are in s3_ceph.py and s3_seaweedfs.py; the session
sharing in s3_server.py.
"""

import os
import shutil
import signal
import socket
import subprocess
import time

from tests.drivers import server_roots
from tests.drivers.swift_server import die_with_parent

START_TIMEOUT = 60


def free_ports(count):
    """`count` distinct free loopback ports (held open together, so that
    none is handed out twice)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(('127.0.0.1', 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def memory_parent():
    """Where temporary roots go: /dev/shm when it is writable (no disk
    syncs for the monitor's database or SeaweedFS's volumes), else the
    default temporary directory."""
    if os.access('/dev/shm', os.W_OK | os.X_OK):
        return '/dev/shm'
    return None


class S3Server:
    """One S3 server under a temporary root; start() it, stop() it, and
    stop_s3()/start_s3() its S3 front alone, keeping the data."""

    kind = None
    access_key = 'zuul-registry-test'
    secret_key = 'zuul-registry-test-secret'
    region = 'us-east-1'

    def __init__(self, root=None):
        self._own_root = root is None
        self.root = root or server_roots.make(self.kind, memory_parent())
        self.s3_port = None
        self.processes = {}     # name -> Popen, in start order
        self.ca = None          # the CA to trust, for a server over TLS

    @property
    def endpoint(self):
        return '%s://127.0.0.1:%d' % ('https' if self.ca else 'http',
                                      self.s3_port)

    @property
    def pid(self):
        """The S3 front's process id."""
        process = self.processes.get(self.s3_process)
        return process.pid if process else None

    def client(self, **config):
        """A boto3 S3 client for this server (path-style addressing)."""
        import boto3
        from botocore.config import Config
        options = dict(s3={'addressing_style': 'path'},
                       retries={'max_attempts': 1})
        options.update(config)
        return boto3.client(
            's3', endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, verify=self.ca,
            config=Config(**options))

    def start(self):
        """Start the server and wait until it answers S3 requests; on
        failure stop what did start."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def stop(self):
        """Stop everything, in the reverse order of start, and remove the
        root if we made it."""
        for name in reversed(list(self.processes)):
            self._stop_process(name)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- for the subclasses ---------------------------------------------

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def spawn(self, name, argv, **kwargs):
        """Start a long-running child; its output goes to NAME.out."""
        with open(self.path(name + '.out'), 'ab') as out:
            self.processes[name] = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=self.root,
                start_new_session=True, preexec_fn=die_with_parent,
                **kwargs)

    def run(self, argv, *, timeout=START_TIMEOUT):
        """Run a setup command to completion; fail with its output."""
        result = subprocess.run(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=self.root, timeout=timeout,
            preexec_fn=die_with_parent)
        if result.returncode:
            raise RuntimeError('%s failed (%d):\n%s' % (
                ' '.join(argv), result.returncode,
                result.stdout.decode(errors='replace')[-3000:]))
        return result.stdout.decode()

    def _stop_process(self, name, sig=signal.SIGKILL):
        process = self.processes.pop(name, None)
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_tail(self, name, size=3000):
        """The end of a child's output and of its log file, if any."""
        text = ''
        for path in (self.path(name + '.out'), self.log_file(name)):
            if path and os.path.exists(path):
                with open(path, errors='replace') as f:
                    text += '--- %s\n%s\n' % (path, f.read()[-size:])
        return text

    def log_file(self, name):
        return None

    def wait_for_s3(self, timeout=START_TIMEOUT):
        """Poll until ListBuckets, signed with our keys, succeeds."""
        import botocore.exceptions
        client = self.client(connect_timeout=1, read_timeout=5)
        deadline = time.monotonic() + timeout
        while True:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError('%s exited with %s:\n%s' % (
                        name, process.returncode, self.log_tail(name)))
            try:
                client.list_buckets()
                return
            except (botocore.exceptions.BotoCoreError,
                    botocore.exceptions.ClientError) as error:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        '%s S3 at %s not ready after %ds: %s\n%s' % (
                            self.kind, self.endpoint, timeout, error,
                            self.log_tail(self.s3_process))) from error
            time.sleep(0.05)
