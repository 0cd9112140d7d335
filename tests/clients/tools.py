"""Run skopeo, podman and buildah against test registries, isolated.

Every client reads its configuration from files under one temporary
directory, never from /etc or the user's home:

* ``CONTAINERS_REGISTRIES_CONF``: a registries.conf this module writes
  (no search registries, so a short name can never reach the network);
* ``CONTAINERS_STORAGE_CONF`` plus explicit ``--root``/``--runroot``/
  ``--storage-driver vfs`` flags: image storage under the temp directory;
* ``CONTAINERS_CONF``: podman's engine settings (temp dir, no event log);
* ``REGISTRY_AUTH_FILE``: an empty auth file;
* ``HOME`` and the ``XDG_*`` directories, so nothing falls back to ~/.config;
  the signature policy is ``$HOME/.config/containers/policy.json`` and is
  also passed to skopeo with ``--policy``.

The test registries speak plain HTTP on loopback, so every client is told not
to verify TLS (``--tls-verify=false`` and friends); with that flag the
clients also accept a plain-HTTP registry.
"""

import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request

import pytest

TIMEOUT = 120

MANIFEST_TYPES = ', '.join([
    'application/vnd.oci.image.index.v1+json',
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.docker.distribution.manifest.list.v2+json',
    'application/vnd.docker.distribution.manifest.v2+json',
])


class CommandFailed(AssertionError):
    pass


def require_tools(*names):
    """Skip the calling test unless every named program is installed."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        pytest.skip('not installed: %s' % ', '.join(missing))


class Layout:
    """An OCI layout on disk and the image (or index) written into it."""

    def __init__(self, path, tag, image):
        self.path = path
        self.tag = tag
        self.image = image

    @property
    def ref(self):
        return 'oci:%s:%s' % (self.path, self.tag)


class ContainerTools:

    def __init__(self, base):
        self.base = os.path.abspath(base)
        self.home = self._dir('home')
        self.storage_root = self._dir('storage', 'root')
        # podman refuses a runroot path longer than 50 characters (it holds
        # sockets), and pytest's tmp_path is longer: a short dir of its own.
        self.storage_runroot = tempfile.mkdtemp(prefix='zr-run-')
        self.registries_conf = os.path.join(self.base, 'registries.conf')
        self.storage_conf = os.path.join(self.base, 'storage.conf')
        self.containers_conf = os.path.join(self.base, 'containers.conf')
        self.auth_file = os.path.join(self.base, 'auth.json')
        self.policy = os.path.join(self.home, '.config', 'containers',
                                   'policy.json')
        self._write_files()
        self.env = self._environment()

    def _dir(self, *parts):
        path = os.path.join(self.base, *parts)
        os.makedirs(path, exist_ok=True)
        return path

    def _write_files(self):
        os.makedirs(os.path.dirname(self.policy), exist_ok=True)
        with open(self.policy, 'w') as f:
            json.dump({'default': [{'type': 'insecureAcceptAnything'}]}, f)
        with open(self.auth_file, 'w') as f:
            json.dump({'auths': {}}, f)
        # vfs: the sandbox has no overlay mounts, and vfs is plain
        # directories, so the whole store lives (and dies) in our temp dir.
        with open(self.storage_conf, 'w') as f:
            f.write('[storage]\ndriver = "vfs"\ngraphroot = %s\n'
                    'runroot = %s\n' % (_toml(self.storage_root),
                                        _toml(self.storage_runroot)))
        # podman keeps its engine state and network config (lock files
        # only, for pull/push) under /run and /etc unless told otherwise.
        with open(self.containers_conf, 'w') as f:
            f.write('[engine]\ntmp_dir = %s\nevents_logger = "none"\n\n'
                    '[network]\nnetwork_backend = "netavark"\n'
                    'network_config_dir = %s\n'
                    % (_toml(self._dir('libpod-tmp')),
                       _toml(self._dir('networks'))))
        self.write_registries_conf()

    def _environment(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(('CONTAINERS_', 'XDG_', 'REGISTRY_'))}
        env.update(
            HOME=self.home,
            XDG_CONFIG_HOME=os.path.join(self.home, '.config'),
            XDG_DATA_HOME=self._dir('home', '.local', 'share'),
            XDG_RUNTIME_DIR=self._dir('xdg-runtime'),
            TMPDIR=self._dir('tmp'),
            CONTAINERS_REGISTRIES_CONF=self.registries_conf,
            CONTAINERS_STORAGE_CONF=self.storage_conf,
            CONTAINERS_CONF=self.containers_conf,
            REGISTRY_AUTH_FILE=self.auth_file,
        )
        return env

    def write_registries_conf(self, registries=()):
        """Write registries.conf.

        ``registries`` is a list of dicts with ``prefix``, ``location``,
        optional ``insecure`` and optional ``mirrors`` (a list of dicts
        with ``location`` and ``insecure``).
        """
        lines = ['unqualified-search-registries = []', '']
        for registry in registries:
            lines.append('[[registry]]')
            for key in ('prefix', 'location', 'insecure'):
                if key in registry:
                    lines.append('%s = %s' % (key, _toml(registry[key])))
            for mirror in registry.get('mirrors', ()):
                lines.append('[[registry.mirror]]')
                for key, value in mirror.items():
                    lines.append('%s = %s' % (key, _toml(value)))
            lines.append('')
        with open(self.registries_conf, 'w') as f:
            f.write('\n'.join(lines))
        return self.registries_conf

    def write_mirror_conf(self, prefix, mirror_location):
        """``prefix`` is served by an insecure (plain HTTP) mirror only."""
        return self.write_registries_conf([{
            'prefix': prefix, 'location': prefix,
            'mirrors': [{'location': mirror_location, 'insecure': True}],
        }])

    # -- running the clients -----------------------------------------------

    def run(self, *cmd, timeout=TIMEOUT, check=True):
        result = subprocess.run(
            [str(c) for c in cmd], env=self.env, cwd=self.base,
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=timeout)
        if check and result.returncode != 0:
            raise CommandFailed('%s exited %d\nstdout:\n%s\nstderr:\n%s' % (
                ' '.join(map(str, cmd)), result.returncode, result.stdout,
                result.stderr))
        return result

    def skopeo(self, *args, **kw):
        return self.run('skopeo', '--policy', self.policy, *args, **kw)

    def _storage_flags(self):
        return ['--root', self.storage_root, '--runroot',
                self.storage_runroot, '--storage-driver', 'vfs']

    def podman(self, *args, **kw):
        return self.run('podman', *self._storage_flags(), *args, **kw)

    def buildah(self, *args, **kw):
        return self.run('buildah', *self._storage_flags(), *args, **kw)

    def inspect_raw(self, reference):
        """The manifest bytes a registry serves for ``docker://`` refs."""
        result = self.skopeo('inspect', '--raw', '--tls-verify=false',
                             reference)
        return result.stdout.encode()

    def inspect(self, reference, *extra):
        result = self.skopeo('inspect', '--tls-verify=false', *extra,
                             reference)
        return json.loads(result.stdout)

    def cleanup(self):
        """Remove containers and images, then the whole directory."""
        for tool in ('podman', 'buildah'):
            if shutil.which(tool) is None:
                continue
            try:
                if tool == 'podman':
                    self.podman('system', 'reset', '--force', check=False,
                                timeout=60)
                else:
                    self.buildah('rm', '--all', check=False, timeout=60)
                    self.buildah('rmi', '--all', '--force', check=False,
                                 timeout=60)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.storage_runroot, ignore_errors=True)
        shutil.rmtree(self.base, ignore_errors=True)


def registry_get(url, *, accept=MANIFEST_TYPES, method='GET'):
    """(status, headers, body) of one request, without raising on 4xx."""
    request = urllib.request.Request(url, method=method,
                                     headers={'Accept': accept})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def _toml(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    # A JSON string is a valid TOML basic string for these values.
    return json.dumps(str(value))
