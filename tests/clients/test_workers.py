"""`workers: N`: several serving processes on one port, supervised.

Real servers (ServerProcess, `-d`, so every request has an access-log line
carrying the pid of the worker that answered it) and plain HTTP clients
that open a new connection per request.  A new connection goes to the
worker holding fewer (balance.py), so a test that holds its earlier
connections open has its requests answered by each worker in turn.
"""

import base64
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import ssl
import time

import pytest

from tests.clients import tls
from tests.server_process import ServerProcess
from zuul_registry import workers

REPOSITORY = 'workers/test'
ACCESS = re.compile(r'aiohttp\.access\[(\d+)\]: \S+ \[[^]]*\] "(\w+) (\S+) ')
SERVING = re.compile(r'Worker (\d+) of (\d+) \(pid (\d+)\) serving')


@pytest.fixture
def server(tmp_path):
    server = ServerProcess(tmp_path / 'registry', registry={'workers': 2})
    server.start()
    yield server
    server.stop(timeout=workers.SHUTDOWN_TIMEOUT + workers.STOP_GRACE)


def _children(pid):
    """The pids of the live processes whose parent is `pid`."""
    found = set()
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != 'Z':
            found.add(int(entry))
    return found


def _wait_for_workers(server, count, *, exclude=(), timeout=10):
    """Wait until `count` workers run, none of them in `exclude`, each
    having said it serves; return their pids."""
    deadline = time.monotonic() + timeout
    while True:
        pids = _children(server.process.pid)
        serving = {int(m.group(3))
                   for m in SERVING.finditer(server.log_text())}
        if len(pids) == count and not pids & set(exclude) and \
                pids <= serving:
            return pids
        assert time.monotonic() < deadline, (pids, serving)
        time.sleep(0.05)


def _until(measure, expected, timeout=10):
    """Wait until `measure()` returns `expected`."""
    deadline = time.monotonic() + timeout
    while True:
        found = measure()
        if found == expected:
            return
        assert time.monotonic() < deadline, (found, expected)
        time.sleep(0.05)


def _settled(measure, *, quiet=0.5, timeout=10):
    """`measure()` once it has stayed the same for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    last, since = measure(), time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, 'never settled at %s' % last
        time.sleep(0.05)
        found = measure()
        if found != last:
            last, since = found, time.monotonic()
    return last


def _request(server, method, path, body=None, headers=None, *, hold=None):
    """One request on a connection of its own; (status, headers, body).
    With `hold` (a list), the connection is left open and added to it."""
    conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        if hold is None:
            conn.close()
        else:
            hold.append(conn)


def _close_all(connections):
    for conn in connections:
        conn.close()


def _start_upload(server):
    status, headers, body = _request(
        server, 'POST', '/v2/%s/blobs/uploads/' % REPOSITORY)
    assert status == 202, body
    return headers['Location']


def _patch(server, location, offset, chunk, *, hold=None):
    return _request(server, 'PATCH', location, chunk, {
        'Content-Type': 'application/octet-stream',
        'Content-Range': '%d-%d' % (offset, offset + len(chunk) - 1)},
        hold=hold)


def _finish(server, location, data):
    digest = 'sha256:' + hashlib.sha256(data).hexdigest()
    separator = '&' if '?' in location else '?'
    status, _, body = _request(server, 'PUT', '%s%sdigest=%s' % (
        location, separator, digest))
    assert status == 201, body
    return digest


def _pid_of(server, method, path, *, since):
    """The pid whose access-log line says it answered `method path`."""
    def answered(text):
        return any(m.group(2) == method and m.group(3) == path
                   for m in ACCESS.finditer(text))
    text = server.wait_for_log(answered, since=since)
    return [int(m.group(1)) for m in ACCESS.finditer(text)
            if m.group(2) == method and m.group(3) == path][-1]


def test_an_upload_continues_on_another_worker(server):
    """The PATCHes of one upload are answered by different workers, and
    the blob is whole: a worker without the upload's hash state re-hashes
    what is stored and goes on."""
    workers_up = _wait_for_workers(server, 2)
    location = _start_upload(server)
    data, pids, held = b'', [], []
    try:
        for _ in range(4):
            chunk = os.urandom(256 * 1024)
            status, headers, body = _patch(server, location, len(data),
                                           chunk, hold=held)
            assert status == 202, body
            data += chunk
            assert headers['Range'] == '0-%d' % (len(data) - 1)
            location = headers['Location']
            pids.append(_worker_of(server, workers_up, held[-1]))
    finally:
        _close_all(held)
    # Each new connection went to the worker holding fewer.
    assert set(pids) == workers_up, pids
    digest = _finish(server, location, data)
    for _ in range(4):   # on whichever worker each lands
        status, _, body = _request(
            server, 'GET', '/v2/%s/blobs/%s' % (REPOSITORY, digest))
        assert status == 200
        assert body == data


def test_tls_and_a_token_from_one_worker_work_on_every_worker(tmp_path):
    """Each worker speaks TLS on its socket, and a token one worker
    signed is accepted by the others: they sign with the same secret."""
    pki = tls.make_pki(tmp_path / 'pki')
    server = ServerProcess(tmp_path / 'registry', tls_ca=pki.ca_cert,
                           registry={
                               'workers': 2, 'tls-cert': pki.server_cert,
                               'tls-key': pki.server_key,
                               'secret': 's' * 40, 'users': [{
                                   'name': 'zuul', 'pass': 'pw',
                                   'access': 'write'}]})
    context = ssl.create_default_context(cafile=pki.ca_cert)

    held = []

    def https(path, headers):
        """On a connection of its own, held open: the next goes to the
        other worker."""
        conn = http.client.HTTPSConnection('127.0.0.1', server.port,
                                           timeout=30, context=context)
        held.append(conn)
        conn.request('GET', path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()

    with server:
        status, body = https('/auth/token?service=zuul-registry&scope='
                             'repository:%s:pull,push' % REPOSITORY, {
                                 'Authorization': 'Basic ' + base64.b64encode(
                                     b'zuul:pw').decode()})
        assert status == 200, body
        bearer = {'Authorization': 'Bearer ' + json.loads(body)['token']}
        path = '/v2/%s/tags/list' % REPOSITORY
        workers_up = _wait_for_workers(server, 2)
        pids = set()
        try:
            for _ in range(4):
                status, body = https(path, bearer)
                assert status in (200, 404), body   # authorized: no 401
                pids.add(_worker_of(server, workers_up, held[-1]))
        finally:
            _close_all(held)
        assert pids == workers_up, 'every request went to worker %s' % pids


def _tcp_inode(local_port, remote_port):
    """The inode of the server side of the loopback TCP connection."""
    with open('/proc/net/tcp') as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.split(':')[1], 16) == local_port and \
                    int(remote.split(':')[1], 16) == remote_port:
                return fields[9]
    return None


def _owner(pids, inode):
    for pid in pids:
        try:
            fds = os.listdir('/proc/%d/fd' % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink('/proc/%d/fd/%s' % (pid, fd)) == \
                        'socket:[%s]' % inode:
                    return pid
            except OSError:
                continue
    return None


def _worker_of(server, pids, conn):
    """The pid of the worker holding the server side of `conn` (an open
    http.client connection)."""
    inode = _tcp_inode(server.port, conn.sock.getsockname()[1])
    return _owner(pids, inode) if inode is not None else None


def test_a_worker_killed_during_a_push_is_replaced_and_the_retry_works(
        server):
    pids = _wait_for_workers(server, 2)
    location = _start_upload(server)
    first = os.urandom(1024 * 1024)
    status, headers, body = _patch(server, location, 0, first)
    assert status == 202, body
    location = headers['Location']

    # A PATCH of 4 MiB of which only 1 MiB is sent: its worker is busy
    # with it when it gets SIGKILL.
    second = os.urandom(4 * 1024 * 1024)
    client = socket.create_connection(('127.0.0.1', server.port))
    try:
        client.sendall((
            'PATCH %s HTTP/1.1\r\nHost: 127.0.0.1\r\n'
            'Content-Type: application/octet-stream\r\n'
            'Content-Range: %d-%d\r\nContent-Length: %d\r\n\r\n' % (
                location, len(first), len(first) + len(second) - 1,
                len(second))).encode() + second[:1024 * 1024])
        inode = None
        deadline = time.monotonic() + 10
        while inode is None or _owner(pids, inode) is None:
            assert time.monotonic() < deadline, 'connection never accepted'
            time.sleep(0.05)
            inode = _tcp_inode(server.port, client.getsockname()[1])
        victim = _owner(pids, inode)
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(OSError):
            client.settimeout(10)
            client.sendall(second[1024 * 1024:])
            if not client.recv(1):
                raise ConnectionResetError('closed')
    finally:
        client.close()

    # The client's retry: ask where the upload stands, send the rest.
    status, headers, _ = _request(server, 'GET', location)
    assert status == 204
    stored = int(headers['Range'].split('-')[1]) + 1
    data = first + second
    assert len(first) <= stored <= len(data)
    status, headers, body = _patch(server, headers['Location'], stored,
                                   data[stored:])
    assert status == 202, body
    digest = _finish(server, headers['Location'], data)
    status, _, body = _request(server, 'GET', '/v2/%s/blobs/%s' % (
        REPOSITORY, digest))
    assert status == 200 and body == data

    # The dead worker was logged with its status and replaced.
    server.wait_for_log_lines(0, '(pid %d) killed by SIGKILL' % victim)
    replaced = _wait_for_workers(server, 2, exclude=[victim])
    assert len(replaced - pids) == 1


def test_sigterm_lets_a_large_pull_finish_then_exits_0(server):
    data = os.urandom(64 * 1024 * 1024)
    location = _start_upload(server)
    digest = _finish_monolithic(server, location, data)

    conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=30)
    conn.request('GET', '/v2/%s/blobs/%s' % (REPOSITORY, digest))
    response = conn.getresponse()
    assert response.status == 200
    received = response.read(1024 * 1024)
    stopping = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    server.wait_for_log_lines(0, 'SIGTERM: stopping 2 workers')
    time.sleep(0.5)
    with pytest.raises(ConnectionRefusedError):   # no longer accepting
        socket.create_connection(('127.0.0.1', server.port), timeout=5)
    hasher = hashlib.sha256(received)
    size = len(received)
    while True:
        piece = response.read(1024 * 1024)
        if not piece:
            break
        hasher.update(piece)
        size += len(piece)
        time.sleep(0.005)   # a slow reader
    conn.close()
    assert size == len(data)
    assert 'sha256:' + hasher.hexdigest() == digest
    status = server.process.wait(
        timeout=workers.SHUTDOWN_TIMEOUT + workers.STOP_GRACE)
    assert status == 0, server.log_text()
    assert time.monotonic() - stopping < workers.SHUTDOWN_TIMEOUT
    assert 'All workers stopped' in server.log_text()


def _finish_monolithic(server, location, data):
    digest = 'sha256:' + hashlib.sha256(data).hexdigest()
    separator = '&' if '?' in location else '?'
    status, _, body = _request(
        server, 'PUT', '%s%sdigest=%s' % (location, separator, digest),
        data, {'Content-Type': 'application/octet-stream'})
    assert status == 201, body
    return digest


def test_connections_are_shared_out_evenly(server):
    """Connections opened one after the other and held open go to the
    worker holding fewer: the two differ by one, at moments two (a
    worker weighs the other's count as last published), and more only
    by the connections a worker took out of turn, which it logs (the
    other did not take its turn within balance_site.DEFER: on a loaded
    machine, it may not have run).  The kernel's hashing (SO_REUSEPORT)
    stays within two in only 4% of runs of 24 connections."""
    pids = _wait_for_workers(server, 2)
    start = server.log_offset()
    held, counts, widest = [], dict.fromkeys(pids, 0), 0
    try:
        for _ in range(24):
            assert _request(server, 'GET', '/v2/', hold=held)[0] == 200
            counts[_worker_of(server, pids, held[-1])] += 1
            widest = max(widest, abs(counts[min(pids)] - counts[max(pids)]))
    finally:
        _close_all(held)
    out_of_turn = server.log_text(since=start).count(
        'Took a connection out of turn')
    assert widest <= 2 + out_of_turn, (counts, out_of_turn)


def test_a_worker_that_does_not_take_its_turn_is_not_waited_for(server):
    """The worker holding fewer connections is stopped (SIGSTOP): the
    other serves new connections after balance_site.DEFER."""
    pids = _wait_for_workers(server, 2)
    held = []
    try:
        assert _request(server, 'GET', '/v2/', hold=held)[0] == 200
        busy = _worker_of(server, pids, held[-1])
        [stopped] = set(pids) - {busy}
        os.kill(stopped, signal.SIGSTOP)
        try:
            for _ in range(3):
                assert _request(server, 'GET', '/v2/', hold=held)[0] == 200
                assert _worker_of(server, pids, held[-1]) == busy
        finally:
            os.kill(stopped, signal.SIGCONT)
    finally:
        _close_all(held)


def test_workers_auto_starts_one_per_cpu(tmp_path):
    expected = len(os.sched_getaffinity(0))
    server = ServerProcess(tmp_path / 'registry',
                           registry={'workers': 'auto'})
    with server:
        if expected == 1:   # one CPU: today's single process
            assert not _children(server.process.pid)
        else:
            pids = _wait_for_workers(server, expected)
            assert 'Supervisor (pid %d) starting %d workers' % (
                server.process.pid, expected) in server.log_text()
            assert len(pids) == expected


def test_any_worker_answers_a_scrape_with_the_whole_servers_metrics(
        tmp_path):
    from prometheus_client.parser import text_string_to_metric_families
    from tests.server_process import free_port
    port = free_port()
    server = ServerProcess(tmp_path / 'registry', registry={
        'workers': 2, 'metrics-port': port})
    server.start()
    try:
        pids = _wait_for_workers(server, 2)

        def scrape():
            """(requests to /v2/ counted, requests in flight) of one
            scrape, on a new connection: either worker may answer."""
            conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
            conn.request('GET', '/metrics')
            text = conn.getresponse().read().decode()
            conn.close()
            counted = in_flight = 0
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name == 'zuul_registry_requests_total' \
                            and sample.labels['route'] == '/v2/':
                        counted += sample.value
                    if sample.name == 'zuul_registry_requests_in_flight':
                        in_flight += sample.value
            return counted, in_flight

        # A readiness probe that gave up while the workers started is
        # answered (and counted) once one accepts it: wait for that.
        before = _settled(lambda: scrape()[0])
        answered, held = set(), []
        try:
            for _ in range(20):
                since = server.log_offset()
                assert _request(server, 'GET', '/v2/', hold=held)[0] == 200
                answered.add(_pid_of(server, 'GET', '/v2/', since=since))
        finally:
            _close_all(held)
        assert answered == pids, 'every request went to one worker'
        # A request is counted once its answer is sent: the last may
        # be a moment late.  Then each of 10 scrapes (spread over both
        # workers) sees all 20.
        _until(lambda: scrape()[0] - before, 20)
        assert [scrape()[0] - before for _ in range(10)] == [20] * 10
        # A worker that dies leaves its counts; its replacement adds on.
        victim = sorted(pids)[0]
        os.kill(victim, signal.SIGKILL)
        server.wait_for_log_lines(0, '(pid %d) killed by SIGKILL' % victim)
        _wait_for_workers(server, 2, exclude=[victim])
        for _ in range(4):
            assert _request(server, 'GET', '/v2/')[0] == 200
        _until(scrape, (before + 24, 0))
        assert [scrape() for _ in range(6)] == [(before + 24, 0)] * 6
    finally:
        server.stop(timeout=workers.SHUTDOWN_TIMEOUT + workers.STOP_GRACE)
