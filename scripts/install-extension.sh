#!/usr/bin/env bash
# Builds the exchange extension and installs it into PostgreSQL 15's folders
# (as root, or through sudo). A running server needs a restart to load it.
set -euo pipefail
cd "$(dirname "$0")/../extension"
make -s -j "${JOBS:-2}"
if [ "$(id -u)" -eq 0 ]; then
  make -s install >/dev/null
else
  sudo make -s install >/dev/null
fi
