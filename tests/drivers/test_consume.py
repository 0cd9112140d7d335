"""The driver contract's hand-overs and leftovers, for every driver:
concat(consume=True) and collect_leftovers (zuul_registry/drivers/base.py).

Each test runs once per driver in conftest.DRIVERS.
"""

import time

import pytest

from tests.drivers.test_contract import chunks_of, failing_after, read_all
from zuul_registry.drivers.base import ObjectNotFound

# Sizes around the Swift test driver's segment (5 bytes) and join (3)
# limits: tiny chunks are joined, larger ones span segments.
PIECES = [b'a', b'0123456789ab', b'bc', b'cdefghijklmnopqrstuvwxyz' * 3,
          b'0', b'zyxwvutsrqponm']


async def write_chunks(driver, root, pieces):
    """Store `pieces` as an upload does: one exclusive write per chunk."""
    parts, offset = [], 0
    for piece in pieces:
        parts.append('%s/%020d' % (root, offset))
        await driver.write(parts[-1], chunks_of(piece[:4], piece[4:]),
                           exclusive=True)
        offset += len(piece)
    return parts


async def collect_all(driver):
    """Every leftover, however young."""
    return await driver.collect_leftovers(before=time.time() + 60)


async def test_consuming_no_parts_creates_an_empty_object(driver):
    await driver.concat('ns/blob', [], consume=True)
    assert await driver.get('ns/blob') == b''


@pytest.mark.parametrize('pieces', [PIECES[1:2], PIECES[3:4], PIECES],
                         ids=['one', 'one-large', 'many'])
async def test_consuming_parts_joins_them_and_removes_them(driver, scratch,
                                                           pieces):
    parts = await write_chunks(driver, 'ns/upload/_chunks', pieces)
    await driver.concat('ns/blob', parts, consume=True)
    assert await driver.get('ns/blob') == b''.join(pieces)
    assert all([await driver.stat(part) is None for part in parts])
    assert await driver.list('ns') == ['blob']
    assert scratch() == []


async def test_a_completed_upload_outlives_its_deleted_upload_area(
        driver, scratch):
    # What completing an upload does: chunks streamed in, handed over to
    # the blob, the upload area deleted; later the blob is read, deleted.
    await driver.put('ns/_uploads/u1/_info', b'{}')
    parts = await write_chunks(driver, 'ns/_uploads/u1/_chunks', PIECES)
    await driver.concat('ns/_blobs/b1', parts, consume=True)
    await driver.delete('ns/_uploads/u1')
    await driver.delete('ns/_uploads')
    expected = b''.join(PIECES)
    assert await driver.get('ns/_blobs/b1') == expected
    assert b''.join(await read_all(driver, 'ns/_blobs/b1', offset=7,
                                   chunk_size=4)) == expected[7:]
    assert await driver.list('ns') == ['_blobs']
    assert scratch() == []
    assert await collect_all(driver) == []   # nothing it needs is spare
    assert await driver.get('ns/_blobs/b1') == expected
    await driver.delete('ns/_blobs/b1')
    assert await driver.list('ns') == []
    # No byte left behind (Swift keeps empty claims until collection).
    assert sum(leftover.size for leftover in await collect_all(driver)) == 0
    assert scratch() == []


async def test_a_part_path_written_again_does_not_touch_the_result(driver):
    parts = await write_chunks(driver, 'ns/upload', PIECES[:4])
    await driver.concat('ns/blob', parts, consume=True)
    for part in parts:
        await driver.write(part, chunks_of(b'something else entirely'))
    await driver.delete('ns/upload')
    assert await driver.get('ns/blob') == b''.join(PIECES[:4])


async def test_consuming_plain_objects_works_too(driver, scratch):
    for n in range(3):
        await driver.put('ns/parts/%d' % n, b'%d' % n * 7)
    await driver.concat('ns/blob', ['ns/parts/%d' % n for n in range(3)],
                        consume=True)
    assert await driver.get('ns/blob') == b'000000011111112222222'
    assert await driver.list('ns') == ['blob']
    assert scratch() == []


async def test_consuming_may_repeat_a_part(driver, scratch):
    [part] = await write_chunks(driver, 'ns/upload', [PIECES[3]])
    await driver.concat('ns/blob', [part, part], consume=True)
    assert await driver.get('ns/blob') == PIECES[3] * 2
    assert await driver.list('ns') == ['blob']
    await driver.delete('ns/blob')
    assert sum(leftover.size for leftover in await collect_all(driver)) == 0
    assert scratch() == []


async def test_consuming_replaces_an_existing_object(driver, scratch):
    await driver.write('ns/blob', chunks_of(b'old contents, long enough'))
    parts = await write_chunks(driver, 'ns/upload', PIECES[:2])
    await driver.concat('ns/blob', parts, consume=True)
    assert await driver.get('ns/blob') == b''.join(PIECES[:2])
    await collect_all(driver)   # the old version's storage, if any
    assert await driver.get('ns/blob') == b''.join(PIECES[:2])
    assert scratch() == []


async def test_consuming_with_a_missing_part_raises_and_changes_nothing(
        driver, scratch):
    await driver.put('ns/blob', b'old')
    parts = await write_chunks(driver, 'ns/upload', PIECES[:2])
    for missing in (parts + ['ns/upload/missing'], ['ns/upload/missing']):
        with pytest.raises(ObjectNotFound):
            await driver.concat('ns/blob', missing, consume=True)
    assert await driver.get('ns/blob') == b'old'
    assert [await driver.get(part) for part in parts] == PIECES[:2]
    assert scratch() == []


async def test_move_hands_a_written_object_over(driver, scratch):
    await driver.write('ns/src', chunks_of(*PIECES))
    await driver.move('ns/src', 'ns/dst')
    await driver.delete('ns/src')
    assert await driver.get('ns/dst') == b''.join(PIECES)
    assert await driver.list('ns') == ['dst']
    assert scratch() == []


# -- collect_leftovers --------------------------------------------------------

async def make_leftovers(driver):
    """Replace and consume objects, fail a write: what may leave storage
    behind.  The objects that must survive, with their bytes."""
    await driver.write('ns/replaced', chunks_of(b'first version, long'))
    await driver.write('ns/replaced', chunks_of(b'second version, long'))
    await driver.put('ns/overwritten', b'x')
    await driver.write('ns/overwritten', chunks_of(b'written over a put'))
    parts = await write_chunks(driver, 'ns/upload', PIECES)
    await driver.concat('ns/blob', parts, consume=True)
    await driver.concat('ns/copy', ['ns/blob', 'ns/replaced'])
    with pytest.raises(RuntimeError):
        await driver.write('ns/failed', failing_after(b'0123456789'))
    return {'ns/replaced': b'second version, long',
            'ns/overwritten': b'written over a put',
            'ns/blob': b''.join(PIECES),
            'ns/copy': b''.join(PIECES) + b'second version, long'}


async def test_collecting_leftovers_keeps_what_objects_need(driver, scratch):
    kept = await make_leftovers(driver)
    await collect_all(driver)
    assert await driver.list('ns') == sorted(name.split('/')[1]
                                             for name in kept)
    for path, data in kept.items():
        assert await driver.get(path) == data
    assert scratch() == []
    assert await collect_all(driver) == []


async def test_leftovers_younger_than_the_cut_off_stay(driver, scratch):
    await make_leftovers(driver)
    before = scratch()
    assert await driver.collect_leftovers(before=time.time() - 3600) == []
    assert scratch() == before


async def test_a_dry_run_only_names_the_leftovers(driver, scratch):
    await make_leftovers(driver)
    before = scratch()
    named = await driver.collect_leftovers(before=time.time() + 60,
                                           dry_run=True)
    assert scratch() == before
    assert await collect_all(driver) == named
    assert all(leftover.size >= 0 for leftover in named)
