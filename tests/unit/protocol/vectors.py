"""Load the published protocol vectors under ``tests/data/protocol`` (sources inside each file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "data" / "protocol"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))
