"""Swift credentials: tempauth (v1), Keystone v3, or a cloud in clouds.yaml.

Each function returns the keywords for swiftclient.Connection.  Keystone
goes through a keystoneauth1 session, shared by all connections, which
fetches the token and finds the object-store endpoint in the catalog.
"""

import os

import yaml

from zuul_registry.drivers import base

CLOUDS_FILES = ('clouds.yaml', '~/.config/openstack/clouds.yaml',
                '/etc/openstack/clouds.yaml')
SECURE_FILES = ('secure.yaml', '~/.config/openstack/secure.yaml',
                '/etc/openstack/secure.yaml')


def connection_options(storage):
    """swiftclient.Connection keywords for a validated StorageConfig."""
    if storage.cloud:
        return cloud_options(storage.cloud, region_name=storage.region_name)
    if storage.auth_version == 1:
        return {'authurl': storage.auth_url, 'user': storage.user,
                'key': storage.key, 'auth_version': '1'}
    return keystone_options(
        'password', {
            'auth_url': storage.auth_url, 'username': storage.username,
            'password': storage.password,
            'project_name': storage.project_name,
            'user_domain_name': storage.user_domain_name or 'Default',
            'project_domain_name': storage.project_domain_name or 'Default',
        }, region_name=storage.region_name)


def keystone_options(auth_type, auth, *, region_name=None,
                     interface='public'):
    from keystoneauth1 import loading, session
    loader = loading.get_plugin_loader(auth_type)
    plugin = loader.load_from_options(**auth)
    return {'session': session.Session(auth=plugin),
            'os_options': {'service_type': 'object-store',
                           'endpoint_type': interface,
                           'region_name': region_name}}


def cloud_options(name, *, region_name=None, environ=None):
    """Keywords for the cloud `name` of clouds.yaml (and secure.yaml)."""
    environ = os.environ if environ is None else environ
    clouds_files = ([environ['OS_CLIENT_CONFIG_FILE']]
                    if environ.get('OS_CLIENT_CONFIG_FILE') else CLOUDS_FILES)
    clouds_file, clouds = _first_yaml(clouds_files)
    if name not in clouds:
        raise base.DriverError('cloud %r not found in %s' % (
            name, clouds_file or ', '.join(clouds_files)))
    cloud = _merge(clouds[name], _first_yaml(SECURE_FILES)[1].get(name, {}))
    auth = dict(cloud.get('auth') or {})
    auth_type = cloud.get('auth_type', 'password')
    if auth_type in ('v1password', 'v1'):
        return {'authurl': auth.get('auth_url'), 'user': auth.get('username'),
                'key': auth.get('password'), 'auth_version': '1'}
    regions = cloud.get('regions') or []
    region = region_name or cloud.get('region_name') or (
        _region_name(regions[0]) if regions else None)
    return keystone_options(auth_type, auth, region_name=region,
                            interface=cloud.get('interface', 'public'))


def _region_name(region):
    return region.get('name') if isinstance(region, dict) else region


def _first_yaml(names):
    for name in names:
        path = os.path.expanduser(name)
        if os.path.exists(path):
            with open(path, 'rb') as f:
                data = yaml.safe_load(f) or {}
            return path, data.get('clouds') or {}
    return None, {}


def _merge(base_value, override):
    if isinstance(base_value, dict) and isinstance(override, dict):
        merged = dict(base_value)
        for key, value in override.items():
            merged[key] = _merge(merged.get(key), value)
        return merged
    return override if override is not None else base_value
