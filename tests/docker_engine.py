"""A private docker engine for tests, and the ``docker`` CLI that talks to it.

:class:`DockerEngine` starts ``dockerd`` (Debian's ``docker.io``) with its data
root, exec root, socket and pid file under one short temporary directory, in
a mount namespace of its own (``unshare -m``) where a directory of the test
is bind-mounted over ``/etc/docker`` (and, when given, a file of the test over
``/etc/hosts``). So the daemon reads the test's
``daemon.json`` and ``certs.d/HOST:PORT/ca.crt`` at their real paths, as on
a CI node, while the machine's own ``/etc/docker`` is never read or written.

The engine runs without iptables and without a bridge: containers use
``--network host``. Storage is ``vfs`` (plain copies, no overlay mounts).
The CLI gets a ``DOCKER_CONFIG`` of its own (``config.json`` with the
credentials of ``docker login``).
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

ETC_DOCKER = '/etc/docker'


def docker_available():
    return docker_unavailable_reason() is None


def docker_unavailable_reason():
    """Why no private engine can run here (a skip reason), or None."""
    missing = [name for name in ('dockerd', 'unshare')
               if not shutil.which(name)]
    if not docker_cli():
        missing.append('docker')
    if missing:
        return ('not installed: %s (tools/test.sh installs docker.io)'
                % ', '.join(missing))
    if os.geteuid() != 0:
        return 'dockerd and unshare -m need root'
    return None


def docker_cli():
    """The CLI from the docker.io package when installed, else any."""
    if os.access('/usr/bin/docker', os.X_OK):
        return '/usr/bin/docker'
    return shutil.which('docker')


class DockerError(Exception):
    pass


class DockerEngine:
    """A dockerd of its own; ``etc_dir`` stands for ``/etc/docker``."""

    def __init__(self, directory, *, daemon_json=None, hosts_file=None):
        self.directory = os.fspath(directory)
        # A file bind-mounted over /etc/hosts for the daemon, for names
        # such as a role's registry alias.
        self.hosts_file = os.fspath(hosts_file) if hosts_file else None
        self.etc_dir = os.path.join(self.directory, 'etc-docker')
        self.client_config = os.path.join(self.directory, 'client')
        self.log_path = os.path.join(self.directory, 'dockerd.log')
        os.makedirs(self.etc_dir, exist_ok=True)
        os.makedirs(self.client_config, exist_ok=True)
        # Unix socket paths must stay under 108 bytes.
        self.run_dir = tempfile.mkdtemp(prefix='dk-')
        self.socket = os.path.join(self.run_dir, 'docker.sock')
        self.pidfile = os.path.join(self.run_dir, 'docker.pid')
        self.process = None
        self._log = None
        if daemon_json is not None:
            self.write_daemon_json(daemon_json)

    @property
    def daemon_json_path(self):
        return os.path.join(self.etc_dir, 'daemon.json')

    @property
    def certs_dir(self):
        return os.path.join(self.etc_dir, 'certs.d')

    def write_daemon_json(self, settings):
        with open(self.daemon_json_path, 'w') as f:
            json.dump(settings, f)

    def trust(self, host_port, ca_pem):
        """Trust ``ca_pem`` for ``host_port`` as /etc/docker/certs.d does."""
        directory = os.path.join(self.certs_dir, host_port)
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, 'ca.crt'), 'w') as f:
            f.write(ca_pem)

    @property
    def env(self):
        env = dict(os.environ)
        env['DOCKER_HOST'] = 'unix://' + self.socket
        env['DOCKER_CONFIG'] = self.client_config
        env.pop('DOCKER_TLS_VERIFY', None)
        env.pop('DOCKER_CERT_PATH', None)
        return env

    def start(self, *, timeout=60):
        if not os.path.isdir(ETC_DOCKER):
            os.makedirs(ETC_DOCKER, exist_ok=True)
        dockerd = [
            'dockerd',
            '--data-root', os.path.join(self.run_dir, 'data'),
            '--exec-root', os.path.join(self.run_dir, 'exec'),
            '-H', 'unix://' + self.socket,
            '--pidfile', self.pidfile,
            '--iptables=false', '--ip6tables=false', '--bridge=none',
            '--storage-driver=vfs',
        ]
        # unshare and sh both exec: the process we start is dockerd itself.
        script = 'mount --bind "$0" %s' % ETC_DOCKER
        if self.hosts_file:
            script += ' && mount --bind "$1" /etc/hosts'
        script += ' && shift && exec "$@"'
        argv = ['unshare', '-m', '--propagation', 'private', '--',
                'sh', '-c', script, self.etc_dir,
                self.hosts_file or '/etc/hosts'] + dockerd
        self._log = open(self.log_path, 'ab')
        self.process = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DockerError('dockerd exited with %s:\n%s'
                                  % (self.process.returncode, self.log()))
            if os.path.exists(self.socket):
                result = subprocess.run(
                    [docker_cli(), 'version', '--format',
                     '{{.Server.Version}}'],
                    env=self.env, capture_output=True, text=True)
                if result.returncode == 0:
                    return self
            time.sleep(0.2)
        self.stop()
        raise DockerError('dockerd did not answer within %ss:\n%s'
                          % (timeout, self.log()))

    def stop(self, *, timeout=30):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self):
        """Stop and start again, as a node restarts docker after a change
        to daemon.json."""
        self.stop()
        return self.start()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, errors='replace') as f:
                return f.read()[-4000:]
        except OSError:
            return ''

    def run(self, *args, check=True, input=None, timeout=300):
        """Run ``docker ARGS`` against this engine."""
        result = subprocess.run(
            [docker_cli()] + [str(a) for a in args], env=self.env,
            capture_output=True, text=True, input=input, timeout=timeout)
        if check and result.returncode != 0:
            raise DockerError('docker %s failed (%s):\n%s\n%s'
                              % (' '.join(map(str, args)), result.returncode,
                                 result.stdout, result.stderr))
        return result

    def login(self, host_port, username, password, *, check=True):
        return self.run('login', '--username', username, '--password-stdin',
                        host_port, input=password, check=check)

    def load(self, archive):
        """``docker load -i ARCHIVE``; the names it loaded."""
        result = self.run('load', '-i', archive)
        return [line.split(':', 1)[1].strip()
                for line in result.stdout.splitlines()
                if line.startswith('Loaded image')]

    def image_id(self, reference):
        """The image's ID (its config digest), or None if there is none."""
        result = self.run('image', 'inspect', '--format', '{{.Id}}',
                          reference, check=False)
        return result.stdout.strip() if result.returncode == 0 else None

    def repo_digests(self, reference):
        """The ``NAME@DIGEST`` entries docker recorded for the image."""
        result = self.run('image', 'inspect', '--format',
                          '{{json .RepoDigests}}', reference)
        return json.loads(result.stdout)

    def write_client_auths(self, auths):
        """Replace the CLI's ``auths`` in config.json (other keys stay)."""
        path = os.path.join(self.client_config, 'config.json')
        config = {}
        if os.path.exists(path):
            with open(path) as f:
                config = json.load(f)
        config['auths'] = auths
        with open(path, 'w') as f:
            json.dump(config, f)
        os.chmod(path, 0o600)

    def client_auths(self):
        path = os.path.join(self.client_config, 'config.json')
        if not os.path.exists(path):
            return {}
        with open(path) as f:
            return json.load(f).get('auths', {})

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
