"""Decision time against policy size, and reload under load: ``python -m bench.policy_eval``.

Part 1 measures ``evaluate`` (the call the service makes per connect) in µs per decision
for policies of 10, 1k and 10k rules, over a stream of identities of every kind the rules
name, and prints the ratio 10k/10 against the target (<= 1.5, issue 4). The rules are
generated to look like a real fleet's: nkey services by exact key, Kubernetes service
accounts of many clusters, GitHub-style deploy jobs by subject glob per enterprise issuer,
Okta groups per tenant issuer with templated inboxes, and AWS roles by ARN. ``candidates``
shows how many rules the index hands the engine per decision: decision time follows it,
not the policy size.

Part 2 runs the service's ``PolicyReloader`` on a 10k-rule policy (split over files, as
``MAX_FILE_BYTES`` requires) while a probe evaluates a decision every millisecond on the
same event loop, and reports the probe's worst latency and the loop's worst stall during
the reload, next to the same figures before it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import tempfile
import time
from base64 import b32encode
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from authsvc.audit import AuditLog, FileSink
from authsvc.clock import SystemClock
from authsvc.domain import (
    ClientInfo,
    ConnectOptions,
    ConnectRequest,
    Identity,
    IdentitySource,
    ServerInfo,
)
from authsvc.policy import Policy, evaluate, load_policy, load_policy_text
from authsvc.policy_reload import PolicyReloader, ReloadSources, Trigger
from authsvc.server import PolicyHolder

SIZES = (10, 1_000, 10_000)
TARGET_RATIO = 1.5
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
RULES_PER_FILE = 1000  # a file holds at most 1 MiB (policy.load.MAX_FILE_BYTES)
PROBE_EVERY = 0.001
STALL_MS = 50.0
KINDS = ("nkey", "nkey", "nkey", "nkey", "k8s", "k8s", "github", "okta", "aws", "aws")


def _nkey(i: int) -> str:
    """A user public key look-alike: the engine compares strings, it never decodes them."""
    return "U" + b32encode(hashlib.sha256(b"%d" % i).digest()).decode()[:55]


def _rule(i: int, per_issuer: int) -> dict[str, Any]:
    kind, tenant = KINDS[i % len(KINDS)], i // (len(KINDS) * per_issuer)
    grant = {"account": f"APP{i % 7}", "ttl": "15m",
             "publish": {"allow": [f"svc{i}.events.>"]},
             "subscribe": {"allow": [f"svc{i}.cmd.*", f"_INBOX.svc{i}.>"]}}
    match: dict[str, Any]
    if kind == "nkey":
        match = {"source": "nkey", "subject": _nkey(i)}
    elif kind == "k8s":
        match = {"source": "oidc", "issuer": f"https://k8s-{i % 40}.clusters.example.com",
                 "subject": f"system:serviceaccount:ns-{i}:sa-{i}"}
    elif kind == "github":
        match = {"source": "oidc", "issuer": f"https://token.actions.example.com/ent-{tenant}",
                 "subject_glob": f"repo:org-{i}/*:environment:prod",
                 "claims": {"ref": {"equals": "refs/heads/main"}}}
    elif kind == "okta":
        match = {"source": "oidc", "issuer": f"https://tenant-{tenant}.okta.example.com",
                 "groups": {"contains_any": [f"group-{i}"]},
                 "claims": {"tenant": {"pattern": "^[a-z0-9-]{1,32}$"}}}
        grant["subscribe"] = {"allow": ["tenant.{{claims.tenant}}.>"]}
    else:
        match = {"source": "aws_iam", "aws": {"arn": f"arn:aws:iam::{100000000000 + i % 50}:"
                                                     f"role/svc-{i}"}}
    return {"id": f"{kind}-{i}", "match": match, "grant": grant}


def rules(count: int, per_issuer: int = 5) -> list[dict[str, Any]]:
    """``count`` generated rules (ids ``<kind>-<i>``), plus two guardrails."""
    found = [_rule(i, per_issuer) for i in range(count)]
    found.append({"id": "no-sys", "effect": "deny", "permissions": {"publish": ["$SYS.>"]}})
    found.append({"id": "no-js-admin", "effect": "deny",
                  "permissions": {"publish": ["$JS.API.STREAM.DELETE.>"]}})
    return found


def policy_yaml(rule_list: list[dict[str, Any]]) -> str:
    return yaml.safe_dump({"apiVersion": "authsvc/v1", "kind": "Policy", "rules": rule_list},
                          sort_keys=False)


def identity_for(rule: dict[str, Any]) -> Identity:
    """An identity the generated ``rule`` admits."""
    match, i = rule["match"], int(rule["id"].rsplit("-", 1)[1])
    issuer = match.get("issuer", "")
    if match["source"] == "nkey":
        return Identity(IdentitySource.NKEY, f"nkey:{_nkey(i)}", _nkey(i))
    if "subject" in match:
        return Identity(IdentitySource.OIDC, f"oidc:{issuer}#{match['subject']}",
                        match["subject"], issuer=issuer)
    if "subject_glob" in match:
        subject = f"repo:org-{i}/app:environment:prod"
        return Identity(IdentitySource.OIDC, f"oidc:{issuer}#{subject}", subject, issuer=issuer,
                        attributes={"ref": "refs/heads/main"})
    if "groups" in match:
        return Identity(IdentitySource.OIDC, f"oidc:{issuer}#user{i}", f"user{i}", issuer=issuer,
                        attributes={"groups": (f"group-{i}",), "tenant": f"t{i}"})
    arn = match["aws"]["arn"]
    return Identity(IdentitySource.AWS_IAM, f"aws:{arn}", arn, attributes={"arn": arn})


def request() -> ConnectRequest:
    return ConnectRequest(server=ServerInfo(id="N"), user_nkey="U", request_id="r",
                          client=ClientInfo(host="10.1.2.3", type="nats"),
                          connect=ConnectOptions(), issued_at=NOW, expires_at=NOW)


def probe_identities(rule_list: list[dict[str, Any]]) -> list[Identity]:
    """One identity per generated rule kind, admitted by a rule in the middle of the list,
    in the proportions of ``KINDS``; plus a stranger no rule admits."""
    generated = [r for r in rule_list if "match" in r]
    middle = len(generated) // 2
    picked = [next(r for r in generated[middle:] + generated if r["id"].startswith(kind + "-"))
              for kind in KINDS]
    stranger = Identity(IdentitySource.NKEY, "nkey:UNKNOWN", "UNKNOWN")
    return [identity_for(rule) for rule in picked] + [stranger]


@dataclass(frozen=True)
class SizeResult:
    rules: int
    us_per_decision: float
    per_kind: dict[str, float]
    candidates: dict[str, int]


def _time_us(action: Callable[[], object], rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        action()
    return (time.perf_counter() - started) / rounds * 1e6


def measure_sizes(sizes: tuple[int, ...], rounds: int, repeat: int, per_issuer: int
                  ) -> list[SizeResult]:
    """Every size and identity kind timed once per repeat, interleaved, so that drift on a
    shared host hits all sizes alike; medians over the repeats."""
    setups: list[tuple[int, Policy, dict[str, Identity]]] = []
    for count in sizes:
        rule_list = rules(count, per_issuer)
        policy = load_policy_text(policy_yaml(rule_list), f"<{count} rules>")
        setups.append((count, policy, {_kind(i): i for i in probe_identities(rule_list)}))
    req = request()
    samples: dict[tuple[int, str], list[float]] = {}
    for _ in range(repeat):
        for count, policy, identities in setups:
            for kind, identity in identities.items():
                samples.setdefault((count, kind), []).append(_time_us(
                    lambda i=identity, p=policy: evaluate(i, req, p, NOW), rounds))
    mix = [_kind(i) for i in probe_identities(rules(len(KINDS)))]
    results = []
    for count, policy, identities in setups:
        per_kind = {kind: statistics.median(samples[count, kind]) for kind in identities}
        candidates = {kind: len(policy.candidates(i)) for kind, i in identities.items()}
        mean = statistics.fmean(per_kind[kind] for kind in mix)
        results.append(SizeResult(count, mean, per_kind, candidates))
    return results


def _kind(identity: Identity) -> str:
    if identity.subject == "UNKNOWN":
        return "stranger"
    if identity.source is IdentitySource.OIDC:
        if identity.subject.startswith("system:"):
            return "k8s"
        return "github" if identity.subject.startswith("repo:") else "okta"
    return identity.source.value


def _print_sizes(results: list[SizeResult]) -> float:
    kinds = list(results[0].per_kind)
    print("µs per decision (evaluate), median of repeats; candidates = rules the index returns")
    print(f"{'rules':>7} {'mix':>7}  " + "  ".join(f"{k:>14}" for k in kinds))
    for result in results:
        cells = "  ".join(f"{result.per_kind[k]:7.1f} ({result.candidates[k]:>3})" for k in kinds)
        print(f"{result.rules:>7} {result.us_per_decision:7.1f}  {cells}")
    ratio = results[-1].us_per_decision / results[0].us_per_decision
    verdict = "ok" if ratio <= TARGET_RATIO else "OVER TARGET"
    print(f"ratio {results[-1].rules}/{results[0].rules}: {ratio:.2f} "
          f"(target <= {TARGET_RATIO}) {verdict}")
    return ratio


@dataclass(frozen=True)
class Probe:
    """Worst and p99 of the loop's timer lateness and of one decision, in ms."""

    samples: int
    stalls: int  # timer fired more than STALL_MS late
    lag_max: float
    lag_p99: float
    decision_max: float
    decision_p99: float


def _probe(lags: list[float], decisions: list[float]) -> Probe:
    def p99(values: list[float]) -> float:
        return sorted(values)[int(len(values) * 0.99)] * 1e3

    stalls = sum(lag * 1e3 > STALL_MS for lag in lags)
    return Probe(len(lags), stalls, max(lags) * 1e3, p99(lags), max(decisions) * 1e3,
                 p99(decisions))


async def _run_probe(holder: PolicyHolder, identity: Identity, until: asyncio.Future[object]
                     ) -> Probe:
    """Every PROBE_EVERY: how late the timer fired, and how long one decision took."""
    req, lags, decisions = request(), [], []
    while not until.done():
        started = time.perf_counter()
        await asyncio.sleep(PROBE_EVERY)
        woke = time.perf_counter()
        lags.append(woke - started - PROBE_EVERY)
        evaluate(identity, req, holder.current, NOW)
        decisions.append(time.perf_counter() - woke)
    return _probe(lags, decisions)


def _write_split(directory: Path, rule_list: list[dict[str, Any]]) -> None:
    for first in range(0, len(rule_list), RULES_PER_FILE):
        name = directory / f"{first // RULES_PER_FILE:03d}.yaml"
        name.write_text(policy_yaml(rule_list[first:first + RULES_PER_FILE]))


async def measure_reload(count: int, per_issuer: int, baseline: float) -> dict[str, Any]:
    """Probe the loop for ``baseline`` seconds, then while a ``count``-rule reload runs."""
    rule_list = rules(count, per_issuer)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "policies"
        directory.mkdir()
        _write_split(directory, rule_list)
        holder = PolicyHolder(load_policy([directory]))
        rule_list[0]["grant"]["ttl"] = "10m"  # a real change: a new revision to activate
        _write_split(directory, rule_list)
        audit = AuditLog(FileSink(Path(tmp) / "audit.jsonl", fsync=False), instance="bench",
                         clock=SystemClock())
        reloader = PolicyReloader(holder, ReloadSources(paths=(directory,)), audit=audit,
                                  check_accounts=lambda policy: None, interval=0)
        reloader.start()  # as serve() does: freezes the startup heap; no watcher at interval 0
        identity = probe_identities(rule_list)[0]
        loop = asyncio.get_running_loop()
        idle = await _run_probe(holder, identity, loop.create_task(asyncio.sleep(baseline)))
        started = time.perf_counter()
        reload = loop.create_task(reloader.reload(Trigger.SIGNAL))
        during = await _run_probe(holder, identity, reload)
        seconds = time.perf_counter() - started
        assert isinstance(reload.result(), Policy), reload.result()
        audit.close()
    return {"rules": count, "reload_seconds": seconds, "idle": idle, "during": during}


def _print_reload(result: dict[str, Any]) -> None:
    print(f"\nreload of a {result['rules']}-rule policy ({RULES_PER_FILE} rules per file) "
          f"took {result['reload_seconds']:.1f} s (built in a child process); meanwhile, "
          "on the loop:")
    print(f"{'':>8} {'probes':>7} {f'>{STALL_MS:g}ms':>7} {'lag max':>9} {'lag p99':>9} "
          f"{'decide max':>11} {'decide p99':>11}   (ms)")
    for phase in ("idle", "during"):
        probe: Probe = result[phase]
        print(f"{phase:>8} {probe.samples:>7} {probe.stalls:>7} {probe.lag_max:9.2f} "
              f"{probe.lag_p99:9.2f} {probe.decision_max:11.3f} {probe.decision_p99:11.3f}")
    print(f"loading on the loop instead would stall every request for ~"
          f"{result['reload_seconds']:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--per-issuer", type=int, default=5,
                        help="glob/group rules sharing one issuer (they share an index bucket)")
    parser.add_argument("--reload-rules", type=int, default=10_000,
                        help="policy size for the reload-under-load check; 0 = skip it")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = measure_sizes(SIZES, args.rounds, args.repeat, args.per_issuer)
    ratio = _print_sizes(results)
    reload = None
    if args.reload_rules:
        reload = asyncio.run(measure_reload(args.reload_rules, args.per_issuer, 3.0))
        _print_reload(reload)
    if args.json:
        print(json.dumps({"sizes": [r.__dict__ for r in results], "ratio": ratio,
                          "reload": reload}, default=lambda o: o.__dict__))


if __name__ == "__main__":
    main()
