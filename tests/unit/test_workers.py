"""`workers`: its configuration, and the supervisor on its own."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from zuul_registry.config import ConfigError, describe, parse_config
from zuul_registry.workers import worker_count

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
ENV = dict(os.environ, PYTHONPATH=REPO_ROOT)


def _config(workers):
    return parse_config({'registry': {
        'storage': {'driver': 'filesystem', 'root': '/tmp/x'},
        'workers': workers}})


@pytest.mark.parametrize('value', [1, 4, 1024, 'auto'])
def test_workers_accepts_a_count_or_auto(value):
    assert _config(value).workers == value


def test_workers_defaults_to_one_process():
    config = parse_config({'registry': {
        'storage': {'driver': 'filesystem', 'root': '/tmp/x'}}})
    assert config.workers == 1
    assert 'worker' not in describe(config)


@pytest.mark.parametrize('value, problem', [
    (0, "must be 'auto' or an integer from 1 to 1024, not 0"),
    (-2, "must be 'auto' or an integer from 1 to 1024, not -2"),
    (1025, "must be 'auto' or an integer from 1 to 1024, not 1025"),
    ('many', "must be 'auto' or an integer from 1 to 1024, not 'many'"),
    (True, "must be 'auto' or an integer, not a boolean"),
    (2.5, "must be 'auto' or an integer, not a number"),
    ([2], "must be 'auto' or an integer, not a list"),
])
def test_workers_refuses_anything_else_with_its_key_path(value, problem):
    with pytest.raises(ConfigError) as error:
        _config(value)
    assert error.value.problems == ['registry.workers: ' + problem]


def test_describe_says_how_many_workers():
    assert ', 4 worker processes, ' in describe(_config(4))
    assert ', a worker process per CPU, ' in describe(_config('auto'))


def test_auto_means_the_cpus_this_process_may_use():
    assert worker_count('auto') == len(os.sched_getaffinity(0))
    assert worker_count(3) == 3


def _supervise(serve_source, *, seconds):
    """Run a Supervisor of two slots whose workers run `serve_source`
    (the body of serve(index, sockets), with `board` a balance.Board the
    supervisor keeps); SIGTERM it after `seconds`."""
    script = '\n'.join([
        'import logging, os, signal, sys, time',
        'from zuul_registry import balance, workers',
        'logging.basicConfig(level=logging.INFO,',
        '                    format="%(name)s[%(process)d]: %(message)s")',
        'board = balance.Board(2)',
        'def serve(index, sockets):',
        *('    ' + line for line in serve_source.splitlines()),
        'sys.exit(workers.Supervisor([[], []], serve, board=board).run())',
    ])
    process = subprocess.Popen([sys.executable, '-c', script], env=ENV,
                               stderr=subprocess.PIPE, text=True)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr


def test_a_crash_loop_is_restarted_at_most_once_a_second_and_backs_off():
    # Every worker dies at once: restarts 1 s, then 2 s, then 4 s apart.
    status, log = _supervise('time.sleep(0.05)\nreturn 1', seconds=3.5)
    assert status == 0, log
    for slot in (0, 1):
        starts = log.count('Started worker %d ' % slot)
        assert 2 <= starts <= 3, log
    assert 'exited with status 1 after' in log
    assert 'All workers stopped' in log


def test_a_first_worker_that_cannot_start_stops_the_server():
    status, log = _supervise(
        'if index == 0:\n'
        '    return workers.STARTUP_FAILED\n'
        'time.sleep(60)', seconds=20)
    assert status == 1, log
    assert 'Worker 0 (pid' in log and 'could not start; stopping' in log
    assert log.count('Started worker') == 2


def test_a_worker_killed_by_a_signal_is_reported_so():
    status, log = _supervise('time.sleep(0.2)\n'
                             'os.kill(os.getpid(), signal.SIGKILL)',
                             seconds=1.0)
    assert status == 0, log
    assert 'Worker 0 (pid' in log and 'killed by SIGKILL after' in log


def test_the_slot_of_a_dead_worker_is_vacated_on_the_board():
    """Its count is not weighed by the live workers (they would leave
    connections to a worker that is not there)."""
    status, log = _supervise(
        'def until(found):\n'
        '    deadline = time.monotonic() + 20\n'
        '    while not found():\n'
        '        assert time.monotonic() < deadline\n'
        '        time.sleep(0.001)\n'
        'if index == 0:\n'
        '    board.publish(0, 5)\n'
        '    until(lambda: board.fewest_elsewhere(0) == 1)\n'
        '    os.kill(os.getpid(), signal.SIGKILL)\n'
        'board.publish(1, 0)\n'
        'until(lambda: board.fewest_elsewhere(1) == 5)\n'
        'board.publish(1, 1)   # seen: worker 0 may die\n'
        'until(lambda: board.fewest_elsewhere(1) is None)\n'
        'logging.info("vacated")\n'
        'os.kill(os.getppid(), signal.SIGTERM)\n'
        'time.sleep(60)', seconds=30)
    assert status == 0, log
    assert 'killed by SIGKILL' in log and 'vacated' in log, log


def _serve(config_text, tmp_path, *, timeout=30):
    path = tmp_path / 'c.yaml'
    path.write_text(config_text)
    return subprocess.run(
        [sys.executable, '-m', 'zuul_registry', '-c', str(path), 'serve'],
        capture_output=True, text=True, env=ENV, timeout=timeout)


@pytest.mark.parametrize('reuse_port', [False, True])
def test_workers_report_a_port_in_use_clearly(tmp_path, reuse_port):
    """Even a server holding the port with SO_REUSEPORT is not joined."""
    with socket.socket() as busy:
        if reuse_port:
            busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        busy.bind(('127.0.0.1', 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _serve('registry:\n  port: %d\n  workers: 2\n  storage: '
                        '{driver: filesystem, root: %s}\n'
                        % (port, tmp_path / 'd'), tmp_path)
    assert result.returncode == 1
    assert 'cannot listen on 127.0.0.1 port %d' % port in result.stderr
    assert 'Traceback' not in result.stderr


def test_workers_that_cannot_use_the_storage_end_the_server(tmp_path):
    (tmp_path / 'file').write_text('')
    started = time.monotonic()
    result = _serve('registry:\n  port: %d\n  workers: 2\n  storage: '
                    '{driver: filesystem, root: %s}\n'
                    % (_free_port(), tmp_path / 'file' / 'root'), tmp_path)
    assert result.returncode == 1
    assert 'cannot use the storage: ' in result.stderr
    assert 'Traceback' not in result.stderr, \
        result.stderr[result.stderr.find('Traceback'):][:3000]
    assert time.monotonic() - started < 20


def _free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]
