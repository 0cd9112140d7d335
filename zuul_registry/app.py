"""make_app(config): the aiohttp application, wired but not started."""

import logging

from aiohttp import web

from zuul_registry.api import (access, access_log, base, errors, metrics,
                               routes)
from zuul_registry.auth import Auth
from zuul_registry.drivers.filesystem import FilesystemDriver
from zuul_registry.gc.schedule import scheduled_prune
from zuul_registry.storage import Storage
from zuul_registry.storage.namespaces import Namespaces

log = logging.getLogger('zuul_registry.app')


def _swift_driver(storage_config):
    # Imported here: python-swiftclient is loaded only when Swift is used.
    from zuul_registry.drivers.swift import SwiftDriver
    return SwiftDriver.from_config(storage_config)


def _s3_driver(storage_config):
    # Imported here: boto3 is loaded only when S3 is used.
    from zuul_registry.drivers.s3 import S3Driver
    return S3Driver.from_config(storage_config)


DRIVERS = {
    'filesystem': lambda storage_config: FilesystemDriver(
        storage_config.root),
    'swift': _swift_driver,
    's3': _s3_driver,
}


def make_driver(storage_config):
    return DRIVERS[storage_config.driver](storage_config)


def make_pullthrough(config, storage, *, fill_directory=None):
    """The pull-through overlay over `storage`, one client per upstream;
    blob fills shared through `fill_directory` (a path) with the other
    workers of this server."""
    # Imported here: the upstream client is loaded only when it is used.
    from zuul_registry.storage.fill_sharing import FillDirectory
    from zuul_registry.storage.pullthrough import PullThrough, UpstreamSource
    from zuul_registry.upstream.client import UpstreamRegistry
    upstreams = {}
    for upstream in config.upstreams:
        client = UpstreamRegistry(
            upstream.url, username=upstream.username,
            password=upstream.password, ca=upstream.ca,
            manifest_size_limit=config.manifest_size_limit)
        namespace = upstream.namespace if config.namespaced else None
        upstreams[namespace] = UpstreamSource(client, tags=upstream.tags)
    return PullThrough(storage, upstreams, fill_directory=fill_directory
                       and FillDirectory(fill_directory))


async def _close_auth(app):
    app[base.AUTH].close()   # its bcrypt threads


def make_app(config, *, driver=None, fill_directory=None,
             metrics_directory=None):
    """Build the application; the driver is opened on startup.

    Pass `driver` to use one the caller made (tests do); the workers of
    one server pass the directories in which they share pull-through
    fills and metrics.  The handler
    arguments hold for every server of the app, test servers included:
    bodies reach handlers exactly as sent (no Content-Encoding is
    decoded: blobs are stored and hashed as the client sent them, as
    CNCF Distribution does), and the access log redacts query values;
    so do the JSON answers to requests aiohttp refuses before routing.
    """
    app = web.Application(
        middlewares=[metrics.metrics_middleware, errors.error_middleware,
                     access.access_middleware],
        handler_args={'auto_decompress': False,
                      'access_log_class': access_log.AccessLogger})
    namespaces = Namespaces(namespaced=config.namespaced,
                            default_namespace=config.default_namespace)
    app[base.CONFIG] = config
    app[base.AUTH] = Auth(config, namespaces)
    app.on_cleanup.append(_close_auth)
    app.on_response_prepare.append(errors.add_api_version)
    errors.answer_refused_in_json(app)
    routes.add_routes(app)

    async def storage_context(app):
        storage = Storage(driver or make_driver(config.storage), namespaces)
        try:
            await storage.driver.open()
        except Exception:
            await storage.close()
            raise
        if config.upstreams:
            storage.pullthrough = make_pullthrough(
                config, storage, fill_directory=fill_directory)
        app[base.STORAGE] = storage
        yield
        await storage.close()

    app.cleanup_ctx.append(storage_context)
    if config.prune_interval:
        app.cleanup_ctx.append(scheduled_prune(config, base.STORAGE))
    metrics.install(app, config, shared_directory=metrics_directory)
    return app
