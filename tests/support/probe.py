"""A way to put crafted authorization requests in front of a running authsvc, via nats-server.

No client can publish them directly. nats-server adds ``deny pub $SYS.REQ.USER.AUTH`` to
every client it authorizes into the callout account, the service included, whatever its
own permissions say (server/auth.go: ``mergeDenyPermissions(pub, []string{AuthCalloutSubject})``;
nats-server#7030). ``test_callout_account_clients_cannot_publish_requests`` in
tests/integration/test_e2e.py asserts this.

So a deployment built with ``with_probe=True`` adds a test-only account, PROBE. PROBE exports a
stream on the callout subject, and the callout account imports it. A PROBE user publishes
crafted requests, and authsvc receives them on its real subscription. authsvc sends its
reply to the reply subject in the callout account. The service identity, which may
subscribe to ``_INBOX.>`` there, receives the replies. The probe user needs no callout: in config
mode it is an ``auth_users`` entry, and in operator mode PROBE has no external authorization.
Nothing else in the deployment changes.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import nats

from authsvc.natsconf.operator import UNLIMITED_ACCOUNT
from authsvc.protocol import jwt
from authsvc.protocol.nkeys import KeyPair, Prefix

CALLOUT_SUBJECT = "$SYS.REQ.USER.AUTH"
PROBE_ACCOUNT = "PROBE"


class Probe:
    """The PROBE account's keys; ``patch`` edits a generated server config to add it."""

    def __init__(self) -> None:
        self.user = KeyPair.create(Prefix.USER)
        self.account = KeyPair.create(Prefix.ACCOUNT)  # operator mode only

    def patch(self, text: str, *, mode: str, callout_account: str, callout_key: str,
              operator: KeyPair | None, now: datetime) -> str:
        """``text``: the generated config (comment lines, then one JSON object)."""
        start = text.index("{")
        body = json.loads(text[start:])
        if mode == "config":
            self._patch_config(body, callout_account)
        else:
            assert operator is not None
            self._patch_operator(body, callout_key, operator, now)
        return text[:start] + json.dumps(body, indent=2) + "\n"

    def _patch_config(self, body: dict[str, Any], callout_account: str) -> None:
        body["accounts"][PROBE_ACCOUNT] = {"users": [{"nkey": self.user.public_key}],
                                           "exports": [{"stream": CALLOUT_SUBJECT}]}
        body["accounts"][callout_account].setdefault("imports", []).append(
            {"stream": {"account": PROBE_ACCOUNT, "subject": CALLOUT_SUBJECT}})
        body["authorization"]["auth_callout"]["auth_users"].append(self.user.public_key)

    def _patch_operator(self, body: dict[str, Any], callout_key: str, operator: KeyPair,
                        now: datetime) -> None:
        preload = body["resolver_preload"]
        _, callout = jwt.decode_unverified(preload[callout_key])
        callout["nats"].setdefault("imports", []).append(
            {"name": "probe", "subject": CALLOUT_SUBJECT, "account": self.account.public_key,
             "type": "stream"})
        callout.pop("jti", None)
        preload[callout_key] = jwt.encode(callout, operator)
        preload[self.account.public_key] = jwt.encode({
            "sub": self.account.public_key, "name": PROBE_ACCOUNT, "iat": int(now.timestamp()),
            "nats": {"limits": dict(UNLIMITED_ACCOUNT), "type": "account", "version": 2,
                     "exports": [{"name": "probe", "subject": CALLOUT_SUBJECT,
                                  "type": "stream"}]}}, operator)

    async def connect(self, url: str, mode: str, **options: Any) -> Any:
        """A PROBE client; it may publish anything, the callout subject included."""
        common = {"allow_reconnect": False, "connect_timeout": 5, **options}
        if mode == "config":
            return await nats.connect(url, nkeys_seed_str=self.user.seed, **common)
        token = jwt.encode({"sub": self.user.public_key, "name": "probe", "nats": {
            "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2}},
            self.account).encode()
        return await nats.connect(
            url, user_jwt_cb=lambda: token,
            signature_cb=lambda nonce: base64.b64encode(self.user.sign(nonce.encode())),
            **common)
