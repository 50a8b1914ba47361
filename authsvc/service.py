"""CalloutService: one authorization request in, one reply (or a deliberate drop) out.

decode -> verify identity -> evaluate policy -> mint -> audit -> reply. Every step returns a
value or raises a fault; every fault becomes a deny with outcome ``error`` (fail closed),
and every outcome is audited before the reply leaves. No path admits a client whose
decision was not recorded.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from authsvc.audit import AuditWriter, DecisionFacts, Outcome, to_record
from authsvc.clock import Clock
from authsvc.domain import Allow, ConnectRequest, Deny, DenyReason, Grant, Identity
from authsvc.errors import AuditError, AuthsvcError, SigningError, UpstreamError
from authsvc.identity import VerifierRegistry
from authsvc.minting import MintedJwt, Minter, permission_claims
from authsvc.policy import Policy, evaluate, refuse_forbidden
from authsvc.protocol.request import ReplyAddress, RequestRejected, RequestRules, decode_request
from authsvc.protocol.response import encode_response

log = logging.getLogger("authsvc.service")

# Faults whose deny is recorded with outcome "error" and the matching code.
_FAULT_REASONS: tuple[tuple[type[Exception], DenyReason], ...] = (
    (UpstreamError, DenyReason.UPSTREAM_UNAVAILABLE),
    (SigningError, DenyReason.SIGNING_FAILED),
    (AuditError, DenyReason.AUDIT_UNAVAILABLE),
)


class InvalidRequestAction(StrEnum):
    """What to do with a request that fails validation but whose sender we can address.

    ``reply`` sends a signed error at once (the client fails fast); ``drop`` sends nothing
    and lets the server time the client out, which slows down credential guessing.
    """

    REPLY = "reply"
    DROP = "drop"


class CalloutService:
    """Stateless per request; safe to call concurrently."""

    def __init__(
        self,
        *,
        rules: RequestRules,
        verifiers: VerifierRegistry,
        policy: Callable[[], Policy],
        minter: Minter,
        audit: AuditWriter,
        clock: Clock,
        forbidden_accounts: frozenset[str] = frozenset(),
        invalid_request: InvalidRequestAction = InvalidRequestAction.REPLY,
    ) -> None:
        self._rules = rules
        self._verifiers = verifiers
        self._policy = policy
        self._minter = minter
        self._audit = audit
        self._clock = clock
        self._forbidden = forbidden_accounts
        self._invalid_request = invalid_request
        # Answers given, by (decision, reason): what /metrics shows as authsvc_decisions_total.
        self.decisions: Counter[tuple[str, str]] = Counter()
        # A failing disk fails every connect: say so once per interval, not per request.
        self._audit_failures = Throttled(log)

    async def handle(self, payload: bytes, headers: Mapping[str, str] | None) -> bytes | None:
        """The reply to publish, or None to drop. Never raises."""
        started = Stopwatch()
        now = self._clock.now()
        try:
            request = decode_request(payload, headers, now=now, rules=self._rules)
            started.lap("decode")
        except RequestRejected as rejected:
            return self._refuse_request(rejected, now, started)
        except Exception as exc:  # a codec bug must not crash the service
            log.exception("request decoding failed unexpectedly")
            return self._refuse_request(
                RequestRejected(DenyReason.INTERNAL_ERROR, type(exc).__name__), now, started,
                outcome=Outcome.ERROR)
        try:
            return await self._decide(request, now, started)
        except Exception as exc:
            return self._fault(request, exc, now, started)

    def refuse(self, payload: bytes, headers: Mapping[str, str] | None,
               reason: DenyReason) -> bytes | None:
        """Deny without deciding (overload, shutdown); still audited and addressed."""
        started = Stopwatch()
        now = self._clock.now()
        try:
            request = decode_request(payload, headers, now=now, rules=self._rules)
        except RequestRejected as rejected:
            return self._refuse_request(rejected, now, started)
        except Exception as exc:  # as in handle: audited and answered, never dropped silently
            log.exception("request decoding failed unexpectedly")
            return self._refuse_request(
                RequestRejected(DenyReason.INTERNAL_ERROR, type(exc).__name__), now, started,
                outcome=Outcome.ERROR)
        return self._deny(request, Deny(reason), now, started, outcome=Outcome.ERROR)

    async def _decide(self, request: ConnectRequest, now: datetime, started: Stopwatch) -> bytes:
        verified = await self._verifiers.verify(request, now=now)
        started.lap("verify")
        if isinstance(verified, Deny):
            return self._deny(request, verified, now, started)
        policy = self._policy()
        decision = refuse_forbidden(evaluate(verified, request, policy, now), self._forbidden)
        started.lap("policy")
        if isinstance(decision, Deny):
            return self._deny(request, decision, now, started, identity=verified,
                              revision=policy.revision)
        return await self._allow(request, verified, decision, policy.revision, now, started)

    async def _allow(self, request: ConnectRequest, identity: Identity, decision: Allow,
                     revision: str, now: datetime, started: Stopwatch) -> bytes:
        grant = decision.grant
        minted = self._minter.mint(grant=grant, identity=identity,
                                   user_nkey=request.user_nkey, now=now)
        started.lap("mint")
        if isinstance(minted, Deny):
            return self._deny(request, minted, now, started, identity=identity,
                              revision=revision)
        facts = self._facts(request, Outcome.ALLOW, "allowed", started, now, identity=identity,
                            revision=revision, grant=grant, minted=minted)
        # Durable before the answer. A failed append is a fault for handle(); a failed commit
        # leaves an allow record that may have reached the file, so the deny says which.
        record = self._record(facts)
        try:
            await self._audit.commit()
        except AuditError as exc:
            self._audit_failures.note("audit log commit failed; refusing (%s): %s",
                                      DenyReason.AUDIT_UNAVAILABLE, exc)
            return self._deny(request, Deny(DenyReason.AUDIT_UNAVAILABLE,
                                            f"{type(exc).__name__}: {exc}"),
                              now, started, identity=identity, revision=revision,
                              outcome=Outcome.ERROR, supersedes=str(record.get("event_id", "")))
        self.decisions[(Outcome.ALLOW.value, "allowed")] += 1
        return encode_response(reply_to=_reply_address(request), signer=self._minter.issuer,
                               now=now, user_jwt=minted.token, xkey=self._rules.xkey)

    def _deny(self, request: ConnectRequest, deny: Deny, now: datetime, started: Stopwatch, *,
              identity: Identity | None = None, revision: str = "",
              outcome: Outcome = Outcome.DENY, supersedes: str = "") -> bytes:
        facts = self._facts(request, outcome, deny.reason.value, started, now,
                            identity=identity, revision=revision, detail=deny.detail,
                            rule_ids=deny.rule_ids, supersedes=supersedes)
        self._record_best_effort(facts)
        self.decisions[(outcome.value, deny.reason.value)] += 1
        return self._error_reply(_reply_address(request), deny.reason, now)

    def _fault(self, request: ConnectRequest, exc: Exception, now: datetime,
               started: Stopwatch) -> bytes:
        reason = next((code for kind, code in _FAULT_REASONS if isinstance(exc, kind)),
                      DenyReason.INTERNAL_ERROR)
        if not isinstance(exc, AuthsvcError):
            log.exception("unexpected fault while deciding; denying")
        elif isinstance(exc, AuditError):
            self._audit_failures.note("audit log write failed; refusing (%s): %s", reason, exc)
        else:
            log.warning("fault while deciding (%s): %s", reason, exc)
        return self._deny(request, Deny(reason, f"{type(exc).__name__}: {exc}"), now, started,
                          outcome=Outcome.ERROR)

    def _refuse_request(self, rejected: RequestRejected, now: datetime, started: Stopwatch, *,
                        outcome: Outcome = Outcome.DENY) -> bytes | None:
        address = rejected.reply_to
        facts = DecisionFacts(
            time=now, outcome=outcome, reason=rejected.reason.value, detail=rejected.detail,
            user_nkey=address.user_nkey if address else "",
            server_id=address.server_id if address else "",
            latency_ms=started.total_ms(), stages_ms=started.stages)
        self._record_best_effort(facts)
        self.decisions[(outcome.value, rejected.reason.value)] += 1
        if address is None or self._invalid_request is InvalidRequestAction.DROP:
            return None
        return self._error_reply(address, rejected.reason, now)

    def _error_reply(self, address: ReplyAddress, reason: DenyReason, now: datetime) -> bytes:
        # The error text is only the reason code: it lands in server logs and auth events.
        return encode_response(reply_to=address, signer=self._minter.issuer, now=now,
                               error=reason.value, xkey=self._rules.xkey)

    def _facts(self, request: ConnectRequest, outcome: Outcome, reason: str, started: Stopwatch,
               now: datetime, *, identity: Identity | None = None, revision: str = "",
               grant: Grant | None = None, minted: MintedJwt | None = None, detail: str = "",
               rule_ids: tuple[str, ...] = (), supersedes: str = "") -> DecisionFacts:
        return DecisionFacts(
            time=now, outcome=outcome, reason=reason, detail=detail, request=request,
            identity=identity, grant=grant,
            permissions=permission_claims(grant.permissions) if grant else None,
            jwt_id=minted.jti if minted else "",
            jwt_expires_at=minted.expires_at if minted else None,
            policy_revision=revision, rule_ids=grant.rule_ids if grant else rule_ids,
            latency_ms=started.total_ms(), stages_ms=started.stages, supersedes=supersedes)

    def _record(self, facts: DecisionFacts) -> dict[str, Any]:
        """Append the decision's record (stamped with its event_id by the log) and return it."""
        record = to_record(facts)
        self._audit.append(record)
        _debug_decision(record)
        return record

    def _record_best_effort(self, facts: DecisionFacts) -> None:
        """Denials are answered even when the log is down: refusing is always safe."""
        try:
            self._record(facts)
        except AuditError as exc:
            self._audit_failures.note("audit write failed; the %s (%s) is answered but not "
                                      "recorded: %s", facts.outcome.value, facts.reason, exc)


class Stopwatch:
    """Per-request timing: ``lap(stage)`` records the milliseconds since the previous lap.

    Stages are decode, verify, policy and mint; writing the audit record itself cannot be
    timed inside that record (``latency_ms`` is the total up to the record).
    """

    __slots__ = ("_last", "_started", "stages")

    def __init__(self) -> None:
        self._started = self._last = time.perf_counter()
        self.stages: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = round((now - self._last) * 1000, 3)
        self._last = now

    def total_ms(self) -> float:
        return (time.perf_counter() - self._started) * 1000


def _reply_address(request: ConnectRequest) -> ReplyAddress:
    return ReplyAddress(user_nkey=request.user_nkey, server_id=request.server.id,
                        server_xkey=request.server.xkey, sealed=request.sealed)


class Throttled:
    """Logs a recurring error at most once per ``interval`` seconds, saying how many like
    it were held back, so a failing disk does not write one log line per connect."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self._log = logger
        self._interval = interval
        self._next = 0.0
        self._held = 0

    def note(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now < self._next:
            self._held += 1
            return
        if self._held:
            message += " (and %d more like it in the last %.0f s)"
            args = (*args, self._held, self._interval)
        self._log.error(message, *args)
        self._next, self._held = now + self._interval, 0


def _debug_decision(record: dict[str, object]) -> None:
    """At DEBUG, one line per decision for troubleshooting (never a credential)."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    identity = record.get("identity")
    principal = identity.get("principal", "-") if isinstance(identity, dict) else "-"
    rule_ids = record.get("rule_ids")
    log.debug("decision %s %s principal=%s account=%s rules=%s user_nkey=%s latency_ms=%s",
              record.get("decision"), record.get("reason"), principal,
              record.get("account", "-"),
              ",".join(map(str, rule_ids)) if isinstance(rule_ids, list) and rule_ids else "-",
              record.get("user_nkey") or "-", record.get("latency_ms"))
