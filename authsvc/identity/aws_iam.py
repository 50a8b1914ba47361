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
and, only when enabled, the caller-chosen ``session_name``. Federated users are refused
(``sts_caller_not_allowed``) unless enabled: their ARN and ``UserId`` (``ACCT:NAME``) carry
a name picked by whichever IAM user called ``sts:GetFederationToken``, so they identify no
one by themselves, like role session names. GetCallerIdentity proves who signed at
``X-Amz-Date``, not how long their credentials last, so the identity carries no expiry: the
grant's TTL bounds the minted JWT.

With no ``regions`` list the client picks the STS host; one whose name does not resolve is
then refused as ``sts_host_not_allowed`` rather than reported as an STS outage. A host the
deployment configured (``regions``, ``endpoints``) that does not resolve stays a fault.
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
from authsvc.identity.aws_arn import ArnKind, canonical_arn, unique_id
from authsvc.identity.aws_proof import ProofRules, StsCall, rebuild
from authsvc.identity.aws_token import DEFAULT_MAX_TOKEN_BYTES, decode_proof, is_aws_token
from authsvc.identity.oidc import bearer_token
from authsvc.identity.sts import Caller, StsHostUnknown, StsPoster, read_answer


class AwsIamVerifier:
    """Verifies ``aws-sts-v1.`` tokens by asking STS who signed them."""

    source = IdentitySource.AWS_IAM

    def __init__(self, rules: ProofRules, sts: StsPoster, *,
                 max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
                 session_name: bool = False, federated_users: bool = False) -> None:
        self._rules = rules
        self._sts = sts
        self._max_bytes = max_token_bytes
        self._session_name = session_name
        self._federated_users = federated_users

    async def verify(self, request: ConnectRequest, *, now: datetime) -> Identity | Deny | None:
        """The identity STS vouches for, a Deny, or None when the token is not ours."""
        token = bearer_token(request)
        if token is None or not is_aws_token(token):
            return None
        proof = decode_proof(token, max_bytes=self._max_bytes)
        if isinstance(proof, Deny):
            return proof
        call = rebuild(proof, self._rules, nonce=request.client.nonce, now=now,
                       max_token_bytes=self._max_bytes)
        if isinstance(call, Deny):
            return call
        try:
            answer = await self._sts.post(call)  # UpstreamError: fault, fail closed
        except StsHostUnknown:
            if call.host_configured:
                raise
            return Deny(DenyReason.STS_HOST_NOT_ALLOWED, f"{call.host} does not resolve and "
                        f"no regions are configured (key {call.key_fingerprint})")
        caller = read_answer(answer, call.host)
        if isinstance(caller, Deny):
            return Deny(caller.reason, f"{caller.detail} (key {call.key_fingerprint})")
        return self._identity(caller, call)

    def _identity(self, caller: Caller, call: StsCall) -> Identity | Deny:
        return caller_identity(caller, call.host, session_name=self._session_name,
                               federated_users=self._federated_users)


def caller_identity(caller: Caller, host: str, *, session_name: bool = False,
                    federated_users: bool = False) -> Identity | Deny:
    """The identity a GetCallerIdentity answer from ``host`` stands for: the ARN
    canonicalised (an assumed role becomes its role), its account and unique id; the session
    name only when ``session_name`` trusts it; a federated user only when
    ``federated_users`` accepts them."""
    arn = canonical_arn(caller.arn)
    if arn is None or arn.account != caller.account:
        return Deny(DenyReason.STS_RESPONSE_INVALID,
                    f"STS answered an ARN we do not accept: {caller.arn[:200]!r}")
    if arn.kind is ArnKind.FEDERATED_USER and not federated_users:
        return Deny(DenyReason.STS_CALLER_NOT_ALLOWED,
                    f"federated user {arn.arn[:200]!r}: its name is chosen by the caller of "
                    "GetFederationToken (federated_users is off)")
    subject = unique_id(caller.user_id, arn.kind)
    attributes: dict[str, AttributeValue] = {
        "arn": arn.arn, "account": arn.account, "user_id": subject,
        "arn_kind": arn.kind.value}
    if session_name and arn.session_name:
        attributes["session_name"] = arn.session_name
    return Identity(source=IdentitySource.AWS_IAM, principal=f"aws:{arn.arn}",
                    subject=subject, issuer=host, attributes=attributes)
