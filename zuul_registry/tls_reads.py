"""Read buffers of asyncio's TLS connections, sized to the load.

asyncio (3.11 and later) gives every TLS connection a read buffer of
`SSLProtocol.max_size` bytes (256 KiB) and decrypts up to that much at a
time, which aiohttp then holds until the handler reads it.  Requests
without a body (pulls) need none of it, so connections start with
READ_BUFFER (32 KiB); an upload body reads UPLOAD_READ_BUFFER at a time
while at most CROWD bodies stream in, READ_BUFFER beyond.

Measured (2 cores, loopback, 16 MiB blobs, peak RSS of the process):
64 concurrent TLS pushes 186 MiB with asyncio's 256 KiB everywhere, 90
with 32 KiB everywhere, 97 as here; 64 TLS pulls 109, 93, 94.  32 KiB
everywhere cost 15% on 16 concurrent TLS pushes (245 against 291
MiB/s) and 10% on one; as here they run as with 256 KiB (288, 328).

`max_size` is a class attribute of asyncio's private sslproto module,
read at each read; where it is missing (another Python), nothing
changes.
"""

import logging

log = logging.getLogger('zuul_registry.tls_reads')

READ_BUFFER = 32 * 1024
UPLOAD_READ_BUFFER = 256 * 1024
CROWD = 16


def use_small_buffers():
    """Make TLS connections opened from now on read READ_BUFFER bytes
    at a time; whether it took."""
    try:
        from asyncio import sslproto
        protocol = sslproto.SSLProtocol
    except (ImportError, AttributeError):
        return False
    if not isinstance(getattr(protocol, 'max_size', None), int):
        log.debug('asyncio has no SSLProtocol.max_size: buffers unchanged')
        return False
    protocol.max_size = READ_BUFFER
    return True


def fit_upload(transport, bodies):
    """Size the reads of the TLS connection `transport` (of any other
    kind: nothing) for an upload body while `bodies` stream in (None:
    its body ended)."""
    protocol = getattr(transport, '_ssl_protocol', None)
    if isinstance(getattr(protocol, 'max_size', None), int):
        protocol.max_size = UPLOAD_READ_BUFFER \
            if bodies is not None and bodies <= CROWD else READ_BUFFER
