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


# Secrets. Zuul binds an encrypted value only through a ``secret``
# definition that a job lists under ``secrets``; a secret is available to
# the playbooks of the job that lists it, and to its parents' playbooks only
# with ``pass-to-parent: true``. An encrypted value under ``vars`` is an
# error in Zuul. The project's own jobs leave the secret to a site: the jobs
# whose playbooks cannot run without ``intermediate_registry`` are
# abstract, and playbooks/README.md shows how a site plugs its secret in.

SECRET_VARIABLE = 'intermediate_registry'
SECRET_ROLES = ('push-to-intermediate-registry',
                'pull-from-intermediate-registry')


class Encrypted(str):
    """A ``!encrypted/...`` value as Zuul's loader would see it."""


class ZuulLoader(yaml.SafeLoader):
    pass


def _encrypted(loader, suffix, node):
    if isinstance(node, yaml.SequenceNode):
        return Encrypted(''.join(loader.construct_sequence(node)))
    return Encrypted(loader.construct_scalar(node))


ZuulLoader.add_multi_constructor('!encrypted/', _encrypted)


def encrypted_values(node, path=''):
    if isinstance(node, Encrypted):
        yield path
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from encrypted_values(value, '%s.%s' % (path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from encrypted_values(value, '%s[%d]' % (path, index))


def readme_zuul_examples():
    """The Zuul configuration in playbooks/README.md: every yaml block
    that is a list of Zuul configuration items."""
    with open(os.path.join(REPO_ROOT, 'playbooks', 'README.md')) as f:
        text = f.read()
    items = []
    for block in re.findall(r'^```yaml\n(.*?)^```', text,
                            re.MULTILINE | re.DOTALL):
        loaded = yaml.load(block, Loader=ZuulLoader)
        if isinstance(loaded, list) and all(
                isinstance(item, dict) and len(item) == 1
                and next(iter(item)) in ('job', 'secret', 'project')
                for item in loaded):
            items.extend(loaded)
    return items


def vars_sections(items):
    """(where, vars) for every job and project-pipeline job vars."""
    for item in items:
        if 'job' in item:
            job = item['job']
            for key in ('vars', 'extra-vars', 'host-vars', 'group-vars'):
                if key in job:
                    yield 'job %s %s' % (job['name'], key), job[key]
        if 'project' in item:
            project = item['project']
            if 'vars' in project:
                yield 'project vars', project['vars']
            for pipeline, value in project.items():
                if not isinstance(value, dict):
                    continue
                for entry in value.get('jobs', []):
                    if isinstance(entry, dict):
                        for name, attributes in entry.items():
                            for key in ('vars', 'extra-vars'):
                                if key in (attributes or {}):
                                    yield ('%s %s %s' % (pipeline, name, key),
                                           attributes[key])


def playbook_needs_secret(playbook_path):
    """Whether a playbook runs a role that needs intermediate_registry
    without a ``when`` that skips it when the variable is undefined."""
    with open(playbook_path) as f:
        plays = yaml.safe_load(f)
    for play in plays:
        for task in play.get('tasks', []) + play.get('roles', []):
            if isinstance(task, str):
                role, when = task, []
            elif 'role' in task:
                role, when = task['role'], task.get('when', [])
            else:
                include = (task.get('ansible.builtin.include_role')
                           or task.get('include_role') or {})
                role, when = include.get('name'), task.get('when', [])
            when = when if isinstance(when, list) else [when]
            if role in SECRET_ROLES and not any(
                    '%s is defined' % SECRET_VARIABLE in str(condition)
                    for condition in when):
                return True
    return False


def jobs_using_secret_variable():
    """Our jobs with a playbook that uses intermediate_registry at all."""
    used = set()
    for name, job in jobs().items():
        for playbook in playbooks_of(job):
            with open(os.path.join(REPO_ROOT, playbook)) as f:
                text = f.read()
            if SECRET_VARIABLE in text or any(
                    role in text for role in SECRET_ROLES):
                used.add(name)
    return used


def test_no_encrypted_value_under_vars():
    for source in (zuul_config(), readme_zuul_examples()):
        for where, variables in vars_sections(source):
            assert list(encrypted_values(variables)) == [], where


def test_jobs_that_need_the_secret_are_abstract():
    """A job whose playbooks fail without intermediate_registry cannot run
    as it is: a site's child job must pass its secret to it."""
    for name, job in jobs().items():
        needs = any(playbook_needs_secret(os.path.join(REPO_ROOT, playbook))
                    for playbook in playbooks_of(job))
        if needs:
            assert job.get('abstract') is True, name
            assert 'pass-to-parent' in job.get('description', ''), name


def test_jobs_that_may_take_the_secret_say_how():
    for name in jobs_using_secret_variable():
        description = jobs()[name].get('description', '')
        assert SECRET_VARIABLE in description, name
        assert 'pass-to-parent' in description, name


def test_secrets_in_zuul_yaml_are_bound_as_zuul_binds_them():
    """No secret definitions of a site in the project's zuul.yaml; any
    job's secrets are names or name/secret pairs."""
    for item in zuul_config():
        assert 'secret' not in item
        if 'job' in item:
            for entry in item['job'].get('secrets', []):
                assert isinstance(entry, str) or {'name', 'secret'} <= set(
                    entry), item['job']['name']


def test_readme_plugs_the_secret_in_with_pass_to_parent():
    """The README's example: a secret definition with the intermediate
    registry's fields (the password encrypted), and a child job of one of
    our jobs that uses it, passing it to the parent's playbooks under the
    name the roles read."""
    items = readme_zuul_examples()
    secrets = {item['secret']['name']: item['secret'] for item in items
               if 'secret' in item}
    assert secrets, 'no secret definition in playbooks/README.md'
    for secret in secrets.values():
        data = secret['data']
        assert {'host', 'username', 'password'} <= set(data)
        assert isinstance(data['password'], Encrypted)

    ours = jobs()
    users = jobs_using_secret_variable()
    children = [item['job'] for item in items if 'job' in item
                and item['job'].get('parent') in users]
    assert children, 'no example job passes the secret to our jobs'
    for job in children:
        entries = [entry for entry in job.get('secrets', [])
                   if isinstance(entry, dict)
                   and entry.get('name') == SECRET_VARIABLE]
        assert entries, job['name']
        for entry in entries:
            assert entry['secret'] in secrets, job['name']
            # The parent's playbooks use it: only pass-to-parent lets them.
            assert entry.get('pass-to-parent') is True, job['name']
        assert job['parent'] in ours
    # Every example job with secrets and no playbooks of its own passes
    # them on: otherwise no playbook could see them.
    for item in items:
        job = item.get('job')
        if job and job.get('secrets') and not list(playbooks_of(job)):
            for entry in job['secrets']:
                assert isinstance(entry, dict) and entry.get(
                    'pass-to-parent') is True, job['name']
