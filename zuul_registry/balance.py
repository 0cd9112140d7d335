"""Connections shared out evenly among the workers of one server.

The workers accept from one listening socket they all hold.  Left to
the kernel (SO_REUSEPORT hashes each connection to one socket), 32
connections opened at once by one client land 16/16 only by luck: 11/21
and 12/20 came up in 10 tries, and a worker that dies leaves the
connections hashed to it waiting for its replacement.  So each worker
publishes on a board in shared memory how many connections it holds,
and when a new one is waiting, a worker holding more than another live
worker leaves it to that one: it stops watching the socket for DEFER
seconds.  Should a connection still wait then (the other worker is busy,
or not running), it takes it anyway, so no connection waits longer than
that for a worker that does not come.

Measured (2 cores shared with the client, `python -m bench`, workers:
auto): 1000 small pushes over 16 connections at 400-453/s against
347-412 with the kernel's hashing, HEAD and manifest GETs within noise;
32 concurrent TLS pulls no faster (the cores are the limit, not the
share).

A worker writes its count on the board whenever it changes (accepted,
served, closed) and as it weighs a new connection.
Connections count whether busy or idle (kept alive between requests), as
a load balancer's "least connections" does: the work a connection will
bring is not known when it is accepted.
"""

import multiprocessing

#: On the board: a slot without a live worker.
VACANT = -1


class Board:
    """How many connections each worker holds, in memory shared by the
    processes forked after it is made."""

    def __init__(self, count):
        self._counts = multiprocessing.RawArray('q', [VACANT] * count)

    def publish(self, index, count):
        self._counts[index] = count

    def vacate(self, index):
        self._counts[index] = VACANT

    def fewest_elsewhere(self, index):
        """The smallest count of the other live workers; None if none."""
        others = [count for slot, count in enumerate(self._counts)
                  if slot != index and count != VACANT]
        return min(others) if others else None


class Load:
    """The connections of this worker, published on `board` as `index`."""

    def __init__(self, board, index):
        self.board = board
        self.index = index
        self._transports = set()
        self._handshakes = 0   # accepted, not yet served
        board.publish(index, 0)

    def count(self):
        self._transports = {t for t in self._transports
                            if not t.is_closing()}
        return len(self._transports) + self._handshakes

    def accepted(self):
        self._handshakes += 1
        self.board.publish(self.index, self.count())

    def connected(self, transport):
        """The handshake is over: `transport` serves, or None."""
        self._handshakes -= 1
        if transport is not None:
            self._transports.add(transport)
        self.board.publish(self.index, self.count())

    def watch(self, server):
        """Publish the count again whenever a connection of the aiohttp
        `server` closes: the others weigh it as it is, not as it was."""
        lost = server.connection_lost

        def counted(handler, exc=None):
            lost(handler, exc)
            self.board.publish(self.index, self.count())
        server.connection_lost = counted

    def should_wait(self):
        """Whether another worker is there that holds fewer."""
        mine = self.count()
        self.board.publish(self.index, mine)
        fewest = self.board.fewest_elsewhere(self.index)
        return fewest is not None and mine > fewest
