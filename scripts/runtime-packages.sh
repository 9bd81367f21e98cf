#!/usr/bin/env bash
# Prints the Debian packages (package=version, sorted) that own the given files
# and every shared library they load, so that a runtime image installs exactly
# what the build and its tests ran with (docker/Dockerfile). A file no package
# owns (our own binaries) contributes only its libraries; a library no package
# owns is an error.
#   runtime-packages.sh FILE...
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: runtime-packages.sh FILE..." >&2; exit 2; }

# The names dpkg may know a path by: as given and resolved, each with and
# without /usr (Debian 12 merges /lib into /usr/lib; dpkg records one of the two).
names() {
  local path
  for path in "$1" "$(readlink -f "$1")"; do
    printf '%s\n' "$path" "/usr${path#/usr}" "${path#/usr}"
  done
}

# The resolved paths of every shared library a file loads (ldd's full closure).
libraries() {
  local out
  out=$(ldd "$1") || { echo "error: ldd failed on $1" >&2; exit 1; }
  if grep -q 'not found' <<<"$out"; then
    echo "error: $1 needs a library that is not installed:" >&2
    grep 'not found' <<<"$out" >&2
    exit 1
  fi
  awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out"
}

files=() libs=()
for file in "$@"; do
  [ -e "$file" ] || { echo "error: $file does not exist" >&2; exit 1; }
  files+=("$file")
  found=$(libraries "$file")
  mapfile -t -O "${#libs[@]}" libs <<<"$found"
done

# One dpkg query for every name (it is slow per call): path -> package.
declare -A owner_of
mapfile -t candidates < <(for p in "${files[@]}" "${libs[@]}"; do names "$p"; done | sort -u)
while IFS= read -r line; do
  [[ $line == diversion* ]] && continue
  owner_of["${line#*: }"]=${line%%: *}
done < <(dpkg-query -S "${candidates[@]}" 2>/dev/null || true)

owner() {
  local name
  while read -r name; do
    if [ -n "${owner_of[$name]:-}" ]; then echo "${owner_of[$name]}"; return; fi
  done < <(names "$1")
}

packages=()
for file in "${files[@]}"; do
  pkg=$(owner "$file")
  [ -n "$pkg" ] && packages+=("$pkg")
done
for lib in "${libs[@]}"; do
  pkg=$(owner "$lib")
  [ -n "$pkg" ] || { echo "error: $lib belongs to no Debian package" >&2; exit 1; }
  packages+=("$pkg")
done
printf '%s\n' "${packages[@]}" | sort -u | while read -r pkg; do
  dpkg-query -W -f='${Package}=${Version}\n' "$pkg"
done
