"""Settings: file, environment, precedence and errors that name the field."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from authsvc.errors import ConfigError
from authsvc.settings import ENV_PREFIX, Settings, load_settings
from authsvc.settings_env import EnvJsonProblem, find_json_problem


def write(tmp: Path, text: str) -> Path:
    path = tmp / "authsvc.yaml"
    path.write_text(text)
    return path


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "policy:\n  paths: [p.yaml]\n"))
    assert settings.nats.mode == "config"
    assert settings.keys.xkey is True
    assert settings.audit.fsync is True
    assert settings.policy.paths == [tmp_path / "p.yaml"]
    assert settings.keys.dir == tmp_path / "keys"


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHSVC_NATS__URL", "nats://10.0.0.1:4222")
    settings = load_settings(write(tmp_path, "nats:\n  url: nats://127.0.0.1:1\n"
                                             "policy:\n  paths: [p]\n"))
    assert settings.nats.url == "nats://10.0.0.1:4222"


@pytest.mark.parametrize(("text", "field"), [
    ("policy:\n  paths: [p]\nservice:\n  max_concurrency: 0\n", "service.max_concurrency"),
    ("policy:\n  paths: [p]\nnats:\n  url: http://x\n", "nats.url"),
    ("policy:\n  paths: [p]\nnats:\n  mode: cluster\n", "nats.mode"),
    ("policy:\n  paths: [p]\nbogus: 1\n", "bogus"),
    ("nats:\n  url: nats://h:1\n", "policy"),
])
def test_bad_setting_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    fields = [line.strip().split(":")[0] for line in str(info.value).splitlines()[1:]]
    assert field in fields


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_settings(tmp_path / "nope.yaml")


def test_durations_accept_the_policy_syntax(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "policy:\n  paths: [p]\nminting:\n"
                                             "  max_ttl: 2h\n  jitter: '45'\n"))
    assert settings.minting.max_ttl.total_seconds() == 7200
    assert settings.minting.jitter.total_seconds() == 45


def test_misspelt_environment_variable_is_refused(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHSVC_LOGLEVEL", "DEBUG")
    with pytest.raises(ConfigError):
        load_settings(write(tmp_path, "policy:\n  paths: [p]\n"))


def test_malformed_yaml_and_env_lists_are_config_errors(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError):
        load_settings(write(tmp_path, "policy: [unclosed\n"))
    monkeypatch.setenv("AUTHSVC_SERVICE__ALLOWED_SERVERS", "NABC")
    with pytest.raises(ConfigError):
        load_settings(write(tmp_path, "policy:\n  paths: [p]\n"))


def test_lower_case_log_level(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "policy:\n  paths: [p]\nlog_level: debug\n")
                         ).log_level == "DEBUG"


def test_every_duration_setting_takes_the_same_syntax(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(write(tmp_path, (
        "policy:\n  paths: [p]\naudit:\n  rotate_age: 12h\n  jetstream:\n"
        "    spool_max_age: 15m\n    max_age: 30d\n    duplicate_window: '120'\n")))
    assert settings.audit.rotate_age.total_seconds() == 12 * 3600
    assert settings.audit.jetstream.spool_max_age.total_seconds() == 15 * 60
    assert settings.audit.jetstream.max_age.total_seconds() == 30 * 86400
    assert settings.audit.jetstream.duplicate_window.total_seconds() == 120
    monkeypatch.setenv("AUTHSVC_AUDIT__ROTATE_AGE", "3600")
    monkeypatch.setenv("AUTHSVC_AUDIT__JETSTREAM__SPOOL_MAX_AGE", "0")
    settings = load_settings(write(tmp_path, "policy:\n  paths: [p]\n"))
    assert settings.audit.rotate_age.total_seconds() == 3600
    assert settings.audit.jetstream.spool_max_age.total_seconds() == 0


def test_a_zero_window_where_zero_makes_no_sense_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "policy:\n  paths: [p]\naudit:\n  jetstream:\n"
                                      "    duplicate_window: 0s\n"))
    fields = [line.strip().split(":")[0] for line in str(info.value).splitlines()[1:]]
    assert "audit.jetstream.duplicate_window" in fields


@pytest.mark.parametrize("text", ["2days", "abc", "12 h", "'99999999999999999999'",
                                  "99999999999999999999d"])
def test_a_malformed_duration_names_the_field(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, f"policy:\n  paths: [p]\nminting:\n  max_ttl: {text}\n"))
    fields = [line.strip().split(":")[0] for line in str(info.value).splitlines()[1:]]
    assert fields == ["minting.max_ttl"]


def test_fractional_seconds_read_the_same_from_file_and_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHSVC_MINTING__JITTER", "1.5")
    settings = load_settings(write(tmp_path, "policy:\n  paths: [p]\nminting:\n  max_ttl: 1.5\n"))
    assert settings.minting.max_ttl.total_seconds() == 1.5
    assert settings.minting.jitter.total_seconds() == 1.5


REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("shipped", ["container", "systemd", "kubernetes"])
def test_shipped_settings_load_and_keep_the_audit_log_on_the_state_volume(shipped: str) -> None:
    settings = load_settings(REPO / "deploy" / shipped / "authsvc.yaml")
    assert settings.audit.path == Path("/var/lib/authsvc/audit.jsonl")
    assert settings.keys.dir == Path("/etc/authsvc/keys")


def test_the_container_image_health_check_has_a_listener_to_ask() -> None:
    # The Dockerfile's HEALTHCHECK runs `authsvc health` with the baked-in settings.
    dockerfile = (REPO / "Dockerfile").read_text()
    assert '"authsvc", "health", "-c", "/etc/authsvc/authsvc.yaml"' in dockerfile
    settings = load_settings(REPO / "deploy" / "container" / "authsvc.yaml")
    assert settings.metrics.listen.endswith(":9464")
    assert "EXPOSE 9464" in dockerfile


def test_nats_tls_files_resolve_beside_the_settings_and_go_in_pairs(tmp_path: Path) -> None:
    config = tmp_path / "authsvc.yaml"
    config.write_text("nats:\n  url: tls://nats.internal:4222\n  tls_ca: pki/ca.pem\n"
                      "  tls_cert: pki/svc.pem\n  tls_key: pki/svc-key.pem\n"
                      "policy:\n  paths: [p.yaml]\n")
    nats = load_settings(config).nats
    assert (nats.tls_ca, nats.tls_cert, nats.tls_key) == (
        tmp_path / "pki/ca.pem", tmp_path / "pki/svc.pem", tmp_path / "pki/svc-key.pem")
    assert nats.tls
    config.write_text("nats:\n  tls_cert: svc.pem\npolicy:\n  paths: [p.yaml]\n")
    with pytest.raises(ConfigError):
        load_settings(config)
    config.write_text("policy:\n  paths: [p.yaml]\n")
    assert not load_settings(config).nats.tls


@pytest.mark.parametrize(("section", "value", "field"), [
    ("nats:\n  url", "nats://secret-host:abc", "nats.url"),            # not a number
    ("nats:\n  url", "nats://secret-host:99999", "nats.url"),          # above 65535
    ("nats:\n  url", "nats://secret-host:0", "nats.url"),
    ("nats:\n  url", "nats://secret-host:4222,nats://b:4222", "nats.url"),  # a server list
    ("nats:\n  url", "nats://[secret-host", "nats.url"),               # unclosed IPv6 bracket
    ("audit:\n  jetstream:\n    url", "nats://secret-host:70000", "audit.jetstream.url"),
    ("metrics:\n  listen", "secret-host:99999", "metrics.listen"),     # crashed serve later
    ("metrics:\n  listen", "secret-host:0", "metrics.listen"),
    ("metrics:\n  listen", "secret-host", "metrics.listen"),           # no port
])
def test_a_bad_address_names_the_field_and_not_the_value(
        tmp_path: Path, section: str, value: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, f"policy:\n  paths: [p]\n{section}: '{value}'\n"))
    fields = [line.strip().split(":")[0] for line in str(info.value).splitlines()[1:]]
    assert fields == [field]
    assert "secret-host" not in str(info.value)


@pytest.mark.parametrize("listen", ["", "127.0.0.1:9464", "[::1]:65535", ":1",
                                    "metrics.local:9464"])
def test_metrics_listen_takes_host_port_or_empty(tmp_path: Path, listen: str) -> None:
    settings = load_settings(write(tmp_path, "policy:\n  paths: [p]\nmetrics:\n"
                                             f"  listen: '{listen}'\n"))
    assert settings.metrics.listen == listen


@pytest.mark.parametrize("url", ["nats://127.0.0.1", "tls://nats.internal:65535", "nats://[::1]:4222"])
def test_a_single_nats_url_with_or_without_a_port_loads(tmp_path: Path, url: str) -> None:
    assert load_settings(write(tmp_path, f"policy:\n  paths: [p]\nnats:\n  url: '{url}'\n")
                         ).nats.url == url


@pytest.mark.parametrize("variable", ["AUTHSVC_AUDIT__SIGNING_KEY", "AUTHSVC_NATS__TLS_CA"])
def test_an_empty_optional_path_means_the_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    # Not Path("."): an empty signing_key meant "read the key file ." (a directory).
    monkeypatch.setenv(variable, "")
    settings = load_settings(write(tmp_path, "policy:\n  paths: [p]\n"))
    assert settings.audit.signing_key is None
    assert settings.nats.tls_ca is None and not settings.nats.tls
    monkeypatch.delenv(variable)
    settings = load_settings(write(tmp_path, "policy:\n  paths: [p]\naudit:\n  signing_key: ''\n"
                                             "nats:\n  tls_cert: ''\n  tls_key: ''\n"))
    assert settings.audit.signing_key is None
    assert (settings.nats.tls_cert, settings.nats.tls_key) == (None, None)


def test_an_issuers_ca_file_resolves_beside_the_settings_and_needs_fetched_keys(
        tmp_path: Path) -> None:
    config = tmp_path / "authsvc.yaml"
    config.write_text("policy:\n  paths: [p]\nidentity:\n  oidc:\n    issuers:\n"
                      "      - issuer: https://k8s.internal\n        audiences: [nats]\n"
                      "        ca_file: pki/cluster-ca.pem\n")
    [issuer] = load_settings(config).identity.oidc.issuers
    assert issuer.ca_file == tmp_path / "pki" / "cluster-ca.pem"
    config.write_text("policy:\n  paths: [p]\nidentity:\n  oidc:\n    issuers:\n"
                      "      - issuer: https://k8s.internal\n        audiences: [nats]\n"
                      "        ca_file: ca.pem\n        keys: []\n")
    with pytest.raises(ConfigError):  # static keys are never fetched
        load_settings(config)


def _fields(error: ConfigError) -> list[str]:
    return [line.strip().split(":")[0] for line in str(error).splitlines()[1:]]


@pytest.mark.parametrize(("variable", "value", "field"), [
    # a negative cooldown took away the limit on refetches for unknown kids
    ("AUTHSVC_IDENTITY__OIDC__JWKS__COOLDOWN", "-30", "identity.oidc.jwks.cooldown"),
    ("AUTHSVC_IDENTITY__OIDC__JWKS__COOLDOWN", "0", "identity.oidc.jwks.cooldown"),
    ("AUTHSVC_IDENTITY__OIDC__JWKS__TTL", "0", "identity.oidc.jwks.ttl"),
    ("AUTHSVC_IDENTITY__OIDC__JWKS__MIN_TTL", "-1", "identity.oidc.jwks.min_ttl"),
    ("AUTHSVC_IDENTITY__OIDC__JWKS__MAX_TTL", "-3600", "identity.oidc.jwks.max_ttl"),
    ("AUTHSVC_IDENTITY__OIDC__JWKS__STALE_FOR", "-60", "identity.oidc.jwks.stale_for"),
    ("AUTHSVC_AUDIT__ROTATE_AGE", "-1", "audit.rotate_age"),
    ("AUTHSVC_AUDIT__JETSTREAM__SPOOL_MAX_AGE", "-1", "audit.jetstream.spool_max_age"),
    ("AUTHSVC_AUDIT__JETSTREAM__MAX_AGE", "999999999", "audit.jetstream.max_age"),  # 31 years
    ("AUTHSVC_MINTING__JITTER", "-5", "minting.jitter"),
    ("AUTHSVC_NATS__STARTUP_TIMEOUT", "inf", "nats.startup_timeout"),  # "never give up"
    ("AUTHSVC_SERVICE__SHUTDOWN_GRACE", "inf", "service.shutdown_grace"),
    ("AUTHSVC_POLICY__WATCH_INTERVAL", "nan", "policy.watch_interval"),
])
def test_a_duration_or_number_out_of_bounds_names_the_field(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str,
        field: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "policy:\n  paths: [p]\n"))
    assert _fields(info.value) == [field]


@pytest.mark.parametrize(("text", "field"), [
    ("identity:\n  oidc:\n    jwks: {min_ttl: 2d, max_ttl: 24h}\n", "identity.oidc.jwks.max_ttl"),
    ("identity:\n  oidc:\n    jwks: {min_ttl: 2d}\n", "identity.oidc.jwks.max_ttl"),  # default
    ("audit:\n  jetstream: {max_age: 12h, duplicate_window: 1d}\n",
     "audit.jetstream.duplicate_window"),  # nats-server refuses to create that stream
])
def test_an_ordered_pair_out_of_order_names_the_field(tmp_path: Path, text: str,
                                                      field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "policy:\n  paths: [p]\n" + text))
    assert _fields(info.value) == [field]


def test_a_bad_region_is_reported_with_the_other_bad_fields(tmp_path: Path) -> None:
    text = ("policy:\n  paths: [p]\nidentity:\n  aws_iam:\n    server_id: nats-prod\n"
            "    regions: [mars-1]\n    timeout: 0\n")
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert sorted(_fields(info.value)) == ["identity.aws_iam.regions",
                                           "identity.aws_iam.timeout"]


def test_zero_in_the_policy_syntax_means_zero_where_zero_is_allowed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHSVC_AUDIT__ROTATE_AGE", "0s")
    settings = load_settings(write(tmp_path, "policy:\n  paths: [p]\nminting:\n  jitter: 0m\n"
                                             "identity:\n  oidc:\n    jwks: {stale_for: 0h}\n"))
    assert settings.audit.rotate_age.total_seconds() == 0
    assert settings.minting.jitter.total_seconds() == 0
    assert settings.identity.oidc.jwks.stale_for.total_seconds() == 0


@pytest.mark.parametrize(("variable", "field", "kind"), [
    ("AUTHSVC_POLICY__PATHS", "policy.paths", "list"),
    ("AUTHSVC_SERVICE__ALLOWED_SERVERS", "service.allowed_servers", "list"),
    ("AUTHSVC_NATS", "nats", "object"),
    ("AUTHSVC_IDENTITY__AWS_IAM__ENDPOINTS", "identity.aws_iam.endpoints", "object"),
])
def test_a_list_or_section_variable_that_is_not_json_is_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, field: str,
        kind: str) -> None:
    monkeypatch.setenv(variable, "/srv/secret-value")
    found = find_json_problem(Settings, os.environ, prefix=ENV_PREFIX)
    assert found == EnvJsonProblem(variable=variable, field=field, kind=kind)
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "policy:\n  paths: [p]\n"))
    # Naming the variable is the fix (it said: error parsing value for field "policy" from
    # source "EnvSettingsSource"); the value is never repeated.
    assert variable in str(info.value) and "secret-value" not in str(info.value)


def test_a_scalar_variable_is_not_taken_for_a_json_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHSVC_NATS__URL", "nats://not-json:4222")
    monkeypatch.setenv("AUTHSVC_POLICY__PATHS", '["/etc/authsvc/policies"]')
    assert find_json_problem(Settings, os.environ, prefix=ENV_PREFIX) is None
