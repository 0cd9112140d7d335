"""Real S3 servers on loopback for the tests: Ceph's RADOS Gateway and
SeaweedFS, each started once per test process on first use and stopped
at exit.

    server('ceph') / server('seaweedfs')   the shared, running server
    new_bucket(kind)                       a fresh bucket name (not created)
    CephRGW(), SeaweedFS()                 a private server, for tests that
                                           stop and start it

Every server has `endpoint`, `access_key`, `secret_key`, `region`,
`client()` (boto3), `stop_s3()`/`start_s3()` (the S3 front alone goes
away and comes back with the data kept) and `pid` (the S3 front's).
How each is built: s3_ceph.py, s3_seaweedfs.py.

    python -m tests.drivers.s3_server ceph|seaweedfs [DIR]   # until Ctrl-C
"""

import atexit
import signal
import sys
import time
import uuid

from tests.drivers.s3_ceph import CephRGW
from tests.drivers.s3_seaweedfs import SeaweedFS

KINDS = {'ceph': CephRGW, 'seaweedfs': SeaweedFS}

_shared = {}


def server(kind):
    """The `kind` S3 server of this test process, started on first use.
    A server that failed to start is not tried again: every later test
    gets the same error at once."""
    if kind not in _shared:
        instance = KINDS[kind]()
        atexit.register(instance.stop)
        try:
            _shared[kind] = instance.start()
        except Exception as error:
            _shared[kind] = error
    if isinstance(_shared[kind], Exception):
        raise RuntimeError('the %s S3 server did not start' % kind) \
            from _shared[kind]
    return _shared[kind]


def new_bucket(kind=None):
    """A bucket name no test used before.  The bucket is not created (the
    driver creates a missing bucket when it opens).  Valid on both servers
    and on AWS: lower case, digits and dashes, 3 to 63 characters."""
    return 'zr-test-' + uuid.uuid4().hex[:16]


def _main(argv):
    if not argv or argv[0] not in KINDS:
        sys.exit('usage: python -m tests.drivers.s3_server %s [DIR]'
                 % '|'.join(KINDS))
    started = time.monotonic()
    instance = KINDS[argv[0]](argv[1] if len(argv) > 1 else None).start()
    print('%s up in %.2fs: %s (access key %s, secret key %s, region %s) '
          'under %s' % (instance.kind, time.monotonic() - started,
                        instance.endpoint, instance.access_key,
                        instance.secret_key, instance.region, instance.root))
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while all(p.poll() is None for p in instance.processes.values()):
            time.sleep(1)
        print('a server process exited; see the logs under', instance.root)
    except KeyboardInterrupt:
        pass
    finally:
        started = time.monotonic()
        instance.stop()
        print('stopped in %.2fs' % (time.monotonic() - started))


if __name__ == '__main__':
    _main(sys.argv[1:])
