"""A throwaway certificate authority for TLS tests: real X.509 from ``cryptography``.

``Pki(folder)`` makes a CA (``ca.pem``); ``server(name)`` and ``client(name)`` issue P-256
certificates signed by it and write ``<name>.pem`` and ``<name>-key.pem``. A server
certificate carries SubjectAltName IP 127.0.0.1 and serverAuth, a client certificate
clientAuth. Every certificate is valid from a minute ago for an hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    cert_file: Path
    key_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class Pki:
    def __init__(self, folder: Path, name: str = "test CA") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = _name(name)
        self.ca = self._build(self._name, self._key.public_key(), ca=True)
        self.ca_file = folder / "ca.pem"
        self.ca_file.write_bytes(self.ca.public_bytes(serialization.Encoding.PEM))

    def server(self, name: str) -> Issued:
        return self._issue(name, ExtendedKeyUsageOID.SERVER_AUTH, loopback=True)

    def client(self, name: str) -> Issued:
        return self._issue(name, ExtendedKeyUsageOID.CLIENT_AUTH, loopback=False)

    def _issue(self, name: str, usage: x509.ObjectIdentifier, *, loopback: bool) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._build(_name(name), key.public_key(), usage=usage, loopback=loopback)
        cert_file, key_file = self.folder / f"{name}.pem", self.folder / f"{name}-key.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        key_file.chmod(0o600)
        return Issued(cert, cert_file, key_file)

    def _build(self, subject: x509.Name, public: ec.EllipticCurvePublicKey, *,
               ca: bool = False, usage: x509.ObjectIdentifier | None = None,
               loopback: bool = False) -> x509.Certificate:
        now = datetime.now(UTC)
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(self._name)
                   .public_key(public).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(minutes=1))
                   .not_valid_after(now + timedelta(hours=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None),
                                  critical=True))
        if usage is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if loopback:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]),
                critical=False)
        return builder.sign(self._key, hashes.SHA256())
