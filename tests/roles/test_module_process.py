"""buildset_registry_process: a daemon with a pid file, without systemd."""

import os
import subprocess
import sys
import time

import pytest

from tests.roles.modules import library
from tests.server_process import free_port

process = library('buildset_registry_process')

LISTEN = ('import socket, time; s = socket.socket(); '
          's.bind(("127.0.0.1", {port})); s.listen(); time.sleep(120)')


@pytest.fixture
def sleeper(tmp_path):
    argv = [sys.executable, '-c', 'import time; time.sleep(120)']
    child = subprocess.Popen(argv)
    (tmp_path / 'pid').write_text('%d\n' % child.pid)
    # Until the child has exec'd, /proc shows the parent's command line.
    deadline = time.monotonic() + 10
    while process.command_line(child.pid) != argv:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    yield child
    child.kill()
    child.wait()


def test_running_pid_needs_the_same_command_line(tmp_path, sleeper):
    pidfile = str(tmp_path / 'pid')
    argv = [sys.executable, '-c', 'import time; time.sleep(120)']
    assert process.running_pid(pidfile, argv) == sleeper.pid
    assert process.running_pid(pidfile, argv + ['x']) == 0
    assert process.running_pid(pidfile, None) == sleeper.pid


def test_a_stale_or_missing_pid_file_means_not_running(tmp_path):
    assert process.running_pid(str(tmp_path / 'none'), None) == 0
    child = subprocess.Popen(['true'])
    child.wait()
    (tmp_path / 'pid').write_text('%d\n' % child.pid)
    assert process.running_pid(str(tmp_path / 'pid'), None) == 0
    (tmp_path / 'pid').write_text('garbage')
    assert process.running_pid(str(tmp_path / 'pid'), None) == 0


def test_stop_terminates(sleeper):
    process.stop(sleeper.pid, 10)
    assert sleeper.wait(timeout=5) is not None


def test_spawn_detaches_and_waits_for_the_port(tmp_path):
    port = free_port()
    argv = [sys.executable, '-c', LISTEN.format(port=port)]
    pidfile = str(tmp_path / 'pid')
    child = process.spawn(argv, logfile=str(tmp_path / 'log'),
                          chdir=str(tmp_path), pidfile=pidfile)
    try:
        assert process.wait_listening(child, '127.0.0.1', port, 20)
        assert process.running_pid(pidfile, argv) == child.pid
        assert os.getsid(child.pid) == child.pid  # its own session
    finally:
        process.stop(child.pid, 10)
        child.wait()


def test_a_process_that_exits_is_reported_with_its_log(ansible, tmp_path):
    result = ansible.module('buildset_registry_process', dict(
        argv=[sys.executable, '-c',
              'import sys; print("cannot start: no way"); sys.exit(3)'],
        pidfile=str(tmp_path / 'pid'), logfile=str(tmp_path / 'log'),
        wait_port=free_port(), timeout=20))
    assert result.get('failed')
    assert 'exited with status 3' in result['msg']
    assert 'cannot start: no way' in result['log_tail']
    assert not (tmp_path / 'pid').exists()


def test_start_stop_and_check_mode_through_ansible(ansible, tmp_path):
    port = free_port()
    args = dict(argv=[sys.executable, '-c', LISTEN.format(port=port)],
                pidfile=str(tmp_path / 'pid'), logfile=str(tmp_path / 'log'),
                wait_port=port, timeout=20)
    assert ansible.module('buildset_registry_process', args,
                          check=True)['changed']
    assert not (tmp_path / 'pid').exists()
    started = ansible.module('buildset_registry_process', args)
    try:
        assert started['changed'] and started['pid'] > 0
        again = ansible.module('buildset_registry_process', args)
        assert not again['changed'] and again['pid'] == started['pid']
        stop = dict(pidfile=args['pidfile'], state='stopped')
        assert ansible.module('buildset_registry_process', stop,
                              check=True)['changed']
        assert process.running_pid(args['pidfile'], None) == started['pid']
        assert ansible.module('buildset_registry_process', stop)['changed']
        deadline = time.monotonic() + 10
        while process.command_line(started['pid']) is not None:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert not ansible.module('buildset_registry_process',
                                  stop)['changed']
    finally:
        pid = process.read_pid(args['pidfile'])
        if pid:
            process.stop(pid, 5)
