"""Fault exceptions. A fault is something wrong on our side; it is never a denial value.

AuthsvcError
 +-- ConfigError       settings or key material unusable (startup)
 +-- UnavailableError  nats-server could not be reached at startup (worth a restart)
 +-- PolicyError       a policy file cannot be loaded; carries file/line/column
 +-- UpstreamError     an identity provider / STS / JWKS endpoint failed
 +-- SigningError      a JWT could not be signed
 +-- AuditError        the audit record could not be made durable

The service maps every fault to a Deny with outcome ``error`` (fail closed).
"""

from __future__ import annotations


class AuthsvcError(Exception):
    """Base of all authsvc faults."""


class ConfigError(AuthsvcError):
    pass


class UnavailableError(AuthsvcError):
    """Something authsvc needs did not answer at startup; unlike a ConfigError, trying
    again later may work, so the command exits ``EXIT_UNAVAILABLE`` for supervisors."""

    exit_code = 69  # EX_UNAVAILABLE (sysexits.h)


class PolicyError(AuthsvcError):
    """A policy problem located in a file. ``str()`` reads ``file:line:col: message``."""

    def __init__(self, message: str, *, file: str = "", line: int = 0, column: int = 0,
                 hint: str = "") -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        where = self.file or "<policy>"
        if self.line:
            where += f":{self.line}:{self.column}" if self.column else f":{self.line}"
        text = f"{where}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class UpstreamError(AuthsvcError):
    pass


class SigningError(AuthsvcError):
    pass


class AuditError(AuthsvcError):
    pass
