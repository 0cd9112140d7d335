"""Prometheus metrics, served on a listener of their own.

With `metrics-port` set, every process serves GET /metrics in the
Prometheus text format on `metrics-address` (127.0.0.1 unless set) and
that port; the registry's own port never shows them, so they need no
credentials and reach only who can reach the metrics address.

What is measured (all names start with zuul_registry_):

- requests_total{route,method,status}: answered requests; route is the
  route's pattern (/v2/{name}/blobs/{digest}), so names and digests never
  become labels; status "aborted" when the connection was cut.
- request_duration_seconds{route,method}: a histogram.
- received_bytes_total, sent_bytes_total: request and response bodies.
- requests_in_flight{route}: requests being answered now (blobs being
  sent, uploads streaming in).
- storage_errors_total: requests that failed in the storage (500 or
  507), counted by the error middleware.
- storage_retries_total: requests the storage driver sent again (a
  transient failure retried, a broken read resumed; Swift and S3).
- upstream_fetches_total, upstream_hits_total, upstream_errors_total
  {kind=manifest|blob}: pull-through asking an upstream, serving from
  storage in a namespace that has an upstream (without asking it), and
  failing.

With `workers: N` the numbers are the server's, not one worker's: every
worker writes its own into files in a directory the supervisor makes
(prometheus-client's multiprocess mode), and every worker listens on
the one metrics port (SO_REUSEPORT) and answers with the sum over all
workers, those that died since included (their counts happened);
requests_in_flight counts live workers only.
"""

import logging
import os

from aiohttp import web

from zuul_registry.api import base
from zuul_registry.storage import errors as storage_errors

log = logging.getLogger('zuul_registry.api.metrics')

_METRICS = web.AppKey('metrics', object)
_ABORTED = 'zuul_registry.metrics.aborted'
_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10,
            30, 60, 120, 300)


_UPSTREAM_EVENTS = (('fetches', 'Objects asked of an upstream'),
                    ('hits', 'Objects found already fetched'),
                    ('errors', 'Failed upstream requests'))


class Metrics:
    """The measures of one process; with `shared_directory`, written
    there for the scrapes of any worker to sum."""

    def __init__(self, *, shared_directory=None):
        # Imported here: a registry without metrics never loads it.
        import prometheus_client as prometheus
        self.prometheus = prometheus
        # The metrics register here; scrapes read `self.served`.
        self.registry = prometheus.CollectorRegistry(auto_describe=True)
        self.served = self.registry
        gauge_mode = {}
        if shared_directory is not None:
            from prometheus_client import multiprocess, values
            # Values live in files named after this process, there.
            os.environ['PROMETHEUS_MULTIPROC_DIR'] = shared_directory
            values.ValueClass = values.MultiProcessValue()
            self.served = prometheus.CollectorRegistry()
            multiprocess.MultiProcessCollector(self.served,
                                               path=shared_directory)
            gauge_mode = {'multiprocess_mode': 'livesum'}
        prefix = 'zuul_registry_'
        registry = self.registry
        self.requests = prometheus.Counter(
            prefix + 'requests', 'Answered requests',
            ['route', 'method', 'status'], registry=registry)
        self.duration = prometheus.Histogram(
            prefix + 'request_duration_seconds', 'Time to answer a request',
            ['route', 'method'], buckets=_BUCKETS, registry=registry)
        self.received = prometheus.Counter(
            prefix + 'received_bytes', 'Bytes of request bodies',
            registry=registry)
        self.sent = prometheus.Counter(
            prefix + 'sent_bytes', 'Bytes of responses, headers included',
            registry=registry)
        self.in_flight = prometheus.Gauge(
            prefix + 'requests_in_flight', 'Requests being answered',
            ['route'], registry=registry, **gauge_mode)
        self.storage_errors = prometheus.Counter(
            prefix + 'storage_errors', 'Requests failed by the storage',
            registry=registry)
        self.storage_retries = prometheus.Counter(
            prefix + 'storage_retries',
            'Requests the storage driver sent again', registry=registry)
        self.upstream = {}
        for event, text in _UPSTREAM_EVENTS:
            counter = prometheus.Counter(prefix + 'upstream_' + event, text,
                                         ['kind'], registry=registry)
            for kind in ('manifest', 'blob'):
                self.upstream[event, kind] = counter.labels(kind)

    def watch(self, storage):
        """Count what the storage (driver, pull-through) reports."""
        storage.driver.on_retry = self.storage_retries.inc
        if storage.pullthrough is not None:
            storage.pullthrough.on_event = self.upstream_event

    def upstream_event(self, event, kind):
        self.upstream[event, kind].inc()

    def render(self):
        return self.prometheus.generate_latest(self.served)


def _route(request):
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else 'unmatched'


@web.middleware
async def metrics_middleware(request, handler):
    """Counts requests in flight; the rest is counted by `observe` once
    the answer is sent."""
    metrics = request.app.get(_METRICS)
    if metrics is None:
        return await handler(request)
    gauge = metrics.in_flight.labels(_route(request))
    gauge.inc()
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except BaseException:
        request[_ABORTED] = True
        raise
    finally:
        gauge.dec()


def observe(request, response, seconds):
    """Count a request whose answer was sent (or cut); the access
    logger calls it, after the last byte.  A request aiohttp refused
    before routing (not HTTP: TLS on the plain port, a broken request
    line) reached no application, so no application counts it."""
    app = _routed_app(request)
    metrics = app.get(_METRICS) if app is not None else None
    if metrics is None:
        return
    route = _route(request)
    status = 'aborted' if request.get(_ABORTED) else str(response.status)
    metrics.requests.labels(route, request.method, status).inc()
    metrics.duration.labels(route, request.method).observe(seconds)
    metrics.received.inc(request.content.total_bytes)
    sent = request.writer.output_size if request.writer is not None else 0
    if isinstance(response, web.FileResponse) and not request.get(_ABORTED):
        # sendfile's bytes pass the writer by.
        sent += response.content_length or 0
    metrics.sent.inc(sent)


def _routed_app(request):
    # request.app asserts that the request was routed (and fails
    # otherwise under -O); aiohttp offers no other way to ask.
    try:
        return request.app
    except (AssertionError, AttributeError):
        return None


def note_failure(request, exc):
    """The error middleware's report of an unexpected failure: counted
    when it came from the storage."""
    metrics = request.app.get(_METRICS)
    if metrics is not None and (
            isinstance(exc, (storage_errors.StorageError, OSError))
            or type(exc).__module__.startswith('zuul_registry.drivers')):
        metrics.storage_errors.inc()


def install(app, config, *, shared_directory=None):
    """Measure `app`, and serve the numbers when metrics-port is set;
    with `shared_directory`, those of every worker sharing it."""
    if not config.metrics_port:
        return
    app[_METRICS] = Metrics(shared_directory=shared_directory)
    app.cleanup_ctx.append(_listener(config,
                                     shared=shared_directory is not None))


def forget_process(shared_directory, pid):
    """A worker died: its requests in flight are no more (its counts
    stay).  Called by the supervisor."""
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(pid, shared_directory)


def _listener(config, *, shared):
    async def serve(app):
        metrics = app[_METRICS]
        metrics.watch(app[base.STORAGE])

        async def scrape(request):
            return web.Response(body=metrics.render(), headers={
                'Content-Type': metrics.prometheus.CONTENT_TYPE_LATEST})

        metrics_app = web.Application()
        metrics_app.router.add_get('/metrics', scrape)
        runner = web.AppRunner(metrics_app, access_log=None)
        await runner.setup()
        # Workers share the port: any of them answers for all.
        site = web.TCPSite(runner, config.metrics_address,
                           config.metrics_port, reuse_address=True,
                           reuse_port=shared or None)
        await site.start()
        log.info('Metrics on http://%s:%d/metrics', config.metrics_address,
                 config.metrics_port)
        yield
        await runner.cleanup()
    return serve
