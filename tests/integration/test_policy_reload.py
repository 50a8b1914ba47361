"""Hot reload through a real deployment: nats-server and ``authsvc serve`` as a subprocess.

The policy file is rewritten on disk and the service is sent SIGHUP (or not, for the file
watcher), exactly as an operator would; clients connect with nats-py and the audit log is
read from disk.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import nats
import pytest
import yaml
from nats.errors import Error as NatsError

from authsvc.cli import main as cli_main
from tests.support.deploy import Deployment
from tests.support.scrape import scrape


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # policy files refuse anchors and aliases


def _rule(d: Deployment, name: str) -> dict[str, Any]:
    return {"id": name, "match": {"source": "nkey", "subject": d.identity(name).public_key},
            "grant": {"account": "APP", "subscribe": {"allow": ["orders.v2.>"]}}}


def _deployment(tmp: Path, **policy: Any) -> Deployment:
    d = Deployment(tmp, xkey=True)
    d.rules = [_rule(d, "writer")]
    d.settings_extra = {"policy": policy}
    return d


def _write(d: Deployment, rules: list[dict[str, Any]]) -> None:
    text = yaml.dump({"apiVersion": "authsvc/v1", "kind": "Policy", "rules": rules},
                     Dumper=_Dumper)
    (d.root / "policy.yaml").write_text(text)


def _sighup(d: Deployment) -> None:
    assert d.service is not None
    d.service.send_signal(signal.SIGHUP)


async def _admitted(d: Deployment, name: str) -> bool:
    try:
        nc = await nats.connect(d.url, nkeys_seed_str=d.identity(name).seed,
                                allow_reconnect=False, connect_timeout=5)
    except NatsError:
        return False
    admitted = bool(nc.is_connected)  # nats-py may return unconnected on a bare close
    await nc.close()
    return admitted


def _events(d: Deployment, kind: str, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in d.audit_events() if r.get("type") == kind]
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) == count, f"{kind}: {found}"
            return found
        time.sleep(0.05)


def _last_decision(d: Deployment, name: str) -> dict[str, Any]:
    key = d.identity(name).public_key
    return [r for r in d.audit() if r["identity"] and r["identity"]["subject"] == key][-1]


async def test_sighup_activates_a_good_policy_and_rejects_broken_ones(tmp_path: Path) -> None:
    d = _deployment(tmp_path, watch_interval=0, reject_warnings=True)
    d.start()
    try:
        assert not await _admitted(d, "newcomer")
        assert _last_decision(d, "newcomer")["reason"] == "no_matching_rule"
        good = [*d.rules, _rule(d, "newcomer")]
        _write(d, good)
        _sighup(d)
        [activated] = _events(d, "policy.activated", 1)
        assert activated["trigger"] == "sighup"
        assert await _admitted(d, "newcomer")
        assert _last_decision(d, "newcomer")["policy_revision"] == activated["revision"]

        broken = [
            ("apiVersion: authsvc/v1\nkind: Policy\nrules: [\n", "policy_invalid"),
            ({"subscribe": {"allow": ["orders..v2"]}}, "policy_invalid"),
            ({"subscribe": {"allow": [">"]}}, "lint_warnings"),
            ({"account": "AUTH"}, "accounts_refused"),
        ]
        for count, (change, reason) in enumerate(broken, start=1):
            if isinstance(change, str):
                (d.root / "policy.yaml").write_text(change)
            else:
                intruder = _rule(d, "intruder")
                intruder["grant"].update(change)
                _write(d, [*good, intruder])
            _sighup(d)
            rejected = _events(d, "policy.reload_rejected", count)[-1]
            assert (rejected["reason"], rejected["trigger"]) == (reason, "sighup")
            assert rejected["kept_revision"] == activated["revision"]
            assert not await _admitted(d, "intruder")
            assert await _admitted(d, "newcomer")
            assert _last_decision(d, "newcomer")["policy_revision"] == activated["revision"]
        assert d.service is not None and d.service.poll() is None  # SIGHUP no longer kills it
        _events(d, "policy.activated", 1)
    finally:
        d.stop()


async def test_a_file_change_is_picked_up_without_a_signal(tmp_path: Path) -> None:
    d = _deployment(tmp_path, watch_interval=0.2)
    d.start()
    try:
        assert not await _admitted(d, "newcomer")
        _write(d, [*d.rules, _rule(d, "newcomer")])
        [activated] = _events(d, "policy.activated", 1)
        assert activated["trigger"] == "file_change"
        assert await _admitted(d, "newcomer")
        (d.root / "policy.yaml").write_text("apiVersion: authsvc/v1\nkind: Policy\nrules: [\n")
        [rejected] = _events(d, "policy.reload_rejected", 1)
        assert (rejected["reason"], rejected["trigger"]) == ("policy_invalid", "file_change")
        assert await _admitted(d, "newcomer")
    finally:
        d.stop()


async def test_connects_are_answered_while_a_large_policy_reloads(tmp_path: Path) -> None:
    # Liveness only: how long the loop waits is bench/policy_reload.py's to measure.
    d = _deployment(tmp_path, watch_interval=0)
    fillers = [{"id": f"svc-{i}", "match": {"source": "nkey", "subject": f"UFILLER{i:05d}"},
                "grant": {"account": "APP", "publish": {"allow": [f"svc{i}.>"]}}}
               for i in range(2500)]
    d.rules = [_rule(d, "writer"), *fillers]
    d.start()
    try:
        answered: list[bool] = []

        async def connect_until_activated() -> None:
            while not any(e.get("type") == "policy.activated" for e in d.audit_events()):
                answered.append(await _admitted(d, "writer"))

        _write(d, [*d.rules, _rule(d, "newcomer")])
        connects = asyncio.ensure_future(connect_until_activated())
        await asyncio.sleep(0.2)
        before = len(answered)
        _sighup(d)
        await asyncio.wait_for(connects, timeout=30)
        [activated] = _events(d, "policy.activated", 1)
        assert activated["rules"] == 2502
        assert all(answered), answered.count(False)
        assert len(answered) - before >= 3, answered  # decided while the reload ran
        assert await _admitted(d, "newcomer")
    finally:
        d.stop()


async def test_a_rejected_reload_shows_in_the_metrics(tmp_path: Path) -> None:
    from authsvc.natsconf.process import free_port

    port = free_port()
    d = _deployment(tmp_path, watch_interval=0)
    d.settings_extra["metrics"] = {"listen": f"127.0.0.1:{port}"}
    d.start()
    try:
        before = scrape(port)
        assert before[("authsvc_policy_reload_failing", ())] == 0
        assert before[("authsvc_policy_reloads_total", (("outcome", "rejected"),))] == 0
        assert before[("authsvc_policy_rules", ())] == 1

        (d.root / "policy.yaml").write_text("apiVersion: authsvc/v1\nkind: Policy\nrules: [\n")
        _sighup(d)
        _events(d, "policy.reload_rejected", 1)
        failing = scrape(port)
        assert failing[("authsvc_policy_reload_failing", ())] == 1
        assert failing[("authsvc_policy_reloads_total", (("outcome", "rejected"),))] == 1
        assert failing[("authsvc_policy_reload_rejections_total",
                        (("reason", "policy_invalid"),))] == 1
        assert await _admitted(d, "writer")  # the last good policy keeps serving

        _write(d, [*d.rules, _rule(d, "newcomer")])
        _sighup(d)
        [activated] = _events(d, "policy.activated", 1)
        healed = scrape(port)
        assert healed[("authsvc_policy_reload_failing", ())] == 0
        assert healed[("authsvc_policy_reloads_total", (("outcome", "activated"),))] == 1
        assert healed[("authsvc_policy_rules", ())] == 2
        assert healed[("authsvc_policy_info", (("revision", activated["revision"]),))] == 1
    finally:
        d.stop()


async def test_decisions_and_audit_commits_show_in_the_metrics(tmp_path: Path) -> None:
    from authsvc.natsconf.process import free_port

    port = free_port()
    d = _deployment(tmp_path, watch_interval=0)
    d.settings_extra["metrics"] = {"listen": f"127.0.0.1:{port}"}
    d.settings_extra["audit"] = {"path": "audit.jsonl", "fsync": True}
    d.start()
    try:
        before = scrape(port)
        assert await _admitted(d, "writer")
        assert await _admitted(d, "writer")
        assert not await _admitted(d, "stranger")  # no rule: no_matching_rule
        after = scrape(port)
        allowed = ("authsvc_decisions_total", (("decision", "allow"), ("reason", "allowed")))
        refused = ("authsvc_decisions_total",
                   (("decision", "deny"), ("reason", "no_matching_rule")))
        assert after[allowed] - before.get(allowed, 0) == 2
        assert after[refused] - before.get(refused, 0) == 1
        records = after[("authsvc_audit_records_total", ())]
        assert records - before[("authsvc_audit_records_total", ())] >= 3
        fsyncs = after[("authsvc_audit_fsyncs_total", ())]
        assert fsyncs - before[("authsvc_audit_fsyncs_total", ())] >= 2  # one per allow here
        assert after[("authsvc_audit_fsync_seconds_total", ())] > 0
        assert 0 <= after[("authsvc_audit_fsync_cpu_seconds_total", ())] \
            <= after[("authsvc_audit_fsync_seconds_total", ())] + 0.05
        # Every answer is timed, from arrival to reply, into the histogram's buckets.
        answered = after[("authsvc_request_duration_seconds_count", ())] \
            - before[("authsvc_request_duration_seconds_count", ())]
        assert answered == 3
        assert after[("authsvc_request_duration_seconds_bucket", (("le", "+Inf"),))] \
            == after[("authsvc_request_duration_seconds_count", ())]
        assert after[("authsvc_request_duration_seconds_sum", ())] \
            > before[("authsvc_request_duration_seconds_sum", ())]
    finally:
        d.stop()


def _health(port: int, path: str = "/healthz") -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_healthz_is_ok_while_serving_and_503_without_nats(tmp_path: Path) -> None:
    from authsvc.natsconf.process import free_port

    port = free_port()
    d = _deployment(tmp_path)
    d.settings_extra["metrics"] = {"listen": f"127.0.0.1:{port}"}
    d.start()
    check = ["health", "-c", str(d.settings_file)]
    try:
        assert _health(port) == (200, "ok\n")
        assert cli_main(check) == 0
        with pytest.MonkeyPatch.context() as env:  # a container's proxy is not asked
            env.setenv("http_proxy", "http://127.0.0.1:9")
            env.setenv("HTTP_PROXY", "http://127.0.0.1:9")
            assert cli_main(check) == 0
        assert d.server is not None
        d.server.stop()
        deadline = time.monotonic() + 10
        while (found := _health(port))[0] == 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert found == (503, "not connected to nats-server\n")
        assert _health(port, "/livez") == (200, "ok\n")  # a restart would not bring NATS back
        assert cli_main(check) == 1
        assert cli_main([*check, "--live"]) == 0
    finally:
        d.stop()
    assert cli_main(check) == 1  # nothing answers any more


def test_health_command_needs_the_metrics_listener(tmp_path: Path) -> None:
    d = _deployment(tmp_path)
    d.write()
    assert cli_main(["health", "-c", str(d.settings_file)]) == 2
