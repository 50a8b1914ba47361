"""The dependency direction of the house (STYLE.md), checked on every test run.

cli/server -> service/transport -> feature packages -> domain. Feature packages meet only
through domain types; ``protocol`` is the wire-format layer under identity and minting.
Nothing below the composition root reads settings.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "authsvc"

# module prefix -> authsvc modules it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "errors": set(),
    "clock": set(),
    "protocol": {"domain", "errors"},
    "policy": {"domain", "errors"},
    "identity": {"domain", "errors", "protocol"},
    "minting": {"domain", "errors", "protocol"},
    "audit": {"domain", "errors"},
    "transport": {"domain"},
    "service": {"audit", "clock", "domain", "errors", "identity", "minting", "policy",
                "protocol"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("authsvc."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names
                         if a.name.startswith("authsvc."))
    return found


def _area(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_dependency_direction(path: Path) -> None:
    area = _area(path)
    if area not in ALLOWED:
        return  # composition root and tools (cli, server, settings, natsconf, demo)
    illegal = _imports(path) - ALLOWED[area] - {area}
    assert not illegal, f"{area} must not import {sorted(illegal)}"
