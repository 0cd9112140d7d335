"""Run the Ansible roles for real: ansible-playbook, connection local.

Every file a role writes goes under a temporary directory: the tests pass
each path variable (``use_buildset_registry_*``, ``buildset_registry_root``)
and never touch /etc or the home directory. The registry runs as a daemon
(the role's path for hosts without systemd) with this interpreter, which
has the checkout installed, so no virtualenv is built except by the one
test of the install step.

``zuul_return`` is the test stand-in in ``plugins/action``: it appends what
it is given to ``ZUUL_RETURN_RECORD``.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from tests.server_process import free_port  # noqa: E402

ROLES = os.path.join(REPO_ROOT, 'roles')
PLAYBOOKS = os.path.join(HERE, 'playbooks')
RUN_LIBRARY = os.path.join(ROLES, 'run-buildset-registry', 'library')
USE_LIBRARY = os.path.join(ROLES, 'use-buildset-registry', 'library')
USE_MODULE_UTILS = os.path.join(ROLES, 'use-buildset-registry',
                                'module_utils')
RECAP = re.compile(r'^\S+\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)'
                   r'\s+failed=(\d+)', re.MULTILINE)
TIMEOUT = 600


def program(name):
    """The path of a program: beside this interpreter first (a virtualenv
    that is not activated), then on PATH; None if there is none."""
    beside = os.path.join(os.path.dirname(sys.executable), name)
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which(name)


def require(*programs):
    missing = [name for name in programs if program(name) is None]
    if missing:
        pytest.skip('not installed: %s' % ', '.join(missing))


class PlaybookResult:

    def __init__(self, process, args):
        self.returncode = process.returncode
        self.output = process.stdout + process.stderr
        self.args = args
        match = RECAP.search(process.stdout)
        self.ok, self.changed, self.unreachable, self.failed = (
            tuple(int(n) for n in match.groups()) if match
            else (0, 0, 0, 0))

    def __repr__(self):
        return '<ansible-playbook %s: rc=%d changed=%d failed=%d>' % (
            ' '.join(self.args), self.returncode, self.changed, self.failed)


class Ansible:
    """ansible-playbook against localhost, with a private environment."""

    def __init__(self, base):
        self.base = str(base)
        os.makedirs(os.path.join(self.base, 'tmp'), exist_ok=True)
        self.inventory = os.path.join(self.base, 'inventory')
        with open(self.inventory, 'w') as f:
            # become: the roles use it for system files; the tests run as
            # the user who owns the temporary directory, with no sudo.
            f.write('localhost ansible_connection=local '
                    'ansible_python_interpreter=%s ansible_become=false\n'
                    % sys.executable)
        self.zuul_return_record = os.path.join(self.base, 'zuul_return.jsonl')
        self.env = dict(
            os.environ,
            ANSIBLE_ROLES_PATH=ROLES,
            ANSIBLE_ACTION_PLUGINS=os.path.join(HERE, 'plugins', 'action'),
            ANSIBLE_LIBRARY=os.pathsep.join([RUN_LIBRARY, USE_LIBRARY]),
            ANSIBLE_MODULE_UTILS=USE_MODULE_UTILS,
            ANSIBLE_LOCAL_TEMP=os.path.join(self.base, 'tmp'),
            ANSIBLE_REMOTE_TEMP=os.path.join(self.base, 'tmp'),
            ANSIBLE_NOCOLOR='1',
            ANSIBLE_FORCE_COLOR='0',
            ANSIBLE_RETRY_FILES_ENABLED='0',
            ANSIBLE_DEPRECATION_WARNINGS='0',
            ANSIBLE_PYTHON_INTERPRETER=sys.executable,
            ZUUL_RETURN_RECORD=self.zuul_return_record,
        )
        self.env.pop('ANSIBLE_CONFIG', None)
        # Only zuul_job() names a job directory: the stand-in zuul_return
        # must never write into a real one.
        self.env.pop('ZUUL_JOBDIR', None)
        self._count = 0

    def playbook(self, playbook, variables, *, check=False, diff=False,
                 expect_failure=False):
        self._count += 1
        vars_file = os.path.join(self.base, 'vars-%d.json' % self._count)
        with open(vars_file, 'w') as f:
            json.dump(variables, f)
        os.chmod(vars_file, 0o600)
        require('ansible-playbook')
        # Several playbooks run in one ansible-playbook, sharing facts.
        playbooks = [playbook] if isinstance(playbook, str) else playbook
        args = [program('ansible-playbook'), '-i', self.inventory, '-e',
                '@' + vars_file] + [os.path.join(PLAYBOOKS, name)
                                    for name in playbooks]
        if check:
            args.append('--check')
        if diff:
            args.append('--diff')
        process = subprocess.run(
            args, env=self.env, cwd=self.base, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=TIMEOUT)
        result = PlaybookResult(process, args[5:])
        if expect_failure:
            assert result.returncode != 0, result.output
        else:
            assert result.returncode == 0, result.output
        return result

    def module(self, module, args, *, check=False, diff=False):
        """Run one module ad hoc; return its JSON result."""
        require('ansible')
        command = [program('ansible'), 'localhost', '-i', self.inventory, '-m',
                   module, '-a', json.dumps(args)]
        if check:
            command.append('--check')
        if diff:
            command.append('--diff')
        process = subprocess.run(
            command, env=self.env,
            cwd=self.base, stdin=subprocess.DEVNULL, capture_output=True,
            text=True, timeout=TIMEOUT)
        # "localhost | STATUS => {json}", after the diff if any.
        text = process.stdout
        if '=>' not in text:
            raise AssertionError('no result from %s:\n%s%s' % (
                module, process.stdout, process.stderr))
        status, result = text.split('=>', 1)
        result = json.loads(result.strip())
        result['failed'] = 'FAILED' in status
        # Everything printed, a diff included.
        result['_output'] = process.stdout + process.stderr
        return result

    def zuul_returns(self):
        try:
            with open(self.zuul_return_record) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []


def run_role_vars(root, port, *, fact_file=None, **extra):
    """Variables that run run-buildset-registry fast and in ``root``."""
    variables = dict(
        buildset_registry_root=str(root),
        buildset_registry_port=port,
        buildset_registry_host='127.0.0.1',
        # The role's default '::' must also serve IPv4; see
        # test_run_role.py::test_default_address_serves_ipv4_and_ipv6.
        buildset_registry_address='127.0.0.1',
        buildset_registry_install=False,
        buildset_registry_python=sys.executable,
        buildset_registry_service_manager='daemon',
        buildset_registry_debug=True,
        buildset_registry_start_timeout=30,
    )
    if fact_file:
        variables['test_fact_file'] = str(fact_file)
    variables.update(extra)
    # None removes a variable: the role's default applies.
    return {key: value for key, value in variables.items()
            if value is not None}


class Registry:
    """A registry started by the run role; ``facts`` is buildset_registry."""

    def __init__(self, root, port, facts, first_run):
        self.root = str(root)
        self.port = port
        self.facts = facts
        self.first_run = first_run

    @property
    def host_port(self):
        return '127.0.0.1:%d' % self.port

    @property
    def log_path(self):
        return os.path.join(self.root, 'registry.log')

    def log_offset(self):
        return os.path.getsize(self.log_path)

    def log_text(self, since=0):
        with open(self.log_path, 'rb') as f:
            f.seek(since)
            return f.read().decode('utf-8', 'replace')

    def pid(self):
        with open(os.path.join(self.root, 'registry.pid')) as f:
            return int(f.read())


def stop_registry(root):
    """SIGTERM the daemon the role started in ``root`` and wait for it."""
    try:
        with open(os.path.join(str(root), 'registry.pid')) as f:
            pid = int(f.read())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with open('/proc/%d/stat' % pid) as f:
                if f.read().rsplit(')', 1)[1].split()[0] in 'ZX':
                    return
        except (OSError, IndexError):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def start_registry(ansible, root, *, zuul=None, **extra):
    """Run the run role; return the Registry (stopped by the caller)."""
    require('ansible-playbook')
    port = free_port()
    fact_file = os.path.join(ansible.base, 'fact-%d.json' % port)
    variables = run_role_vars(root, port, fact_file=fact_file, **extra)
    if zuul is not None:
        variables['zuul'] = zuul
    try:
        result = ansible.playbook('run.yaml', variables)
    except BaseException:
        stop_registry(root)
        raise
    with open(fact_file) as f:
        facts = json.load(f)
    registry = Registry(root, port, facts, result)
    registry.variables = variables
    return registry


@pytest.fixture(scope='session')
def session_ansible(tmp_path_factory):
    return Ansible(tmp_path_factory.mktemp('ansible'))


@pytest.fixture
def ansible(tmp_path):
    return Ansible(tmp_path / 'ansible')


@pytest.fixture(scope='session')
def buildset_registry(session_ansible, tmp_path_factory):
    """One registry for the session, started by the run role under a
    fake Zuul (so the role also calls zuul_return)."""
    root = tmp_path_factory.mktemp('buildset-registry')
    registry = start_registry(session_ansible, root,
                              zuul={'build': 'session-build'})
    registry.ansible = session_ansible
    yield registry
    stop_registry(root)


def hosts_file_argv(hosts_file, argv):
    """``argv`` run with ``hosts_file`` bind-mounted over /etc/hosts, in a
    mount namespace of its own (the machine's /etc/hosts is untouched)."""
    return ['unshare', '-m', '--propagation', 'private', '--', 'sh', '-c',
            'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts_file)] + [
                str(arg) for arg in argv]


def use_role_vars(root, registry_facts, **extra):
    """Variables that make use-buildset-registry write under ``root``."""
    root = str(root)
    variables = dict(
        buildset_registry=registry_facts,
        use_buildset_registry_hosts_file=root + '/etc/hosts',
        use_buildset_registry_ca_dir=root + '/usr/local/share/ca-certificates',
        use_buildset_registry_ca_update_command=[
            sys.executable, '-c',
            'open(%r, "a").write("updated\\n")' % (root + '/ca-updates')],
        use_buildset_registry_docker_certs_dir=root + '/etc/docker/certs.d',
        use_buildset_registry_containers_certs_dir=(
            root + '/etc/containers/certs.d'),
        use_buildset_registry_containerd_certs_dir=(
            root + '/etc/containerd/certs.d'),
        use_buildset_registry_docker_daemon_json=(
            root + '/etc/docker/daemon.json'),
        use_buildset_registry_registries_conf=(
            root + '/etc/containers/registries.conf'),
        use_buildset_registry_buildkitd_toml=(
            root + '/etc/buildkit/buildkitd.toml'),
        use_buildset_registry_docker_config=root + '/home/.docker/config.json',
        use_buildset_registry_kubelet_config=(
            root + '/var/lib/kubelet/config.json'),
        use_buildset_registry_containers_auth=(
            root + '/home/.config/containers/auth.json'),
        use_buildset_registry_restart_services=False,
    )
    variables.update(extra)
    return variables


def zuul_job(ansible, jobdir, **zuul):
    """Play the playbooks ``ansible`` runs next as one Zuul job's: the
    zuul_return stand-in keeps ``JOBDIR/work/results.json`` as the executor
    does, and the returned ``zuul`` variable names it as
    ``zuul.executor.result_data_file`` (with ``work_root``), beside the
    other items given (build, artifacts, ...)."""
    work = os.path.join(str(jobdir), 'work')
    os.makedirs(work, exist_ok=True)
    ansible.env['ZUUL_JOBDIR'] = str(jobdir)
    variable = dict(zuul)
    variable['executor'] = dict(
        work_root=work, result_data_file=os.path.join(work, 'results.json'))
    return variable
