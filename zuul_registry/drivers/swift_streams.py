"""Byte streams cut to size, for the Swift driver."""


class Splitter:
    """Cut an async iterable of bytes into consecutive sub-streams."""

    def __init__(self, chunks):
        self._iterator = chunks.__aiter__()
        self._pending = b''

    async def more(self):
        while not self._pending:
            try:
                self._pending = await self._iterator.__anext__()
            except StopAsyncIteration:
                return False
        return True

    async def take(self, limit):
        """Yield the next `limit` bytes (fewer at the end)."""
        while limit > 0 and await self.more():
            piece = self._pending[:limit]
            self._pending = self._pending[len(piece):]
            limit -= len(piece)
            yield piece


async def exactly(pieces, size):
    """Re-cut `pieces` into chunks of exactly `size` (the last shorter)."""
    buffer = bytearray()
    async for piece in pieces:
        if not buffer and len(piece) == size:
            yield piece
            continue
        buffer += piece
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)
