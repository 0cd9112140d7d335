"""The filter `buildset_registry_namespace_names`: the namespaces of
`buildset_registry_namespaces` in either of the forms zuul-jobs users
write, checked before the role writes any file.

Accepted items: a registry host ("quay.io", "registry.example.com:5000"),
or a pair whose first item is the host and whose second is the upstream
URL (zuul-jobs' form: ``[docker.io, https://registry-1.docker.io]``);
this role mirrors the host, the URL is not needed.  Anything else stops
the play with the offending item named.

Also `buildset_registry_ip_address` (the host as an IP address, or '' for
a host name) and `buildset_registry_host_port` (``HOST:PORT``, an IPv6
address in brackets).
"""

import ipaddress
import re

from ansible.errors import AnsibleFilterError

# Dot-separated lower-case labels and an optional port, as the registry's
# namespace grammar (zuul_registry/oci.py HOST_RE) has them.
_LABEL = r'[a-z0-9](?:[a-z0-9-]*[a-z0-9])?'
_HOST = re.compile(r'%s(?:\.%s)*(?::[0-9]{1,5})?' % (_LABEL, _LABEL))


def namespace_names(namespaces):
    if isinstance(namespaces, (str, bytes)) or not isinstance(
            namespaces, (list, tuple)):
        raise AnsibleFilterError(
            'buildset_registry_namespaces must be a list, not %r'
            % (namespaces,))
    names = []
    for index, item in enumerate(namespaces):
        name = item
        if isinstance(item, (list, tuple)):
            if len(item) != 2 or not all(isinstance(part, str)
                                         for part in item) or \
                    not item[1].startswith(('https://', 'http://')):
                raise AnsibleFilterError(
                    'buildset_registry_namespaces[%d]: a pair must be '
                    '[registry host, upstream URL], not %r' % (index, item))
            name = item[0]
        if not isinstance(name, str) or not _valid_host(name):
            raise AnsibleFilterError(
                'buildset_registry_namespaces[%d]: %r is not a registry '
                'host such as docker.io or registry.example.com:5000'
                % (index, item))
        if name not in names:
            names.append(name)
    return names


def _valid_host(name):
    match = _HOST.fullmatch(name)
    if not match:
        return False
    port = name.rpartition(':')[2] if ':' in name else None
    return port is None or (not port.startswith('0') and
                            0 < int(port) <= 65535)


def ip_address(host):
    """The registry host as an IP address (IPv6 without brackets), or ''
    when it is a host name; zuul-jobs names every IP host by its alias."""
    text = str(host)
    if text.startswith('[') and text.endswith(']'):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return ''


def host_port(host, port):
    """``HOST:PORT`` as clients write it: IPv6 addresses in brackets."""
    address = ip_address(host)
    if address and ':' in address:
        return '[%s]:%s' % (address, port)
    return '%s:%s' % (address or host, port)


class FilterModule:
    def filters(self):
        return {'buildset_registry_namespace_names': namespace_names,
                'buildset_registry_ip_address': ip_address,
                'buildset_registry_host_port': host_port}
