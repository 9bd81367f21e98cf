#!/usr/bin/env bash
# Installs in a runtime image the packages the build stage listed as
# package=version (scripts/runtime-packages.sh), at exactly those versions.
# A package the base image already has at that version or newer is left
# alone (the base image's own libraries are never downgraded).
#   install-packages.sh LIST...
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
wanted=()
while read -r spec; do
  [ -n "$spec" ] || continue
  pkg=${spec%%=*} version=${spec#*=}
  have=$(dpkg-query -W -f='${db:Status-Abbrev}${Version}' "$pkg" 2>/dev/null || true)
  if [[ $have == "ii "* ]] && dpkg --compare-versions "${have#ii }" ge "$version"; then
    continue
  fi
  wanted+=("$spec")
done < <(cat "$@")
if [ ${#wanted[@]} -gt 0 ]; then
  apt-get update -qq
  if ! apt-get install -y -qq --no-install-recommends "${wanted[@]}"; then
    echo "error: cannot install the versions the build stage used (${wanted[*]})." >&2
    echo "Debian keeps only the newest version of a package: rebuild the build stage too (docker build --no-cache)." >&2
    exit 1
  fi
  rm -rf /var/lib/apt/lists/*
fi
