"""`append` and `freeze` (drivers/base.py), for every driver.

Drivers that cannot append (can_append false) refuse `append` and answer
`freeze` with the object's Stat; the others grow objects in place.
"""

import asyncio

import pytest

from zuul_registry.drivers.base import AppendConflict, ObjectNotFound
from tests.drivers.test_contract import chunks_of, failing_after, read_all


@pytest.fixture
def appender(driver):
    if not driver.can_append:
        pytest.skip('%s cannot append' % type(driver).__name__)
    return driver


async def stored(driver, path):
    return b''.join(await read_all(driver, path))


async def test_a_driver_that_cannot_append_says_so(driver):
    await driver.put('ns/a', b'abc')
    if driver.can_append:
        assert await driver.append('ns/a', chunks_of(b'd'), offset=3) == 4
    else:
        with pytest.raises(NotImplementedError):
            await driver.append('ns/a', chunks_of(b'd'), offset=3)
    assert (await driver.freeze('ns/a')).size == (4 if driver.can_append
                                                  else 3)
    with pytest.raises(ObjectNotFound):
        await driver.freeze('ns/missing')


async def test_append_adds_at_the_end(appender):
    await appender.put('ns/a', b'abc')
    assert await appender.append('ns/a', chunks_of(b'de', b'f'),
                                 offset=3) == 6
    assert await appender.append('ns/a', chunks_of(b'g'), offset=6) == 7
    assert await stored(appender, 'ns/a') == b'abcdefg'
    assert (await appender.stat('ns/a')).size == 7


async def test_append_at_another_size_changes_nothing(appender):
    await appender.put('ns/a', b'abc')
    for offset in (0, 2, 4):
        with pytest.raises(AppendConflict):
            await appender.append('ns/a', chunks_of(b'x'), offset=offset)
    assert await stored(appender, 'ns/a') == b'abc'


async def test_append_to_a_missing_object_is_not_found(appender):
    with pytest.raises(ObjectNotFound):
        await appender.append('ns/missing', chunks_of(b'x'), offset=0)
    assert await appender.stat('ns/missing') is None


async def test_a_failed_append_leaves_the_object_as_it_was(appender):
    await appender.put('ns/a', b'abc')
    with pytest.raises(RuntimeError):
        await appender.append('ns/a', failing_after(b'de', b'f'), offset=3)
    assert await stored(appender, 'ns/a') == b'abc'
    assert await appender.append('ns/a', chunks_of(b'd'), offset=3) == 4


async def test_a_frozen_object_takes_no_more_bytes(appender):
    await appender.put('ns/a', b'abc')
    found = await appender.freeze('ns/a')
    assert found.size == 3
    with pytest.raises(AppendConflict):
        await appender.append('ns/a', chunks_of(b'd'), offset=3)
    assert (await appender.freeze('ns/a')).size == 3   # again: the same
    assert await stored(appender, 'ns/a') == b'abc'
    # Replacing the object makes a new one, open to appends.
    await appender.put('ns/a', b'xy')
    assert await appender.append('ns/a', chunks_of(b'z'), offset=2) == 3


async def test_appends_and_freezes_exclude_each_other(appender):
    await appender.put('ns/a', b'abc')
    started, release = asyncio.Event(), asyncio.Event()

    async def slow():
        yield b'd'
        started.set()
        await release.wait()
        yield b'e'

    first = asyncio.create_task(appender.append('ns/a', slow(), offset=3))
    await started.wait()
    # The size the second writer read still holds, but the first has the
    # object: refused at once, not queued behind it.
    with pytest.raises(AppendConflict):
        await appender.append('ns/a', chunks_of(b'x'), offset=3)
    with pytest.raises(AppendConflict):
        await appender.freeze('ns/a')
    release.set()
    assert await first == 5
    assert await stored(appender, 'ns/a') == b'abcde'
    assert (await appender.freeze('ns/a')).size == 5


async def test_a_frozen_object_is_handed_over_whole(appender):
    await appender.put('ns/upload/0', b'abc')
    await appender.append('ns/upload/0', chunks_of(b'def'), offset=3)
    await appender.freeze('ns/upload/0')
    await appender.concat('ns/blob', ['ns/upload/0'], consume=True)
    assert await stored(appender, 'ns/blob') == b'abcdef'
    assert await appender.stat('ns/upload/0') is None
    with pytest.raises(ObjectNotFound):
        await appender.append('ns/upload/0', chunks_of(b'x'), offset=6)


async def test_an_append_or_write_can_leave_the_object_frozen(appender):
    await appender.put('ns/a', b'abc')
    assert await appender.append('ns/a', chunks_of(b'de'), offset=3,
                                 freeze=True) == 5
    with pytest.raises(AppendConflict):
        await appender.append('ns/a', chunks_of(b'f'), offset=5)
    assert await appender.write('ns/b', chunks_of(b'xy'), exclusive=True,
                                frozen=True) == 2
    with pytest.raises(AppendConflict):
        await appender.append('ns/b', chunks_of(b'z'), offset=2)
    assert await stored(appender, 'ns/a') == b'abcde'
    assert await stored(appender, 'ns/b') == b'xy'
