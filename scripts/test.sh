#!/usr/bin/env bash
# The whole test suite: lint, strict types, unit and integration tests (real nats-server).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
echo "== ruff"
.venv/bin/ruff check authsvc tests bench
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest -q "$@"
