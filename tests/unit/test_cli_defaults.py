"""The command line's defaults for a container image: the configuration
file named by ZUUL_REGISTRY_CONFIG when -c is not given, and serve when no
command is given (so ``zuul-registry -d`` alone serves, as zuul-jobs'
run-buildset-registry starts its image)."""

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

from tests.server_process import free_port

ENV = {key: value for key, value in os.environ.items()
       if key != 'ZUUL_REGISTRY_CONFIG'}


def run(*args, config_env=None, timeout=30):
    env = dict(ENV)
    if config_env is not None:
        env['ZUUL_REGISTRY_CONFIG'] = config_env
    return subprocess.run([sys.executable, '-m', 'zuul_registry', *args],
                          capture_output=True, text=True, env=env,
                          timeout=timeout)


def write_config(path, port, storage):
    path.write_text('registry:\n  port: %d\n  storage: {driver: filesystem,'
                    ' root: %s}\n' % (port, storage))
    return str(path)


def test_check_config_reads_the_file_named_by_the_environment(tmp_path):
    config = write_config(tmp_path / 'env.yaml', 5999, tmp_path / 'data')
    result = run('check-config', config_env=config)
    assert result.returncode == 0, result.stderr
    assert '%s: OK' % config in result.stdout
    assert 'port 5999' in result.stdout or ':5999' in result.stdout


def test_dash_c_overrides_the_environment(tmp_path):
    from_env = write_config(tmp_path / 'env.yaml', 5998, tmp_path / 'a')
    given = write_config(tmp_path / 'given.yaml', 5997, tmp_path / 'b')
    result = run('-c', given, 'check-config', config_env=from_env)
    assert result.returncode == 0, result.stderr
    assert given in result.stdout
    assert from_env not in result.stdout


def test_a_missing_file_named_by_the_environment_is_reported(tmp_path):
    missing = str(tmp_path / 'conf' / 'registry.yaml')
    result = run(config_env=missing)
    assert result.returncode == 1
    assert missing in result.stderr
    assert 'No such file or directory' in result.stderr
    assert 'Traceback' not in result.stderr


def test_an_empty_environment_variable_means_no_file():
    result = run('check-config', config_env='')
    assert result.returncode != 0
    assert 'check-config needs -c FILE' in result.stderr


def test_no_command_serves(tmp_path):
    """``zuul-registry -d`` with the file from the environment serves."""
    port = free_port()
    config = write_config(tmp_path / 'registry.yaml', port, tmp_path / 'data')
    env = dict(ENV, ZUUL_REGISTRY_CONFIG=config)
    process = subprocess.Popen(
        [sys.executable, '-m', 'zuul_registry', '-d'], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr.read()
            try:
                with urllib.request.urlopen(
                        'http://127.0.0.1:%d/v2/' % port, timeout=5) as r:
                    assert r.status == 200
                    break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, 'never answered'
                time.sleep(0.2)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert 'Configuration %s' % config in stderr


def test_help_names_the_commands_and_the_defaults():
    result = run('--help')
    assert result.returncode == 0
    for text in ('serve', 'check-config', 'prune', 'ZUUL_REGISTRY_CONFIG'):
        assert text in result.stdout
    assert 'default: serve' in ' '.join(result.stdout.split())


def test_an_unknown_command_is_still_an_error():
    result = run('server')
    assert result.returncode == 2
    assert "invalid choice: 'server'" in result.stderr
