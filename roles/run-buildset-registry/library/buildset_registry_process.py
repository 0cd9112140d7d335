#!/usr/bin/python
# Copyright: zuul-registry contributors
# Apache License 2.0 (see setup.cfg)
"""Ansible module: run the registry as a daemon where there is no systemd."""

from __future__ import annotations

DOCUMENTATION = r'''
---
module: buildset_registry_process
short_description: Run a long-lived process with a pid file and a log file
description:
  - Starts, stops or restarts a command as a daemon (its own session, no
    terminal, standard input from /dev/null, standard output and error
    appended to I(logfile)) and records its process id in I(pidfile).
  - Beside I(pidfile), C(PIDFILE.json) records the command line and the
    start time of the process the module started. The process named in
    I(pidfile) is the module's own only while it is alive and either its
    command line is exactly I(argv), or its command line and start time
    are the recorded ones. Any other process (the pid file is stale, or
    its pid was given to an unrelated process) is never signalled, and
    the pid file is replaced.
  - With I(state=started), the module's own process with another command
    line (a changed setting) is stopped and I(argv) started in its place;
    one with the same command line is left alone.
  - Before starting, it fails if something already accepts connections
    on I(wait_port), rather than start a process that cannot listen
    while another one, not tracked by I(pidfile), answers in its place.
  - For hosts without systemd; where systemd runs, use a unit instead.
  - Supports check mode (reports what would change, starts and stops
    nothing).
options:
  argv:
    description: The command and its arguments. Required unless
      I(state=stopped).
    type: list
    elements: str
  pidfile:
    description: Where the process id is kept.
    type: path
    required: true
  logfile:
    description: Standard output and error are appended here. Required
      unless I(state=stopped).
    type: path
  chdir:
    description: Working directory of the process.
    type: path
    default: /
  state:
    description:
      - C(started) starts the process unless it runs with I(argv);
        the module's own process with other arguments is replaced.
      - C(restarted) stops the module's own process if it runs, then
        starts I(argv).
      - C(stopped) sends the module's own process SIGTERM, then SIGKILL
        (to its whole process group) after I(timeout) seconds.
    type: str
    choices: [started, restarted, stopped]
    default: started
  wait_port:
    description:
      - After starting, wait until a TCP connection to I(wait_host) on
        this port succeeds. If the process exits first, or I(timeout)
        passes, the module fails and returns the end of the log.
    type: int
  wait_host:
    description: Host to connect to for I(wait_port).
    type: str
    default: 127.0.0.1
  timeout:
    description: Seconds to wait for the port, or for the process to exit
      when stopping, before it is killed.
    type: int
    default: 60
author:
  - zuul-registry contributors
'''

EXAMPLES = r'''
- name: Run the registry
  buildset_registry_process:
    argv: [/srv/registry/venv/bin/python, -m, zuul_registry,
           -c, /srv/registry/registry.yaml, serve]
    pidfile: /srv/registry/registry.pid
    logfile: /srv/registry/registry.log
    chdir: /srv/registry
    wait_port: 5000
'''

RETURN = r'''
pid:
  description: Process id of the running process (0 when stopped, or in
    check mode before it was started).
  returned: always
  type: int
replaced:
  description: Process id of the module's own process that was stopped
    to start I(argv) in its place (0 when none was).
  returned: always
  type: int
log_tail:
  description: The last lines of the log, when the process failed to start.
  returned: on failure to start
  type: str
'''

import errno
import json
import os
import signal
import socket
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

LOG_TAIL_BYTES = 4096


def read_pid(pidfile):
    try:
        with open(pidfile) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _stat(pid, proc):
    """The fields of /proc/PID/stat after the command name, from the
    state (field 3) on; None if there is no such process."""
    try:
        with open('%s/%d/stat' % (proc, pid)) as f:
            # The command name is parenthesised and may hold anything.
            return f.read().rsplit(')', 1)[1].split()
    except (OSError, IndexError):
        return None


def start_time(pid, *, proc='/proc'):
    """When ``pid`` started, in clock ticks after boot; None if there is
    no such process. A pid used again belongs to a later start time."""
    fields = _stat(pid, proc)
    try:
        return int(fields[19])  # field 22, starttime
    except (TypeError, IndexError, ValueError):
        return None


def command_line(pid, *, proc='/proc'):
    """The argv of a live (not zombie) process, or None."""
    fields = _stat(pid, proc)
    try:
        with open('%s/%d/cmdline' % (proc, pid), 'rb') as f:
            raw = f.read()
    except OSError:
        return None
    if not fields or fields[0] in ('Z', 'X') or not raw:
        return None
    return [part.decode('utf-8', 'surrogateescape')
            for part in raw.rstrip(b'\0').split(b'\0')]


def record_path(pidfile):
    return pidfile + '.json'


def record(pidfile, pid, *, argv, start_time):
    """Remember what the process ``pid`` was when it was started."""
    path = record_path(pidfile)
    temp = path + '.tmp'
    with open(temp, 'w') as f:
        json.dump({'pid': pid, 'argv': list(argv),
                   'start_time': start_time}, f)
    os.rename(temp, path)


def read_record(pidfile):
    try:
        with open(record_path(pidfile)) as f:
            entry = json.load(f)
        return (int(entry['pid']), [str(a) for a in entry['argv']],
                int(entry['start_time']))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def own_pid(pidfile, argv=None, *, proc='/proc'):
    """The pid in ``pidfile`` if that process is the one this module
    started, else 0.

    It is when it runs ``argv`` exactly, or when its command line and
    start time are those recorded beside the pid file when it was
    started. Anything else, a process that got the pid later included,
    is not ours to signal.
    """
    pid = read_pid(pidfile)
    if pid <= 0:
        return 0
    cmdline = command_line(pid, proc=proc)
    if cmdline is None:
        return 0
    if argv is not None and cmdline == list(argv):
        return pid
    recorded = read_record(pidfile)
    if recorded and recorded[0] == pid and recorded[1] == cmdline and (
            recorded[2] == start_time(pid, proc=proc)):
        return pid
    return 0


def running_pid(pidfile, argv, *, proc='/proc'):
    """The pid from ``pidfile`` if that process runs ``argv``, else 0.

    With ``argv`` None, any live process counts.
    """
    pid = read_pid(pidfile)
    if pid <= 0:
        return 0
    cmdline = command_line(pid, proc=proc)
    if cmdline is None or (argv is not None and cmdline != list(argv)):
        return 0
    return pid


def log_tail(logfile, offset=0):
    try:
        with open(logfile, 'rb') as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(offset, size - LOG_TAIL_BYTES))
            return f.read().decode('utf-8', 'replace')
    except OSError:
        return ''


def spawn(argv, *, logfile, chdir, pidfile):
    """Start ``argv`` detached from us; record and return its pid."""
    os.makedirs(os.path.dirname(os.path.abspath(logfile)), exist_ok=True)
    with open(logfile, 'ab') as log, open(os.devnull, 'rb') as null:
        process = subprocess.Popen(
            argv, stdin=null, stdout=log, stderr=subprocess.STDOUT,
            cwd=chdir, close_fds=True, start_new_session=True)
    # Popen returns once the child has executed argv, so /proc shows
    # the new command line from here on.
    record(pidfile, process.pid, argv=argv,
           start_time=start_time(process.pid) or 0)
    temp = pidfile + '.tmp'
    with open(temp, 'w') as f:
        f.write('%d\n' % process.pid)
    os.rename(temp, pidfile)
    return process


def accepts(host, port):
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def wait_listening(process, host, port, timeout):
    """Wait until ``host:port`` accepts; False if the process exits first
    or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def stop(pid, timeout):
    """SIGTERM ``pid``; SIGKILL it if still alive after ``timeout``.

    The process was started in a session of its own, so its pid is its
    process group's: the SIGKILL goes to the group, so that no child of
    it keeps the port.
    """
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError as error:
        if error.errno == errno.ESRCH:
            return
        raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if command_line(pid) is None:
            return
        time.sleep(0.1)
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    while command_line(pid) is not None and (
            time.monotonic() < deadline + 10):
        time.sleep(0.1)


def remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def forget(pidfile):
    remove(pidfile)
    remove(record_path(pidfile))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            argv=dict(type='list', elements='str'),
            pidfile=dict(type='path', required=True),
            logfile=dict(type='path'),
            chdir=dict(type='path', default='/'),
            state=dict(type='str', default='started',
                       choices=['started', 'restarted', 'stopped']),
            wait_port=dict(type='int'),
            wait_host=dict(type='str', default='127.0.0.1'),
            timeout=dict(type='int', default=60),
        ),
        required_if=[('state', 'started', ('argv', 'logfile')),
                     ('state', 'restarted', ('argv', 'logfile'))],
        supports_check_mode=True,
    )
    params = module.params
    state, argv, pidfile = params['state'], params['argv'], params['pidfile']
    pid = own_pid(pidfile, argv)
    current = bool(pid) and command_line(pid) == argv

    if state == 'started' and current:
        module.exit_json(changed=False, pid=pid, replaced=0)
    if state == 'stopped':
        if not module.check_mode:
            if pid:
                stop(pid, params['timeout'])
            forget(pidfile)
        module.exit_json(changed=bool(pid), pid=0, replaced=0)
    if module.check_mode:
        module.exit_json(changed=True, pid=pid if current else 0,
                         replaced=pid)

    if pid:
        # Ours, with other arguments (or to be restarted): replace it.
        stop(pid, params['timeout'])
        if command_line(pid) is not None:
            module.fail_json(msg='process %d (%s) did not exit' % (
                pid, pidfile))
    # What the pid file named is gone, or was never ours.
    forget(pidfile)
    if params['wait_port'] and accepts(params['wait_host'],
                                       params['wait_port']):
        module.fail_json(msg=(
            '%s port %d is already in use by a process that %s does not '
            'name; stop it first' % (params['wait_host'],
                                     params['wait_port'], pidfile)))
    offset = os.path.getsize(params['logfile']) if os.path.exists(
        params['logfile']) else 0
    try:
        process = spawn(argv, logfile=params['logfile'],
                        chdir=params['chdir'], pidfile=pidfile)
    except OSError as error:
        module.fail_json(msg='cannot start %s: %s' % (argv[0], error))
    if params['wait_port'] and not wait_listening(
            process, params['wait_host'], params['wait_port'],
            params['timeout']):
        exited = process.poll()
        if exited is None:
            stop(process.pid, 10)
            why = 'not listening on %s port %d after %ds' % (
                params['wait_host'], params['wait_port'], params['timeout'])
        else:
            why = 'exited with status %d' % exited
        forget(pidfile)
        tail = log_tail(params['logfile'], offset)
        module.fail_json(msg='%s %s; end of %s:\n%s' % (
            argv[0], why, params['logfile'], tail), log_tail=tail)
    module.exit_json(changed=True, pid=process.pid, replaced=pid)


if __name__ == '__main__':
    main()
