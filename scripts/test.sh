#!/usr/bin/env bash
# The whole test suite: lint, strict types, unit and integration tests (real nats-server).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
# Headless Chromium renders the audit report in tests/integration/audit/test_report_browser.py
# (Debian's package; the test skips, saying why, where it cannot be installed).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
    && [ "$(id -u)" = 0 ]; then
  echo "installing chromium with apt-get (for the audit report test)" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends chromium; } >/dev/null \
    || echo "could not install chromium; the audit report browser test will skip" >&2
fi
# workerd (the Cloudflare Workers runtime, from npm) runs the example Worker in
# tests/integration/identity/test_worker_e2e.py (which skips, saying why, without npm).
if command -v npm >/dev/null 2>&1 && [ ! -x deploy/cloudflare-worker/node_modules/.bin/workerd ]; then
  echo "installing workerd with npm ci (for the Cloudflare Worker example test)" >&2
  npm ci --prefix deploy/cloudflare-worker --no-audit --no-fund --loglevel=error >/dev/null \
    || echo "could not install workerd; the Worker example test will skip" >&2
fi
echo "== ruff"
.venv/bin/ruff check authsvc tests bench
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest -q "$@"
