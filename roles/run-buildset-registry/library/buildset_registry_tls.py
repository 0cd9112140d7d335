#!/usr/bin/python
# Copyright: zuul-registry contributors
# Apache License 2.0 (see setup.cfg)
"""Ansible module: a private CA and a server certificate for the registry."""

from __future__ import annotations

DOCUMENTATION = r'''
---
module: buildset_registry_tls
short_description: Keep a private CA and a server certificate signed by it
description:
  - Makes a certificate authority (an ECDSA P-256 key and a self-signed
    CA certificate) and a server certificate for the buildset registry
    signed by it, with the C(cryptography) Python package.
  - Idempotent. An existing CA is kept while it is a valid CA whose key
    matches and that does not expire within I(renew_days). An existing
    server certificate is kept while it is signed by that CA, matches its
    key, has exactly the subject alternative names in I(names) and does
    not expire within I(renew_days). Whatever is not kept is made anew
    (a new CA always brings a new server certificate).
  - Keys are written with mode 0600, certificates with mode 0644, each
    atomically.
  - Supports check mode (reports what would be made, writes nothing).
options:
  ca_cert:
    description: Path of the CA certificate (PEM).
    type: path
    required: true
  ca_key:
    description: Path of the CA private key (PEM, unencrypted).
    type: path
    required: true
  cert:
    description: Path of the server certificate (PEM).
    type: path
    required: true
  key:
    description: Path of the server private key (PEM, unencrypted).
    type: path
    required: true
  names:
    description:
      - Subject alternative names of the server certificate. An entry
        that parses as an IPv4 or IPv6 address becomes an IP address
        name, anything else a DNS name. The first entry is also the
        certificate's common name. Duplicates are ignored.
    type: list
    elements: str
    required: true
  days:
    description: Validity of newly made certificates, in days.
    type: int
    default: 30
  renew_days:
    description:
      - A certificate that expires within this many days is made anew.
    type: int
    default: 1
  common_name:
    description: Common name of a newly made CA.
    type: str
    default: zuul-registry buildset CA
requirements:
  - cryptography >= 3.1
author:
  - zuul-registry contributors
'''

EXAMPLES = r'''
- name: Make the TLS files of the buildset registry
  buildset_registry_tls:
    ca_cert: /srv/registry/tls/ca.pem
    ca_key: /srv/registry/tls/ca-key.pem
    cert: /srv/registry/tls/cert.pem
    key: /srv/registry/tls/key.pem
    names: [203.0.113.5, 127.0.0.1, '::1', localhost,
            zuul-jobs.buildset-registry]
'''

RETURN = r'''
ca_cert_pem:
  description: The CA certificate (PEM); empty in check mode before it exists.
  returned: always
  type: str
made:
  description: Which of C(ca) and C(cert) were (or in check mode would be)
    made anew.
  returned: always
  type: list
  elements: str
names:
  description: The subject alternative names of the server certificate.
  returned: always
  type: list
  elements: str
'''

import datetime
import ipaddress
import os
import tempfile
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.basic import missing_required_lib

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID
    from cryptography.x509.oid import NameOID
    CRYPTOGRAPHY_ERROR = None
except ImportError:
    CRYPTOGRAPHY_ERROR = traceback.format_exc()

# Backdate new certificates a little, for clients whose clock is behind.
CLOCK_SKEW = datetime.timedelta(hours=1)


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def parse_names(names):
    """Return (ordered unique names, x509 GeneralNames) for ``names``."""
    seen, ordered, general = set(), [], []
    for name in names:
        name = name.strip()
        if not name:
            continue
        try:
            address = ipaddress.ip_address(name.strip('[]'))
        except ValueError:
            key, entry = ('dns', name.lower()), x509.DNSName(name.lower())
        else:
            key, entry = ('ip', address), x509.IPAddress(address)
        if key not in seen:
            seen.add(key)
            ordered.append(str(key[1]))
            general.append(entry)
    return ordered, general


def _not_after(cert):
    value = getattr(cert, 'not_valid_after_utc', None)
    if value is None:
        value = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    return value


def _public_bytes(key):
    return key.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)


def _cert_public_bytes(cert):
    return cert.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)


def load_pair(cert_path, key_path):
    """Load (certificate, key), or None if either is missing or unreadable
    or the key does not belong to the certificate."""
    try:
        with open(cert_path, 'rb') as f:
            cert = x509.load_pem_x509_certificate(f.read())
        with open(key_path, 'rb') as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if _public_bytes(key) != _cert_public_bytes(cert):
        return None
    return cert, key


def _expires_soon(cert, renew_days, now):
    return _not_after(cert) - now < datetime.timedelta(days=renew_days)


def ca_is_usable(pair, renew_days, now):
    if pair is None:
        return False
    cert = pair[0]
    try:
        constraints = cert.extensions.get_extension_for_class(
            x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return constraints.ca and not _expires_soon(cert, renew_days, now)


def signed_by(cert, ca_cert):
    """True when ``cert`` carries a valid signature of ``ca_cert``'s key."""
    if cert.issuer != ca_cert.subject:
        return False
    try:
        ca_cert.public_key().verify(
            cert.signature, cert.tbs_certificate_bytes,
            ec.ECDSA(cert.signature_hash_algorithm))
    except Exception:
        return False
    return True


def cert_names(cert):
    """The subject alternative names of ``cert`` as a set of strings."""
    try:
        san = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    names = {str(name).lower() for name in san.get_values_for_type(
        x509.DNSName)}
    names.update(str(address) for address in san.get_values_for_type(
        x509.IPAddress))
    return names


def cert_is_usable(pair, ca_cert, names, renew_days, now):
    if pair is None:
        return False
    cert = pair[0]
    return (signed_by(cert, ca_cert) and cert_names(cert) == set(names)
            and not _expires_soon(cert, renew_days, now))


def new_key():
    return ec.generate_private_key(ec.SECP256R1())


def make_ca(common_name, days, now):
    key = new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                            common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0),
                       critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False,
            key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(
            key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_server_cert(ca_cert, ca_key, names, general_names, days, now):
    key = new_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(
            NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(min(now + datetime.timedelta(days=days),
                             _not_after(ca_cert)))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                       critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False,
            key_encipherment=True, data_encipherment=False,
            key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(general_names),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(
            key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())


def write_file(path, data, mode):
    """Write ``data`` to ``path`` atomically with ``mode``."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=directory, prefix='.tls-')
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        os.rename(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def ensure(params, *, check_mode, write, now=None):
    """Do the work; ``write(path, data, mode)`` stores a file.

    Returns the module result (without ``changed``'s consumers' extras).
    """
    now = now or utcnow()
    names, general_names = parse_names(params['names'])
    if not names:
        raise ValueError('names must contain at least one name')
    made = []
    ca = load_pair(params['ca_cert'], params['ca_key'])
    if not ca_is_usable(ca, params['renew_days'], now):
        ca = make_ca(params['common_name'], params['days'], now)
        made.append('ca')
        if not check_mode:
            write(params['ca_key'], key_pem(ca[1]), 0o600)
            write(params['ca_cert'], cert_pem(ca[0]), 0o644)
    server = load_pair(params['cert'], params['key'])
    if made or not cert_is_usable(server, ca[0], names,
                                  params['renew_days'], now):
        server = make_server_cert(ca[0], ca[1], names, general_names,
                                  params['days'], now)
        made.append('cert')
        if not check_mode:
            write(params['key'], key_pem(server[1]), 0o600)
            write(params['cert'], cert_pem(server[0]), 0o644)
    ca_pem = '' if check_mode and 'ca' in made else (
        cert_pem(ca[0]).decode('ascii'))
    return dict(changed=bool(made), made=made, names=names,
                ca_cert_pem=ca_pem)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ca_cert=dict(type='path', required=True),
            ca_key=dict(type='path', required=True, no_log=False),
            cert=dict(type='path', required=True),
            key=dict(type='path', required=True, no_log=False),
            names=dict(type='list', elements='str', required=True),
            days=dict(type='int', default=30),
            renew_days=dict(type='int', default=1),
            common_name=dict(type='str', default='zuul-registry buildset CA'),
        ),
        supports_check_mode=True,
    )
    if CRYPTOGRAPHY_ERROR:
        module.fail_json(msg=missing_required_lib('cryptography'),
                         exception=CRYPTOGRAPHY_ERROR)
    if module.params['renew_days'] >= module.params['days']:
        module.fail_json(msg='renew_days must be less than days')

    try:
        result = ensure(module.params, check_mode=module.check_mode,
                        write=write_file)
    except (OSError, ValueError) as error:
        module.fail_json(msg=str(error))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
