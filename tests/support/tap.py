"""What nats-server tells authsvc, as a test sees it.

``async with request_tap(deployment) as requests`` subscribes to the callout subject on the
service's own login, beside authsvc's queue group (so authsvc still answers every request),
and collects each authorization request's ``nats`` claims by CONNECT name, sealed requests
opened with the service's xkey. Nothing is verified: it is a window, not a decoder.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from authsvc.natsconf.keystore import KeyStore
from authsvc.protocol import jwt
from authsvc.server import connect as service_connect
from authsvc.settings import load_settings
from tests.support.deploy import Deployment
from tests.support.probe import CALLOUT_SUBJECT


@contextlib.asynccontextmanager
async def request_tap(d: Deployment) -> AsyncIterator[dict[str, dict[str, Any]]]:
    """The ``nats`` claims of every request sent while open, by CONNECT name (filled in
    as requests arrive)."""
    settings = load_settings(d.settings_file)
    keys = KeyStore(settings.keys.dir)
    nc = await service_connect(settings, keys)
    seen: dict[str, dict[str, Any]] = {}

    async def on_request(msg: Any) -> None:
        data = msg.data
        if not data.startswith(b"eyJ"):
            data = keys.xkey().open(data, msg.headers["Nats-Server-Xkey"])
        _, claims = jwt.decode_unverified(data.decode())
        seen[claims["nats"]["connect_opts"].get("name", "")] = claims["nats"]

    await nc.subscribe(CALLOUT_SUBJECT, cb=on_request)
    await nc.flush()
    try:
        yield seen
    finally:
        await nc.close()
