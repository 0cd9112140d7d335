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
- upstream_fetches_total, upstream_hits_total, upstream_errors_total
  {kind=manifest|blob}: pull-through asking an upstream, serving from
  storage in a namespace that has an upstream (without asking it), and
  failing (read from storage.pullthrough when scraped).

The numbers are per process: with `workers: N`, worker i serves its own
on `metrics-port` + i (0 to N-1), and a scrape config lists the N ports.
"""

import logging

from aiohttp import web

from zuul_registry.api import base
from zuul_registry.storage import errors as storage_errors

log = logging.getLogger('zuul_registry.api.metrics')

_METRICS = web.AppKey('metrics', object)
_ABORTED = 'zuul_registry.metrics.aborted'
_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10,
            30, 60, 120, 300)


class Metrics:

    def __init__(self, app):
        # Imported here: a registry without metrics never loads it.
        import prometheus_client as prometheus
        self.prometheus = prometheus
        self.registry = prometheus.CollectorRegistry(auto_describe=True)
        prefix = 'zuul_registry_'
        self.requests = prometheus.Counter(
            prefix + 'requests', 'Answered requests',
            ['route', 'method', 'status'], registry=self.registry)
        self.duration = prometheus.Histogram(
            prefix + 'request_duration_seconds', 'Time to answer a request',
            ['route', 'method'], buckets=_BUCKETS, registry=self.registry)
        self.received = prometheus.Counter(
            prefix + 'received_bytes', 'Bytes of request bodies',
            registry=self.registry)
        self.sent = prometheus.Counter(
            prefix + 'sent_bytes', 'Bytes of responses, headers included',
            registry=self.registry)
        self.in_flight = prometheus.Gauge(
            prefix + 'requests_in_flight', 'Requests being answered',
            ['route'], registry=self.registry)
        self.storage_errors = prometheus.Counter(
            prefix + 'storage_errors', 'Requests failed by the storage',
            registry=self.registry)
        self.registry.register(_UpstreamCollector(app, prometheus))

    def render(self):
        return self.prometheus.generate_latest(self.registry)


class _UpstreamCollector:
    """Pull-through's counts, read when scraped."""

    def __init__(self, app, prometheus):
        self.app = app
        from prometheus_client.core import CounterMetricFamily
        self.family = CounterMetricFamily

    def describe(self):
        return []

    def collect(self):
        storage = self.app.get(base.STORAGE)
        pullthrough = getattr(storage, 'pullthrough', None)
        counts = pullthrough.events if pullthrough is not None else {}
        for event, text in (('fetches', 'Objects asked of an upstream'),
                            ('hits', 'Objects found already fetched'),
                            ('errors', 'Failed upstream requests')):
            family = self.family('zuul_registry_upstream_' + event, text,
                                 labels=['kind'])
            for kind in ('manifest', 'blob'):
                family.add_metric([kind], counts.get((event, kind), 0))
            yield family


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
    logger calls it, after the last byte."""
    metrics = request.app.get(_METRICS)
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


def note_failure(request, exc):
    """The error middleware's report of an unexpected failure: counted
    when it came from the storage."""
    metrics = request.app.get(_METRICS)
    if metrics is not None and (
            isinstance(exc, (storage_errors.StorageError, OSError))
            or type(exc).__module__.startswith('zuul_registry.drivers')):
        metrics.storage_errors.inc()


def install(app, config):
    """Measure `app`, and serve the numbers when metrics-port is set."""
    if not config.metrics_port:
        return
    app[_METRICS] = Metrics(app)
    app.cleanup_ctx.append(_listener(config))


def _listener(config):
    async def serve(app):
        metrics = app[_METRICS]

        async def scrape(request):
            return web.Response(body=metrics.render(), headers={
                'Content-Type': metrics.prometheus.CONTENT_TYPE_LATEST})

        metrics_app = web.Application()
        metrics_app.router.add_get('/metrics', scrape)
        runner = web.AppRunner(metrics_app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, config.metrics_address,
                           config.metrics_port, reuse_address=True)
        await site.start()
        log.info('Metrics on http://%s:%d/metrics', config.metrics_address,
                 config.metrics_port)
        yield
        await runner.cleanup()
    return serve
