"""make_app(config): the aiohttp application, wired but not started."""

import logging

from aiohttp import web

from zuul_registry.api import base, errors, routes
from zuul_registry.drivers.filesystem import FilesystemDriver
from zuul_registry.storage import Storage

log = logging.getLogger('zuul_registry.app')

DRIVERS = {
    'filesystem': lambda storage_config: FilesystemDriver(
        storage_config.root),
}


def make_driver(storage_config):
    return DRIVERS[storage_config.driver](storage_config)


def make_app(config, *, driver=None):
    """Build the application; the driver is opened on startup.

    Pass `driver` to use one the caller made (tests do).
    """
    app = web.Application(middlewares=[errors.error_middleware])
    app[base.CONFIG] = config
    app.on_response_prepare.append(errors.add_api_version)
    routes.add_routes(app)

    async def storage_context(app):
        storage = Storage(driver or make_driver(config.storage),
                          namespaced=config.namespaced,
                          default_namespace=config.default_namespace)
        app[base.STORAGE] = storage
        yield
        await storage.close()

    app.cleanup_ctx.append(storage_context)
    return app
