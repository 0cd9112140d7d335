"""Races with one step held: a module's function made to wait, at a
chosen call, until the test lets it go on."""

import asyncio

from zuul_registry.drivers import copy_moves


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


async def moves_both_ways(driver, hold, *, write=None):
    """Move ns/a to ns/q with one of its steps held, and while it is held
    move ns/q back to ns/a whole; the paths that hold the object after.

    `hold()` is called once ns/a is written (by `write(driver, path)`,
    else a small put) and holds the step: it returns (started, release)
    events, as hold_first_call does."""
    if write is None:
        await driver.put('ns/a', b'small blob')
    else:
        await write(driver, 'ns/a')
    started, release = hold()
    there = asyncio.ensure_future(driver.move('ns/a', 'ns/q'))
    await asyncio.wait([there, asyncio.ensure_future(started.wait())],
                       return_when=asyncio.FIRST_COMPLETED)
    assert not there.done(), 'the move never reached the held step: %r' % (
        there.exception(),)
    await driver.move('ns/q', 'ns/a')
    release.set()
    await there
    return [path for path in ('ns/a', 'ns/q')
            if await driver.stat(path) is not None]


def hold_after_first(monkeypatch, target, name):
    """hold_first_call, but the first call is held once it has run."""
    started, release = hold_calls(monkeypatch, target, name, 1, after=(0,))
    return started[0], release[0]


# The steps of a move at which the opposite-moves tests hold it.
MOVE_STEPS = ('published', 'deleted')


def hold_move_step(monkeypatch, driver, step, delete_method):
    """Hold a move of `driver` at `step`: 'published', once the
    destination is published and before the source is removed (the order
    in which the online prune lost a blob before copy_moves: the move
    back deleted the destination, then this move its source); 'deleted',
    once its source is deleted (by the driver's `delete_method`) and
    before it looks at the destination again."""
    if step == 'published':
        return hold_first_call(monkeypatch, copy_moves, 'remove_source')
    return hold_after_first(monkeypatch, driver, delete_method)
