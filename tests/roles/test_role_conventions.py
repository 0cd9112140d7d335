"""The zuul-jobs role conventions: every variable has a default and is
documented; every custom module is documented and supports check mode."""

import ast
import glob
import os
import re

import pytest
import yaml

from tests.roles.conftest import ROLES

ROLE_NAMES = sorted(os.listdir(ROLES))
# Variables the caller must give (no default), per role.
INPUTS = {
    'run-buildset-registry': set(),
    'use-buildset-registry': {'buildset_registry'},
    'push-to-intermediate-registry': {'buildset_registry',
                                      'intermediate_registry'},
    'pull-from-intermediate-registry': {'buildset_registry',
                                        'intermediate_registry'},
}
RETURNS = {'run-buildset-registry': {'buildset_registry',
                                      'buildset_registry_started'}}
PREFIXES = ('buildset_registry_', 'use_buildset_registry_',
            'push_to_intermediate_registry_',
            'pull_from_intermediate_registry_')


def defaults(role):
    with open(os.path.join(ROLES, role, 'defaults', 'main.yaml')) as f:
        return set(yaml.safe_load(f) or {})


def documented(role):
    with open(os.path.join(ROLES, role, 'README.rst')) as f:
        return set(re.findall(r'^\.\. zuul:rolevar:: (\S+)', f.read(),
                              re.MULTILINE))


def referenced(role):
    names = set()
    for path in glob.glob(os.path.join(ROLES, role, '*', '*')):
        if path.endswith(('.yaml', '.j2')):
            with open(path) as f:
                # Not YAML anchors (&name, *name).
                names |= set(re.findall(r'(?<![&*\w])((?:%s)\w*)' % '|'.join(
                    PREFIXES), f.read()))
    modules = {os.path.basename(path)[:-3] for path in glob.glob(
        os.path.join(ROLES, role, 'library', '*.py'))}
    return names - modules


def test_all_roles_are_checked():
    assert set(ROLE_NAMES) == set(INPUTS)


@pytest.mark.parametrize('role', ROLE_NAMES)
def test_every_variable_is_documented_and_has_a_default(role):
    assert defaults(role) - documented(role) == set()
    assert documented(role) - defaults(role) == (
        INPUTS[role] | RETURNS.get(role, set()))


@pytest.mark.parametrize('role', ROLE_NAMES)
def test_every_variable_used_has_a_default(role):
    used = (referenced(role) - {'buildset_registry_'}
            - RETURNS.get(role, set()))
    # Variables of another role the tasks only read from its output.
    missing = {name for name in used - defaults(role)
               if not name.startswith('buildset_registry')
               or role == 'run-buildset-registry'}
    assert missing == set()


MODULES = sorted(glob.glob(os.path.join(ROLES, '*', 'library', '*.py')))


@pytest.mark.parametrize('path', MODULES, ids=os.path.basename)
def test_custom_modules_are_documented_and_support_check_mode(path):
    with open(path) as f:
        source = f.read()
    tree = ast.parse(source)
    assigned = {target.id for node in tree.body
                if isinstance(node, ast.Assign)
                for target in node.targets if isinstance(target, ast.Name)}
    assert {'DOCUMENTATION', 'EXAMPLES', 'RETURN'} <= assigned
    namespace = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id in (
                'DOCUMENTATION', 'RETURN'):
            exec(compile(ast.Module([node], []), path, 'exec'), namespace)
    documentation = yaml.safe_load(namespace['DOCUMENTATION'])
    assert documentation['module'] == os.path.basename(path)[:-3]
    assert 'check mode' in ' '.join(documentation['description']).lower()
    yaml.safe_load(namespace['RETURN'])
    assert 'supports_check_mode=True' in source
    name = os.path.basename(path)[:-3]
    tests = glob.glob(os.path.join(os.path.dirname(__file__),
                                   'test_module_*.py'))
    assert any(name in open(test).read() for test in tests), (
        'no unit test for ' + name)
