"""What only the Swift driver promises about hand-overs and leftovers:
consumed parts' segments are referred to, not copied; collection takes
exactly the sets no manifest needs, and never one being handed over.

Runs against the shared one-node Swift of swift_server; each test has a
container of its own.
"""

import asyncio
import time

import pytest

from tests.drivers import swift_server
from tests.drivers.held_calls import (
    MOVE_STEPS, hold_calls, hold_first_call, hold_move_step,
    moves_both_ways)
from tests.drivers.test_consume import write_chunks
from tests.drivers.test_contract import chunks_of
from tests.drivers.test_swift import make_driver, manifest, names, swift
from zuul_registry.drivers import swift_handover
from zuul_registry.drivers.base import ObjectNotFound

__all__ = ['make_driver', 'swift']   # fixtures


def segment_set(name):
    return name.rsplit('/', 1)[0]


async def test_consumed_segments_are_referred_to_not_copied(make_driver,
                                                            swift):
    driver, scratch = make_driver(segment_size=4, join_under=3)
    parts = await write_chunks(driver, 'ns/upload', [b'0123456789',
                                                     b'abcdefgh'])
    written = [manifest(swift, driver.container, part) for part in parts]
    assert [[size for _, size, _ in m] for m in written] == [[4, 4, 2],
                                                             [4, 4]]
    await driver.concat('ns/blob', parts, consume=True)
    blob = manifest(swift, driver.container, 'ns/blob')
    assert [size for _, size, _ in blob] == [4, 4, 2, 4, 4]
    # The 4-byte segments are the parts' own; the 2 bytes were copied.
    for index in (0, 1, 3, 4):
        assert blob[index][0] == (written[0] + written[1])[index][0]
    assert segment_set(blob[2][0]) not in {segment_set(name) for m in written
                                           for name, _, _ in m}
    assert await driver.list('ns') == ['blob']
    # Nothing else is left: no part, no copied-from segment; only the
    # claims of the sets handed over, which stay with them.
    claims = sorted({segment_set(name) + '/claim'
                     for m in written for name, _, _ in m})
    assert sorted(names(swift, driver.container)) == sorted(
        ['ns/blob'] + [name for name, _, _ in blob] + claims)
    await driver.delete('ns/upload')
    assert await driver.get('ns/blob') == b'0123456789abcdefgh'
    await driver.delete('ns/blob')
    assert names(swift, driver.container) == claims
    assert scratch() == claims
    assert await driver.collect_leftovers(before=time.time() + 60)
    assert names(swift, driver.container) == []


async def test_consumed_segments_nest_past_the_segment_limit(make_driver,
                                                             swift):
    driver, scratch = make_driver(segment_size=4, join_under=1)
    pieces = [bytes([65 + n]) * 16 for n in range(3)]   # 4 segments each
    parts = await write_chunks(driver, 'ns/upload', pieces)
    await driver.concat('ns/blob', parts, consume=True)
    top = manifest(swift, driver.container, 'ns/blob')
    assert [nested for _, _, nested in top] == [True, True]
    assert sum(len(manifest(swift, driver.container, name))
               for name, _, _ in top) == 12
    assert await driver.get('ns/blob') == b''.join(pieces)
    await driver.delete('ns/upload')
    assert scratch() == []
    await driver.delete('ns/blob')
    await driver.collect_leftovers(before=time.time() + 60)   # the claims
    assert names(swift, driver.container) == []


async def test_tiny_consumed_parts_are_joined_and_removed(make_driver,
                                                          swift):
    driver, scratch = make_driver()   # joins everything under 3 bytes
    parts = await write_chunks(driver, 'ns/upload', [b'ab', b'cd', b'e'])
    await driver.concat('ns/blob', parts, consume=True)
    assert 'x-static-large-object' not in swift.head_object(
        driver.container, 'ns/blob')
    assert names(swift, driver.container) == ['ns/blob']
    assert await driver.get('ns/blob') == b'abcde'


async def test_collection_during_a_handover_spares_the_claimed_sets(
        make_driver, swift, monkeypatch):
    # The parts' segments are older than the cut-off, and between the
    # parts letting go and the blob's manifest nothing refers to them: only
    # the claim keeps collection off them.
    driver, scratch = make_driver(segment_size=4, join_under=3)
    parts = await write_chunks(driver, 'ns/upload', [b'0123456789abcdef'])
    await asyncio.sleep(1.5)
    cut_off = time.time() - 0.5
    publish = driver.segments.publish
    collected = []

    async def collecting_first(*args, **kwargs):
        assert await driver.stat(parts[0]) is None   # detached already
        collected.extend(await driver.collect_leftovers(before=cut_off))
        return await publish(*args, **kwargs)

    monkeypatch.setattr(driver.segments, 'publish', collecting_first)
    await driver.concat('ns/blob', parts, consume=True)
    assert collected == []
    assert await driver.get('ns/blob') == b'0123456789abcdef'
    assert scratch() == []


@pytest.mark.parametrize('handover', ['completion', 'move'])
async def test_a_collection_whose_mark_missed_a_handover_spares_its_sets(
        make_driver, swift, monkeypatch, handover):
    # The mark lists the manifests before the new one is published and
    # reads the old one after it let go; the sweep lists the sets after
    # the hand-over has ended.  Segments older than the cut-off: only
    # the claim, still there, keeps them.
    driver, scratch = make_driver(segment_size=4, join_under=3)
    parts = await write_chunks(driver, 'ns/upload', [b'0123456789abcdef'])
    if handover == 'move':
        await driver.concat('ns/blob', parts, consume=True)
    await asyncio.sleep(1.5)
    cut_off = time.time() - 0.5
    started, release = hold_first_call(monkeypatch, driver.segments,
                                       'manifest')
    collecting = asyncio.ensure_future(
        driver.collect_leftovers(before=cut_off))
    await started.wait()   # the mark has listed the manifests
    if handover == 'move':
        await driver.move('ns/blob', 'ns/moved')
    else:
        await driver.concat('ns/moved', parts, consume=True)
    release.set()
    assert await collecting == []
    assert await driver.get('ns/moved') == b'0123456789abcdef'


async def test_a_part_removed_meanwhile_stops_the_handover(
        make_driver, swift, monkeypatch):
    driver, scratch = make_driver(segment_size=4, join_under=3)
    parts = await write_chunks(driver, 'ns/upload', [b'0123456789abcdef'])
    detach = swift_handover._detach

    async def cancelled_first(driver, name):
        await driver.delete('ns/upload')   # a concurrent cancel
        return await detach(driver, name)

    monkeypatch.setattr(swift_handover, '_detach', cancelled_first)
    with pytest.raises(ObjectNotFound, match='removed meanwhile'):
        await driver.concat('ns/blob', parts, consume=True)
    assert await driver.stat('ns/blob') is None
    await driver.collect_leftovers(before=time.time() + 60)
    assert names(swift, driver.container) == []


async def test_a_failed_publication_leaves_the_object_and_a_leftover(
        make_driver, swift, monkeypatch):
    driver, scratch = make_driver(segment_size=4, join_under=3)
    await driver.put('ns/blob', b'old')
    parts = await write_chunks(driver, 'ns/upload', [b'0123456789abcdef',
                                                     b'x'])

    async def failing(*args, **kwargs):
        raise RuntimeError('Swift went away')

    monkeypatch.setattr(driver.segments, 'publish', failing)
    with pytest.raises(RuntimeError):
        await driver.concat('ns/blob', parts, consume=True)
    assert await driver.get('ns/blob') == b'old'
    assert await driver.stat(parts[0]) is None   # handed over, then lost
    assert await driver.get(parts[1]) == b'x'    # copied: left as it was
    leftovers = await driver.collect_leftovers(before=time.time() + 60)
    assert [leftover.size for leftover in leftovers] == [16]
    assert scratch() == []
    assert await driver.get(parts[1]) == b'x'


async def test_collection_skips_segments_younger_than_the_cut_off(
        make_driver, swift):
    driver, scratch = make_driver()
    await driver.ready()   # the container
    swift.put_object(driver.container, '.segments/crashed/000000', b'12345')
    swift.put_object(driver.container, '.segments/crashed/000001', b'67')
    assert await driver.collect_leftovers(before=time.time() - 3600) == []
    assert await driver.collect_leftovers(before=time.time() + 60,
                                          dry_run=True) != []
    [leftover] = await driver.collect_leftovers(before=time.time() + 60)
    assert leftover == ('.segments/crashed/', 7)
    assert names(swift, driver.container) == []


async def test_collection_refuses_when_listings_do_not_mark_manifests(
        make_driver, swift, monkeypatch):
    driver, scratch = make_driver()
    await driver.write('ns/blob', chunks_of(b'0123456789'))
    swift.put_object(driver.container, '.segments/crashed/000000', b'1')
    listing = driver.listing

    async def without_slo_etag(*args, **kwargs):
        async for entry in listing(*args, **kwargs):
            entry.pop('slo_etag', None)
            yield entry

    monkeypatch.setattr(driver, 'listing', without_slo_etag)
    assert await driver.collect_leftovers(before=time.time() + 60) == []
    assert await driver.get('ns/blob') == b'0123456789'
    assert scratch() == ['.segments/crashed/000000']


async def write_manifest(driver, path):
    # A manifest over segments: moved by re-pointing, not copied.
    await driver.write(path, chunks_of(b'manifest', b' blob'))


@pytest.mark.parametrize('held', MOVE_STEPS)
@pytest.mark.parametrize('kind', ['plain', 'manifest'])
async def test_opposite_moves_keep_the_object(
        make_driver, monkeypatch, swift, held, kind):
    driver, _ = make_driver(segment_size=4)
    found = await moves_both_ways(
        driver, lambda: hold_move_step(monkeypatch, driver, held,
                                       'delete_object'),
        write=write_manifest if kind == 'manifest' else None)
    assert found, 'the object is in neither place'
    for path in found:
        assert await driver.get(path) == (
            b'manifest blob' if kind == 'manifest' else b'small blob')
    assert not [name for name in names(swift, driver.container,
                                       '.segments/')
                if name.endswith('/keep')]


@pytest.mark.parametrize('kind', ['plain', 'manifest'])
async def test_a_moving_object_is_at_one_of_its_paths_at_every_step(
        make_driver, monkeypatch, kind):
    # A reader (the quarantine's restore, a manifest PUT's check) or a
    # crash between two requests of the move must find it somewhere.
    driver, _ = make_driver(segment_size=4)
    if kind == 'manifest':
        await write_manifest(driver, 'ns/a')
    else:
        await driver.put('ns/a', b'small blob')
    watcher = swift_server.api_driver(driver.container)
    started, release = hold_calls(monkeypatch, driver, 'call', 50)
    moving = asyncio.ensure_future(driver.move('ns/a', 'ns/q'))
    step = 0
    try:
        while True:
            await asyncio.wait(
                [moving, asyncio.ensure_future(started[step].wait())],
                return_when=asyncio.FIRST_COMPLETED)
            if not started[step].is_set():
                break
            # The source first: a move goes from it to the destination.
            assert await watcher.stat('ns/a') is not None or \
                await watcher.stat('ns/q') is not None, \
                'in neither place before request %d of the move' % step
            release[step].set()
            step += 1
        await moving
    finally:
        for event in release:
            event.set()
        await watcher.close()
    assert step > 3
    assert [await driver.stat('ns/a'), await driver.stat('ns/q')
            is not None] == [None, True]
