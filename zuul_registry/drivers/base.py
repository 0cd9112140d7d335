"""The storage driver contract: bytes under slash-separated paths.

Drivers know nothing of digests, manifests or repositories.  A path is a
string of components joined by "/"; every public method checks it here,
once, so a driver implementation never sees "..", an absolute path, an
empty component or a component starting with "." (drivers keep their
private scratch space under such names).

Semantics every driver keeps (the contract suite in tests/drivers checks
them):

* An object is visible completely or not at all: `put`, `write` and
  `concat` create it under a private name and publish it atomically.  A
  crash at any moment leaves either the old state or the new one.
* `concat(consume=True)` hands its parts over instead of copying them
  where the driver can (a rename, Swift segments referred to): the new
  object never depends on anything a later `delete` of a part's path
  could remove.
* A driver may leave private leftovers behind (scratch of a write a crash
  interrupted, storage of a replaced object); `collect_leftovers` removes
  those older than a given time (and the scratch of writers known to be
  dead, whatever its age), and nothing any object still needs.
* Paths form a tree.  `delete("a")` removes the object "a" and everything
  under "a/", and never touches "ab".  `list("a")` names the immediate
  children of "a/" (objects and sub-trees), sorted; a missing path lists
  empty.
* `move` never loses the object to a concurrent move, whatever their
  directions: it ends at one of their paths at least.
* Missing objects raise `ObjectNotFound` from `get`, `read` and `move`;
  `stat` answers None; `delete` of a missing path is not an error.
* A driver that can (`can_append`) extends objects in place with
  `append`, the one exception to the first rule: the new bytes show as
  they are stored.  Uploads use it so that completing one is a rename,
  not a copy; `freeze` ends an object's appends before it is handed on.
"""

import abc
import re
from typing import AsyncIterable, AsyncIterator, NamedTuple, Optional

_COMPONENT_RE = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.:+=-]*')
MAX_PATH_LENGTH = 1024
MAX_COMPONENT_LENGTH = 255


class DriverError(Exception):
    pass


class ObjectNotFound(DriverError):
    pass


class AlreadyExists(DriverError):
    pass


class InvalidPath(DriverError):
    pass


class AppendConflict(DriverError):
    """An append or freeze refused: the object is not as long as the
    caller thought, is frozen, or another append or freeze is under way."""


class Stat(NamedTuple):
    size: int
    mtime: float


class Leftover(NamedTuple):
    """Private storage no object needs: a driver-specific name, bytes."""
    name: str
    size: int


def check_path(path):
    """Return `path` if every component is safe; raise InvalidPath."""
    if not isinstance(path, str) or len(path) > MAX_PATH_LENGTH:
        raise InvalidPath('invalid storage path')
    for component in path.split('/'):
        if len(component) > MAX_COMPONENT_LENGTH or \
                not _COMPONENT_RE.fullmatch(component):
            raise InvalidPath('invalid storage path component %r'
                              % component[:100])
    return path


class Driver(abc.ABC):
    """Async storage of byte objects.  Public methods validate paths.

    on_retry: a callable taking a count, called for every request the
    driver sends again (a transient failure retried, a broken read
    resumed); for metrics.  None (the default): nobody counts.  Drivers
    report through `retried`, on the event loop.
    """

    #: Size of the pieces `read` yields unless told otherwise.
    read_chunk_size = 1024 * 1024
    #: Whether `append` works.
    can_append = False
    #: See the class docstring; set on an instance by whoever counts.
    on_retry = None

    def retried(self, count=1):
        """Report `count` requests sent again to `on_retry`, if set."""
        if count > 0 and self.on_retry is not None:
            self.on_retry(count)

    async def stat(self, path) -> Optional[Stat]:
        """Size and modification time of the object, or None."""
        return await self._stat(check_path(path))

    async def get(self, path) -> bytes:
        """The whole object; for small objects only (links, manifests)."""
        return await self._get(check_path(path))

    async def put(self, path, data: bytes):
        """Create or replace a small object atomically."""
        await self._put(check_path(path), data)

    async def write(self, path, chunks: AsyncIterable[bytes], *,
                    exclusive=False, frozen=False) -> int:
        """Stream `chunks` into a new object; return its size.

        The object appears only once every chunk is stored.  If `chunks`
        raises, nothing appears and the error propagates.  With
        `exclusive`, an existing object is left alone and AlreadyExists
        is raised.  With `frozen`, it appears frozen (see `freeze`).
        """
        if frozen and self.can_append:
            return await self._write(check_path(path), chunks,
                                     exclusive=exclusive, frozen=True)
        return await self._write(check_path(path), chunks,
                                 exclusive=exclusive)

    async def concat(self, path, parts, *, consume=False):
        """Atomically create or replace `path` with `parts` joined.

        A missing part raises ObjectNotFound before anything changes.

        Without `consume`, the parts are left as they are and `path`
        never depends on them: the caller may change or delete them at
        once.

        With `consume`, the parts are handed over, so that the driver can
        reuse their storage instead of copying their bytes.  Once it
        returns, `path` holds the bytes and the parts (other than `path`
        itself) are gone: deleting their paths, or anything under them,
        never affects `path`.  (Should removing a part fail after `path`
        is published, the driver logs it and leaves the part for the
        caller to delete, which stays harmless.)  If it raises, `path` is
        unchanged and each part is either unchanged or gone: the caller
        must treat the parts as lost.  A part may repeat.
        """
        await self._concat(check_path(path),
                           [check_path(part) for part in parts],
                           consume=consume)

    async def append(self, path, chunks: AsyncIterable[bytes], *,
                     offset, freeze=False) -> int:
        """Add `chunks` at the end of the object, which must be exactly
        `offset` bytes long; return its new size.  Only if `can_append`.
        With `freeze`, the object is frozen (see `freeze`) as the append
        ends, with no moment for another append in between.

        Appends to one object exclude each other, across processes, and
        a second one raises AppendConflict at once, as does an object of
        another size or a frozen one.  Readers may see the bytes as they
        arrive; they are durable (survive a machine crash) once the object
        is frozen, and `concat(consume=True)` must only be given frozen
        objects a driver appends to.  If `chunks` or the
        storage fails, the object is cut back to `offset` bytes (a killed
        process may leave a prefix of `chunks` stored: bytes the caller
        did send, at their right place).
        """
        if not self.can_append:
            raise NotImplementedError('%s cannot append'
                                      % type(self).__name__)
        return await self._append(check_path(path), chunks, offset=offset,
                                  freeze=freeze)

    async def freeze(self, path) -> Stat:
        """End appends to the object for good, make its bytes durable
        and return its Stat; an append under way raises AppendConflict (a
        later one refuses).  Without `can_append`, objects never change:
        only the Stat."""
        path = check_path(path)
        if self.can_append:
            return await self._freeze(path)
        found = await self._stat(path)
        if found is None:
            raise ObjectNotFound(path)
        return found

    def read(self, path, *, offset=0, length=None,
             chunk_size=None) -> AsyncIterator[bytes]:
        """Yield the object's bytes from `offset`, at most `length`, in
        pieces of at most `chunk_size`: bytes or bytearray, each new."""
        return self._read(check_path(path), offset=offset, length=length,
                          chunk_size=chunk_size or self.read_chunk_size)

    def local_file(self, path) -> Optional[str]:
        """A local file name holding the object, for sendfile; or None."""
        return self._local_file(check_path(path))

    async def download_url(self, path) -> Optional[str]:
        """A URL at which clients may GET the object from the storage
        itself for a while (a redirect spares the registry the bytes);
        None where the driver has none or was not asked to give them."""
        return await self._download_url(check_path(path))

    async def move(self, src, dst):
        """Atomically rename the object `src` to `dst`, replacing it.

        Moves racing each other, even in opposite directions, never lose
        the object: it ends at one of their paths at least (a driver
        that copies keeps this as copy_moves says)."""
        await self._move(check_path(src), check_path(dst))

    async def delete(self, path):
        """Remove the object and everything under `path` + "/"."""
        await self._delete(check_path(path))

    async def list(self, path) -> list:
        """Sorted names of the immediate children of `path`."""
        return await self._list(check_path(path))

    async def collect_leftovers(self, *, before, dry_run=False) -> list:
        """Remove the driver's private leftovers last written before
        `before` (a time.time() value); return them as Leftovers.

        Leftovers are what no object needs any more: scratch of a write
        a crash interrupted, storage of objects since replaced or
        consumed.  Whatever an object needs is never removed, nor what a
        write still in progress (written to at or after `before`) uses.
        Scratch whose writer is known to be gone (its process died) may
        be removed whatever its age: no write can still use it.
        With `dry_run`, they are only returned.
        """
        return await self._collect_leftovers(before=before, dry_run=dry_run)

    async def open(self):
        """Check the storage can be used, at startup; DriverError says
        why not (bad credentials, unreachable service)."""

    async def close(self):
        """Release resources; the driver is not used afterwards."""

    # Implementations.
    @abc.abstractmethod
    async def _stat(self, path): ...

    @abc.abstractmethod
    async def _get(self, path): ...

    @abc.abstractmethod
    async def _put(self, path, data): ...

    @abc.abstractmethod
    async def _write(self, path, chunks, *, exclusive): ...

    @abc.abstractmethod
    async def _concat(self, path, parts, *, consume): ...

    @abc.abstractmethod
    def _read(self, path, *, offset, length, chunk_size): ...

    def _local_file(self, path):
        return None

    async def _download_url(self, path):
        return None

    async def _append(self, path, chunks, *, offset, freeze):
        raise NotImplementedError

    async def _freeze(self, path):
        raise NotImplementedError

    async def _collect_leftovers(self, *, before, dry_run):
        return []

    @abc.abstractmethod
    async def _move(self, src, dst): ...

    @abc.abstractmethod
    async def _delete(self, path): ...

    @abc.abstractmethod
    async def _list(self, path): ...
