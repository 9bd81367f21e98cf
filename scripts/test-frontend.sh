#!/usr/bin/env bash
# The frontend suites (REST and WebSocket) with Debian's pytest; each test
# module starts and stops its own PostgreSQL, Redis and pgx-frontend.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x build/frontend/pgx-frontend ]; then
  echo "error: build/frontend/pgx-frontend is missing (run make build)" >&2
  exit 1
fi
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/frontend "$@"
