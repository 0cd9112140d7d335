"""run-buildset-registry, run for real: a TLS registry with one write user."""

import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import yaml
from cryptography import x509

from tests.roles.conftest import run_role_vars
from tests.roles.conftest import start_registry
from tests.roles.conftest import stop_registry


def get(url, cafile, *, auth=None):
    """(status, headers) of GET url, verifying TLS with cafile."""
    context = ssl.create_default_context(cafile=cafile)
    request = urllib.request.Request(url)
    if auth:
        request.add_header('Authorization', auth)
    try:
        with urllib.request.urlopen(request, context=context,
                                    timeout=10) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers


def test_returns_the_buildset_registry_fact(buildset_registry):
    facts = buildset_registry.facts
    assert facts['host'] == '127.0.0.1'
    assert facts['port'] == buildset_registry.port
    assert facts['username'] == 'zuul'
    assert len(facts['password']) >= 32
    assert facts['cert'].startswith('-----BEGIN CERTIFICATE-----')


def test_hands_the_registry_to_zuul_as_secret_data(buildset_registry):
    returns = buildset_registry.ansible.zuul_returns()
    given = [entry['secret_data']['buildset_registry'] for entry in returns
             if 'buildset_registry' in entry.get('secret_data', {})]
    assert given == [buildset_registry.facts]
    assert not any('data' in entry and 'buildset_registry' in entry['data']
                   for entry in returns)


def test_never_logs_the_password(buildset_registry):
    password = buildset_registry.facts['password']
    assert password not in buildset_registry.first_run.output
    assert password not in buildset_registry.log_text()


def test_serves_tls_with_the_returned_ca(buildset_registry, tmp_path):
    cafile = tmp_path / 'ca.pem'
    cafile.write_text(buildset_registry.facts['cert'])
    for host in ('127.0.0.1', 'localhost'):
        status, headers = get('https://%s:%d/v2/' % (
            host, buildset_registry.port), str(cafile))
        assert status == 401
        assert headers['WWW-Authenticate'].startswith('Bearer ')


def test_the_write_user_may_log_in(buildset_registry, tmp_path):
    import base64
    cafile = tmp_path / 'ca.pem'
    cafile.write_text(buildset_registry.facts['cert'])
    facts = buildset_registry.facts
    basic = 'Basic ' + base64.b64encode(('%s:%s' % (
        facts['username'], facts['password'])).encode()).decode()
    status, _ = get('https://127.0.0.1:%d/v2/' % buildset_registry.port,
                    str(cafile), auth=basic)
    assert status == 200
    wrong = 'Basic ' + base64.b64encode(b'zuul:wrong').decode()
    status, _ = get('https://127.0.0.1:%d/v2/' % buildset_registry.port,
                    str(cafile), auth=wrong)
    assert status == 401


def test_certificate_names(buildset_registry):
    with open(os.path.join(buildset_registry.root, 'tls', 'cert.pem'),
              'rb') as f:
        cert = x509.load_pem_x509_certificate(f.read())
    san = cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {
        'localhost', 'zuul-jobs.buildset-registry'}
    assert {str(a) for a in san.get_values_for_type(x509.IPAddress)} == {
        '127.0.0.1', '::1'}


def test_files_and_modes(buildset_registry):
    root = buildset_registry.root

    def mode(*parts):
        return stat.S_IMODE(os.stat(os.path.join(root, *parts)).st_mode)

    assert mode('registry.yaml') == 0o600
    assert mode('tls', 'key.pem') == 0o600
    assert mode('tls', 'ca-key.pem') == 0o600
    assert mode('tls') == 0o700
    assert os.path.isdir(os.path.join(root, 'data'))
    pid = buildset_registry.pid()
    with open('/proc/%d/cmdline' % pid, 'rb') as f:
        argv = f.read().rstrip(b'\0').split(b'\0')
    assert argv[-3:] == [b'-c', os.path.join(root, 'registry.yaml').encode(),
                         b'serve']


def test_config_template_passes_check_config(buildset_registry):
    config = os.path.join(buildset_registry.root, 'registry.yaml')
    result = subprocess.run(
        [sys.executable, '-m', 'zuul_registry', '-c', config,
         'check-config'], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    with open(config) as f:
        registry = yaml.safe_load(f)['registry']
    assert registry['namespaced'] is True
    assert registry['users'] == [{
        'name': 'zuul', 'pass': buildset_registry.facts['password'],
        'access': 'write'}]
    assert registry['storage'] == {
        'driver': 'filesystem',
        'root': os.path.join(buildset_registry.root, 'data')}
    assert registry['public-url'] == 'https://127.0.0.1:%d' % (
        buildset_registry.port)


def test_second_run_changes_nothing(buildset_registry):
    pid = buildset_registry.pid()
    variables = dict(buildset_registry.variables)
    del variables['test_fact_file']
    result = buildset_registry.ansible.playbook('run.yaml', variables)
    assert result.changed == 0, result.output
    assert buildset_registry.pid() == pid


def test_check_mode_changes_nothing(buildset_registry):
    pid = buildset_registry.pid()
    variables = dict(buildset_registry.variables)
    del variables['test_fact_file']
    result = buildset_registry.ansible.playbook('run.yaml', variables,
                                                check=True)
    assert result.changed == 0, result.output
    assert buildset_registry.pid() == pid


def test_invalid_config_is_refused_before_it_is_written(ansible, tmp_path):
    root = tmp_path / 'root'
    variables = run_role_vars(root, 5000,
                              buildset_registry_username='')
    result = ansible.playbook('run.yaml', variables, expect_failure=True)
    assert 'registry.users[0].name' in result.output
    assert not (root / 'registry.yaml').exists()
    assert not (root / 'registry.pid').exists()


def test_changed_config_restarts_the_registry(ansible, tmp_path):
    root = tmp_path / 'root'
    registry = start_registry(ansible, root)
    try:
        first_pid = registry.pid()
        password = registry.facts['password']
        variables = dict(registry.variables, buildset_registry_username='ci')
        result = ansible.playbook('run.yaml', variables)
        assert result.changed > 0
        assert registry.pid() != first_pid
        with open(variables['test_fact_file']) as f:
            facts = json.load(f)
        # The password is kept across runs; only the user name changed.
        assert facts['username'] == 'ci'
        assert facts['password'] == password
    finally:
        stop_registry(root)


def _answers(host, port, cafile):
    try:
        name = '[%s]' % host if ':' in host else host
        return get('https://%s:%d/v2/' % (name, port), cafile)[0]
    except (urllib.error.URLError, OSError) as error:
        return error


def test_default_address_serves_ipv4_and_ipv6(ansible, tmp_path):
    if not socket.has_ipv6:
        pytest.skip('no IPv6 here')
    root = tmp_path / 'root'
    # None: the role's default listen address, '::'.
    registry = start_registry(ansible, root, buildset_registry_address=None)
    try:
        cafile = str(tmp_path / 'ca.pem')
        with open(cafile, 'w') as f:
            f.write(registry.facts['cert'])
        assert _answers('::1', registry.port, cafile) == 401, (
            registry.log_text())
        # asyncio makes a '::' socket IPv6-only; the server must bind
        # IPv4 beside it.
        assert _answers('127.0.0.1', registry.port, cafile) == 401, (
            registry.log_text())
    finally:
        stop_registry(root)
