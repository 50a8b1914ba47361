"""The identity ``policy explain`` asks about when it is not a test case.

``--token``: a real credential, verified by the verifiers ``serve`` builds from the same
settings (signature, JWKS, claim rules; for AWS, the call to STS), so the answer is the one
the service would give. ``--claims``: a token's payload, checked by its issuer's claim rules
and read as the verifier reads a verified one, but with no signature to check; or an ``aws
sts get-caller-identity`` answer, taken as STS gave it.
The credential is never printed; only the identity it proves.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from authsvc.domain import ConnectRequest, Deny, DenyReason, Identity, Secret
from authsvc.errors import UpstreamError
from authsvc.policy.problems import InputFault

if TYPE_CHECKING:
    from authsvc.settings import Settings

# The issuer an AWS identity from a claims file gets: the global STS endpoint.
DEFAULT_STS_HOST = "sts.amazonaws.com"
_MAX_INPUT_BYTES = 1024 * 1024
_AWS_KEYS = ("Arn", "Account", "UserId")
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class Asked:
    """Who is asking, as far as it was established: an identity, or the Deny a verifier
    gave (then no rule is evaluated, as in ``serve``)."""

    kind: str  # "token" or "claims"
    file: str
    verified: bool
    outcome: Identity | Deny
    # The token's payload as written, to tell a claim the issuer's settings do not map
    # from one the token lacks; empty for AWS identities.
    raw: Mapping[str, Any] = field(default_factory=dict)


def read_input(path: Path, what: str) -> str:
    """A token or claims file; ``-`` is standard input. Never echoed in errors."""
    try:
        if str(path) == "-":
            text = sys.stdin.read(_MAX_INPUT_BYTES + 1)
        else:
            with path.open("r", encoding="utf-8") as handle:
                text = handle.read(_MAX_INPUT_BYTES + 1)
    except FileNotFoundError:
        raise InputFault(f"no such {what} file", code="file_not_found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InputFault(f"cannot read {what} file: {reason}", code="file_unreadable",
                         file=str(path)) from None
    if len(text) > _MAX_INPUT_BYTES:
        raise InputFault(f"{what} file is larger than 1 MiB", code="input_too_large",
                         file=str(path))
    if not text.strip():
        raise InputFault(f"{what} file is empty", code="input_empty", file=str(path))
    return text


def parse_time(value: str) -> datetime:
    """``--at``: an ISO 8601 time; without a zone it is UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InputFault(f"--at {value!r} is not an ISO 8601 time", code="time_invalid",
                         hint="e.g. 2026-03-02T10:00:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def from_token(path: Path, settings: Settings, request: ConnectRequest,
               now: datetime) -> Asked:
    """Verify the token in ``path`` as ``serve`` with ``settings`` verifies it at ``now``."""
    from authsvc.verifiers import build_verifiers

    token = read_input(path, "token").strip()
    if token.startswith("{"):
        raise InputFault("this is JSON, not a token", code="token_is_claims", file=str(path),
                         hint="a token's decoded payload or an AWS caller identity goes to "
                              "--claims FILE")
    scheme, _, rest = token.partition(" ")
    if rest and scheme.lower() in ("bearer", "authorization:"):
        raise InputFault(f"the token starts with {scheme!r}", code="token_has_scheme",
                         file=str(path), hint="give the token alone, as the client puts it in "
                         "auth_token or pass: without 'Bearer ' or a header name")
    registry = build_verifiers(settings.identity)
    connect = replace(request.connect, auth_token=Secret(token))
    try:
        outcome = asyncio.run(registry.verify(replace(request, connect=connect), now=now))
    except UpstreamError as exc:
        raise InputFault(f"cannot verify the token: {exc}", code="upstream_unavailable",
                         file=str(path), hint="serve would deny this connect "
                         "(upstream_unavailable) until the issuer or STS answers") from None
    return Asked("token", str(path), True, outcome, _payload(token))


def from_claims(path: Path, settings: Settings | None, now: datetime) -> Asked:
    """The identity the claims in ``path`` stand for, unverified: an OIDC token's payload
    (by its ``iss``) or a GetCallerIdentity answer (``Arn``, ``Account``, ``UserId``)."""
    from authsvc.identity.registry import expired

    claims = _json_object(read_input(path, "claims"), path)
    aws = all(key in claims for key in _AWS_KEYS)
    if aws:
        outcome = _aws(claims, settings, path)
    elif isinstance(claims.get("iss"), str):
        outcome = _oidc(claims, settings, path, now)
    else:
        raise InputFault("claims are neither an OIDC token payload nor an AWS caller "
                         "identity", code="claims_unrecognised", file=str(path),
                         hint='a token payload has "iss" and "sub"; `aws sts '
                              'get-caller-identity` prints "UserId", "Account" and "Arn"')
    # As the verifier registry rules for a token: expired within the issuer's leeway.
    outcome = expired(outcome, now, f"exp is not after {now.isoformat()}; pass --at to ask "
                      "about another time") or outcome
    return Asked("claims", str(path), False, outcome, {} if aws else claims)


def identity_record(identity: Identity) -> dict[str, Any]:
    """An identity as the report shows it (attributes are claims, never credentials)."""
    return {"source": str(identity.source), "principal": identity.principal,
            "subject": identity.subject, "issuer": identity.issuer,
            "expires_at": identity.expires_at.isoformat() if identity.expires_at else None,
            "attributes": {key: list(value) if isinstance(value, tuple) else value
                           for key, value in sorted(identity.attributes.items())}}


def _payload(token: str) -> Mapping[str, Any]:
    """The claims of a JWT as written (for the report only; the verifier has decided)."""
    from authsvc.identity import jws

    parsed = jws.parse(token, max_bytes=len(token))
    return {} if isinstance(parsed, Deny) else parsed.claims


def _json_object(text: str, path: Path) -> dict[str, Any]:
    if _COMPACT_JWS.fullmatch(text.strip()):
        raise InputFault("this is a token, not its claims", code="claims_is_token",
                         file=str(path), hint="pass it with --token FILE -c SETTINGS to verify "
                         "it as serve does; --claims takes its decoded payload (JSON)")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        line, column = getattr(exc, "lineno", 0), getattr(exc, "colno", 0)
        raise InputFault("claims file is not JSON", code="claims_invalid", file=str(path),
                         line=line, column=column,
                         hint="a JSON object, e.g. a token's decoded payload") from None
    if not isinstance(value, dict):
        raise InputFault("claims file is not a JSON object", code="claims_invalid",
                         file=str(path))
    return value


def _aws(claims: Mapping[str, Any], settings: Settings | None, path: Path) -> Identity | Deny:
    from authsvc.identity.aws_iam import caller_identity
    from authsvc.identity.sts import caller_of

    values = [claims[key] for key in _AWS_KEYS]
    if not all(isinstance(value, str) for value in values):
        raise InputFault("Arn, Account and UserId must be strings", code="claims_invalid",
                         file=str(path))
    caller = caller_of(*values)
    if isinstance(caller, Deny):
        return caller
    aws = settings.identity.aws_iam if settings is not None else None
    return caller_identity(caller, DEFAULT_STS_HOST,
                           session_name=aws is not None and aws.session_name,
                           federated_users=aws is not None and aws.federated_users)


def _oidc(claims: Mapping[str, Any], settings: Settings | None, path: Path,
          now: datetime) -> Identity | Deny:
    """Everything the verifier checks but the signature (and the header ``typ``, which a
    payload does not carry): the issuer's claim rules at ``now``, then its claim mapping."""
    from authsvc.identity.claims import check_claims
    from authsvc.identity.oidc import claims_identity
    from authsvc.verifiers import build_oidc

    if settings is None:
        raise InputFault("OIDC claims need the deployment's settings", code="settings_required",
                         file=str(path), hint="the issuer's block in the settings says which "
                         "claims become attributes (claims, groups_claim, provider) and which "
                         "audiences and lifetimes it accepts: pass -c SETTINGS")
    if not settings.identity.oidc.issuers:
        return Deny(DenyReason.ISSUER_UNKNOWN, "the settings configure no OIDC issuer")
    issuer = build_oidc(settings.identity.oidc).issuer(claims["iss"])
    if issuer is None:
        return Deny(DenyReason.ISSUER_UNKNOWN, f"iss {claims['iss'][:80]!r} is not configured")
    refused = check_claims(claims, None, replace(issuer.rules, types=frozenset()), now)
    return refused if refused is not None else claims_identity(claims, issuer)
