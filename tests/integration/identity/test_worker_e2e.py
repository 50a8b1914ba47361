"""The example Cloudflare Worker (deploy/cloudflare-worker/worker.js), run in workerd.

workerd is the open-source runtime behind Cloudflare Workers (npm package ``workerd``,
installed by scripts/test.sh into deploy/cloudflare-worker/node_modules). The Worker runs
unchanged: it trades an Access service token for an Access JWT at a token endpoint, opens a
WebSocket to nats-server's WebSocket listener through the runtime's ``fetch``, sends the JWT
as CONNECT ``auth_token``, publishes and reports nats-server's answer. Cloudflare Access
itself cannot run offline: a loopback endpoint stands in for the Access-protected echo
endpoint (it checks the Client ID and Secret headers and returns an Access-shaped service
token JWT signed by the loopback issuer, whose keys sit at the team-domain certs path).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from authsvc.domain import DenyReason
from authsvc.natsconf.process import free_port, stop_process
from tests.support.claimsets import mint_claim_set
from tests.support.deploy import Deployment
from tests.support.idp import Issuer, SigningKey

ROOT = Path(__file__).resolve().parents[3]
WORKER_DIR = ROOT / "deploy" / "cloudflare-worker"
WORKERD = WORKER_DIR / "node_modules" / ".bin" / "workerd"
KEY = SigningKey.rsa("worker-e2e")
AUD_TAG = "32eafc7626e974616deaf0dc3ce63d7bcbed58a2731e84d06bc3cdf1b53c4228"
CLIENT_ID = "e367826f93b8d71185e03fe518aff3b4.access"
CLIENT_SECRET = "worker-e2e-client-secret"  # a test value; the token endpoint checks it

pytestmark = pytest.mark.skipif(
    not WORKERD.exists(),
    reason="workerd is not installed (scripts/test.sh runs npm ci in deploy/cloudflare-worker)")


class TokenEndpoint:
    """Stands in for the Access-protected endpoint that echoes Cf-Access-Jwt-Assertion."""

    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer
        self.refused = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if (self.headers.get("CF-Access-Client-Id") != CLIENT_ID
                        or self.headers.get("CF-Access-Client-Secret") != CLIENT_SECRET):
                    endpoint.refused += 1
                    self.send_response(403)
                    self.end_headers()
                    return
                token = mint_claim_set(KEY, "cloudflare-access-service-token", int(time.time()),
                                       iss=endpoint.issuer.url).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(token)))
                self.end_headers()
                self.wfile.write(token)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _capnp(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Cap'n Proto text literal


def _workerd_config(folder: Path, port: int, bindings: dict[str, str]) -> Path:
    shutil.copy(WORKER_DIR / "worker.js", folder / "worker.js")
    texts = ",\n    ".join(f"(name = {_capnp(k)}, text = {_capnp(v)})"
                           for k, v in bindings.items())
    config = folder / "worker.capnp"
    config.write_text(f"""using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "loopback", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:{port}", http = (), service = "main")],
);

const worker :Workerd.Worker = (
  modules = [(name = "worker.js", esModule = embed "worker.js")],
  compatibilityDate = "2024-09-23",
  globalOutbound = "loopback",
  bindings = [
    {texts}
  ],
);
""")
    return config


class Workerd:
    """One workerd process serving the example Worker with the given bindings."""

    def __init__(self, folder: Path, bindings: dict[str, str]) -> None:
        self.port = free_port()
        config = _workerd_config(folder, self.port, bindings)
        self.log = (folder / "workerd.log").open("wb")
        self.process = subprocess.Popen([str(WORKERD), "serve", str(config)], cwd=folder,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready(folder)

    def _wait_ready(self, folder: Path) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"workerd exited: {(folder / 'workerd.log').read_text()}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health-probe", timeout=1)
            except urllib.error.HTTPError:
                return  # the Worker answered (a probe failure is still an answer)
            except OSError:
                time.sleep(0.2)
                continue
            return
        raise RuntimeError("workerd did not start listening")

    def publish(self, subject: str, body: bytes = b"click") -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/?subject={subject}", data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, Issuer,
                                                                      TokenEndpoint]]:
    with Issuer(keys=[KEY]) as idp:
        settings = {"identity": {"oidc": {"issuers": [
            {"issuer": idp.url, "provider": "cloudflare_access", "audiences": [AUD_TAG],
             "allow_http": True}]}}}
        rules = [{"id": "edge-worker",
                  "match": {"issuer": idp.url, "subject": CLIENT_ID},
                  "grant": {"account": "EDGE", "ttl": "10m",
                            "publish": {"allow": ["edge.clicks"]},
                            "subscribe": {"allow": ["_INBOX.>"]},
                            "connection_types": ["WEBSOCKET"]}}]
        d = Deployment(tmp_path_factory.mktemp("worker"), websocket=True,
                       settings_extra=settings, rules=rules)
        d.start()
        endpoint = TokenEndpoint(idp)
        try:
            yield d, idp, endpoint
        finally:
            endpoint.close()
            d.stop()


def _bindings(d: Deployment, endpoint: TokenEndpoint, secret: str) -> dict[str, str]:
    return {"TOKEN_URL": endpoint.url, "NATS_WS_URL": f"http://127.0.0.1:{d.websocket_port}/",
            "CF_CLIENT_ID": CLIENT_ID, "CF_CLIENT_SECRET": secret,
            "DEFAULT_SUBJECT": "edge.clicks"}


def test_worker_publishes_through_authsvc_over_websocket(
        world: tuple[Deployment, Issuer, TokenEndpoint], tmp_path: Path) -> None:
    d, idp, endpoint = world
    worker = Workerd(tmp_path, _bindings(d, endpoint, CLIENT_SECRET))
    try:
        before = len(d.audit())
        status, result = worker.publish("edge.clicks")
        assert (status, result) == (200, {"ok": True})
        allow = [r for r in d.wait_audit(before + 1)[before:] if r.get("decision") == "allow"]
        assert allow[-1]["identity"]["principal"] == f"oidc:{idp.url}#{CLIENT_ID}"
        assert allow[-1]["rule_ids"] == ["edge-worker"]
        assert allow[-1]["client"]["lang"] == "cloudflare-worker"
        assert idp.certs_hits >= 1  # keys from the team domain's certs path

        # Outside the grant: admitted, but nats-server refuses the publish itself.
        status, result = worker.publish("edge.admin")
        assert status == 502 and result["ok"] is False
        assert result["error"].startswith("Permissions Violation for Publish")
    finally:
        worker.stop()


@pytest.mark.parametrize("subject", ["edge.clicks%0D%0APUB%20edge.admin%201",
                                     "edge.clicks%20_INBOX.x", "edge.%2A", "edge.%3E", "edge..x",
                                     "edge.cl%C3%ACcks"])
def test_worker_refuses_a_subject_that_would_change_its_protocol_line(
        world: tuple[Deployment, Issuer, TokenEndpoint], tmp_path: Path, subject: str) -> None:
    d, _idp, endpoint = world
    worker = Workerd(tmp_path, _bindings(d, endpoint, CLIENT_SECRET))
    try:
        audited = len(d.audit())
        status, result = worker.publish(subject)
        assert status == 400 and result["ok"] is False
        assert len(d.audit()) == audited  # refused before any token or connect
    finally:
        worker.stop()


def test_worker_with_a_wrong_secret_gets_no_token(
        world: tuple[Deployment, Issuer, TokenEndpoint], tmp_path: Path) -> None:
    d, _idp, endpoint = world
    worker = Workerd(tmp_path, _bindings(d, endpoint, "not-the-secret"))
    try:
        refused_before, audited_before = endpoint.refused, len(d.audit())
        status, result = worker.publish("edge.clicks")
        assert status == 502 and result["ok"] is False
        assert endpoint.refused == refused_before + 1
        assert len(d.audit()) == audited_before  # it never reached nats-server
    finally:
        worker.stop()


def test_worker_token_is_refused_over_plain_tcp(
        world: tuple[Deployment, Issuer, TokenEndpoint]) -> None:
    """The grant names WEBSOCKET: the same Access JWT over TCP is denied at connect."""
    import asyncio

    import nats
    from nats.errors import Error as NatsError

    d, idp, _endpoint = world
    token = mint_claim_set(KEY, "cloudflare-access-service-token", int(time.time()), iss=idp.url)

    async def connect() -> None:
        await nats.connect(d.url, token=token, allow_reconnect=False, connect_timeout=5)

    before = len(d.audit())
    with pytest.raises(NatsError):
        asyncio.run(connect())
    assert d.wait_audit(before + 1)[-1]["reason"] == DenyReason.CONNECTION_NOT_ALLOWED
