"""TLS end to end: nats-server configured by ``nats-config --tls-cert/--tls-key/--tls-ca
--tls-verify`` (client certificates required), authsvc connecting with ``tls://`` and
``nats.tls_ca/tls_cert/tls_key``, and a client with its own certificate. nats-server hands
authsvc ``client_tls``; the audit record keeps the leaf certificate's fingerprint, never
the certificate (docs/audit.md). Real certificates from a throwaway CA."""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

import nats
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from authsvc.natsconf.render import ServerTls
from tests.support.deploy import Deployment


def _cert(name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
          signer: ec.EllipticCurvePrivateKey, *, ca: bool = False,
          server: bool = False) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(minutes=1))
               .not_valid_after(now + timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]),
            critical=False).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _write(folder: Path, name: str, cert: x509.Certificate,
           key: ec.EllipticCurvePrivateKey | None = None) -> tuple[Path, Path | None]:
    cert_path = folder / f"{name}.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is None:
        return cert_path, None
    key_path = folder / f"{name}-key.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, Path,
                                                                      x509.Certificate]]:
    root = tmp_path_factory.mktemp("tls")
    pki = root / "pki"
    pki.mkdir()
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1())
                                      for _ in range(3))
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = _cert("test CA", ca_key, ca_name, ca_key, ca=True)
    ca_path, _ = _write(pki, "ca", ca)
    server_cert, server_key_path = _write(
        pki, "server", _cert("nats", server_key, ca_name, ca_key, server=True), server_key)
    client = _cert("orders-service", client_key, ca_name, ca_key)
    _write(pki, "client", client, client_key)
    service_secret = ec.generate_private_key(ec.SECP256R1())
    service_cert, service_key = _write(
        pki, "service", _cert("authsvc", service_secret, ca_name, ca_key), service_secret)
    assert server_key_path is not None and service_key is not None

    d = Deployment(root / "d", mode="config", xkey=True, server_tls=ServerTls(
        cert_file=str(server_cert), key_file=str(server_key_path), ca_file=str(ca_path),
        verify=True))
    d.settings_extra = {"nats": {"url": f"tls://127.0.0.1:{d.port}", "tls_ca": str(ca_path),
                                 "tls_cert": str(service_cert),
                                 "tls_key": str(service_key)}}
    d.rules = [{"id": "tls-client",
                "match": {"source": "nkey", "subject": d.identity("client").public_key},
                "grant": {"account": "APP", "publish": {"allow": ["orders.created"]}}}]
    d.start()
    try:
        yield d, pki, client
    finally:
        d.stop()


async def test_the_audit_record_holds_the_client_certificate_fingerprint_only(
        world: tuple[Deployment, Path, x509.Certificate]) -> None:
    d, pki, client = world
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki / "ca.pem"))
    context.load_cert_chain(str(pki / "client.pem"), str(pki / "client-key.pem"))
    before = len(d.audit())
    nc = await nats.connect(f"tls://127.0.0.1:{d.port}", tls=context,
                            tls_hostname="127.0.0.1", allow_reconnect=False, connect_timeout=5,
                            nkeys_seed_str=d.identity("client").seed)
    try:
        assert nc.is_connected
    finally:
        await nc.close()
    record = d.wait_audit(before + 1)[-1]
    assert (record["decision"], record["rule_ids"]) == ("allow", ["tls-client"])
    der = client.public_bytes(serialization.Encoding.DER)
    assert record["tls"]["fingerprint_sha256"] == hashlib.sha256(der).hexdigest()
    assert record["tls"]["version"] and record["tls"]["cipher"]
    pem = client.public_bytes(serialization.Encoding.PEM).decode()
    body = pem.splitlines()[1]  # a line of the certificate's base64
    assert body not in d.audit_path.read_text()  # the fingerprint, never the certificate


def test_a_server_certificate_authsvc_does_not_trust_is_a_settings_error_not_an_outage(
        world: tuple[Deployment, Path, x509.Certificate], tmp_path: Path) -> None:
    # Exit 2 (fix the settings), not 69 (retry later): a restart loop would not help.
    import subprocess

    import yaml

    from tests.support.deploy import AUTHSVC

    d, _pki, _client = world
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "other CA")])
    other_ca, _ = _write(tmp_path, "other-ca", _cert("other CA", other_key, other_name,
                                                      other_key, ca=True))
    settings = yaml.safe_load(d.settings_file.read_text())
    settings["nats"].update({"tls_ca": str(other_ca), "startup_timeout": 3})
    for section in ("keys", "policy", "audit"):  # relative to the deployment's folder
        settings[section] = {**settings[section]}
    settings["keys"]["dir"] = str(d.root / "keys")
    settings["policy"]["paths"] = [str(d.root / "policy.yaml")]
    settings["audit"]["path"] = str(tmp_path / "audit.jsonl")
    config = tmp_path / "authsvc.yaml"
    config.write_text(yaml.safe_dump(settings))
    proc = subprocess.run([*AUTHSVC, "serve", "-c", str(config)], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.splitlines()[-1].startswith("authsvc: error: ")
