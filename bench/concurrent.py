"""Many clients at once (``--concurrent``): pulls of one blob, pushes of
different blobs.

``many_pull``   ``--concurrent-pulls`` (32) clients, each on its own thread
                and connection, started together, ``GET`` the same
                ``--concurrent-mib`` (16) MiB blob, pushed once when the
                registry started (untimed); bodies are checked as in the
                large pull (``--pull-check``).
``many_push``   ``--concurrent-pushes`` (16) clients push a different blob
                of that size each, as the large push does (``POST``, one
                ``PATCH``, ``PUT ?digest=``); new blobs every run.

Each gives the time until the last client finished (the aggregate rate
is all the bytes over it) and every client's own time from the common
start (its latency, for the p99).
"""

import threading
import time

from bench.large import LargeBlob, push_large
from bench.pulls import pulls_at_once

REPOSITORY = 'bench/concurrent'
BARRIER_TIMEOUT = 60.0


def shared_blob(mib):
    """The blob every concurrent pull fetches."""
    return LargeBlob.make(mib, seed=50000)


def push_blobs(mib, clients, run):
    """``clients`` distinct blobs for the pushes of run ``run``."""
    return [LargeBlob.make(mib, seed=60000 + 1000 * run + i)
            for i in range(clients)]


def pull_many(endpoint, blob, clients, check):
    """(seconds until the last pull finished, [seconds of each pull])."""
    seconds, pulls = pulls_at_once(endpoint, REPOSITORY, blob, check,
                                   clients)
    return seconds, [p.end - p.start for p in pulls]


def push_many(endpoint, blobs):
    """Push ``blobs`` at once, one client (thread, connection) each;
    (seconds until the last push finished, [seconds of each push])."""
    barrier = threading.Barrier(len(blobs) + 1)
    ends, errors = [None] * len(blobs), []

    def client(index):
        try:
            barrier.wait(timeout=BARRIER_TIMEOUT)
            push_large(endpoint, REPOSITORY, blobs[index])
            ends[index] = time.perf_counter()
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=client, args=(i,), daemon=True)
               for i in range(len(blobs))]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=BARRIER_TIMEOUT)
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return max(ends) - start, [end - start for end in ends]


def percentile(values, fraction):
    """Nearest-rank percentile (p99 of 32 values is the largest)."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]
