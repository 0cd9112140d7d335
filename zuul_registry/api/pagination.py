"""Paged lists (tags, catalog): the `n` and `last` parameters and `Link`.

The spec wants lexical order, "case-insensitive alphanumeric"; names that
differ only in case are ordered by their bytes, so the order is total and
`last` always says where a page ends.  Without `n` a page holds at most
DEFAULT_PAGE_SIZE entries and the `Link` header leads to the next one
(clients follow it; skopeo and oras do).  With `n`, exactly `n` entries
unless fewer remain; `n=0` answers an empty list and no `Link`.
"""

import urllib.parse

from zuul_registry.api import errors

DEFAULT_PAGE_SIZE = 1000


def order(name):
    return (name.lower(), name)


def page(request, names, path):
    """(the requested page of `names`, response headers)."""
    names = sorted(names, key=order)
    last = request.query.get('last')
    if last:
        after = order(last)
        names = [name for name in names if order(name) > after]
    size = _size(request.query.get('n'))
    headers = {}
    if 0 < size < len(names):
        query = urllib.parse.urlencode({'n': size,
                                        'last': names[size - 1]})
        headers['Link'] = '<%s?%s>; rel="next"' % (path, query)
    return names[:size], headers


def _size(text):
    if text is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(text)
    except ValueError:
        raise errors.ParameterInvalid('n must be an integer') from None
    if size < 0:
        raise errors.ParameterInvalid('n must not be negative')
    return size
