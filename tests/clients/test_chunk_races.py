"""Chunks of one upload sent to two server processes on one storage root
at once: appends exclude each other across processes, a completion never
hands over a file another process is still writing to, and whatever was
acknowledged is what the blob holds."""

import hashlib
import http.client
import os
import threading
import time
import urllib.parse

import pytest

from tests.server_process import ServerProcess

CHUNK = 'application/octet-stream'


@pytest.fixture
def servers(tmp_path):
    root = str(tmp_path / 'storage')
    started = []
    try:
        for name in ('one', 'two'):
            server = ServerProcess(tmp_path / name, storage_root=root)
            server.start()
            started.append(server)
        yield started
    finally:
        for server in started:
            server.stop()


def request(server, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def start_upload(server):
    status, headers, body = request(server, 'POST',
                                    '/v2/org/img/blobs/uploads/')
    assert status == 202, body
    return urllib.parse.urlsplit(headers['Location']).path


def patch(server, path, data, offset):
    return request(server, 'PATCH', path, data, {
        'Content-Type': CHUNK,
        'Content-Range': '%d-%d' % (offset, offset + len(data) - 1)})


def complete(server, path, data):
    digest = 'sha256:' + hashlib.sha256(data).hexdigest()
    status, _, body = request(server, 'PUT', path + '?digest=' + digest)
    return status, body, digest


def test_a_completion_waits_out_no_append_of_another_process(servers):
    one, two = servers
    # The server stores a body in 1 MiB blocks: the slow PATCH's first
    # half is two of them, so its append is under way when it pauses.
    first, second = os.urandom(300_000), os.urandom(3 << 20)
    path = start_upload(one)
    assert patch(one, path, first, 0)[0] == 202

    # A slow PATCH on one: its body comes in two halves.
    conn = http.client.HTTPConnection('127.0.0.1', one.port, timeout=60)
    conn.putrequest('PATCH', path)
    for name, value in (('Content-Type', CHUNK),
                        ('Content-Length', str(len(second))),
                        ('Content-Range', '%d-%d' % (
                            len(first), len(first) + len(second) - 1))):
        conn.putheader(name, value)
    conn.endheaders()
    conn.send(second[:2 << 20])
    time.sleep(0.5)   # the first half is being appended on one

    # Meanwhile on two: no chunk at the same offset, no completion.
    status, _, body = patch(two, path, b'x' * 1000, len(first))
    assert status == 416, body
    status, body, _ = complete(two, path, first + second)
    assert status == 416, body

    conn.send(second[2 << 20:])
    response = conn.getresponse()
    assert response.status == 202, response.read()
    conn.close()
    status, body, digest = complete(two, path, first + second)
    assert status == 201, body
    for server in servers:
        status, _, pulled = request(server, 'GET',
                                    '/v2/org/img/blobs/' + digest)
        assert (status, pulled == first + second) == (200, True)


def test_chunks_racing_for_one_offset_across_processes(servers):
    head = os.urandom(100_000)
    path = start_upload(servers[0])
    assert patch(servers[0], path, head, 0)[0] == 202
    bodies = [os.urandom(200_000) for _ in range(8)]
    results = [None] * len(bodies)

    def send(index):
        results[index] = patch(servers[index % 2], path, bodies[index],
                               len(head))[0]

    threads = [threading.Thread(target=send, args=(i,))
               for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # All of them start at the same offset: one is taken, the others
    # find the upload longer than they thought.
    assert sorted(results) == [202] + [416] * (len(bodies) - 1)
    [winner] = [body for body, status in zip(bodies, results)
                if status == 202]
    status, headers, _ = request(servers[1], 'GET', path)
    assert (status, headers['Range']) == (
        204, '0-%d' % (len(head) + len(winner) - 1))
    status, body, digest = complete(servers[1], path, head + winner)
    assert status == 201, body
    status, _, pulled = request(servers[0], 'GET',
                                '/v2/org/img/blobs/' + digest)
    assert (status, pulled == head + winner) == (200, True)
