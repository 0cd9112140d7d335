"""Failures of registry semantics, free of HTTP; the api maps them."""


class StorageError(Exception):
    pass


class BlobUnknown(StorageError):
    pass


class UploadUnknown(StorageError):
    pass


class ManifestUnknown(StorageError):
    pass


class NameUnknown(StorageError):
    pass


class DigestMismatch(StorageError):
    pass


class UploadOffsetMismatch(StorageError):
    """A chunk does not start where the upload currently ends."""

    def __init__(self, message, *, size):
        super().__init__(message)
        self.size = size


class ManifestInvalid(StorageError):
    pass


class ManifestBlobUnknown(StorageError):
    pass


class SizeInvalid(StorageError):
    pass


class UpstreamUnavailable(StorageError):
    """Pull-through needed an upstream registry that failed; the message
    names it."""
