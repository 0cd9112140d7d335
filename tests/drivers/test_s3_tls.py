"""The S3 driver on an S3 server over TLS: a SeaweedFS whose S3 port
speaks TLS only, with a certificate of a CA of its own, which the driver
trusts through its `ca` option.  Over TLS a request's body is not hashed
into its signature (UNSIGNED-PAYLOAD: TLS protects it); over plain HTTP
it is.  (`zuul-registry serve` on such a server, with skopeo:
tests/clients/test_s3_over_tls.py.)"""

import pytest

from tests.drivers import s3_fixtures, s3_server
from tests.drivers.s3_seaweedfs import SeaweedFS
from tests.drivers.test_contract import chunks_of
from tests.drivers.test_s3 import blob
from zuul_registry.drivers.base import DriverError
from zuul_registry.drivers.s3 import S3Driver

MIB = 1024 ** 2
UNSIGNED = 'UNSIGNED-PAYLOAD'


@pytest.fixture(scope='module')
def tls_s3():
    with SeaweedFS(tls=True) as server:
        yield server


def sent_payload_hashes(driver):
    """(operation, x-amz-content-sha256) of each request the driver sends
    from now on, as botocore signed it."""
    seen = []

    def record(request, event_name, **kwargs):
        value = request.headers.get('x-amz-content-sha256')
        seen.append((event_name.rsplit('.', 1)[1],
                     value.decode() if isinstance(value, bytes) else value))
    driver.client.s3.meta.events.register('before-send.s3.*', record)
    return seen


def tls_driver(server, **options):
    settings = dict(s3_fixtures.client_options(server), ca=server.ca,
                    retries=1, part_size=5 * MIB,
                    **s3_fixtures.PROBED['seaweedfs'])
    settings.update(options)
    return S3Driver(s3_server.new_bucket(), **settings)


async def test_the_driver_trusts_the_server_through_its_ca(tls_s3):
    assert tls_s3.endpoint.startswith('https://')
    driver = tls_driver(tls_s3)
    try:
        await driver.open()
        sent = sent_payload_hashes(driver)
        small, large = b'small object', blob(11 * MIB, 21)
        await driver.put('ns/small', small)
        # Three parts of a multipart upload, and a link to its data.
        await driver.write('ns/large', chunks_of(large))
        await driver.concat('ns/joined', ['ns/small', 'ns/large'])
        assert await driver.get('ns/small') == small
        assert await driver.get('ns/joined') == small + large
        assert await driver.list('ns') == ['joined', 'large', 'small']
        bodies = [(operation, value) for operation, value in sent
                  if operation in ('PutObject', 'UploadPart')]
        assert {operation for operation, _ in bodies} == \
            {'PutObject', 'UploadPart'}, sent
        assert {value for _, value in bodies} == {UNSIGNED}, bodies
    finally:
        await driver.close()


async def test_a_server_the_driver_does_not_trust_stops_it_at_open(
        tls_s3):
    driver = tls_driver(tls_s3, ca=None)
    try:
        with pytest.raises(DriverError) as raised:
            await driver.open()
        message = str(raised.value)
        assert '\n' not in message
        assert tls_s3.endpoint in message
        assert 'certificate' in message.lower(), message
    finally:
        await driver.close()


async def test_over_plain_http_bodies_are_signed():
    # The shared SeaweedFS of the other tests, without TLS.
    driver = s3_fixtures.make_driver('seaweedfs', part_size=5 * MIB)
    try:
        await driver.open()
        sent = sent_payload_hashes(driver)
        await driver.put('ns/small', b'small object')
        await driver.write('ns/large', chunks_of(blob(6 * MIB, 22)))
        bodies = [value for operation, value in sent
                  if operation in ('PutObject', 'UploadPart')]
        assert len(bodies) >= 2, sent
        assert all(len(value) == 64 and value != UNSIGNED
                   for value in bodies), bodies
    finally:
        await driver.close()
