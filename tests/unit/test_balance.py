"""balance: the board of connection counts the workers share, and each
worker's weighing of its own count against the others'."""

import multiprocessing

from zuul_registry import balance


class Transport:
    """What Load asks of a transport: whether it is closing."""

    def __init__(self):
        self.closing = False

    def is_closing(self):
        return self.closing


def test_a_fresh_board_has_no_live_worker():
    board = balance.Board(3)
    assert board.fewest_elsewhere(0) is None


def test_the_fewest_of_the_other_live_workers():
    board = balance.Board(3)
    board.publish(0, 1)
    board.publish(1, 7)
    assert board.fewest_elsewhere(0) == 7
    assert board.fewest_elsewhere(1) == 1
    board.publish(2, 4)
    assert board.fewest_elsewhere(0) == 4
    board.vacate(2)
    assert board.fewest_elsewhere(0) == 7


def _publish(board):
    board.publish(1, 9)


def test_the_board_is_shared_with_processes_forked_after_it():
    board = balance.Board(2)
    child = multiprocessing.get_context('fork').Process(target=_publish,
                                                        args=(board,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert board.fewest_elsewhere(0) == 9


def test_a_worker_holding_more_than_another_waits():
    board = balance.Board(2)
    mine, theirs = balance.Load(board, 0), balance.Load(board, 1)
    assert not mine.should_wait() and not theirs.should_wait()
    mine.accepted()            # a handshake under way counts
    assert mine.should_wait() and not theirs.should_wait()
    first = Transport()
    mine.connected(first)
    assert mine.should_wait()
    theirs.accepted()
    theirs.connected(Transport())
    assert not mine.should_wait() and not theirs.should_wait()
    first.closing = True       # closed: no longer counted...
    assert mine.count() == 0
    # ...once the board says so: until then the other takes more.
    assert not theirs.should_wait()
    assert not mine.should_wait() and theirs.should_wait()


def test_a_failed_handshake_counts_no_more():
    board = balance.Board(2)
    load = balance.Load(board, 0)
    balance.Load(board, 1)
    load.accepted()
    assert load.count() == 1 and load.should_wait()
    load.connected(None)
    assert load.count() == 0 and not load.should_wait()


def test_alone_a_worker_never_waits():
    board = balance.Board(1)
    load = balance.Load(board, 0)
    for _ in range(5):
        load.accepted()
    assert not load.should_wait()
