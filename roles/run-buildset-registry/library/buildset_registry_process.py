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
  - The process recorded in I(pidfile) counts as running only while it
    is alive and its command line is exactly I(argv); a stale pid file is
    ignored and replaced.
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
      - C(started) starts the process unless it runs.
      - C(restarted) stops it if it runs, then starts it.
      - C(stopped) sends SIGTERM, then SIGKILL after I(timeout) seconds.
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
      when stopping.
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
log_tail:
  description: The last lines of the log, when the process failed to start.
  returned: on failure to start
  type: str
'''

import errno
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


def command_line(pid, *, proc='/proc'):
    """The argv of a live (not zombie) process, or None."""
    try:
        with open('%s/%d/stat' % (proc, pid)) as f:
            # The state follows the parenthesised command name.
            state = f.read().rsplit(')', 1)[1].split()[0]
        with open('%s/%d/cmdline' % (proc, pid), 'rb') as f:
            raw = f.read()
    except (OSError, IndexError):
        return None
    if state in ('Z', 'X') or not raw:
        return None
    return [part.decode('utf-8', 'surrogateescape')
            for part in raw.rstrip(b'\0').split(b'\0')]


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
    temp = pidfile + '.tmp'
    with open(temp, 'w') as f:
        f.write('%d\n' % process.pid)
    os.rename(temp, pidfile)
    return process


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
    """SIGTERM ``pid``; SIGKILL it if still alive after ``timeout``."""
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
    pid = running_pid(pidfile, argv if state != 'stopped' else None)

    if state == 'started' and pid:
        module.exit_json(changed=False, pid=pid)
    if state == 'stopped':
        if not pid:
            if not module.check_mode:
                remove(pidfile)
            module.exit_json(changed=False, pid=0)
        if not module.check_mode:
            stop(pid, params['timeout'])
            remove(pidfile)
        module.exit_json(changed=True, pid=0)
    if module.check_mode:
        module.exit_json(changed=True, pid=pid if state == 'started' else 0)

    if pid:
        stop(pid, params['timeout'])
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
        remove(pidfile)
        tail = log_tail(params['logfile'], offset)
        module.fail_json(msg='%s %s; end of %s:\n%s' % (
            argv[0], why, params['logfile'], tail), log_tail=tail)
    module.exit_json(changed=True, pid=process.pid)


if __name__ == '__main__':
    main()
