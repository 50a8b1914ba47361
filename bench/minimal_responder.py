"""A deliberately minimal auth-callout responder: the benchmark's fair baseline.

Same client library (nats-py), same concurrency model (a queue-group subscription on
``$SYS.REQ.USER.AUTH``, one asyncio task per message) and same JWT codec as authsvc, but **no
verification, policy or audit**: it reads ``user_nkey`` and ``server_id.id`` out of the request
payload without checking the signature and answers every request with a static grant.

Never deploy this: it admits anyone.
Run: ``python -m bench.minimal_responder --url ... --keys DIR``.
Prints ``ready`` on stdout once subscribed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
import time
from pathlib import Path
from typing import Any

import nats
from nats.aio.msg import Msg

from bench.keys import CurveKeyPair, KeyPair, encode_jwt, load_curve, load_keypair

CALLOUT_SUBJECT = "$SYS.REQ.USER.AUTH"
XKEY_HEADER = "Nats-Server-Xkey"  # server's public curve key on sealed requests
USER_TTL_S = 600
RESPONSE_TTL_S = 30  # as authsvc.protocol.response


def _payload(token: bytes) -> dict[str, Any]:
    """The claims of a compact JWT, signature ignored on purpose."""
    body = token.split(b".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4)))
    return claims


class MinimalResponder:
    """Signs a static grant for whatever user nkey the server asks about."""

    def __init__(self, issuer: KeyPair, curve: CurveKeyPair | None, account: str) -> None:
        """*issuer* signs user JWTs and responses; *curve* opens sealed requests."""
        self._issuer = issuer
        self._curve = curve
        self._account = account
        self._tasks: set[asyncio.Task[None]] = set()

    async def on_message(self, msg: Msg) -> None:
        """Subscription callback: hand the message to its own task and return at once."""
        task = asyncio.get_running_loop().create_task(self._handle(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def answer(self, request: bytes, server_xkey: str | None) -> bytes:
        """The authorization response for one request payload.

        Sealed requests are opened and answered sealed, as authsvc does
        (authsvc.protocol.response), so both pay the same xkey cost.
        """
        sealed = not request.startswith(b"eyJ")
        if sealed:
            if self._curve is None or server_xkey is None:
                raise ValueError("sealed request but no xkey to open it")
            request = self._curve.open(request, server_xkey)
        claims = _payload(request)["nats"]
        user_nkey = claims["user_nkey"]
        now = int(time.time())
        user_jwt = encode_jwt(
            {
                "aud": self._account,  # config mode: target account name
                "exp": now + USER_TTL_S,
                "iat": now,
                "name": user_nkey,
                "sub": user_nkey,
                "nats": {
                    "pub": {"allow": ["bench.>"]},
                    "sub": {"allow": ["_INBOX.>"]},
                    "subs": -1,
                    "data": -1,
                    "payload": -1,
                    "type": "user",
                    "version": 2,
                },
            },
            self._issuer,
        )
        response = encode_jwt(
            {
                "aud": claims["server_id"]["id"],
                "exp": now + RESPONSE_TTL_S,
                "iat": now,
                "sub": user_nkey,
                "nats": {"jwt": user_jwt, "type": "authorization_response", "version": 2},
            },
            self._issuer,
        ).encode()
        if sealed and self._curve is not None and server_xkey is not None:
            return self._curve.seal(response, server_xkey)
        return response

    async def _handle(self, msg: Msg) -> None:
        server_xkey = (msg.headers or {}).get(XKEY_HEADER)
        try:
            reply = self.answer(msg.data, server_xkey)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            # An empty reply is a fast deny (auth_callout.go); never stay silent.
            print(f"minimal responder: cannot answer: {exc}", flush=True)
            reply = b""
        await msg.respond(reply)


async def serve(url: str, keys_dir: Path, account: str, queue: str) -> None:
    """Connect as the service nkey user and answer callouts until SIGTERM/SIGINT."""
    curve_path = keys_dir / "xkey.xk"
    responder = MinimalResponder(
        issuer=load_keypair(keys_dir / "issuer.nk"),
        curve=load_curve(curve_path) if curve_path.exists() else None,
        account=account,
    )
    service_seed = (keys_dir / "service.nk").read_text().strip()
    nc = await nats.connect(url, nkeys_seed_str=service_seed, allow_reconnect=False)
    # Same pending limit as authsvc's transport: a burst must not be dropped by the client.
    await nc.subscribe(
        CALLOUT_SUBJECT, queue=queue, cb=responder.on_message, pending_msgs_limit=100_000
    )
    await nc.flush()
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await nc.drain()


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True, help="nats://127.0.0.1:PORT")
    parser.add_argument("--keys", required=True, type=Path, help="dir with issuer.nk, service.nk")
    parser.add_argument("--account", default="APP", help="target account for minted users")
    parser.add_argument("--queue", default="bench-minimal", help="queue group name")
    args = parser.parse_args()
    asyncio.run(serve(args.url, args.keys, args.account, args.queue))


if __name__ == "__main__":
    main()
