"""What can go wrong when asking an upstream registry.

Every message names the upstream (its URL as configured) and what failed;
none ever holds a password or a token.
"""


class UpstreamError(Exception):
    """Base class: ``str()`` is ``upstream URL: what failed``."""

    def __init__(self, message, *, url=None):
        self.url = url
        self.message = message
        super().__init__('upstream %s: %s' % (url, message) if url
                         else message)


class UpstreamNotFound(UpstreamError):
    """The upstream answered 404: manifest, blob or repository unknown."""


class UpstreamUnavailable(UpstreamError):
    """No usable answer: cannot connect, timeout, 5xx or 429 after the
    retries, 401/403 after authenticating, a body cut short, or an answer
    that breaks the protocol."""
