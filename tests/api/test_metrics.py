"""Metrics: counters move as requests are made, scraped over HTTP from
the metrics listener and parsed with prometheus-client's own parser."""

import asyncio

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from zuul_registry.app import make_app
from tests.api.helpers import assert_error, make_config, push_image
from tests.api.test_pullthrough import (  # noqa: F401 (fixtures)
    pusher, upstream, url_of)
from tests.server_process import free_port


async def scrape(port):
    async with aiohttp.ClientSession() as session:
        async with session.get('http://127.0.0.1:%d/metrics' % port) as r:
            assert r.status == 200
            assert r.headers['Content-Type'].startswith('text/plain')
            text = await r.text()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            samples[key] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0)


@pytest.fixture
async def measured(aiohttp_client, tmp_path):
    port = free_port()
    client = await aiohttp_client(make_app(make_config(
        tmp_path / 'data', metrics_port=port)))
    client.metrics_port = port
    return client


MANIFEST_ROUTE = '/v2/{name}/manifests/{reference}'
BLOB_ROUTE = '/v2/{name}/blobs/{digest}'


async def test_counters_move_as_requests_are_made(measured):
    before = await scrape(measured.metrics_port)
    digest, body = await push_image(measured, 'org/img', 'v1',
                                    layer=b'x' * 5000)
    for _ in range(3):
        response = await measured.get('/v2/org/img/manifests/v1')
        assert await response.read() == body
    await assert_error(await measured.get('/v2/org/none/manifests/v1'),
                       404, 'MANIFEST_UNKNOWN')
    after = await scrape(measured.metrics_port)
    requests = 'zuul_registry_requests_total'
    assert value(after, requests, route=MANIFEST_ROUTE, method='GET',
                 status='200') - value(before, requests,
                                       route=MANIFEST_ROUTE, method='GET',
                                       status='200') == 3
    assert value(after, requests, route=MANIFEST_ROUTE, method='GET',
                 status='404') == 1
    assert value(after, requests, route=MANIFEST_ROUTE, method='PUT',
                 status='201') == 1
    assert value(after, 'zuul_registry_request_duration_seconds_count',
                 route=MANIFEST_ROUTE, method='GET') == 4
    received = value(after, 'zuul_registry_received_bytes_total') - \
        value(before, 'zuul_registry_received_bytes_total')
    assert received >= 5000 + len(body)
    sent = value(after, 'zuul_registry_sent_bytes_total') - \
        value(before, 'zuul_registry_sent_bytes_total')
    assert sent >= 3 * len(body)
    assert value(after, 'zuul_registry_requests_in_flight',
                 route=MANIFEST_ROUTE) == 0


async def test_blob_bytes_sent_are_counted(measured):
    digest, body = await push_image(measured, 'org/img', 'v1',
                                    layer=b'y' * 300000)
    import json
    layer = json.loads(body)['layers'][0]['digest']
    before = await scrape(measured.metrics_port)
    response = await measured.get('/v2/org/img/blobs/' + layer)
    assert len(await response.read()) == 300000
    after = await scrape(measured.metrics_port)
    assert value(after, 'zuul_registry_sent_bytes_total') - value(
        before, 'zuul_registry_sent_bytes_total') >= 300000
    assert value(after, 'zuul_registry_requests_total', route=BLOB_ROUTE,
                 method='GET', status='200') == 1


async def test_storage_failures_are_counted(measured, tmp_path):
    import os
    root = tmp_path / 'data'
    os.rename(root, tmp_path / 'moved')
    root.write_text('not a directory')
    try:
        response = await measured.post('/v2/org/img/blobs/uploads/')
        assert response.status == 500
        samples = await scrape(measured.metrics_port)
        assert value(samples, 'zuul_registry_storage_errors_total') == 1
        assert value(samples, 'zuul_registry_requests_total',
                     route='/v2/{name}/blobs/uploads/', method='POST',
                     status='500') == 1
    finally:
        root.unlink()
        os.rename(tmp_path / 'moved', root)


async def test_no_listener_without_metrics_port(client):
    # The main port never shows metrics.
    response = await client.get('/metrics')
    assert response.status == 404


async def test_pull_through_fetches_and_hits(aiohttp_client, tmp_path,
                                             upstream, pusher):
    from zuul_registry.config.model import Upstream
    port = free_port()
    await push_image(pusher, 'org/img', 'v1', layer=b'up')
    mirror = await aiohttp_client(make_app(make_config(
        tmp_path / 'mirror', metrics_port=port,
        upstreams=(Upstream(url=url_of(upstream)),))))
    for _ in range(2):
        assert (await mirror.get('/v2/org/img/manifests/v1')).status == 200
    samples = await scrape(port)
    assert value(samples, 'zuul_registry_upstream_fetches_total',
                 kind='manifest') == 1
    assert value(samples, 'zuul_registry_upstream_hits_total',
                 kind='manifest') == 1
    assert value(samples, 'zuul_registry_upstream_errors_total',
                 kind='blob') == 0


async def test_retries_the_storage_driver_reports_are_counted(measured):
    # The drivers' own tests make real Swift and S3 faults and check
    # that each retry is reported; here, that a report is counted.
    from zuul_registry.api import base
    before = await scrape(measured.metrics_port)
    measured.app[base.STORAGE].driver.retried(2)
    measured.app[base.STORAGE].driver.retried()
    after = await scrape(measured.metrics_port)
    name = 'zuul_registry_storage_retries_total'
    assert value(after, name) - value(before, name) == 3


@pytest.mark.parametrize('garbage', [
    b'\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' + bytes(64),  # TLS
    b'NOT HTTP AT ALL\r\n\r\n',
])
async def test_a_request_refused_before_routing_is_answered_quietly(
        measured, caplog, garbage):
    # aiohttp answers 400 itself; the access logger then sees a request
    # that reached no application, and used to fail on it (logged as an
    # unhandled exception for every such request).
    caplog.set_level('DEBUG')
    reader, writer = await asyncio.open_connection(
        measured.server.host, measured.server.port)
    writer.write(garbage)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.split(b' ', 2)[1] == b'400', answer
    assert not [r for r in caplog.records if r.levelname == 'ERROR'], \
        caplog.text
    response = await measured.get('/v2/')
    assert response.status == 200
    samples = await scrape(measured.metrics_port)
    assert value(samples, 'zuul_registry_requests_total', route='/v2/',
                 method='GET', status='200') == 1
