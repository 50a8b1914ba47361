"""TLS end to end: nats-server configured by ``nats-config --tls-cert/--tls-key/--tls-ca
--tls-verify`` (client certificates required), authsvc connecting with ``tls://`` and
``nats.tls_ca/tls_cert/tls_key``, and a client with its own certificate. nats-server hands
authsvc ``client_tls``; the audit record keeps the leaf certificate's fingerprint, never
the certificate (docs/audit.md). Real certificates from a throwaway CA (tests/support/pki.py).
"""

from __future__ import annotations

import hashlib
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from authsvc.natsconf.render import ServerTls
from tests.support.deploy import AUTHSVC, Deployment
from tests.support.pki import Issued, Pki


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, Pki, Issued]]:
    root = tmp_path_factory.mktemp("tls")
    pki = Pki(root / "pki")
    server, service, client = pki.server("nats"), pki.client("authsvc"), pki.client("client")
    d = Deployment(root / "d", mode="config", xkey=True, server_tls=ServerTls(
        cert_file=str(server.cert_file), key_file=str(server.key_file),
        ca_file=str(pki.ca_file), verify=True))
    d.settings_extra = {"nats": {"url": f"tls://127.0.0.1:{d.port}", "tls_ca": str(pki.ca_file),
                                 "tls_cert": str(service.cert_file),
                                 "tls_key": str(service.key_file)}}
    d.rules = [{"id": "tls-client",
                "match": {"source": "nkey", "subject": d.identity("client").public_key},
                "grant": {"account": "APP", "publish": {"allow": ["orders.created"]}}}]
    d.start()
    try:
        yield d, pki, client
    finally:
        d.stop()


async def test_the_audit_record_holds_the_client_certificate_fingerprint_only(
        world: tuple[Deployment, Pki, Issued]) -> None:
    d, pki, client = world
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca_file))
    context.load_cert_chain(str(client.cert_file), str(client.key_file))
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
    der = client.cert.public_bytes(serialization.Encoding.DER)
    assert record["tls"]["fingerprint_sha256"] == hashlib.sha256(der).hexdigest()
    assert record["tls"]["version"] and record["tls"]["cipher"]
    pem = client.cert.public_bytes(serialization.Encoding.PEM).decode()
    body = pem.splitlines()[1]  # a line of the certificate's base64
    assert body not in d.audit_path.read_text()  # the fingerprint, never the certificate


def test_a_server_certificate_authsvc_does_not_trust_is_a_settings_error_not_an_outage(
        world: tuple[Deployment, Pki, Issued], tmp_path: Path) -> None:
    # Exit 2 (fix the settings), not 69 (retry later): a restart loop would not help.
    d, _pki, _client = world
    other = Pki(tmp_path / "other", name="other CA")
    settings = yaml.safe_load(d.settings_file.read_text())
    settings["nats"].update({"tls_ca": str(other.ca_file), "startup_timeout": 3})
    settings["keys"]["dir"] = str(d.root / "keys")  # the deployment's, not relative to here
    settings["policy"]["paths"] = [str(d.root / "policy.yaml")]
    settings["audit"]["path"] = str(tmp_path / "audit.jsonl")
    config = tmp_path / "authsvc.yaml"
    config.write_text(yaml.safe_dump(settings))
    proc = subprocess.run([*AUTHSVC, "serve", "-c", str(config)], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.splitlines()[-1].startswith("authsvc: error: ")


def test_a_server_without_tls_never_sees_the_login_when_tls_is_asked_for(
        tmp_path: Path) -> None:
    """nats-py upgrades to TLS only when the server's INFO requires it, whatever the URL
    says. With a tls:// URL and a plaintext server, authsvc must stop before CONNECT (which
    carries its nkey signature), fail as a settings error (2) at once rather than after
    nats.startup_timeout, and leave no authsvc connection on the server, open or closed."""
    import json
    import time
    import urllib.request

    from authsvc.natsconf.process import free_port

    monitor = free_port()

    def monitoring(body: dict[str, object]) -> None:
        body["http"] = f"127.0.0.1:{monitor}"

    pki = Pki(tmp_path / "pki")
    d = Deployment(tmp_path / "d", mode="config", config_edit=monitoring)
    d.settings_extra = {"nats": {"url": f"tls://127.0.0.1:{d.port}", "tls_ca": str(pki.ca_file),
                                 "startup_timeout": 20}}
    d.start(service=False)
    try:
        started = time.monotonic()
        proc = subprocess.run([*AUTHSVC, "serve", "-c", str(d.settings_file)],
                              capture_output=True, text=True, timeout=30)
        elapsed = time.monotonic() - started
        with urllib.request.urlopen(
                f"http://127.0.0.1:{monitor}/connz?state=any", timeout=3) as reply:
            seen = json.loads(reply.read())["connections"] or []
    finally:
        d.stop()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert elapsed < 10
    assert [c for c in seen if c.get("name") == "authsvc"] == []
