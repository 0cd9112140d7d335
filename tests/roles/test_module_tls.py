"""buildset_registry_tls: the CA and server certificate module."""

import datetime
import os
import stat

import pytest
from cryptography import x509

from tests.roles.modules import library

tls = library('buildset_registry_tls')
NAMES = ['203.0.113.5', '127.0.0.1', '::1', 'localhost',
         'zuul-jobs.buildset-registry']


def params(directory, **extra):
    values = dict(ca_cert=str(directory / 'ca.pem'),
                  ca_key=str(directory / 'ca-key.pem'),
                  cert=str(directory / 'cert.pem'),
                  key=str(directory / 'key.pem'),
                  names=list(NAMES), days=30, renew_days=1,
                  common_name='test CA')
    values.update(extra)
    return values


def ensure(directory, *, check_mode=False, now=None, **extra):
    return tls.ensure(params(directory, **extra), check_mode=check_mode,
                      write=tls.write_file, now=now)


def load(path):
    with open(path, 'rb') as f:
        return x509.load_pem_x509_certificate(f.read())


def test_makes_a_ca_and_a_certificate_signed_by_it(tmp_path):
    result = ensure(tmp_path)
    assert result['changed'] and result['made'] == ['ca', 'cert']
    ca, cert = load(tmp_path / 'ca.pem'), load(tmp_path / 'cert.pem')
    assert result['ca_cert_pem'] == (tmp_path / 'ca.pem').read_text()
    assert ca.extensions.get_extension_for_class(
        x509.BasicConstraints).value.ca
    assert tls.signed_by(cert, ca)
    assert tls.cert_names(cert) == set(NAMES)
    usage = cert.extensions.get_extension_for_class(
        x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in usage
    for name in ('key.pem', 'ca-key.pem'):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / 'cert.pem').st_mode) == 0o644


def test_keeps_valid_files(tmp_path):
    ensure(tmp_path)
    before = {name: (tmp_path / name).read_bytes()
              for name in os.listdir(tmp_path)}
    result = ensure(tmp_path)
    assert not result['changed'] and result['made'] == []
    assert {name: (tmp_path / name).read_bytes()
            for name in os.listdir(tmp_path)} == before


def test_other_names_make_a_new_certificate_with_the_same_ca(tmp_path):
    ensure(tmp_path)
    ca = (tmp_path / 'ca.pem').read_bytes()
    result = ensure(tmp_path, names=NAMES + ['registry.example.com'])
    assert result['made'] == ['cert']
    assert (tmp_path / 'ca.pem').read_bytes() == ca
    assert 'registry.example.com' in tls.cert_names(
        load(tmp_path / 'cert.pem'))


def test_a_certificate_about_to_expire_is_renewed(tmp_path):
    ensure(tmp_path, days=30)
    later = tls.utcnow() + datetime.timedelta(days=29, hours=12)
    result = ensure(tmp_path, now=later)
    assert result['made'] == ['ca', 'cert']


def test_a_key_that_does_not_match_is_replaced(tmp_path):
    ensure(tmp_path)
    other = tmp_path / 'other'
    other.mkdir()
    ensure(other)
    (tmp_path / 'key.pem').write_bytes((other / 'key.pem').read_bytes())
    assert ensure(tmp_path)['made'] == ['cert']


def test_a_certificate_from_another_ca_is_replaced(tmp_path):
    ensure(tmp_path)
    other = tmp_path / 'other'
    other.mkdir()
    ensure(other)
    for name in ('cert.pem', 'key.pem'):
        (tmp_path / name).write_bytes((other / name).read_bytes())
    assert ensure(tmp_path)['made'] == ['cert']


def test_a_new_ca_brings_a_new_certificate(tmp_path):
    ensure(tmp_path)
    (tmp_path / 'ca-key.pem').unlink()
    assert ensure(tmp_path)['made'] == ['ca', 'cert']


def test_check_mode_writes_nothing(tmp_path):
    result = ensure(tmp_path, check_mode=True)
    assert result['changed'] and result['ca_cert_pem'] == ''
    assert os.listdir(tmp_path) == []


def test_names_are_typed_and_deduplicated():
    names, general = tls.parse_names(['LocalHost', 'localhost', '::1',
                                      '[::1]', '10.0.0.1'])
    assert names == ['localhost', '::1', '10.0.0.1']
    assert [type(name) for name in general] == [
        x509.DNSName, x509.IPAddress, x509.IPAddress]


def test_needs_a_name(tmp_path):
    with pytest.raises(ValueError):
        ensure(tmp_path, names=[' '])
