"""Smaller read buffers for asyncio's TLS connections.

asyncio (3.11 and later) gives every TLS connection a read buffer of
`SSLProtocol.max_size` bytes (256 KiB) and decrypts up to that much at a
time, which aiohttp then holds until the handler reads it: with many
uploads at once that is most of a process's memory.  Measured with 64
concurrent TLS pushes of 16 MiB each (2 cores, loopback): peak RSS 166
MiB with 256 KiB buffers, 105 with 64 KiB, 90 with 32 KiB; one TLS push
and one TLS pull of 256 MiB ran as fast with 32 KiB as with 256 (within
the runs' noise).

`max_size` is a class attribute of asyncio's private sslproto module;
where it is missing (another Python), nothing changes.
"""

import logging

log = logging.getLogger('zuul_registry.tls_reads')

READ_BUFFER = 32 * 1024


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
