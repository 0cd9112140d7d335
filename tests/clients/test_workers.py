"""`workers: N`: several serving processes on one port, supervised.

Real servers (ServerProcess, `-d`, so every request has an access-log line
carrying the pid of the worker that answered it) and plain HTTP clients
that open a new connection per request, so the kernel spreads requests
across the workers.
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


def _request(server, method, path, body=None, headers=None):
    """One request on a connection of its own; (status, headers, body)."""
    conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def _start_upload(server):
    status, headers, body = _request(
        server, 'POST', '/v2/%s/blobs/uploads/' % REPOSITORY)
    assert status == 202, body
    return headers['Location']


def _patch(server, location, offset, chunk):
    return _request(server, 'PATCH', location, chunk, {
        'Content-Type': 'application/octet-stream',
        'Content-Range': '%d-%d' % (offset, offset + len(chunk) - 1)})


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
    location = _start_upload(server)
    data, pids = b'', []
    while len(set(pids)) < 2:
        assert len(pids) < 24, 'every PATCH went to worker %s' % pids
        chunk = os.urandom(256 * 1024)
        since = server.log_offset()
        status, headers, body = _patch(server, location, len(data), chunk)
        assert status == 202, body
        data += chunk
        assert headers['Range'] == '0-%d' % (len(data) - 1)
        location = headers['Location']
        pids.append(_pid_of(server, 'PATCH', location, since=since))
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

    def https(path, headers):
        conn = http.client.HTTPSConnection('127.0.0.1', server.port,
                                           timeout=30, context=context)
        try:
            conn.request('GET', path, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    with server:
        status, body = https('/auth/token?service=zuul-registry&scope='
                             'repository:%s:pull,push' % REPOSITORY, {
                                 'Authorization': 'Basic ' + base64.b64encode(
                                     b'zuul:pw').decode()})
        assert status == 200, body
        bearer = {'Authorization': 'Bearer ' + json.loads(body)['token']}
        path = '/v2/%s/tags/list' % REPOSITORY
        pids = set()
        for _ in range(24):
            since = server.log_offset()
            status, body = https(path, bearer)
            assert status in (200, 404), body   # authorized: no 401
            pids.add(_pid_of(server, 'GET', path, since=since))
            if len(pids) == 2:
                break
        assert len(pids) == 2, 'every request went to worker %s' % pids


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

        before = scrape()[0]
        answered = set()
        for _ in range(20):
            since = server.log_offset()
            assert _request(server, 'GET', '/v2/')[0] == 200
            answered.add(_pid_of(server, 'GET', '/v2/', since=since))
        assert answered == pids, 'every request went to one worker'
        # Each of 10 scrapes (spread over both workers) sees all 20.
        assert [scrape()[0] - before for _ in range(10)] == [20] * 10
        # A worker that dies leaves its counts; its replacement adds on.
        victim = sorted(pids)[0]
        os.kill(victim, signal.SIGKILL)
        server.wait_for_log_lines(0, '(pid %d) killed by SIGKILL' % victim)
        _wait_for_workers(server, 2, exclude=[victim])
        for _ in range(4):
            assert _request(server, 'GET', '/v2/')[0] == 200
        assert [scrape() for _ in range(6)] == [(before + 24, 0)] * 6
    finally:
        server.stop(timeout=workers.SHUTDOWN_TIMEOUT + workers.STOP_GRACE)
