"""A small HTTP/1.1 client, cheap enough not to be what is measured.

General-purpose clients spend more CPU on one request than a registry
spends answering a ``HEAD``, and copy large bodies more than once. This
one does only what the benchmark needs: persistent connections, request
bodies sent from an iterable of buffers, response bodies framed by
``Content-Length``, chunked encoding or connection close, delivered whole
(small) or piece by piece to a callback (large).

:class:`Connection` blocks (large transfers: ``sendall`` and
``recv_into`` release the GIL and copy nothing in Python);
:class:`AsyncConnection` runs on asyncio (many small requests).
"""

import asyncio
import socket
import ssl

from bench.wire import (BODY_METHODS, CRLF, HEAD_END, MAX_CHUNKS, MAX_HEAD,
                        MAX_INTERIM, RECV_SIZE, ProtocolError, chunk_size,
                        encode_request, framing, keeps_alive, parse_head)


class Connection:
    """One blocking, persistent connection; reconnects when needed."""

    def __init__(self, endpoint, *, timeout=120.0):
        self.endpoint = endpoint
        self.timeout = timeout
        self._sock = None
        self._pending = bytearray()     # received, not yet consumed
        self._recv = bytearray(RECV_SIZE)
        self._view = memoryview(self._recv)

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._pending.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _connect(self):
        e = self.endpoint
        sock = socket.create_connection((e.host, e.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if e.ssl_context is not None:
            sock = e.ssl_context.wrap_socket(sock, server_hostname=e.host)
        self._sock = sock

    def send_head(self, method, target, headers=None, *, length=None):
        if self._sock is None:
            self._connect()
        self._sock.sendall(encode_request(
            method, target, self.endpoint.authority, headers, length))

    def request(self, method, target, headers=None, body=b''):
        """Send one request with a small body; return the whole response."""
        length = len(body) if body or method in BODY_METHODS else None
        self.send_head(method, target, headers, length=length)
        if body:
            self._sock.sendall(body)
        return self.read_response(method, target)

    def request_streaming(self, method, target, headers, length, chunks):
        """Send ``length`` bytes from the buffers in ``chunks``; return the
        response. If the server stops reading early, report its answer."""
        self.send_head(method, target, headers, length=length)
        sent = 0
        try:
            for chunk in chunks:
                self._sock.sendall(chunk)
                sent += len(chunk)
        except OSError as error:
            try:
                early = self.read_response(method, target)
            except (OSError, ProtocolError):
                raise ProtocolError('%s %s: connection failed after %d of '
                                    '%d body bytes: %s' % (
                                        method, target, sent, length,
                                        error)) from None
            raise ProtocolError('%s %s: server stopped reading after %d of '
                                '%d body bytes and answered %s' % (
                                    method, target, sent, length,
                                    early.describe())) from None
        if sent != length:
            raise ValueError('sent %d bytes, announced %d' % (sent, length))
        return self.read_response(method, target)

    def read_response(self, method, target, sink=None):
        """Read one response. With ``sink``, each piece of the body is passed
        to it (a memoryview, valid only during the call) and the returned
        response has an empty body; without, the body is collected.

        A sink may also offer ``window(limit)`` (a writable memoryview of at
        most ``limit`` bytes) and ``advance(n)`` (n bytes were written
        there): the body then goes straight into its buffer, uncopied."""
        for _ in range(MAX_INTERIM):
            response = parse_head(self._read_until(HEAD_END, MAX_HEAD),
                                  method, target)
            if response.status >= 200 or response.status == 101:
                break
        parts = []
        collect = sink or (lambda piece: parts.append(bytes(piece)))
        kind, length = framing(response)
        if kind == 'length':
            self._read_exact(length, collect, response)
        elif kind == 'chunked':
            for _ in range(MAX_CHUNKS):
                size = chunk_size(self._read_until(CRLF, 1024), response)
                if size == 0:
                    for _ in range(MAX_CHUNKS):     # trailer fields
                        if not self._read_until(CRLF, MAX_HEAD):
                            break
                    break
                self._read_exact(size, collect, response)
                self._read_until(CRLF, 0)
            else:
                raise ProtocolError('%s %s: more than %d chunks' % (
                    method, target, MAX_CHUNKS))
        elif kind == 'close':
            self._read_to_close(collect)
        if kind == 'close' or not keeps_alive(response):
            self.close()
        response.body = b''.join(parts)
        return response

    def _fill(self, response_what):
        n = self._sock.recv_into(self._view)
        if n == 0:
            self.close()
            raise ProtocolError('%s: connection closed by the server' %
                                response_what)
        self._pending += self._view[:n]

    def _read_until(self, marker, limit):
        """Consume and return the bytes before ``marker`` (dropping it)."""
        if self._sock is None:
            raise ProtocolError('no connection to read from')
        for _ in range(limit + 2):      # each fill adds at least one byte
            index = self._pending.find(marker)
            if 0 <= index <= limit:
                data = bytes(self._pending[:index])
                del self._pending[:index + len(marker)]
                return data
            if index > limit or len(self._pending) > limit:
                break
            self._fill('waiting for %r' % marker)
        raise ProtocolError('no %r within %d bytes of the response' % (
            marker, limit))

    def _read_exact(self, count, sink, response):
        if self._pending:
            take = min(count, len(self._pending))
            piece = bytes(self._pending[:take])
            del self._pending[:take]
            sink(memoryview(piece))
            count -= take
        # A sink with window() and advance() is received into directly.
        window = getattr(sink, 'window', None)
        while count > 0:
            if window:
                n = self._sock.recv_into(window(min(count, RECV_SIZE)))
            else:
                n = self._sock.recv_into(self._view, min(count, RECV_SIZE))
            if n == 0:
                self.close()
                raise ProtocolError(
                    '%s %s: connection closed with %d body bytes missing' % (
                        response.method, response.target, count))
            if window:
                sink.advance(n)
            else:
                sink(self._view[:n])
            count -= n

    def _read_to_close(self, sink):
        if self._pending:
            sink(memoryview(bytes(self._pending)))
            self._pending.clear()
        for _ in range(MAX_CHUNKS * 16):
            n = self._sock.recv_into(self._view)
            if n == 0:
                return
            sink(self._view[:n])
        raise ProtocolError('response body without end')


class AsyncConnection:
    """One persistent asyncio connection for small requests and answers."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self._reader = self._writer = None

    async def connect(self):
        e = self.endpoint
        self._reader, self._writer = await asyncio.open_connection(
            e.host, e.port, ssl=e.ssl_context,
            server_hostname=e.host if e.ssl_context else None,
            limit=4 * MAX_HEAD)

    async def close(self):
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except (OSError, ssl.SSLError):
                pass
        self._reader = self._writer = None

    async def request(self, method, target, headers=None, body=b''):
        if self._writer is None:
            await self.connect()
        length = len(body) if body or method in BODY_METHODS else None
        head = encode_request(method, target, self.endpoint.authority,
                              headers, length)
        self._writer.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self._writer.write(body)
        try:
            return await self._read_response(method, target)
        except asyncio.IncompleteReadError:
            await self.close()
            raise ProtocolError('%s %s: connection closed mid-response' % (
                method, target)) from None
        except asyncio.LimitOverrunError:
            await self.close()
            raise ProtocolError('%s %s: response head too long' % (
                method, target)) from None

    async def _read_response(self, method, target):
        reader = self._reader
        for _ in range(MAX_INTERIM):
            block = await reader.readuntil(HEAD_END)
            response = parse_head(block[:-4], method, target)
            if response.status >= 200:
                break
        kind, length = framing(response)
        if kind == 'length':
            response.body = await reader.readexactly(length)
        elif kind == 'chunked':
            parts = []
            for _ in range(MAX_CHUNKS):
                size = chunk_size(await reader.readuntil(CRLF), response)
                if size == 0:
                    for _ in range(MAX_CHUNKS):     # trailer fields
                        if await reader.readuntil(CRLF) == CRLF:
                            break
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            response.body = b''.join(parts)
        elif kind == 'close':
            response.body = await reader.read()
        if kind == 'close' or not keeps_alive(response):
            await self.close()
        return response
