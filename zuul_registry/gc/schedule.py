"""Pruning on a schedule inside `serve` (`prune-interval`), so that an
intermediate registry needs no cron job.

Every server runs its own schedule (with `workers`, in its first worker
only: the others would repeat the same work); prunes overlapping, in one
process or several, are safe (see zuul_registry/prune.py), and a random
spread of the interval keeps them from starting in step.
"""

import asyncio
import logging
import random

from zuul_registry.prune import prune

log = logging.getLogger('zuul_registry.gc.schedule')


def scheduled_prune(config, storage_key):
    """An aiohttp cleanup context running prune every interval."""
    async def context(app):
        task = asyncio.create_task(_loop(config, app, storage_key))
        yield
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
    return context


async def _loop(config, app, storage_key):
    while True:
        await asyncio.sleep(config.prune_interval *
                            random.uniform(0.9, 1.1))
        try:
            summary = await prune(config, app[storage_key].driver)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception('Scheduled prune failed; trying again in %ds',
                          config.prune_interval)
        else:
            log.info('Scheduled prune: %s', summary)
