"""Which ``AUTHSVC_*`` variable pydantic-settings could not read, and what it must look like.

A list, a mapping or a whole section from the environment is read as JSON
(pydantic-settings ``EnvSettingsSource``). When that fails it raises ``SettingsError`` naming
only the top-level field and the source class (``error parsing value for field "policy" from
source "EnvSettingsSource"``): neither the variable nor the rule. This module finds the
variable again by walking the settings model along its name, and never looks at more of the
value than whether it parses: the value may be a secret.
"""

from __future__ import annotations

import json
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

Kind = Literal["list", "object"]

# Examples users can paste, for the settings they most often set from the environment.
EXAMPLES: dict[str, str] = {
    "policy.paths": '["/etc/authsvc/policies"]',
    "policy.test_paths": '["/etc/authsvc/policy-tests"]',
    "service.allowed_servers": '["NABC..."]',
    "identity.aws_iam.regions": '["eu-west-1"]',
    "identity.aws_iam.endpoints": '{"sts.eu-west-1.amazonaws.com": "https://vpce.example/"}',
    "identity.oidc.issuers": '[{"issuer": "https://idp.example.com", "audiences": ["nats"]}]',
    "nats": '{"url": "nats://10.0.0.2:4222"}',
}
GENERIC: dict[Kind, str] = {"list": '["first", "second"]', "object": '{"name": "value"}'}


@dataclass(frozen=True, slots=True)
class EnvJsonProblem:
    """A variable for a list, mapping or section whose value is not JSON."""

    variable: str
    field: str  # the dotted settings path, e.g. policy.paths
    kind: Kind

    def message(self) -> str:
        """What went wrong and a value of the right shape; never the value given."""
        example = EXAMPLES.get(self.field, GENERIC[self.kind])
        article = "an" if self.kind == "object" else "a"
        return (f"environment variable {self.variable} ({self.field}) must be {article} "
                f"JSON {self.kind}, e.g. {self.variable}='{example}': lists, mappings and "
                "whole sections are read from the environment as JSON")


def find_json_problem(model: type[BaseModel], environ: Mapping[str, str], *, prefix: str,
                      delimiter: str = "__") -> EnvJsonProblem | None:
    """The first (by name) ``prefix`` variable that names a list, mapping or section of
    ``model`` and holds a non-empty value that is not JSON; None if there is none."""
    for name in sorted(environ):
        if not name.upper().startswith(prefix.upper()) or not environ[name]:
            continue
        path = name[len(prefix):].lower().split(delimiter)
        kind = _kind(model, path)
        if kind is None:
            continue
        try:
            json.loads(environ[name])
        except ValueError:
            return EnvJsonProblem(variable=name, field=".".join(path), kind=kind)
    return None


def _kind(model: type[BaseModel], path: list[str]) -> Kind | None:
    """Whether ``path`` leads through ``model`` to a list or to a mapping or model."""
    field = model.model_fields.get(path[0])
    if field is None:
        return None
    annotation = _unwrapped(field.annotation)
    if len(path) > 1:
        return _kind(annotation, path[1:]) if _is_model(annotation) else None
    origin = get_origin(annotation) or annotation
    if origin in (list, tuple, set, frozenset):
        return "list"
    if origin is dict or _is_model(annotation):
        return "object"
    return None


def _unwrapped(annotation: Any) -> Any:
    """``X`` from ``Annotated[X, ...]`` and from ``X | None``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)
