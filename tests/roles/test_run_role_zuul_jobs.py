"""run-buildset-registry as zuul-jobs' jobs use it, run for real.

A job whose parent already provides ``buildset_registry`` starts nothing,
writes nothing and returns nothing; the buildset registry job pauses only
when it started the registry itself. In daemon mode a changed setting
replaces the running registry instead of leaving it serving untracked,
and a pid file that names a process the role did not start is never
acted on.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from tests.roles.conftest import REPO_ROOT
from tests.roles.conftest import run_role_vars
from tests.roles.conftest import start_registry
from tests.roles.conftest import stop_registry
from tests.roles.conftest import use_role_vars
from tests.roles.modules import library
from tests.server_process import free_port

process = library('buildset_registry_process')

JOB_PLAYBOOKS = os.path.join(REPO_ROOT, 'playbooks', 'buildset-registry')
PRE = os.path.join(JOB_PLAYBOOKS, 'pre.yaml')
RUN = os.path.join(JOB_PLAYBOOKS, 'run.yaml')
PAUSE = {'data': {'zuul': {'pause': True}}}
LISTEN = ('import socket, time; s = socket.socket(); '
          's.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); '
          's.bind(("127.0.0.1", {port})); s.listen(); time.sleep(120)')


def server_processes(root):
    """Live processes serving with the configuration in ``root``."""
    config = os.path.join(str(root), 'registry.yaml')
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            argv = process.command_line(int(entry))
            if argv and config in argv and 'serve' in argv:
                found.append(int(entry))
    return sorted(found)


def listening_pids(port):
    """The processes holding a socket that listens on TCP ``port``."""
    inodes = set()
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == '0A' and int(local.rsplit(':', 1)[1], 16) == port:
                inodes.add('socket:[%s]' % inode)
    pids = set()
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            fds = os.listdir('/proc/%s/fd' % entry)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink('/proc/%s/fd/%s' % (entry, fd)) in inodes:
                    pids.add(int(entry))
            except OSError:
                pass
    return pids


def stop_servers(root):
    """Stop whatever serves with ``root``'s configuration, tracked or
    not."""
    stop_registry(root)
    for pid in server_processes(root):
        process.stop(pid, 10)


def wait_for_exit(pid, timeout=15):
    deadline = time.monotonic() + timeout
    while process.command_line(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def job_vars(registry_root, client_root, port, **extra):
    """The variables of a buildset registry job's pre-run: the run role
    fast and in ``registry_root``, the use role's files under
    ``client_root``."""
    os.makedirs(os.path.join(str(client_root), 'etc'), exist_ok=True)
    with open(os.path.join(str(client_root), 'etc', 'hosts'), 'w') as f:
        f.write('127.0.0.1 localhost\n')
    variables = use_role_vars(client_root, None)
    del variables['buildset_registry']
    variables.update(run_role_vars(registry_root, port))
    variables['zuul'] = {'build': 'registry-build'}
    variables.update(extra)
    return variables


def pauses(ansible):
    return [entry for entry in ansible.zuul_returns() if entry == PAUSE]


# Item 7 of issue 10: a registry provided by a parent job.

def test_a_registry_provided_by_a_parent_job_is_used_as_it_is(
        ansible, tmp_path, buildset_registry):
    root = tmp_path / 'root'
    fact_file = tmp_path / 'fact.json'
    variables = run_role_vars(root, free_port(), fact_file=fact_file,
                              buildset_registry=buildset_registry.facts)
    variables['zuul'] = {'build': 'child-build'}
    try:
        result = ansible.playbook('run.yaml', variables)
        assert result.changed == 0, result.output
        # Nothing installed, configured or started.
        assert not root.exists()
        assert server_processes(root) == []
        assert json.loads(fact_file.read_text()) == buildset_registry.facts
        # The parent returned it already; this job does not return it
        # again.
        assert ansible.zuul_returns() == []
    finally:
        stop_servers(root)


def fact_cache(ansible, directory):
    """Keep facts across ansible-playbook runs, as Zuul's executor does
    for the playbooks of one job; return a reader of the cached facts."""
    ansible.env.update(ANSIBLE_CACHE_PLUGIN='jsonfile',
                       ANSIBLE_CACHE_PLUGIN_CONNECTION=str(directory))

    def cached(name):
        # What a later playbook of the job sees (the cache's file format
        # is Ansible's own).
        result = ansible.module('ansible.builtin.debug', {'var': name})
        assert not result['failed'], result['_output']
        return result[name]
    return cached


def test_the_registry_job_does_not_pause_for_a_parent_jobs_registry(
        ansible, tmp_path, buildset_registry):
    cached = fact_cache(ansible, tmp_path / 'fact-cache')
    root = tmp_path / 'root'
    variables = job_vars(root, tmp_path / 'clients', free_port(),
                         buildset_registry=buildset_registry.facts)
    try:
        ansible.playbook(PRE, variables)
        ansible.playbook(RUN, variables)
        assert not root.exists()
        assert server_processes(root) == []
        assert ansible.zuul_returns() == []
        assert cached('buildset_registry_started') is False
        # The node was pointed at the parent's registry.
        ca_dir = tmp_path / 'clients' / 'etc' / 'containers' / 'certs.d'
        assert any(ca_dir.iterdir())
    finally:
        stop_servers(root)


def test_the_registry_job_pauses_when_it_started_the_registry(
        ansible, tmp_path):
    cached = fact_cache(ansible, tmp_path / 'fact-cache')
    root = tmp_path / 'root'
    variables = job_vars(root, tmp_path / 'clients', free_port())
    try:
        # Pre-run and run are separate ansible-playbook runs, as in Zuul.
        ansible.playbook(PRE, variables)
        assert len(server_processes(root)) == 1
        assert cached('buildset_registry_started') is True
        returned = [entry['secret_data']['buildset_registry']
                    for entry in ansible.zuul_returns()
                    if 'secret_data' in entry]
        assert len(returned) == 1
        assert pauses(ansible) == []
        ansible.playbook(RUN, variables)
        assert pauses(ansible) == [PAUSE]
    finally:
        stop_servers(root)


def test_pauses_without_a_fact_cache_when_it_started_the_registry(
        ansible, tmp_path):
    # Without the fact, zuul-jobs' rule decides: in a playbook of its
    # own, buildset_registry is defined only when a parent job gave it.
    root = tmp_path / 'root'
    variables = run_role_vars(root, free_port())
    variables['zuul'] = {'build': 'registry-build'}
    try:
        ansible.playbook('run.yaml', variables)
        ansible.playbook(RUN, variables)
        assert pauses(ansible) == [PAUSE]
        ansible.playbook(RUN, dict(variables, buildset_registry={
            'host': '192.0.2.1', 'port': 5000}))
        assert pauses(ansible) == [PAUSE]
    finally:
        stop_servers(root)


def test_pauses_when_the_same_run_started_the_registry(ansible, tmp_path):
    # One ansible-playbook for both: buildset_registry is a fact by the
    # time the run playbook decides, yet this job started the registry.
    root = tmp_path / 'root'
    variables = run_role_vars(root, free_port())
    variables['zuul'] = {'build': 'registry-build'}
    try:
        ansible.playbook(['run.yaml', RUN], variables)
        assert len(server_processes(root)) == 1
        assert pauses(ansible) == [PAUSE]
    finally:
        stop_servers(root)


# Item 9 of issue 10: daemon mode restarts cleanly on a changed setting.

def test_a_changed_setting_replaces_the_daemon(ansible, tmp_path):
    root = tmp_path / 'root'
    registry = start_registry(ansible, root, buildset_registry_debug=False)
    try:
        first = registry.pid()
        assert '-d' not in process.command_line(first)
        variables = dict(registry.variables, buildset_registry_debug=True)
        result = ansible.playbook('run.yaml', variables)
        assert result.changed > 0, result.output
        pid = registry.pid()
        argv = process.command_line(pid)
        assert argv is not None and '-d' in argv, registry.log_text()
        # The old process is gone; the recorded one is what serves.
        assert wait_for_exit(first)
        assert server_processes(root) == [pid]
        assert listening_pids(registry.port) == {pid}
        again = ansible.playbook('run.yaml', variables)
        assert again.changed == 0, again.output
        assert registry.pid() == pid
        assert server_processes(root) == [pid]
    finally:
        stop_servers(root)


@pytest.fixture
def stranger():
    """A live process the module never started."""
    child = subprocess.Popen(
        [sys.executable, '-c', 'import time; time.sleep(120)'])
    deadline = time.monotonic() + 10
    while process.command_line(child.pid) != child.args:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    yield child
    child.kill()
    child.wait()


def module_args(tmp_path, port, **extra):
    args = dict(argv=[sys.executable, '-c', LISTEN.format(port=port)],
                pidfile=str(tmp_path / 'pid'), logfile=str(tmp_path / 'log'),
                wait_port=port, timeout=20)
    args.update(extra)
    return args


def stop_recorded(pidfile):
    pid = process.read_pid(pidfile)
    if pid and process.command_line(pid) is not None:
        process.stop(pid, 5)


def test_a_pid_file_naming_another_process_is_never_signalled(
        ansible, tmp_path, stranger):
    args = module_args(tmp_path, free_port())
    (tmp_path / 'pid').write_text('%d\n' % stranger.pid)
    stop = dict(pidfile=args['pidfile'], state='stopped')
    try:
        assert not ansible.module('buildset_registry_process',
                                  stop)['changed']
        assert stranger.poll() is None
        started = ansible.module('buildset_registry_process', args)
        assert started['changed'] and started['pid'] != stranger.pid
        assert stranger.poll() is None
        assert ansible.module('buildset_registry_process', stop)['changed']
        assert wait_for_exit(started['pid'])
        assert stranger.poll() is None
    finally:
        stop_recorded(args['pidfile'])


def test_a_recycled_pid_is_not_taken_for_the_recorded_process(
        ansible, tmp_path, stranger):
    # The record names the stranger's pid and command line, but a process
    # that started at another time: the process it was is gone and the
    # pid was given to another one.
    args = module_args(tmp_path, free_port())
    process.record(args['pidfile'], stranger.pid, argv=stranger.args,
                   start_time=process.start_time(stranger.pid) + 1)
    try:
        started = ansible.module('buildset_registry_process', args)
        assert started['changed'] and started['pid'] != stranger.pid
        assert stranger.poll() is None
        # The record of the new process is trusted: a new command line
        # replaces it.
        port = free_port()
        replaced = ansible.module('buildset_registry_process',
                                  module_args(tmp_path, port))
        assert replaced['changed'] and replaced['pid'] != started['pid']
        assert wait_for_exit(started['pid'])
        assert listening_pids(port) == {replaced['pid']}
        assert stranger.poll() is None
    finally:
        stop_recorded(args['pidfile'])


def test_a_dead_process_in_the_pid_file_is_started_again(ansible, tmp_path):
    args = module_args(tmp_path, free_port())
    started = ansible.module('buildset_registry_process', args)
    try:
        os.kill(started['pid'], 9)
        assert wait_for_exit(started['pid'])
        again = ansible.module('buildset_registry_process', args)
        assert again['changed'] and again['pid'] != started['pid']
        assert not ansible.module('buildset_registry_process',
                                  args)['changed']
    finally:
        stop_recorded(args['pidfile'])


def test_an_untracked_listener_on_the_port_is_reported(
        ansible, tmp_path):
    port = free_port()
    squatter = subprocess.Popen(
        [sys.executable, '-c', LISTEN.format(port=port)])
    try:
        deadline = time.monotonic() + 10
        while squatter.pid not in listening_pids(port):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        args = module_args(tmp_path, port,
                           argv=[sys.executable, '-c',
                                 LISTEN.format(port=port), 'new'])
        result = ansible.module('buildset_registry_process', args)
        assert result['failed']
        assert 'already' in result['msg'] and str(port) in result['msg']
        assert squatter.poll() is None
        assert not (tmp_path / 'pid').exists()
    finally:
        squatter.kill()
        squatter.wait()
