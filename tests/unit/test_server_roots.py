"""The test storage servers' temporary roots: those of a process that
died without cleaning up are removed by the next one to make a root."""

import os
import subprocess
import sys

from tests.drivers import server_roots


def dead_pid():
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()
    return child.pid


def test_roots_of_dead_processes_go_and_the_others_stay(tmp_path):
    dead = tmp_path / ('zr-ceph-%d-abc' % dead_pid())
    (dead / 'osd').mkdir(parents=True)
    (dead / 'osd' / 'data').write_bytes(b'x' * 1000)
    live = tmp_path / ('zr-swift-%d-def' % os.getppid())
    live.mkdir()
    unrelated = tmp_path / 'zr-ceph-notapid'
    unrelated.mkdir()
    root = server_roots.make('seaweedfs', str(tmp_path))
    assert os.path.basename(root).startswith(
        'zr-seaweedfs-%d-' % os.getpid())
    assert sorted(os.listdir(tmp_path)) == sorted(
        [live.name, unrelated.name, os.path.basename(root)])
