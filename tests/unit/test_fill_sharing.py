"""Who leads a fill among the workers (storage/fill_sharing.py): real
flocks, held by this process or by another one."""

import json
import multiprocessing
import os

from zuul_registry.storage.fill_sharing import FillDirectory

KEY = (None, 'org/img', 'sha256:' + '1' * 64)


def _hold(path, locked, done):
    leadership = FillDirectory(path).lead(KEY)
    leadership.announce('upload-of-the-child', 1234)
    locked.set()
    done.wait(30)
    # Exits without releasing: as a worker that dies does.
    os._exit(0)


def test_one_leader_at_a_time_and_the_next_after_release(tmp_path):
    directory = FillDirectory(str(tmp_path))
    first = directory.lead(KEY)
    assert first is not None
    assert directory.lead(KEY) is None
    other = directory.lead(KEY[:2] + ('sha256:' + '2' * 64,))
    assert other is not None
    other.release()
    first.announce('upload-1', 99)
    record = directory.announced(KEY)
    assert (record['pid'], record['upload'], record['size']) \
        == (os.getpid(), 'upload-1', 99)
    first.release()
    assert directory.announced(KEY) is None
    second = directory.lead(KEY)
    assert second is not None
    second.release()
    assert os.listdir(str(tmp_path)) == []


def test_a_waiter_on_the_unlinked_lock_does_not_lead_beside_a_new_one(
        tmp_path):
    directory = FillDirectory(str(tmp_path))
    first = directory.lead(KEY)
    # What a worker that opened the lock file just before it was
    # unlinked holds: after the release it can lock that file, which is
    # no longer the path's, so lead() must not take it for the lock.
    stale = os.open(directory._file(KEY, '.lock'), os.O_RDWR)
    first.release()
    second = directory.lead(KEY)
    assert second is not None
    assert directory.lead(KEY) is None
    os.close(stale)
    second.release()


def test_a_lock_held_by_another_process_and_released_by_its_death(
        tmp_path):
    context = multiprocessing.get_context('fork')
    locked, done = context.Event(), context.Event()
    child = context.Process(target=_hold,
                            args=(str(tmp_path), locked, done))
    child.start()
    try:
        assert locked.wait(30)
        directory = FillDirectory(str(tmp_path))
        assert directory.lead(KEY) is None
        assert directory.announced(KEY)['upload'] == 'upload-of-the-child'
    finally:
        done.set()
        child.join(30)
    # The kernel released its lock; its record names a dead process.
    assert directory.announced(KEY) is None
    with open(directory._file(KEY, '.json')) as f:
        assert json.load(f)['pid'] == child.pid
    leadership = directory.lead(KEY)
    assert leadership is not None
    leadership.announce('upload-2', None)
    assert directory.announced(KEY)['upload'] == 'upload-2'
    leadership.release()
