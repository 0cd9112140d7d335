"""Import the roles' custom modules as plain Python modules.

A role's modules import their helpers as ``ansible.module_utils.NAME``;
Ansible finds them in the role's module_utils directory. Here the same
files are registered under those names first.
"""

import importlib.util
import os
import sys

from tests.roles.conftest import ROLES

UTILS = os.path.join(ROLES, 'use-buildset-registry', 'module_utils')
LIBRARIES = {
    'buildset_registry_tls': 'run-buildset-registry',
    'buildset_registry_process': 'run-buildset-registry',
    'containers_registries_conf': 'use-buildset-registry',
    'buildkitd_toml': 'use-buildset-registry',
    'registry_json_config': 'use-buildset-registry',
    'containerd_hosts_toml': 'use-buildset-registry',
}


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def module_util(name):
    full = 'ansible.module_utils.' + name
    if full not in sys.modules:
        _load(full, os.path.join(UTILS, name + '.py'))
    return sys.modules[full]


def library(name):
    module_util('toml_text')
    module_util('config_file')
    full = 'zuul_registry_test_library.' + name
    if full not in sys.modules:
        _load(full, os.path.join(ROLES, LIBRARIES[name], 'library',
                                 name + '.py'))
    return sys.modules[full]
