"""Pull-through with `workers: 2`: a blob is fetched once per server, not
once per worker, and the death of the worker fetching it is survived.

The mirror is a real server process with two workers; the upstream a
real zuul-registry process, paced (tests/clients/test_pullthrough_faults)
so that every client's request is in before the blob streams.
The 16 clients' connections are shared out between the workers
(balance.py), so both workers get some; should they not, the test says
so rather than pass without having tested sharing.
"""

import hashlib
import os
import re
import signal
import threading
import time

from tests.clients.test_pullthrough_faults import (
    BIG, MiB, Paced, ServerProcess, big_blob, blob_file, committed, fetch,
    push_blob,
    upstream, wait_until)

__all__ = ['upstream']   # a fixture used here

ACCESS = re.compile(r'aiohttp\.access\[(\d+)\]: \S+ \[[^]]*\] '
                    r'"GET (\S+) HTTP/1\.1" (\d+) ')
FOLLOWING = re.compile(r'following the fill of worker (\d+)')
CLIENTS = 16


def mirror_with_workers(tmp_path, upstream):
    return ServerProcess(tmp_path / 'mirror', namespaced=True,
                         default_namespace='docker.io', registry={
                             'workers': 2, 'upstreams': [{
                                 'namespace': 'docker.io',
                                 'url': upstream.url}]})


def pull_all(url, count, reads, outcomes):
    """Start `count` clients fetching `url`; their threads."""
    def client(index):
        try:
            outcomes[index] = fetch(
                url, timeout=120,
                progress=lambda n: reads.__setitem__(index, n))
        except Exception as e:
            outcomes[index] = e
    threads = [threading.Thread(target=client, args=(index,))
               for index in range(count)]
    for thread in threads:
        thread.start()
    return threads


def test_sixteen_first_pulls_over_two_workers_make_one_upstream_get(
        tmp_path, upstream):
    path, digest = big_blob(str(tmp_path))
    push_blob(upstream.url, 'library/big', path, digest)
    url = '/v2/library/big/blobs/%s' % digest
    upstream_offset = upstream.log_offset()
    with mirror_with_workers(tmp_path, upstream) as mirror:
        reads, outcomes = [0] * CLIENTS, [None] * CLIENTS
        with Paced(upstream):
            threads = pull_all(mirror.url + url, CLIENTS, reads, outcomes)
            # The upstream answers nothing until every request is in.
            time.sleep(2)
        for thread in threads:
            thread.join(120)
        assert outcomes == [(200, digest)] * CLIENTS
        log = mirror.wait_for_log(lambda text: len([
            m for m in ACCESS.finditer(text)
            if m.group(2) == url and m.group(3) == '200']) == CLIENTS)
        pids = {m.group(1) for m in ACCESS.finditer(log)
                if m.group(2) == url}
        assert len(pids) == 2, 'all 16 connections went to one worker'
        assert FOLLOWING.search(log), log
        assert log.count('filled from %s' % upstream.url) == 1
    time.sleep(0.5)   # a second GET would have been logged by now
    upstream_log = upstream.log_text(since=upstream_offset)
    assert upstream_log.count('"GET %s HTTP' % url) == 1, upstream_log


def test_the_worker_filling_a_blob_killed_cuts_off_every_reader(
        tmp_path, upstream):
    path, digest = big_blob(str(tmp_path))
    push_blob(upstream.url, 'library/big', path, digest)
    url = '/v2/library/big/blobs/%s' % digest
    with mirror_with_workers(tmp_path, upstream) as mirror:
        reads, outcomes = [0] * CLIENTS, [None] * CLIENTS
        with Paced(upstream) as paced:
            threads = pull_all(mirror.url + url, CLIENTS, reads, outcomes)
            # Every client reads already (its request is in: leading
            # or following the fill), one has 8 MiB.
            paced.until(lambda: FOLLOWING.search(mirror.log_text())
                        and min(reads) > 0 and max(reads) >= 8 * MiB,
                        timeout=60)
            leader = int(FOLLOWING.search(mirror.log_text()).group(1))
            os.kill(leader, signal.SIGKILL)
        for thread in threads:
            thread.join(120)
        # Nobody got a complete body: the followers in the other worker
        # were cut off as well, not left waiting or given a short one.
        assert all(not isinstance(outcome, tuple) for outcome in outcomes), \
            outcomes
        assert max(reads) < BIG
        assert not os.path.exists(blob_file(mirror, 'docker.io', digest))
        # The replacement worker is up; the retry fetches it whole.
        mirror.wait_for_log(lambda text: 'restarting it' in text)

        def pulled():
            try:
                return fetch(mirror.url + url, timeout=120) == (200, digest)
            except OSError:
                return False
        wait_until(pulled, timeout=60, what='a pull after the kill')
        # The last byte goes out once verified; the commit follows.
        assert committed(mirror, 'docker.io', digest)
        with open(blob_file(mirror, 'docker.io', digest), 'rb') as f:
            assert 'sha256:' + hashlib.file_digest(
                f, 'sha256').hexdigest() == digest
