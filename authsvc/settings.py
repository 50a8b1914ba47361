"""All configuration, read once at startup by the composition root.

Sources, highest precedence first: keyword arguments (the CLI), environment variables
(``AUTHSVC_`` prefix, ``__`` between levels, e.g. ``AUTHSVC_NATS__URL``), the YAML config
file (``--config``), then defaults. A bad value fails startup with an error naming the field
and where it came from. Secrets (key seeds) live in files referenced here, never in values.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from authsvc.errors import ConfigError
from authsvc.settings_env import find_json_problem
from authsvc.settings_identity import Duration, IdentitySettings

ENV_PREFIX = "AUTHSVC_"


def _empty_is_none(value: object) -> object:
    """``AUTHSVC_AUDIT__SIGNING_KEY=`` (or ``""`` in the file) means "not set", the documented
    default; pydantic would otherwise read it as ``Path(".")``, the working directory."""
    return None if value == "" else value


_OptionalPath = Annotated[Path | None, BeforeValidator(_empty_is_none)]

# host:port, the host a [bracketed] IPv6 address, a name, an IPv4 address or empty (all).
_LISTEN = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):([0-9]{1,5})")


def _check_port(port: int | None) -> None:
    if port is not None and not 1 <= port <= 65535:
        raise ValueError("the port must be a number from 1 to 65535")


def _nats_url(value: str) -> str:
    """One nats-server URL. nats-config and the client read its port with urlparse, which
    raises (quoting the value) on a bad one: check it here, where the error names the field."""
    if "," in value:
        raise ValueError("must be a single nats://host:port; a comma-separated list of "
                         "servers is not supported")
    try:
        parsed = urlparse(value)
        scheme, hostname = parsed.scheme, parsed.hostname
    except ValueError:  # e.g. an unclosed [ around an IPv6 host
        scheme, hostname = "", None
    if scheme not in {"nats", "tls"} or not hostname:
        raise ValueError("must look like nats://host:port")
    try:
        port = parsed.port
    except ValueError:  # not a number, or outside 0..65535
        port = 0
    _check_port(port)
    return value


class _Section(BaseModel):
    # allow_inf_nan: "inf" would pass every gt/ge bound and mean "never" (or "forever").
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class NatsSettings(_Section):
    url: str = Field("nats://127.0.0.1:4222", description="nats-server the service connects to")
    mode: Literal["config", "operator"] = Field(
        "config", description="config (accounts in nats-server.conf) or operator (JWT accounts)")
    callout_account: str = Field("AUTH", pattern=r"^[A-Za-z0-9_-]{1,64}$",
                                 description="account the callout runs in; users are never "
                                 "placed here")
    queue_group: str = Field("authsvc", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
                             description="instances share requests in this group")
    auth_timeout: float = Field(2.0, gt=0, le=60, description="nats-server authorization.timeout"
                                " written by nats-config (seconds)")
    startup_timeout: float = Field(30.0, gt=0, description="give up (exit 69) when nats-server "
                                   "cannot be reached at startup within this many seconds")
    tls_ca: _OptionalPath = Field(None, description="CA certificate(s) (PEM) that nats-server's "
                                "certificate must chain to; default: the system's trusted CAs")
    tls_cert: _OptionalPath = Field(None, description="client certificate (PEM) the service "
                                  "presents, for a nats-server with tls verify")
    tls_key: _OptionalPath = Field(None, description="private key (PEM) of tls_cert")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _nats_url(value)

    @model_validator(mode="after")
    def _client_certificate(self) -> NatsSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self

    @property
    def tls(self) -> bool:
        """Whether the service connects with TLS: a tls:// URL or any tls_* setting."""
        return urlparse(self.url).scheme == "tls" or any(
            path is not None for path in (self.tls_ca, self.tls_cert, self.tls_key))


class KeySettings(_Section):
    dir: Path = Field(Path("keys"), description="key directory made by `authsvc keys init`")
    xkey: bool = Field(True, description="encrypt requests and responses (xkey); when on, "
                       "plaintext requests are refused")


class PolicySettings(_Section):
    paths: list[Path] = Field(min_length=1, description="policy files or directories")
    watch_interval: float = Field(2.0, ge=0, description="seconds between checks of the "
                                  "policy files for changes (hot reload); 0 = reload on "
                                  "SIGHUP only")
    test_paths: list[Path] = Field(default_factory=list, description="PolicyTest files or "
                                   "directories whose cases a policy must pass, at startup and "
                                   "on reload")
    reject_warnings: bool = Field(False, description="refuse a policy with lint warnings, at "
                                  "startup and on reload")


class AuditJetStreamSettings(_Section):
    """The JetStream sink (``audit.sink: jetstream | both``); see docs/audit.md."""

    url: str = Field("", description="nats-server for audit records; empty = nats.url")
    ack_timeout: float = Field(1.0, gt=0, le=30, description="seconds an allow waits for "
                               "JetStream's acknowledgement before the local spool takes over")
    retry_interval: float = Field(1.0, gt=0, le=300, description="seconds between attempts "
                                  "to reach JetStream again while spooling")
    spool_max_bytes: int = Field(64 * 1024 * 1024, ge=4096, description="sink jetstream: "
                                 "records not yet in JetStream may take this much disk; then "
                                 "new connections are denied (audit_unavailable)")
    spool_max_age: Duration = Field(timedelta(minutes=15), ge=timedelta(0), description=
                                     "sink jetstream: deny new connections once JetStream has "
                                     "been unreachable this long; 0 = no limit")
    create_stream: bool = Field(True, description="create the stream with the documented "
                                "settings when it is missing")
    replicas: int = Field(1, ge=1, le=5, description="stream replicas when it is created")
    # nats-server refuses either below 100 ms (server/stream.go checkStreamCfg).
    max_age: Duration = Field(timedelta(days=400), ge=timedelta(milliseconds=100),
                               description="stream retention when it is created")
    duplicate_window: Duration = Field(timedelta(minutes=10), ge=timedelta(milliseconds=100),
                                        validate_default=True,  # checked against max_age
                                        description="stream deduplication window; at most "
                                        "max_age")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _nats_url(value) if value else value

    @field_validator("duplicate_window")
    @classmethod
    def _window_within_retention(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        # nats-server refuses such a stream ("duplicates window can not be larger then max
        # age", server/stream.go checkStreamCfg): say so at startup, naming the setting.
        max_age = info.data.get("max_age")
        if max_age is not None and value > max_age:
            raise ValueError("must not be longer than max_age (nats-server refuses the "
                             "stream)")
        return value


class AuditSettings(_Section):
    sink: Literal["file", "jetstream", "both"] = Field(
        "file", description="file: audit.path only; jetstream: the stream, audit.path a "
        "bounded spool; both: the full file and the stream")
    jetstream: AuditJetStreamSettings = Field(default_factory=AuditJetStreamSettings)
    path: Path = Field(Path("audit.jsonl"), description="append-only JSON lines audit log")
    fsync: bool = Field(True, description="fsync every record before answering")
    instance: str = Field("", max_length=128, description="this writer's name in every record "
                          "and checkpoint; empty = the host name")
    signing_key: _OptionalPath = Field(None, description="nkey seed that signs checkpoints; "
                                     "empty = audit.nk in keys.dir (made by `keys init`)")
    checkpoint_interval: float = Field(300.0, ge=0, description="seconds between signed "
                                       "checkpoints (also written at rotation and stop); 0 = "
                                       "only then")
    rotate_bytes: int = Field(256 * 1024 * 1024, ge=0, description="start a new file at this "
                              "size; 0 = never")
    rotate_age: Duration = Field(timedelta(days=1), ge=timedelta(0), description="start a "
                                  "new file after this long; 0 = never")


class MetricsSettings(_Section):
    listen: str = Field("", description="host:port for Prometheus /metrics (no authentication: "
                        "bind to loopback or a private interface), e.g. 127.0.0.1:9464; "
                        "empty = off")

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        if not value:
            return value
        match = _LISTEN.fullmatch(value)
        if match is None:
            raise ValueError("must be host:port (e.g. 127.0.0.1:9464 or [::1]:9464), or empty "
                             "for off")
        _check_port(int(match[2]))
        return value


class ServiceSettings(_Section):
    max_concurrency: int = Field(256, ge=1, le=100_000)
    queue_timeout: float = Field(0.5, gt=0, description="seconds a request may wait for a "
                                 "slot before it is denied as overloaded")
    invalid_request: Literal["reply", "drop"] = Field(
        "reply", description="answer a bad request with a signed error (reply) or not at all "
        "(drop: the client waits out the server's auth timeout)")
    allowed_servers: list[Annotated[str, Field(pattern=r"^N[A-Z2-7]{55}$")]] = Field(
        default_factory=list,
        description="server public keys (N...) allowed to send requests; empty = any")
    max_request_bytes: int = Field(64 * 1024, ge=1024, le=1 << 20)
    max_field_bytes: int = Field(16 * 1024, ge=256, le=1 << 20)
    request_leeway: float = Field(2.0, ge=0, le=300)
    shutdown_grace: float = Field(10.0, ge=0)




class MintingSettings(_Section):
    max_ttl: Duration = Field(timedelta(hours=12), gt=timedelta(0),
                              description="ceiling on any minted JWT lifetime (e.g. 12h)")
    jitter: Duration = Field(timedelta(seconds=30), ge=timedelta(0),
                             description="up to this much (at most 10% of the lifetime) is taken "
                             "off each exp at random, to spread a fleet's reconnects")


class Settings(BaseSettings):
    """authsvc settings; every field is documented in docs/configuration.md."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True)

    nats: NatsSettings = Field(default_factory=NatsSettings)
    keys: KeySettings = Field(default_factory=KeySettings)
    policy: PolicySettings
    audit: AuditSettings = Field(default_factory=AuditSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    minting: MintingSettings = Field(default_factory=MintingSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"],
                         BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v)] = "INFO"

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if _CONFIG_FILE[0] is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=_CONFIG_FILE[0]))
        return tuple(sources)


# The YAML file for the settings being loaded; set only inside load_settings.
_CONFIG_FILE: list[Path | None] = [None]


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load and validate settings; relative paths in the file resolve against its folder."""
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file {config_file} does not exist")
    _reject_unknown_environment()
    _CONFIG_FILE[0] = config_file
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, config_file)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {config_file} is not valid YAML: {exc}") from None
    except SettingsError as exc:
        # e.g. a list-valued variable that is not JSON; name it, never echo the value.
        problem = find_json_problem(Settings, os.environ, prefix=ENV_PREFIX)
        raise ConfigError(problem.message() if problem is not None
                          else f"invalid AUTHSVC_* environment variable: {exc}") from None
    finally:
        _CONFIG_FILE[0] = None
    return _resolve_paths(settings, config_file.parent if config_file else Path.cwd())


def _reject_unknown_environment() -> None:
    """A misspelt AUTHSVC_* variable would otherwise be ignored without a word."""
    known = {name.upper() for name in Settings.model_fields}
    for key in os.environ:
        if key.startswith(ENV_PREFIX):
            top = key[len(ENV_PREFIX):].split("__", 1)[0]
            if top not in known:
                raise ConfigError(f"unknown environment variable {key}; known sections: "
                                  + ", ".join(f"{ENV_PREFIX}{k}" for k in sorted(known)))


def _describe(exc: ValidationError, config_file: Path | None) -> str:
    origin = f" (config file {config_file}, or AUTHSVC_* environment)" if config_file else \
        " (AUTHSVC_* environment or command line)"
    lines = [f"invalid settings{origin}:"]
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        # Never echo the offending value: it may be a secret.
        lines.append(f"  {field}: {error['msg']}")
    return "\n".join(lines)


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    def resolve(path: Path) -> Path:
        return path if path.is_absolute() else (base / path)

    nats, oidc = settings.nats, settings.identity.oidc
    issuers = [issuer.model_copy(update={"ca_file": resolve(issuer.ca_file)})
               if issuer.ca_file is not None else issuer for issuer in oidc.issuers]
    return settings.model_copy(update={
        "identity": settings.identity.model_copy(update={
            "oidc": oidc.model_copy(update={"issuers": issuers})}),
        "nats": nats.model_copy(update={
            name: resolve(path) for name, path in (
                ("tls_ca", nats.tls_ca), ("tls_cert", nats.tls_cert), ("tls_key", nats.tls_key))
            if path is not None}),
        "keys": settings.keys.model_copy(update={"dir": resolve(settings.keys.dir)}),
        "policy": settings.policy.model_copy(
            update={"paths": [resolve(p) for p in settings.policy.paths],
                    "test_paths": [resolve(p) for p in settings.policy.test_paths]}),
        "audit": settings.audit.model_copy(update={
            "path": resolve(settings.audit.path),
            "signing_key": resolve(settings.audit.signing_key)
            if settings.audit.signing_key else None}),
    })
