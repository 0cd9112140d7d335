"""The catalog: which repositories exist.

A repository is a directory under a namespace's _repositories tree that
has one of the reserved children paths.REPOSITORY_PARTS; the catalog
walks the tree to find them.  With namespaces on, the namespaces are
found through their markers (the driver cannot list the root of the
tree), which `remember` writes the first time a process links a blob
into a namespace.
"""

import logging

from zuul_registry import oci
from zuul_registry.storage import paths

log = logging.getLogger('zuul_registry.storage.catalog')


class Catalog:

    def __init__(self, driver, namespaces):
        self.driver = driver
        self.namespaces = namespaces
        self._remembered = set()   # namespaces whose marker we wrote

    async def remember(self, namespace):
        """Note that `namespace` holds repositories (once per process)."""
        if namespace is None or namespace in self._remembered:
            return
        await self.driver.put(paths.namespace_marker(namespace), b'')
        self._remembered.add(namespace)
        log.debug('Namespace %s noted in the catalog', namespace)

    async def namespaces_stored(self):
        """Every namespace with storage: [None] when namespaces are off."""
        if not self.namespaces.namespaced:
            return [None]
        return [name for name in await self.driver.list(
            paths.NAMESPACE_MARKERS) if oci.HOST_RE.fullmatch(name)]

    async def names_in(self, namespace):
        """The names of the repositories of one namespace, unprefixed."""
        return await self._walk(namespace, '')

    async def repositories(self):
        """Every repository name; prefixed by its namespace if namespaced.

        Sorted by the driver's order within each directory; callers sort
        the whole list as they need.
        """
        names = []
        for namespace in await self.namespaces_stored():
            prefix = '' if namespace is None else namespace + '/'
            names.extend(prefix + name
                         for name in await self.names_in(namespace))
        return names

    async def _walk(self, namespace, name):
        tree = paths.repository(namespace, name) if name \
            else paths.repositories(namespace)
        children = await self.driver.list(tree)
        found = []
        if name and any(child in paths.REPOSITORY_PARTS
                        for child in children):
            found.append(name)
        for child in children:
            # Reserved and driver-private names are no name components.
            if oci.NAME_RE.fullmatch(child):
                found.extend(await self._walk(
                    namespace, '%s/%s' % (name, child) if name else child))
        return found
