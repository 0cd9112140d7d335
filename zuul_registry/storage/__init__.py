"""Registry semantics over a driver: no HTTP here."""

from zuul_registry.storage.blobs import Blobs
from zuul_registry.storage.manifests import Manifests
from zuul_registry.storage.namespaces import Namespaces
from zuul_registry.storage.uploads import Uploads


class Storage:
    """Everything the API needs, bound to one driver."""

    def __init__(self, driver, namespaces=None):
        self.driver = driver
        self.namespaces = namespaces or Namespaces()
        self.blobs = Blobs(driver)
        self.uploads = Uploads(driver, self.blobs)
        self.manifests = Manifests(driver, self.blobs)

    async def close(self):
        await self.driver.close()
