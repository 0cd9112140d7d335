"""zuul.yaml names only playbooks and roles that exist."""

import os
import re

import yaml

from tests.roles.conftest import REPO_ROOT

PLAYBOOK_KEYS = ('pre-run', 'run', 'post-run', 'cleanup-run')


def zuul_config():
    with open(os.path.join(REPO_ROOT, 'zuul.yaml')) as f:
        return yaml.safe_load(f)


def jobs():
    return {item['job']['name']: item['job'] for item in zuul_config()
            if 'job' in item}


def playbooks_of(job):
    for key in PLAYBOOK_KEYS:
        value = job.get(key, [])
        for entry in value if isinstance(value, list) else [value]:
            yield entry['name'] if isinstance(entry, dict) else entry


def named_playbooks():
    return sorted({playbook for job in jobs().values()
                   for playbook in playbooks_of(job)})


def roles_in(playbook_path):
    """Every role a playbook names: roles:, include_role, import_role."""
    with open(playbook_path) as f:
        plays = yaml.safe_load(f)
    names = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ('include_role', 'import_role',
                           'ansible.builtin.include_role',
                           'ansible.builtin.import_role'):
                    names.add(value['name'])
                elif key == 'roles':
                    for role in value:
                        names.add(role['role'] if isinstance(role, dict)
                                  else role)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(plays)
    return names


def test_every_playbook_named_exists():
    missing = [playbook for playbook in named_playbooks()
               if not os.path.isfile(os.path.join(REPO_ROOT, playbook))]
    assert named_playbooks() and missing == []


def test_every_role_the_playbooks_use_exists():
    used = set()
    for playbook in named_playbooks():
        used |= roles_in(os.path.join(REPO_ROOT, playbook))
    missing = [role for role in sorted(used)
               if not os.path.isdir(os.path.join(REPO_ROOT, 'roles', role))]
    assert missing == []


def test_playbooks_under_playbooks_use_existing_roles():
    directory = os.path.join(REPO_ROOT, 'playbooks')
    for dirpath, _, files in os.walk(directory):
        for name in files:
            if name.endswith('.yaml'):
                for role in roles_in(os.path.join(dirpath, name)):
                    assert os.path.isdir(os.path.join(
                        REPO_ROOT, 'roles', role)), (name, role)


def test_parents_and_pipeline_jobs_are_defined():
    defined = jobs()
    for job in defined.values():
        assert job.get('parent', 'base') in set(defined) | {'base'}
    project = next(item['project'] for item in zuul_config()
                   if 'project' in item)
    for pipeline in ('check', 'gate'):
        for entry in project[pipeline]['jobs']:
            name = entry if isinstance(entry, str) else next(iter(entry))
            assert name in defined, (pipeline, name)


def test_files_matchers_match_something():
    tree = []
    for dirpath, dirnames, files in os.walk(REPO_ROOT):
        dirnames[:] = [d for d in dirnames if not d.startswith('.')
                       and d not in ('build', '__pycache__')
                       and not d.endswith('.egg-info')]
        tree.extend(os.path.relpath(os.path.join(dirpath, name), REPO_ROOT)
                    for name in files)
    tree.extend(name for name in os.listdir(REPO_ROOT)
                if name.startswith('.') and os.path.isfile(
                    os.path.join(REPO_ROOT, name)))
    for name, job in jobs().items():
        for matcher in job.get('files', []):
            pattern = re.compile(matcher)
            assert any(pattern.match(path) for path in tree), (name, matcher)
