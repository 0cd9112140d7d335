"""run-buildset-registry's container mode, with a fake container engine
(tests/roles/fake_container_engine.py) that runs the "image" as this
checkout's server on the host."""

import json
import os
import stat
import sys

from tests.roles import fake_container_engine
from tests.roles.conftest import start_registry
from tests.roles.conftest import stop_registry

HERE = os.path.dirname(os.path.abspath(__file__))


def test_container_mode_runs_and_restarts_the_image(ansible, tmp_path):
    engine_dir = tmp_path / 'engine'
    engine_dir.mkdir()
    engine = tmp_path / 'fake-podman'
    engine.write_text('#!/bin/sh\nexec %s %s "$@"\n' % (
        sys.executable, os.path.join(HERE, 'fake_container_engine.py')))
    engine.chmod(engine.stat().st_mode | stat.S_IXUSR)
    ansible.env['FAKE_ENGINE_DIR'] = str(engine_dir)
    root = tmp_path / 'root'

    def calls():
        with open(engine_dir / 'calls.jsonl') as f:
            return [json.loads(line) for line in f]

    def container_pid():
        with open(engine_dir / 'buildset_registry.json') as f:
            return json.load(f)['pid']

    registry = start_registry(
        ansible, root, buildset_registry_container_command=str(engine),
        buildset_registry_image='example.org/zuul-registry:test')
    try:
        made = calls()
        config = str(root / 'registry.yaml')
        # check-config ran in the image, on the file before it was put
        # in place.
        check = next(call for call in made if '--rm' in call)
        assert check[-3:] == ['-c', '/etc/zuul-registry-check.yaml',
                              'check-config']
        assert 'example.org/zuul-registry:test' in check
        run = next(call for call in made if '--detach' in call)
        assert run[:8] == ['run', '--detach', '--name', 'buildset_registry',
                           '--network', 'host', '--volume',
                           '%s:%s:z' % (root, root)]
        assert run[8:] == ['example.org/zuul-registry:test',
                           'zuul-registry', '-d', '-c', config, 'serve']
        assert not (root / 'venv').exists()
        first_pid = container_pid()

        # Unchanged: nothing happens. Changed: the container restarts.
        variables = dict(registry.variables)
        del variables['test_fact_file']
        assert ansible.playbook('run.yaml', variables).changed == 0
        assert container_pid() == first_pid
        variables['buildset_registry_username'] = 'other'
        before = len(calls())
        assert ansible.playbook('run.yaml', variables).changed > 0
        assert ['restart', 'buildset_registry'] in calls()[before:]
        assert container_pid() != first_pid
    finally:
        if os.path.exists(engine_dir / 'buildset_registry.json'):
            fake_container_engine.STATE = str(engine_dir)
            fake_container_engine.stop('buildset_registry')
        stop_registry(root)
