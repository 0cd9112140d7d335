"""The s3 storage keys: a bucket, where it is, and optional credentials."""

import pytest

from zuul_registry.config import (
    ConfigError, StorageConfig, describe, parse_config)

ENDPOINT = 'https://s3.example.org'


def storage(environ=None, **keys):
    keys.setdefault('bucket', 'zuul-registry')
    config = parse_config({'registry': {'storage': dict(driver='s3',
                                                        **keys)}},
                          environ=environ or {})
    return config.storage


def problems(environ=None, **keys):
    with pytest.raises(ConfigError) as raised:
        storage(environ, **keys)
    return raised.value.problems


def test_every_key_is_read(tmp_path):
    ca = tmp_path / 'ca.pem'
    ca.write_text('-----BEGIN CERTIFICATE-----\n')
    assert storage(endpoint=ENDPOINT + '/', region='eu-west-1',
                   prefix='intermediate/', ca=str(ca), **{
                       'access-key': 'AK', 'secret-key': 'SK'}) == \
        StorageConfig(driver='s3', bucket='zuul-registry',
                      endpoint=ENDPOINT, region='eu-west-1',
                      prefix='intermediate/', access_key='AK',
                      secret_key='SK', ca=str(ca))


def test_aws_needs_only_a_region_and_the_bucket():
    config = storage(region='us-east-1')
    assert (config.endpoint, config.region, config.access_key,
            config.secret_key) == (None, 'us-east-1', None, None)


def test_the_bucket_is_required():
    assert problems(bucket=None, endpoint=ENDPOINT) == [
        'registry.storage.bucket: required']


@pytest.mark.parametrize('bucket', ['ab', 'Upper', 'under_score',
                                    '-dash', 'a' * 64, 'a/b'])
def test_an_invalid_bucket_name_is_refused(bucket):
    [problem] = problems(bucket=bucket, endpoint=ENDPOINT)
    assert problem.startswith('registry.storage.bucket: must be an S3 '
                              'bucket name')


def test_without_an_endpoint_a_region_is_required():
    assert problems() == ['registry.storage.region: required without an '
                          'endpoint (it picks the AWS endpoint)']


@pytest.mark.parametrize('given, missing', [('access-key', 'secret-key'),
                                            ('secret-key', 'access-key')])
def test_access_and_secret_keys_go_together(given, missing):
    assert problems(endpoint=ENDPOINT, **{given: 'x'}) == [
        f'registry.storage.{missing}: required with {given}']


def test_the_endpoint_must_be_a_url():
    assert problems(endpoint='s3.example.org') == [
        'registry.storage.endpoint: must be an http:// or https:// URL '
        'with a host']


def test_the_ca_must_be_a_readable_file(tmp_path):
    missing = tmp_path / 'missing.pem'
    assert problems(endpoint=ENDPOINT, ca=str(missing)) == [
        f'registry.storage.ca: {missing}: not a readable file']


def test_the_prefix_may_not_start_with_a_slash():
    assert problems(endpoint=ENDPOINT, prefix='/x') == [
        'registry.storage.prefix: must be 1 to 512 characters, not '
        'starting with "/"']


def test_swift_keys_are_unknown_to_s3():
    assert problems(endpoint=ENDPOINT, container='c') == [
        'registry.storage.container: unknown key']


def test_secrets_come_from_the_environment_and_are_never_shown():
    config = storage(environ={'ZUUL_S3_SECRET_KEY': 'hunter2'},
                     endpoint=ENDPOINT, **{
                         'access-key': 'AK',
                         'secret-key': '%(ZUUL_S3_SECRET_KEY)'})
    assert config.secret_key == 'hunter2'
    assert 'hunter2' not in repr(config)


def test_describe_names_the_bucket_and_no_secret():
    config = parse_config({'registry': {'storage': {
        'driver': 's3', 'bucket': 'zuul-registry', 'endpoint': ENDPOINT,
        'prefix': 'ci/', 'access-key': 'AK', 'secret-key': 'sekrit'}}},
        environ={})
    text = describe(config)
    assert 's3 storage in bucket zuul-registry under ci/ at ' + ENDPOINT \
        in text
    assert 'sekrit' not in text and 'AK' not in text.split()
    aws = parse_config({'registry': {'storage': {
        'driver': 's3', 'bucket': 'b-1', 'region': 'eu-west-1'}}},
        environ={})
    assert 'in bucket b-1 at AWS region eu-west-1' in describe(aws)


def test_redirect_is_off_unless_asked():
    assert storage(endpoint=ENDPOINT).redirect is False
    assert storage(endpoint=ENDPOINT, redirect=True).redirect is True


def test_redirect_must_be_a_boolean():
    [problem] = problems(endpoint=ENDPOINT, redirect='yes')
    assert problem.startswith('registry.storage.redirect: ')
    assert 'boolean' in problem


def test_redirect_belongs_to_s3_only(tmp_path):
    with pytest.raises(ConfigError) as raised:
        parse_config({'registry': {'storage': {
            'driver': 'filesystem', 'root': str(tmp_path),
            'redirect': True}}}, environ={})
    [problem] = raised.value.problems
    assert problem.startswith('registry.storage.redirect: ')


def test_link_size_is_the_drivers_unless_set():
    assert storage(endpoint=ENDPOINT).link_size is None
    assert storage(endpoint=ENDPOINT, **{'link-size': 1}).link_size == 1
    for wrong in (0, 8 * 1024 * 1024 + 1):
        [problem] = problems(endpoint=ENDPOINT, **{'link-size': wrong})
        assert problem == 'registry.storage.link-size: must be a number ' \
            'of bytes from 1 to 8388608 (8 MiB)'
    [problem] = problems(endpoint=ENDPOINT, **{'link-size': 'big'})
    assert problem.startswith('registry.storage.link-size: must be an ')
