"""A throwaway certificate authority and server certificates for TLS tests.

:func:`make_pki` writes into one directory::

    ca.crt        a self-signed CA (the only thing clients are told to trust)
    server.crt    a server certificate signed by it, for 127.0.0.1 and
                  localhost (subjectAltName: both, as IP and DNS names)
    server.key    its private key (PKCS#8 PEM, unencrypted)
    other.key     a second key that does NOT match server.crt
    certs/ca.crt  the CA again, alone in a directory: the ``--cert-dir``
                  layout of skopeo, podman and buildah (``*.crt`` = CA)

Keys are ECDSA P-256: quick to make and accepted by every client (Go's
crypto/tls, OpenSSL). Made with the ``cryptography`` package, no openssl
command line.
"""

import dataclasses
import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID


@dataclasses.dataclass(frozen=True)
class PKI:
    directory: str
    ca_cert: str
    server_cert: str
    server_key: str
    other_key: str
    cert_dir: str


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key, path):
    with open(path, 'wb') as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(path, 0o600)


def _write_cert(cert, path):
    with open(path, 'wb') as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name):
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'zuul-registry tests'),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(directory, *, hosts=('127.0.0.1', 'localhost')):
    """Write a CA and a server certificate for ``hosts``; return a PKI."""
    directory = os.path.abspath(directory)
    cert_dir = os.path.join(directory, 'certs')
    os.makedirs(cert_dir, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), \
        now + datetime.timedelta(days=2)

    ca_key = _key()
    ca_name = _name('zuul-registry test CA')
    ca = (x509.CertificateBuilder()
          .subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0),
                         critical=True)
          .add_extension(x509.KeyUsage(
              digital_signature=True, key_cert_sign=True, crl_sign=True,
              content_commitment=False, key_encipherment=False,
              data_encipherment=False, key_agreement=False,
              encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(
              ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))

    server_key = _key()
    names = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    server = (x509.CertificateBuilder()
              .subject_name(_name(hosts[0])).issuer_name(ca_name)
              .public_key(server_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(start).not_valid_after(end)
              .add_extension(x509.SubjectAlternativeName(names),
                             critical=False)
              .add_extension(x509.BasicConstraints(ca=False,
                                                   path_length=None),
                             critical=True)
              .add_extension(x509.KeyUsage(
                  digital_signature=True, key_cert_sign=False,
                  crl_sign=False, content_commitment=False,
                  key_encipherment=False, data_encipherment=False,
                  key_agreement=False, encipher_only=False,
                  decipher_only=False), critical=True)
              .add_extension(x509.ExtendedKeyUsage(
                  [ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
              .add_extension(
                  x509.AuthorityKeyIdentifier.from_issuer_public_key(
                      ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))

    pki = PKI(directory=directory,
              ca_cert=os.path.join(directory, 'ca.crt'),
              server_cert=os.path.join(directory, 'server.crt'),
              server_key=os.path.join(directory, 'server.key'),
              other_key=os.path.join(directory, 'other.key'),
              cert_dir=cert_dir)
    _write_cert(ca, pki.ca_cert)
    _write_cert(ca, os.path.join(cert_dir, 'ca.crt'))
    _write_cert(server, pki.server_cert)
    _write_key(server_key, pki.server_key)
    _write_key(_key(), pki.other_key)
    return pki
