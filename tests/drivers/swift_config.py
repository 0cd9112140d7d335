"""The configuration of the test Swift (see swift_server): swift.conf,
one file per server, and one-replica rings of one device.

    python -m tests.drivers.swift_config DIR ACCOUNT_PORT CONTAINER_PORT \
        OBJECT_PORT      # builds the rings (imports swift: a process apart)
"""

import os
import sys

SERVERS = ('account', 'container', 'object', 'proxy')

_SWIFT_CONF = """\
[swift-hash]
swift_hash_path_suffix = zuul-registry-tests
[storage-policy:0]
name = Policy-0
default = yes
"""

_COMMON = """\
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
workers = 0
user = {user}
swift_dir = {root}
devices = {devices}
mount_check = false
log_level = WARNING
eventlet_debug = false
"""

_BACKEND = """\
[pipeline:main]
pipeline = {kind}-server
[app:{kind}-server]
use = egg:swift#{egg}
"""

_PROXY = """\
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck cache listing_formats bulk
    tempauth copy slo dlo proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
error_suppression_interval = 1
conn_timeout = 1
node_timeout = 10
recheck_account_existence = 1
recheck_container_existence = 1
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
[filter:cache]
paste.filter_factory = tests.drivers.swift_cache:filter_factory
[filter:slo]
use = egg:swift#slo
max_manifest_segments = {max_segments}
rate_limit_after_segment = 100000
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:copy]
use = egg:swift#copy
[filter:dlo]
use = egg:swift#dlo
"""


def write(root, *, devices, ports, user, max_segments):
    values = {'root': root, 'user': user, 'devices': devices,
              'max_segments': max_segments}
    _write(root, 'swift.conf', _SWIFT_CONF.format(**values))
    for kind in SERVERS:
        text = _COMMON.format(port=ports[kind], **values)
        if kind == 'proxy':
            text += _PROXY.format(**values)
        else:
            text += _BACKEND.format(kind=kind, egg=kind)
        _write(root, kind + '.conf', text)


def _write(root, name, text):
    with open(os.path.join(root, name), 'w') as f:
        f.write(text)


def build_rings(root, ports):
    from swift.common.ring import RingBuilder
    for kind, port in zip(SERVERS, ports):
        builder = RingBuilder(6, 1, 1)
        builder.add_dev({'id': 0, 'region': 1, 'zone': 1,
                         'ip': '127.0.0.1', 'port': int(port),
                         'device': 'sda1', 'weight': 1})
        builder.rebalance()
        builder.get_ring().save(os.path.join(root, kind + '.ring.gz'))


if __name__ == '__main__':
    build_rings(sys.argv[1], sys.argv[2:])
