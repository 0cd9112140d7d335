"""Health checks for load balancers and supervisors, without credentials.

GET /healthz: the process answers (liveness).  Always 200.
GET /readyz: the process can serve (readiness): a small object is
written to storage, read back and removed.  The result is kept for
READY_CACHE seconds, so a load balancer polling every second costs one
round trip per few seconds, not one per poll.  A storage that fails
turns the answer into 503 with the reason, instead of every request
failing with 500; it turns ready again by itself once storage works.
"""

import asyncio
import logging
import os
import re
import socket
import time
import uuid

from aiohttp import web

from zuul_registry.api import base
from zuul_registry.storage import paths

log = logging.getLogger('zuul_registry.api.health')

READY_CACHE = 3.0
READY_TIMEOUT = 10.0
PATHS = ('/healthz', '/readyz')
_STATE = web.AppKey('readiness', object)


class _Readiness:

    def __init__(self):
        # One probe object per process: processes sharing the storage
        # never remove each other's.
        host = re.sub(r'[^A-Za-z0-9.-]', '-', socket.gethostname())[:60]
        self.probe = paths.health_probe('%s-%d-%s' % (
            host or 'host', os.getpid(), uuid.uuid4().hex[:8]))
        self.checked = float('-inf')
        self.problem = None
        self.lock = asyncio.Lock()

    async def check(self, storage):
        async with self.lock:
            if time.monotonic() - self.checked < READY_CACHE:
                return self.problem
            try:
                await asyncio.wait_for(self._round_trip(storage.driver),
                                       READY_TIMEOUT)
                problem = None
            except asyncio.TimeoutError:
                problem = 'storage did not answer within %ds' % READY_TIMEOUT
            except Exception as e:
                problem = 'storage failed: %s' % (str(e)[:300] or
                                                  type(e).__name__)
            if problem != self.problem:
                (log.warning if problem else log.info)(
                    'Readiness: %s', problem or 'storage works again')
            self.problem = problem
            self.checked = time.monotonic()
            return problem

    async def _round_trip(self, driver):
        data = str(time.time()).encode('ascii')
        await driver.put(self.probe, data)
        if await driver.get(self.probe) != data:
            raise RuntimeError('storage returned other bytes than written')
        await driver.delete(self.probe)


async def healthz(request):
    return web.json_response({'status': 'ok'})


async def readyz(request):
    problem = await request.app[_STATE].check(base.storage(request))
    if problem:
        return web.json_response({'status': 'not ready', 'reason': problem},
                                 status=503)
    return web.json_response({'status': 'ready'})


def add_routes(app):
    app[_STATE] = _Readiness()
    app.router.add_get('/healthz', healthz)
    app.router.add_get('/readyz', readyz)
