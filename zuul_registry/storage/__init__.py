"""Registry semantics over a driver: no HTTP here."""

from zuul_registry.storage.blobs import Blobs
from zuul_registry.storage.catalog import Catalog
from zuul_registry.storage.manifests import Manifests
from zuul_registry.storage.namespaces import Namespaces
from zuul_registry.storage.provenance import Provenance
from zuul_registry.storage.referrers import Referrers
from zuul_registry.storage.uploads import Uploads


class Storage:
    """Everything the API needs, bound to one driver."""

    def __init__(self, driver, namespaces=None):
        self.driver = driver
        self.namespaces = namespaces or Namespaces()
        self.catalog = Catalog(driver, self.namespaces)
        self.blobs = Blobs(driver, catalog=self.catalog)
        self.uploads = Uploads(driver, self.blobs)
        self.referrers = Referrers(driver)
        self.manifests = Manifests(driver, self.blobs, self.referrers)
        # storage.pullthrough.PullThrough when upstreams are configured.
        self.pullthrough = None
        self.provenance = Provenance(driver)

    async def close(self):
        if self.pullthrough is not None:
            await self.pullthrough.close()
        await self.provenance.close()
        await self.driver.close()
