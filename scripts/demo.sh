#!/usr/bin/env bash
# Set up (first run only) and run the demo: nats-server + authsvc + example clients.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
exec .venv/bin/authsvc demo "$@"
