"""The client side of AWS IAM identities: ``aws-sts-v1.`` tokens from ambient credentials.

Needs the ``aws`` extra (``pip install 'authsvc[aws]'``, i.e. botocore). With nats-py::

    from authsvc.clients.aws import AwsIamToken

    auth = AwsIamToken(server_id="nats-prod")          # region from AWS_REGION, etc.
    nc = await nats.connect(url, **auth.connect_options())

``connect_options()`` gives nats-py a *callable* token, evaluated at every CONNECT, so each
connect and reconnect signs afresh with the current (refreshed) credentials. It also gives a
``signature_cb``: nats-py calls it with the server's nonce just before it asks for the token
(``Client._connect_command``), and sends the result as CONNECT ``sig``. That ``sig`` is what
makes nats-server forward the nonce to the callout; the nonce itself goes into the signed
``X-Authsvc-Nonce`` header, so the token is only good for this one connection. The ``sig``
is made with a throwaway key that proves nothing and is not checked: the binding is the
SigV4 signature over the nonce. When the server sends no nonce, the token is unbound.

The secret key never leaves the process; the token carries the session token, the
signature and the headers, and is valid for at most 15 minutes.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from authsvc.identity.aws_token import GET_CALLER_IDENTITY_BODY, encode_proof
from authsvc.protocol.nkeys import KeyPair, Prefix

try:
    from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
    from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
    from botocore.session import get_session  # type: ignore[import-untyped]
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("authsvc.clients.aws needs botocore: pip install 'authsvc[aws]'") from exc

SERVER_ID_HEADER = "X-Authsvc-Server-Id"
NONCE_HEADER = "X-Authsvc-Nonce"
MAX_TOKEN_BYTES = 8 * 1024  # authsvc's default identity.aws_iam.max_token_bytes


def sts_host(region: str | None) -> str:
    """The regional STS endpoint for ``region``; the global one when None."""
    if not region:
        return "sts.amazonaws.com"
    suffix = ".amazonaws.com.cn" if region.startswith("cn-") else ".amazonaws.com"
    return f"sts.{region}{suffix}"


def sign_token(credentials: Any, *, server_id: str, region: str | None = None,
               nonce: str | None = None, server_id_header: str = SERVER_ID_HEADER,
               nonce_header: str = NONCE_HEADER, now: datetime | None = None) -> str:
    """An ``aws-sts-v1.`` token: STS GetCallerIdentity signed with ``credentials``.

    ``credentials`` is botocore's (``access_key``, ``secret_key``, ``token``), e.g.
    ``session.get_credentials().get_frozen_credentials()``. ``now`` defaults to the clock.
    """
    host = sts_host(region)
    headers = {server_id_header: server_id}
    if nonce:
        headers[nonce_header] = nonce
    request = AWSRequest(method="POST", url=f"https://{host}/", data=GET_CALLER_IDENTITY_BODY,
                         headers=headers)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    request.context["timestamp"] = stamp
    request.headers["X-Amz-Date"] = stamp
    if credentials.token:
        request.headers["X-Amz-Security-Token"] = credentials.token
    auth = SigV4Auth(credentials, "sts", region or "us-east-1")
    signature = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)),
                               request)
    signed = auth.signed_headers(auth.headers_to_sign(request))
    request.headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={auth.scope(request)}, "
                                        f"SignedHeaders={signed}, Signature={signature}")
    return encode_proof(host, GET_CALLER_IDENTITY_BODY, dict(request.headers.items()))


class AwsIamToken:
    """Token source for nats-py: ``token=`` callable plus nonce-binding ``signature_cb``."""

    def __init__(self, *, server_id: str, region: str | None = None,
                 credentials: Callable[[], Any] | None = None,
                 server_id_header: str = SERVER_ID_HEADER, nonce_header: str = NONCE_HEADER,
                 max_bytes: int = MAX_TOKEN_BYTES) -> None:
        session = get_session()
        self._region = region if region is not None else session.get_config_variable("region")
        self._credentials = credentials or _ambient(session)
        self._server_id = server_id
        self._headers = (server_id_header, nonce_header)
        self._max_bytes = max_bytes
        self._throwaway = KeyPair.create(Prefix.USER)
        self._nonce: str | None = None

    def sign_nonce(self, nonce: str) -> bytes:
        """nats-py ``signature_cb``: remember the nonce for the token asked for next."""
        self._nonce = nonce
        return base64.b64encode(self._throwaway.sign(nonce.encode()))

    def token(self) -> str:
        """A fresh token, bound to the nonce seen since the last call if there was one."""
        nonce, self._nonce = self._nonce, None
        token = sign_token(self._credentials(), server_id=self._server_id, region=self._region,
                           nonce=nonce, server_id_header=self._headers[0],
                           nonce_header=self._headers[1])
        if len(token) > self._max_bytes:
            raise ValueError(f"AWS token is {len(token)} bytes, over {self._max_bytes}: raise "
                             "identity.aws_iam.max_token_bytes and max_control_line")
        return token

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments for ``nats.connect``."""
        return {"token": self.token, "signature_cb": self.sign_nonce}


def _ambient(session: Any) -> Callable[[], Any]:
    resolved = session.get_credentials()  # env, Lambda/ECS/IMDS; refreshed as they expire
    if resolved is None:
        raise ValueError("no AWS credentials found in the environment")

    def frozen() -> Any:
        return resolved.get_frozen_credentials()

    return frozen
