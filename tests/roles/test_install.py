"""The role's default install: this checkout, copied to the node and
installed into a virtualenv, which then runs the registry (and the TLS
module, which needs the cryptography package installed beside it)."""

import os
import subprocess

from tests.roles.conftest import start_registry
from tests.roles.conftest import stop_registry


def test_default_install_runs_the_registry_from_a_virtualenv(ansible,
                                                             tmp_path):
    root = tmp_path / 'root'
    # None: the role's defaults for installing and running the server.
    registry = start_registry(ansible, root, buildset_registry_install=None,
                              buildset_registry_python=None)
    try:
        venv = root / 'venv'
        with open('/proc/%d/cmdline' % registry.pid(), 'rb') as f:
            argv = f.read().split(b'\0')
        assert argv[0] == str(venv / 'bin' / 'python').encode()
        result = subprocess.run(
            [str(venv / 'bin' / 'python'), '-c',
             'import zuul_registry; print(zuul_registry.__file__)'],
            capture_output=True, text=True, cwd=str(tmp_path),
            env=dict(os.environ, PYTHONPATH=''))
        # Installed into the virtualenv, not a link back to the checkout.
        assert result.stdout.startswith(str(venv)), result
        variables = dict(registry.variables)
        del variables['test_fact_file']
        again = ansible.playbook('run.yaml', variables)
        assert again.changed == 0, again.output
    finally:
        stop_registry(root)
