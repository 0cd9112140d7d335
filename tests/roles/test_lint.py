"""ansible-lint, production profile, over roles/ and playbooks/."""

import os
import subprocess
import sys

from tests.roles.conftest import REPO_ROOT
from tests.roles.conftest import program
from tests.roles.conftest import require


def test_ansible_lint_is_clean():
    require('ansible-lint')
    result = subprocess.run(
        [program('ansible-lint'), '--nocolor', 'roles', 'playbooks'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        stdin=subprocess.DEVNULL, env=dict(
            os.environ, PATH=os.pathsep.join([
                os.path.dirname(sys.executable), os.environ.get('PATH', '')])))
    assert result.returncode == 0, result.stdout + result.stderr
