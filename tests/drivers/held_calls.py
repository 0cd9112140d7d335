"""Races with one step held: a module's function made to wait, at a
chosen call, until the test lets it go on."""

import asyncio


def hold_calls(monkeypatch, module, name, count, *, after=()):
    """Hold each of the first `count` calls of `module`.`name` until its
    event in the returned list is set (call n: release[n]), before the
    real call, or after it for the call numbers in `after`; started[n]
    is set once call n is held.  Later calls go straight through."""
    real = getattr(module, name)
    started = [asyncio.Event() for _ in range(count)]
    release = [asyncio.Event() for _ in range(count)]
    calls = []

    async def held(*args, **kwargs):
        number = len(calls)
        calls.append(args)
        if number >= len(release):
            return await real(*args, **kwargs)
        if number in after:
            result = await real(*args, **kwargs)
        started[number].set()
        await release[number].wait()
        return result if number in after else await real(*args, **kwargs)
    monkeypatch.setattr(module, name, held)
    return started, release


def hold_first_call(monkeypatch, module, name):
    """Hold the first call of `module`.`name`, before it runs: the events
    (started, release)."""
    started, release = hold_calls(monkeypatch, module, name, 1)
    return started[0], release[0]


async def moves_both_ways(driver, started, release):
    """Move ns/a to ns/q, with the step whose first call is held by
    (started, release) held while ns/q moves back to ns/a whole; the
    paths that hold the object afterwards."""
    await driver.put('ns/a', b'small blob')
    there = asyncio.ensure_future(driver.move('ns/a', 'ns/q'))
    await started.wait()
    await driver.move('ns/q', 'ns/a')
    release.set()
    await there
    return [path for path in ('ns/a', 'ns/q')
            if await driver.stat(path) is not None]
