"""Coordination inside one driver instance, for the remote drivers."""

import asyncio
import contextlib


class Once:
    """An async setup (create the bucket or container, read the server's
    limits) run once however many callers wait for it; if it fails, the
    next call tries again."""

    def __init__(self, setup):
        self._setup = setup
        self._task = None

    async def __call__(self):
        if self._task is None:
            self._task = asyncio.ensure_future(self._setup())
        try:
            await asyncio.shield(self._task)
        except Exception:
            self._task = None
            raise


class PathLocks:
    """One asyncio lock per path, kept only while someone holds or waits
    for it: an exclusive write checks and writes under it."""

    def __init__(self):
        self._locks = {}   # path -> [lock, users]

    @contextlib.asynccontextmanager
    async def hold(self, path):
        entry = self._locks.setdefault(path, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if not entry[1]:
                del self._locks[path]
