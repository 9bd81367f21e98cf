#!/usr/bin/env bash
# Builds the exchange extension (out of tree, in $BUILD_DIR/ext) and installs
# it into PostgreSQL 15's folders (as root, or through sudo). A running server
# needs a restart to load it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-build}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
mkdir -p "$build/ext"
make -s -C "$build/ext" -f "$root/extension/Makefile" -j "${JOBS:-2}"
if [ "$(id -u)" -eq 0 ]; then
  make -s -C "$build/ext" -f "$root/extension/Makefile" install >/dev/null
else
  sudo make -s -C "$build/ext" -f "$root/extension/Makefile" install >/dev/null
fi
