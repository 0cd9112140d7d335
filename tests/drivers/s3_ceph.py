"""A one-node Ceph with a RADOS Gateway on loopback, for the tests.

Debian's ceph-mon, ceph-osd and radosgw (16.2, Pacific): one monitor, one
OSD on the in-memory memstore, one radosgw, no ceph-mgr, cephx off.  Every
file is under the root (configuration, monitor store, logs, admin
sockets, crash dumps) and every command gets ``-c ROOT/ceph.conf``.

What it takes, and why:
- with auth none, radosgw only reaches the monitor in crc mode
  (ms_mon_client_mode);
- paxos_propose_interval 0.1 makes pool creation, and so the start,
  several times quicker;
- the monitor refuses to run on a fullish disk unless mon_data_avail_*
  are lowered;
- one replica needs mon_allow_pool_size_one; 8 placement groups per pool
  and no autoscaler keep the OSD light;
- the S3 user is made with radosgw-admin before radosgw starts, which
  also creates the realm's pools;
- stop radosgw, then the OSD, then the monitor (an OSD without a monitor
  waits, and the reverse order is instant).
The OSD's data lives in its memory: stopping radosgw alone keeps it.
"""

import os
import uuid

from tests.drivers.s3_base import S3Server, free_ports

_CONF = """\
[global]
fsid = {fsid}
mon_host = v2:127.0.0.1:{mon_port}
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc
keyring = {root}/keyring
run_dir = {root}/run
admin_socket = {root}/run/$name.$pid.asok
log_file = {root}/log/$name.log
crash_dir = {root}/crash
log_to_stderr = false
err_to_stderr = true
mon_cluster_log_file = {root}/log/cluster.log
mon_data_avail_warn = 2
mon_data_avail_crit = 1
paxos_propose_interval = 0.1
mon_allow_pool_size_one = true
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0

[mon]
mon_data = {root}/mon

[osd]
osd_data = {root}/osd
osd_objectstore = memstore
memstore_device_bytes = {memstore_bytes}

[client.rgw]
rgw_data = {root}/rgw
rgw_frontends = beast endpoint=127.0.0.1:{s3_port} tcp_nodelay=1
"""

MEMSTORE_BYTES = 4 << 30


class CephRGW(S3Server):
    """Ceph (monitor, memstore OSD, radosgw) under `root`."""

    kind = 'ceph'
    s3_process = 'radosgw'

    def __init__(self, root=None):
        super().__init__(root)
        self.mon_port, self.s3_port = free_ports(2)
        self.conf = self.path('ceph.conf')

    def _start(self):
        fsid, osd_uuid = str(uuid.uuid4()), str(uuid.uuid4())
        for directory in ('mon', 'osd', 'rgw', 'run', 'log', 'crash'):
            os.makedirs(self.path(directory), exist_ok=True)
        with open(self.conf, 'w') as f:
            f.write(_CONF.format(
                fsid=fsid, root=self.root, mon_port=self.mon_port,
                s3_port=self.s3_port, memstore_bytes=MEMSTORE_BYTES))
        self.run(['monmaptool', '--create', '--fsid', fsid, '--addv', 'a',
                  '[v2:127.0.0.1:%d]' % self.mon_port, self.path('monmap')])
        self.run(['ceph-mon', '-c', self.conf, '--mkfs', '-i', 'a',
                  '--monmap', self.path('monmap')])
        self.spawn('mon', ['ceph-mon', '-c', self.conf, '-i', 'a', '-f'])
        self.run(['ceph', '-c', self.conf, 'osd', 'new', osd_uuid])
        self.run(['ceph-osd', '-c', self.conf, '-i', '0', '--mkfs',
                  '--osd-uuid', osd_uuid])
        self.spawn('osd', ['ceph-osd', '-c', self.conf, '-i', '0', '-f'])
        self.run(['radosgw-admin', '-c', self.conf, 'user', 'create',
                  '--uid', 'zuul-registry', '--display-name', 'tests',
                  '--access-key', self.access_key,
                  '--secret-key', self.secret_key])
        self.start_s3()

    def start_s3(self):
        self.spawn('radosgw', ['radosgw', '-c', self.conf, '-n', 'client.rgw',
                               '-f'])
        self.wait_for_s3()

    def stop_s3(self):
        self._stop_process('radosgw')

    def log_file(self, name):
        return self.path('log', {'mon': 'mon.a', 'osd': 'osd.0',
                                 'radosgw': 'client.rgw'}[name] + '.log')
