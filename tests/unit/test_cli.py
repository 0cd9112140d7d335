"""The command line: check-config, serve's default and its startup errors."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), '..', '..', 'examples')
ENV = dict(os.environ, ZUUL_REGISTRY_SECRET='s' * 40,
           ZUUL_REGISTRY_PASSWORD='p', ZUUL_REGISTRY_WRITE_PASSWORD='w',
           ZUUL_REGISTRY_READ_PASSWORD='r', ZUUL_QUAY_PASSWORD='q')


def run(*args, cwd=None, timeout=30):
    return subprocess.run([sys.executable, '-m', 'zuul_registry', *args],
                          capture_output=True, text=True, env=ENV, cwd=cwd,
                          timeout=timeout)


@pytest.mark.parametrize('name', sorted(os.listdir(EXAMPLES)))
def test_check_config_accepts_every_example(name):
    result = run('-c', os.path.join(EXAMPLES, name), 'check-config')
    assert result.returncode == 0, result.stderr
    assert 'OK' in result.stdout


def test_check_config_reports_every_problem_and_fails(tmp_path):
    path = tmp_path / 'bad.yaml'
    path.write_text('registry:\n  port: nope\n  storage: {driver: filesystem}'
                    '\n  colour: blue\n')
    result = run('-c', str(path), 'check-config')
    assert result.returncode == 1
    for problem in ('registry.port: must be an integer',
                    'registry.storage.root: required',
                    'registry.colour: unknown key'):
        assert problem in result.stderr


def test_check_config_refuses_anonymous_push_beyond_loopback(tmp_path):
    path = tmp_path / 'open.yaml'
    path.write_text('registry:\n  address: 0.0.0.0\n'
                    '  storage: {driver: filesystem, root: /tmp/x}\n')
    result = run('-c', str(path), 'check-config')
    assert result.returncode == 1
    assert 'anyone who can reach 0.0.0.0:5000 could push' in result.stderr


def test_serve_reports_port_in_use_clearly(tmp_path):
    with socket.socket() as busy:
        busy.bind(('127.0.0.1', 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = tmp_path / 'c.yaml'
        path.write_text('registry:\n  port: %d\n  storage: {driver: '
                        'filesystem, root: %s}\n' % (port, tmp_path / 'd'))
        result = run('-c', str(path), 'serve')
    assert result.returncode != 0
    assert 'cannot listen on 127.0.0.1 port %d' % port in result.stderr
    assert 'Traceback' not in result.stderr


def test_serve_without_config_uses_the_embedded_default(tmp_path):
    """The default listens on 127.0.0.1:5000; only run it if that's free."""
    with socket.socket() as probe:
        if probe.connect_ex(('127.0.0.1', 5000)) == 0:
            pytest.skip('port 5000 is in use on this machine')
    process = subprocess.Popen(
        [sys.executable, '-m', 'zuul_registry', 'serve'], cwd=tmp_path,
        stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        first_line = process.stderr.readline()
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen('http://127.0.0.1:5000/v2/') as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, 'server did not start'
                time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert ('embedded default: serving plain HTTP on 127.0.0.1:5000, '
            'anonymous push and pull, filesystem storage in %s'
            % (tmp_path / 'zuul-registry-data')) in first_line
    assert (tmp_path / 'zuul-registry-data').is_dir()


def test_double_colon_listens_on_ipv4_too():
    from zuul_registry.cli import listen_hosts
    assert listen_hosts('::') == ['0.0.0.0', '::']
    assert listen_hosts('127.0.0.1') == '127.0.0.1'


def test_serve_with_unreachable_swift_fails_at_startup(tmp_path):
    """Bad storage is a clear startup error, not 500s on the first pushes."""
    with socket.socket() as closed:
        closed.bind(('127.0.0.1', 0))
        dead_port = closed.getsockname()[1]
    with socket.socket() as free:
        free.bind(('127.0.0.1', 0))
        port = free.getsockname()[1]
    path = tmp_path / 'swift.yaml'
    path.write_text(
        'registry:\n  port: %d\n  storage:\n    driver: swift\n'
        '    container: registry\n'
        '    auth-url: http://127.0.0.1:%d/auth/v1.0\n'
        '    user: test:tester\n    key: testing\n' % (port, dead_port))
    result = run('-c', str(path), 'serve', timeout=120)
    assert result.returncode != 0
    assert 'cannot use the storage: Swift container registry' in \
        result.stderr
    assert 'Traceback' not in result.stderr
