"""Strictly typed reading of the ``nats`` object of an ``authorization_request``.

JSON names follow nats-io/jwt v2 ``authorization_claims.go`` (``ServerID``,
``ClientInformation``, ``ConnectOptions``, ``ClientTLS``). Go decodes ``null`` into a zero
value, so ``null`` and absence both read as the default; any other wrong JSON type is
``REQUEST_MALFORMED``, and any string longer than the field cap is ``REQUEST_TOO_LARGE``.
Members we do not model (``tags`` of client_info, ``mqtt_id``, ``server_name``...) are ignored,
as Go ignores unknown members.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from authsvc.domain import (
    ClientInfo,
    ClientTls,
    ConnectOptions,
    DenyReason,
    Secret,
    ServerInfo,
)

__all__ = [
    "FieldError",
    "Fields",
    "epoch",
    "read_client",
    "read_connect",
    "read_server",
    "read_tls",
]

# Unix seconds accepted as a timestamp: 0001..9999 would overflow some platforms' fromtimestamp.
_MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z


class FieldError(Exception):
    """One request field is unusable; ``reason`` is MALFORMED or TOO_LARGE."""

    def __init__(self, reason: DenyReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Fields:
    """Typed accessors over one JSON object, naming the path in every error."""

    __slots__ = ("_cap", "_data", "_path")

    def __init__(self, data: Mapping[str, Any], path: str, cap: int) -> None:
        self._data = data
        self._path = path
        self._cap = cap

    def _where(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def _checked_text(self, value: Any, key: str) -> str:
        if type(value) is not str:
            raise FieldError(DenyReason.REQUEST_MALFORMED, f"{self._where(key)} must be a string")
        # Characters never outnumber UTF-8 bytes, so only encode when it could matter.
        if len(value) * 4 > self._cap and (
            len(value) > self._cap or len(value.encode("utf-8", "surrogatepass")) > self._cap
        ):
            raise FieldError(DenyReason.REQUEST_TOO_LARGE,
                             f"{self._where(key)} exceeds {self._cap} bytes")
        return value

    def text(self, key: str) -> str:
        # Runs ~25 times per connect: the error path alone builds the field's path.
        value = self._data.get(key)
        if value is None:
            return ""
        if type(value) is str and len(value) * 4 <= self._cap:
            return value
        return self._checked_text(value, key)

    def secret(self, key: str) -> Secret | None:
        value = self.text(key)
        return Secret(value) if value else None

    def integer(self, key: str) -> int:
        """A non-negative JSON integer (Go ``uint64``/``int`` fields); bools are refused."""
        value = self._data.get(key)
        if value is None:
            return 0
        if type(value) is not int or value < 0:
            raise FieldError(
                DenyReason.REQUEST_MALFORMED, f"{self._where(key)} must be a non-negative integer"
            )
        return value

    def _list(self, value: Any, key: str) -> list[Any]:
        if value is None:
            return []
        if type(value) is not list:
            raise FieldError(DenyReason.REQUEST_MALFORMED, f"{self._where(key)} must be a list")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        values = self._list(self._data.get(key), key)
        return tuple(self._checked_text(v, key) for v in values) if values else ()

    def text_lists(self, key: str) -> tuple[tuple[str, ...], ...]:
        return tuple(
            tuple(self._checked_text(v, key) for v in self._list(inner, key))
            for inner in self._list(self._data.get(key), key)
        )

    def object(self, key: str) -> Fields | None:
        value = self._data.get(key)
        if value is None:
            return None
        if type(value) is not dict:
            raise FieldError(DenyReason.REQUEST_MALFORMED, f"{self._where(key)} must be an object")
        return Fields(value, self._where(key), self._cap)


def epoch(value: Any, where: str) -> datetime:
    """A JWT NumericDate (whole unix seconds, as jwt v2 writes them) as an aware datetime."""
    if type(value) is not int or not 0 <= value <= _MAX_EPOCH:
        raise FieldError(DenyReason.REQUEST_MALFORMED, f"{where} must be unix seconds")
    return datetime.fromtimestamp(value, tz=UTC)


def read_server(f: Fields) -> ServerInfo:
    return ServerInfo(
        id=f.text("id"),
        name=f.text("name"),
        host=f.text("host"),
        version=f.text("version"),
        cluster=f.text("cluster"),
        tags=f.texts("tags"),
        xkey=f.text("xkey"),
    )


def read_client(f: Fields | None) -> ClientInfo:
    if f is None:
        return ClientInfo()
    return ClientInfo(
        host=f.text("host"),
        cid=f.integer("id"),
        user=f.text("user"),
        name=f.text("name"),
        kind=f.text("kind"),
        type=f.text("type"),
        nonce=f.text("nonce"),
    )


def read_connect(f: Fields | None) -> ConnectOptions:
    if f is None:
        return ConnectOptions()
    return ConnectOptions(
        jwt=f.text("jwt"),
        nkey=f.text("nkey"),
        sig=f.text("sig"),
        auth_token=f.secret("auth_token"),
        user=f.text("user"),
        password=f.secret("pass"),
        name=f.text("name"),
        lang=f.text("lang"),
        version=f.text("version"),
        protocol=f.integer("protocol"),
    )


def read_tls(f: Fields | None) -> ClientTls | None:
    if f is None:
        return None
    return ClientTls(
        version=f.text("version"),
        cipher=f.text("cipher"),
        certs=f.texts("certs"),
        verified_chains=f.text_lists("verified_chains"),
    )
