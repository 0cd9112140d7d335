"""The access log: one line per request, with query values redacted.

A client may put a token or a password in a query string, so a line shows
each query parameter's name but its value only for the parameters this
API defines and that never carry secrets (`n`, `last`, `digest`, ...).
The layout is aiohttp's default one, so that tools reading it still can:

    127.0.0.1 [01/Jan/2026:10:00:00 +0000] "GET /v2/?token=REDACTED
    HTTP/1.1" 200 2 "-" "curl/8.0"
"""

import datetime
import logging
import urllib.parse

from aiohttp import abc

from zuul_registry.api import metrics

#: Query parameters whose values are logged as they came.
PUBLIC_PARAMETERS = frozenset((
    'n', 'last', 'digest', 'mount', 'from', 'artifactType', 'ns',
    'service', 'scope',
))
REDACTED = 'REDACTED'


def redacted_target(target):
    """The request target with every non-public query value replaced."""
    path, question, query = target.partition('?')
    if not question:
        return path
    fields = []
    for field in query.split('&'):
        name, equals, value = field.partition('=')
        if urllib.parse.unquote_plus(name) in PUBLIC_PARAMETERS:
            fields.append(field)
        elif equals:
            fields.append(name + '=' + REDACTED)
        elif field:
            # A bare "?SECRET" is a value without a name.
            fields.append(REDACTED)
    return path + '?' + '&'.join(fields)


class AccessLogger(abc.AbstractAccessLogger):
    """aiohttp's access log line, without secrets from the query.

    aiohttp calls it once the answer is sent, so it also hands every
    request to the metrics, whether or not the log is on.
    """

    def log(self, request, response, time):
        metrics.observe(request, response, time)
        if not self.logger.isEnabledFor(logging.INFO):
            return
        started = datetime.datetime.now().astimezone() - \
            datetime.timedelta(seconds=time)
        referer = request.headers.get('Referer')
        self.logger.info(
            '%s [%s] "%s %s HTTP/%d.%d" %d %d "%s" "%s"',
            request.remote or '-',
            started.strftime('%d/%b/%Y:%H:%M:%S %z'),
            request.method, redacted_target(request.raw_path),
            request.version.major, request.version.minor,
            response.status, response.body_length,
            redacted_target(referer) if referer else '-',
            request.headers.get('User-Agent', '-'))

    @property
    def enabled(self):
        return True   # for the metrics; log() checks the logger
