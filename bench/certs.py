"""A self-signed certificate for 127.0.0.1, for ``--tls``.

The same certificate is the server's and the client's only trust anchor, so
the client verifies the server properly; nothing leaves the temporary
directory.
"""

import dataclasses
import datetime
import ipaddress
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    cert: str
    key: str

    def client_context(self):
        return ssl.create_default_context(cafile=self.cert)


def write_self_signed(directory, *, host='127.0.0.1'):
    """Write ``cert.pem`` and ``key.pem`` (P-256) into ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address(host)),
            x509.DNSName('localhost')]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                       critical=True)
        .sign(key, hashes.SHA256())
    )
    files = TlsFiles(cert='%s/cert.pem' % directory,
                     key='%s/key.pem' % directory)
    with open(files.cert, 'wb') as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(files.key, 'wb') as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return files
