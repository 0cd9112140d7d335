"""Timed pulls of a large blob: time to the first body byte and to the
last, one client or several at once (each on its own thread and
connection, started together)."""

import dataclasses
import threading
import time

from bench.large import PULL_CHECKS, pull_large


class FirstByte:
    """A pull's checker that also notes when the first body byte came."""

    def __init__(self, checker):
        self.checker = checker
        self.at = None

    def __getattr__(self, name):        # window, received, problem
        return getattr(self.checker, name)

    def advance(self, count):
        if self.at is None:
            self.at = time.perf_counter()
        self.checker.advance(count)

    def __call__(self, piece):
        if self.at is None:
            self.at = time.perf_counter()
        self.checker(piece)


@dataclasses.dataclass(frozen=True)
class Pull:
    start: float
    first_byte: float
    end: float


def timed_pull(endpoint, repository, blob, check):
    checker = FirstByte(PULL_CHECKS[check](blob))
    start = time.perf_counter()
    pull_large(endpoint, repository, blob, checker=checker)
    return Pull(start, checker.at, time.perf_counter())


def pulls_at_once(endpoint, repository, blob, check, clients):
    """``clients`` pulls started together, each on its own thread and
    connection; (seconds until the last finished, [Pull])."""
    barrier = threading.Barrier(clients + 1)
    pulls, errors = [None] * clients, []

    def client(index):
        try:
            barrier.wait(timeout=60)
            pulls[index] = timed_pull(endpoint, repository, blob, check)
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=client, args=(i,), daemon=True)
               for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=60)
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return max(p.end for p in pulls) - start, [
        dataclasses.replace(p, start=start) for p in pulls]
