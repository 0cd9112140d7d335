"""The driver contract (zuul_registry/drivers/base.py), for every driver.

Each test runs once per driver in conftest.DRIVERS.
"""

import asyncio
import time

import pytest

from zuul_registry.drivers.base import (
    MAX_PATH_LENGTH, AlreadyExists, InvalidPath, ObjectNotFound)


async def chunks_of(*pieces):
    for piece in pieces:
        await asyncio.sleep(0)
        yield piece


async def failing_after(*pieces):
    for piece in pieces:
        yield piece
    raise RuntimeError('client went away')


async def read_all(driver, path, **kwargs):
    return [chunk async for chunk in driver.read(path, **kwargs)]


# -- put and get --------------------------------------------------------------

async def test_put_then_get_returns_the_same_bytes(driver):
    await driver.put('ns/a/b', b'hello')
    assert await driver.get('ns/a/b') == b'hello'


async def test_put_of_empty_bytes_creates_an_empty_object(driver):
    await driver.put('ns/empty', b'')
    assert await driver.get('ns/empty') == b''
    assert (await driver.stat('ns/empty')).size == 0


async def test_put_replaces_an_existing_object(driver):
    await driver.put('ns/a', b'old contents')
    await driver.put('ns/a', b'new')
    assert await driver.get('ns/a') == b'new'
    assert (await driver.stat('ns/a')).size == 3


async def test_put_replaces_atomically_under_a_read_in_progress(driver):
    await driver.put('ns/a', b'old-old-old')
    reader = driver.read('ns/a', chunk_size=4)
    assert await reader.__anext__() == b'old-'
    await driver.put('ns/a', b'NEW')
    assert [chunk async for chunk in reader] == [b'old-', b'old']
    assert await driver.get('ns/a') == b'NEW'


async def test_get_of_a_missing_object_raises_object_not_found(driver):
    with pytest.raises(ObjectNotFound):
        await driver.get('ns/missing')


async def test_get_of_a_sub_tree_raises_object_not_found(driver):
    await driver.put('ns/tree/leaf', b'x')
    with pytest.raises(ObjectNotFound):
        await driver.get('ns/tree')


# -- write --------------------------------------------------------------------

async def test_write_streams_chunks_and_returns_the_size(driver):
    size = await driver.write('ns/blob', chunks_of(b'abc', b'', b'defgh'))
    assert size == 8
    assert await driver.get('ns/blob') == b'abcdefgh'
    assert (await driver.stat('ns/blob')).size == 8


async def test_write_of_no_chunks_creates_an_empty_object(driver):
    assert await driver.write('ns/blob', chunks_of()) == 0
    assert await driver.get('ns/blob') == b''


async def test_write_is_invisible_until_every_chunk_is_stored(driver):
    await driver.put('ns/replaced', b'old')
    seen = []

    async def observing():
        yield b'first'
        seen.append((await driver.stat('ns/new') is not None,
                     await driver.list('ns'),
                     await driver.get('ns/replaced')))
        yield b'second'

    await driver.write('ns/new', observing())
    await driver.write('ns/replaced', observing())
    assert seen == [(False, ['replaced'], b'old'),
                    (True, ['new', 'replaced'], b'old')]
    assert await driver.get('ns/new') == b'firstsecond'
    assert await driver.get('ns/replaced') == b'firstsecond'


async def test_write_with_a_failing_iterator_leaves_nothing_visible(
        driver, scratch):
    with pytest.raises(RuntimeError, match='client went away'):
        await driver.write('ns/blob', failing_after(b'abc', b'def'))
    assert await driver.stat('ns/blob') is None
    assert await driver.list('ns') == []
    assert scratch() == []


async def test_write_with_a_failing_iterator_keeps_the_old_object(
        driver, scratch):
    await driver.put('ns/blob', b'old')
    with pytest.raises(RuntimeError):
        await driver.write('ns/blob', failing_after(b'new'))
    assert await driver.get('ns/blob') == b'old'
    assert scratch() == []


async def test_exclusive_write_creates_a_new_object(driver):
    assert await driver.write('ns/blob', chunks_of(b'abc'),
                              exclusive=True) == 3
    assert await driver.get('ns/blob') == b'abc'


async def test_exclusive_write_refuses_an_existing_object(driver, scratch):
    await driver.put('ns/blob', b'first')
    with pytest.raises(AlreadyExists):
        await driver.write('ns/blob', chunks_of(b'second'), exclusive=True)
    assert await driver.get('ns/blob') == b'first'
    assert scratch() == []


async def test_of_two_concurrent_exclusive_writes_exactly_one_wins(
        driver, scratch):
    results = await asyncio.gather(
        driver.write('ns/blob', chunks_of(b'a', b'a'), exclusive=True),
        driver.write('ns/blob', chunks_of(b'b', b'b'), exclusive=True),
        return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == \
        ['AlreadyExists', 'int']
    assert await driver.get('ns/blob') in (b'aa', b'bb')
    assert scratch() == []


async def test_concurrent_writes_leave_one_whole_object(driver):
    await asyncio.gather(*[
        driver.write('ns/blob', chunks_of(*[bytes([n])] * 100))
        for n in b'abcd'])
    assert await driver.get('ns/blob') in [bytes([n]) * 100 for n in b'abcd']


# -- concat -------------------------------------------------------------------

async def test_concat_of_no_parts_creates_an_empty_object(driver):
    await driver.concat('ns/blob', [])
    assert await driver.get('ns/blob') == b''


async def test_concat_of_one_part_copies_it(driver):
    await driver.put('ns/parts/0', b'only')
    await driver.concat('ns/blob', ['ns/parts/0'])
    assert await driver.get('ns/blob') == b'only'


async def test_concat_of_many_parts_joins_them_in_order(driver):
    names = ['ns/parts/%d' % n for n in range(5)]
    for n, name in enumerate(names):
        await driver.put(name, b'%d' % n * (n + 1))
    await driver.concat('ns/blob', names)
    assert await driver.get('ns/blob') == b'011222333344444'


async def test_concat_may_repeat_a_part(driver):
    await driver.put('ns/part', b'ab')
    await driver.concat('ns/blob', ['ns/part', 'ns/part'])
    assert await driver.get('ns/blob') == b'abab'


async def test_concat_leaves_the_parts_in_place(driver):
    await driver.put('ns/parts/0', b'ab')
    await driver.put('ns/parts/1', b'cd')
    await driver.concat('ns/blob', ['ns/parts/0', 'ns/parts/1'])
    assert await driver.list('ns/parts') == ['0', '1']
    assert await driver.get('ns/parts/0') == b'ab'
    assert await driver.get('ns/parts/1') == b'cd'


@pytest.mark.parametrize('count', [1, 2])
async def test_concat_result_is_independent_of_its_parts(driver, count):
    parts = ['ns/parts/%d' % n for n in range(count)]
    for part in parts:
        await driver.put(part, b'x')
    await driver.concat('ns/blob', parts)
    await driver.put(parts[0], b'changed')
    await driver.delete('ns/parts')
    assert await driver.get('ns/blob') == b'x' * count


@pytest.mark.parametrize('count', [1, 3])
async def test_concat_of_written_parts_outlives_the_deleted_parts(
        driver, scratch, count):
    # What completing an upload does: chunks streamed in, joined into the
    # blob, the upload area deleted, then the blob read (and later pruned).
    pieces = [b'%d' % n * 7 + b'-' * 4 for n in range(count)]
    for n, piece in enumerate(pieces):
        await driver.write('ns/upload/%d' % n,
                           chunks_of(piece[:5], piece[5:]), exclusive=True)
    await driver.concat('ns/blob', ['ns/upload/%d' % n
                                    for n in range(count)])
    await driver.delete('ns/upload')
    assert await driver.get('ns/blob') == b''.join(pieces)
    assert b''.join(await read_all(driver, 'ns/blob', offset=3,
                                   chunk_size=4)) == b''.join(pieces)[3:]
    assert await driver.list('ns') == ['blob']
    await driver.delete('ns/blob')
    assert await driver.list('ns') == []
    assert scratch() == []


async def test_concat_replaces_an_existing_object(driver):
    await driver.put('ns/blob', b'old contents')
    await driver.put('ns/part', b'new')
    await driver.concat('ns/blob', ['ns/part'])
    assert await driver.get('ns/blob') == b'new'


async def test_concat_with_a_missing_part_raises_and_creates_nothing(
        driver, scratch):
    await driver.put('ns/parts/0', b'ab')
    with pytest.raises(ObjectNotFound):
        await driver.concat('ns/blob', ['ns/parts/0', 'ns/parts/1'])
    with pytest.raises(ObjectNotFound):
        await driver.concat('ns/blob', ['ns/parts/1'])
    assert await driver.stat('ns/blob') is None
    assert scratch() == []


# -- read ---------------------------------------------------------------------

async def test_read_yields_the_whole_object_by_default(driver):
    await driver.put('ns/blob', b'0123456789')
    assert b''.join(await read_all(driver, 'ns/blob')) == b'0123456789'


async def test_read_of_an_empty_object_yields_nothing(driver):
    await driver.put('ns/blob', b'')
    assert b''.join(await read_all(driver, 'ns/blob')) == b''


async def test_read_yields_pieces_of_chunk_size(driver):
    await driver.put('ns/blob', b'0123456789')
    assert await read_all(driver, 'ns/blob', chunk_size=4) == \
        [b'0123', b'4567', b'89']


async def test_read_uses_the_driver_chunk_size_by_default(driver):
    data = bytes(range(256)) * 4096 * 2 + b'tail'
    await driver.put('ns/blob', data)
    pieces = await read_all(driver, 'ns/blob')
    assert b''.join(pieces) == data
    assert max(map(len, pieces)) <= driver.read_chunk_size


@pytest.mark.parametrize('offset, length, expected', [
    (3, None, b'3456789'),
    (0, 4, b'0123'),
    (3, 4, b'3456'),
    (8, 100, b'89'),
    (10, None, b''),
    (12, None, b''),
    (5, 0, b''),
])
async def test_read_from_offset_at_most_length(driver, offset, length,
                                               expected):
    await driver.put('ns/blob', b'0123456789')
    pieces = await read_all(driver, 'ns/blob', offset=offset, length=length,
                            chunk_size=3)
    assert b''.join(pieces) == expected
    assert all(0 < len(piece) <= 3 for piece in pieces)


async def test_read_of_a_missing_object_raises_object_not_found(driver):
    with pytest.raises(ObjectNotFound):
        await read_all(driver, 'ns/missing')


async def test_read_of_a_sub_tree_raises_object_not_found(driver):
    await driver.put('ns/tree/leaf', b'x')
    with pytest.raises(ObjectNotFound):
        await read_all(driver, 'ns/tree')


async def test_local_file_if_offered_holds_the_object(driver):
    await driver.put('ns/blob', b'contents')
    name = driver.local_file('ns/blob')
    if name is not None:
        with open(name, 'rb') as f:
            assert f.read() == b'contents'


# -- stat ---------------------------------------------------------------------

async def test_stat_reports_size_and_modification_time(driver):
    before = time.time()
    await driver.put('ns/blob', b'12345')
    stat = await driver.stat('ns/blob')
    assert stat.size == 5
    assert before - 2 <= stat.mtime <= time.time() + 2


async def test_stat_of_a_missing_object_is_none(driver):
    assert await driver.stat('ns/missing') is None
    assert await driver.stat('ns/missing/deeper') is None


async def test_stat_of_a_sub_tree_is_none(driver):
    # A sub-tree is not an object.
    await driver.put('ns/tree/leaf', b'x')
    assert await driver.stat('ns/tree') is None


# -- move ---------------------------------------------------------------------

async def test_move_renames_the_object(driver):
    await driver.put('ns/src', b'data')
    await driver.move('ns/src', 'ns/elsewhere/dst')
    assert await driver.get('ns/elsewhere/dst') == b'data'
    assert await driver.stat('ns/src') is None


async def test_move_replaces_the_destination(driver):
    await driver.put('ns/src', b'new')
    await driver.put('ns/dst', b'old contents')
    await driver.move('ns/src', 'ns/dst')
    assert await driver.get('ns/dst') == b'new'
    assert await driver.list('ns') == ['dst']


async def test_move_of_a_missing_object_raises_and_creates_nothing(driver):
    with pytest.raises(ObjectNotFound):
        await driver.move('ns/missing', 'ns/new/dst')
    assert await driver.stat('ns/new/dst') is None
    assert await driver.list('ns') == []


@pytest.mark.parametrize('written', ['put', 'write'])
async def test_moves_racing_in_opposite_directions_never_lose_it(
        driver, written):
    # As the quarantine's hold (blob to quarantine) races a request's
    # restore (back): each mover tries its direction again and again.
    if written == 'put':
        await driver.put('ns/a', b'moved to and fro')
    else:
        await driver.write('ns/a', chunks_of(b'moved ', b'to and fro'))
    moves = []

    async def mover(src, dst):
        for _ in range(25):
            try:
                await driver.move(src, dst)
                moves.append(dst)
            except ObjectNotFound:
                pass
            await asyncio.sleep(0)
    await asyncio.gather(mover('ns/a', 'ns/q'), mover('ns/q', 'ns/a'))
    there = [path for path in ('ns/a', 'ns/q')
             if await driver.stat(path) is not None]
    assert there, 'lost after the moves %s' % moves
    for path in there:
        assert await driver.get(path) == b'moved to and fro'


# -- delete -------------------------------------------------------------------

async def test_delete_removes_the_object_but_not_a_name_it_prefixes(driver):
    await driver.put('ns/a', b'a')
    await driver.put('ns/ab', b'ab')
    await driver.put('ns/a-b/c', b'a-b/c')
    await driver.delete('ns/a')
    assert await driver.stat('ns/a') is None
    assert await driver.get('ns/ab') == b'ab'
    assert await driver.get('ns/a-b/c') == b'a-b/c'


async def test_delete_of_a_tree_removes_everything_under_it(driver):
    for path in ['ns/a/x', 'ns/a/y/z', 'ns/a/y/w/v', 'ns/ab/c', 'ns/b']:
        await driver.put(path, b'1')
    await driver.delete('ns/a')
    for path in ['ns/a/x', 'ns/a/y/z', 'ns/a/y/w/v']:
        assert await driver.stat(path) is None
    assert await driver.list('ns/a') == []
    assert await driver.get('ns/ab/c') == b'1'
    assert await driver.list('ns') == ['ab', 'b']


async def test_delete_of_a_missing_path_is_not_an_error(driver):
    await driver.delete('ns/missing')
    await driver.put('ns/object', b'1')
    await driver.delete('ns/object/under/an/object')
    assert await driver.get('ns/object') == b'1'


# -- list ---------------------------------------------------------------------

async def test_list_names_immediate_children_sorted_with_sub_trees(driver):
    for path in ['ns/dir/b', 'ns/dir/a', 'ns/dir/c/deep/er', 'ns/dir/B',
                 'ns/dir/_x', 'ns/dir/1', 'ns/dir2/no', 'ns/di']:
        await driver.put(path, b'')
    assert await driver.list('ns/dir') == ['1', 'B', '_x', 'a', 'b', 'c']
    assert await driver.list('ns/dir/c') == ['deep']
    assert await driver.list('ns') == ['di', 'dir', 'dir2']


async def test_list_of_a_missing_path_is_empty(driver):
    assert await driver.list('ns/missing') == []


async def test_list_of_an_object_is_empty(driver):
    await driver.put('ns/object', b'1')
    assert await driver.list('ns/object') == []


async def test_list_omits_a_sub_tree_whose_objects_were_deleted(driver):
    # Swift, for one, has no directories: a sub-tree exists while some
    # object lies under it.  Storage relies on this (a repository whose
    # objects are all gone is unknown).
    await driver.put('ns/repo/_tags/latest', b'1')
    await driver.put('ns/other', b'1')
    await driver.delete('ns/repo/_tags/latest')
    assert await driver.list('ns/repo') == []
    assert await driver.list('ns') == ['other']


# -- paths --------------------------------------------------------------------

INVALID_PATHS = [
    '', '..', 'a/..', 'a/../b', '/abs', 'a//b', 'a/', '.hidden', 'a/.tmp',
    'a/./b', '.', 'a\0b', 'a b', 'a\\b', '-a', 'é', b'a',
    'a/' + 'b' * MAX_PATH_LENGTH,
]


def _calls(path):
    """Every public method, called with `path` in each path argument."""
    return {
        'stat': lambda d: d.stat(path),
        'get': lambda d: d.get(path),
        'put': lambda d: d.put(path, b'x'),
        'write': lambda d: d.write(path, chunks_of(b'x')),
        'write-exclusive': lambda d: d.write(path, chunks_of(b'x'),
                                             exclusive=True),
        'concat-target': lambda d: d.concat(path, ['ok/part']),
        'concat-part': lambda d: d.concat('ok/blob', ['ok/part', path]),
        'consume-target': lambda d: d.concat(path, ['ok/part'],
                                             consume=True),
        'consume-part': lambda d: d.concat('ok/blob', ['ok/part', path],
                                           consume=True),
        'read': lambda d: read_all(d, path),
        'move-src': lambda d: d.move(path, 'ok/dst'),
        'move-dst': lambda d: d.move('ok/part', path),
        'delete': lambda d: d.delete(path),
        'list': lambda d: d.list(path),
    }


@pytest.mark.parametrize('method', sorted(_calls('')))
async def test_every_method_refuses_an_invalid_path(driver, method):
    await driver.put('ok/part', b'part')
    accepted = []
    for path in INVALID_PATHS:
        try:
            await _calls(path)[method](driver)
        except InvalidPath:
            continue
        except Exception as e:
            accepted.append((path, e))
        else:
            accepted.append((path, None))
    assert accepted == []
    assert await driver.list('ok') == ['part']
    assert await driver.get('ok/part') == b'part'


def test_read_and_local_file_refuse_an_invalid_path_when_called(driver):
    for path in INVALID_PATHS:
        with pytest.raises(InvalidPath):
            driver.read(path)
        with pytest.raises(InvalidPath):
            driver.local_file(path)


async def test_a_path_of_the_maximum_length_is_accepted(driver):
    # Components of up to 255 characters, as repository names allow.
    parent = '/'.join(['a' * 255] * 3 + ['a' * 250])
    name = 'b' * (MAX_PATH_LENGTH - len(parent) - 1)
    path = parent + '/' + name
    assert len(path) == MAX_PATH_LENGTH
    await driver.put(path, b'x')
    assert await driver.get(path) == b'x'
    assert await driver.list(parent) == [name]
    with pytest.raises(InvalidPath):
        await driver.put(path + 'b', b'x')


async def test_paths_may_use_every_allowed_character(driver):
    path = 'ns/localhost:5000/_tags/v1.0-rc_1+build=2'
    await driver.put(path, b'x')
    assert await driver.get(path) == b'x'
    assert await driver.list('ns/localhost:5000/_tags') == \
        ['v1.0-rc_1+build=2']
