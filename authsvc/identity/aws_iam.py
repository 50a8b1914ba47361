"""AWS IAM identities: a signed STS ``GetCallerIdentity`` request, checked, rebuilt, replayed.

The client (a Lambda function, an ECS task, anything holding IAM credentials) signs the
request with SigV4 and sends it as an ``aws-sts-v1.`` token (``aws_token``) in CONNECT
``auth_token`` or ``pass``. In order of cost, so that nothing reaches STS unless it is a
well-formed proof for this deployment:

1. the prefix routes the token here (before the JWT verifier); size and structure;
2. ``aws_proof.rebuild``: host allow-list, fixed body, allow-listed signed headers, the
   server-ID header, the connection nonce, ``X-Amz-Date`` freshness (no I/O);
3. one POST to STS (``sts.HttpxSts``), which checks the signature;
4. strict reading of the answer and canonicalisation of the ARN (``aws_arn``).

The identity is ``aws:<canonical ARN>``; its subject is the unique id (``AROA...``,
``AIDA...``), its attributes ``arn`` and ``account`` (what ``match.aws`` reads), ``user_id``
and, only when enabled, the caller-chosen ``session_name``. GetCallerIdentity proves who
signed at ``X-Amz-Date``, not how long their credentials last, so the identity carries no
expiry: the grant's TTL bounds the minted JWT.
"""

from __future__ import annotations

from datetime import datetime

from authsvc.domain import (
    AttributeValue,
    ConnectRequest,
    Deny,
    DenyReason,
    Identity,
    IdentitySource,
)
from authsvc.identity.aws_arn import canonical_arn, unique_id
from authsvc.identity.aws_proof import ProofRules, StsCall, rebuild
from authsvc.identity.aws_token import DEFAULT_MAX_TOKEN_BYTES, decode_proof, is_aws_token
from authsvc.identity.oidc import bearer_token
from authsvc.identity.sts import Caller, StsPoster, read_answer


class AwsIamVerifier:
    """Verifies ``aws-sts-v1.`` tokens by asking STS who signed them."""

    source = IdentitySource.AWS_IAM

    def __init__(self, rules: ProofRules, sts: StsPoster, *,
                 max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
                 session_name: bool = False) -> None:
        self._rules = rules
        self._sts = sts
        self._max_bytes = max_token_bytes
        self._session_name = session_name

    async def verify(self, request: ConnectRequest, *, now: datetime) -> Identity | Deny | None:
        """The identity STS vouches for, a Deny, or None when the token is not ours."""
        token = bearer_token(request)
        if token is None or not is_aws_token(token):
            return None
        proof = decode_proof(token, max_bytes=self._max_bytes)
        if isinstance(proof, Deny):
            return proof
        call = rebuild(proof, self._rules, nonce=request.client.nonce, now=now)
        if isinstance(call, Deny):
            return call
        answer = await self._sts.post(call)  # UpstreamError: fault, fail closed
        caller = read_answer(answer, call.host)
        if isinstance(caller, Deny):
            return Deny(caller.reason, f"{caller.detail} (key {call.key_fingerprint})")
        return self._identity(caller, call)

    def _identity(self, caller: Caller, call: StsCall) -> Identity | Deny:
        return caller_identity(caller, call.host, session_name=self._session_name)


def caller_identity(caller: Caller, host: str, *, session_name: bool = False
                    ) -> Identity | Deny:
    """The identity a GetCallerIdentity answer from ``host`` stands for: the ARN
    canonicalised (an assumed role becomes its role), its account and unique id; the session
    name only when ``session_name`` trusts it."""
    arn = canonical_arn(caller.arn)
    if arn is None or arn.account != caller.account:
        return Deny(DenyReason.STS_RESPONSE_INVALID,
                    f"STS answered an ARN we do not accept: {caller.arn[:200]!r}")
    subject = unique_id(caller.user_id, arn.kind)
    attributes: dict[str, AttributeValue] = {
        "arn": arn.arn, "account": arn.account, "user_id": subject,
        "arn_kind": arn.kind.value}
    if session_name and arn.session_name:
        attributes["session_name"] = arn.session_name
    return Identity(source=IdentitySource.AWS_IAM, principal=f"aws:{arn.arn}",
                    subject=subject, issuer=host, attributes=attributes)
