#!/usr/bin/env bash
# The WAL preallocator (extension/pg/wal_prealloc.h), against a cluster of
# its own (127.0.0.1, port $PGX_WAL_TEST_PORT, default 25334; stopped and
# removed on exit), with no checkpoint due during the test so that nothing
# but the worker and the writes themselves creates segments:
#   - with exchange.wal_prealloc_segments = 0 no segment after the one being
#     written exists, also after switching to new segments (PostgreSQL
#     alone creates a segment when it first writes to it);
#   - set to 3 and reloaded, the next 3 segments appear, and not a 4th;
#   - after switching two segments on, the next 3 from there appear;
#   - committed rows survive a kill -9 of the postmaster and the recovery,
#     which reads up to the first preallocated (zeroed) segment and stops.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=build/waltest
port=${PGX_WAL_TEST_PORT:-25334}
. tests/pg/own_cluster.sh
own_cluster "$dir" "$port" exchange.wal_prealloc_segments=0 checkpoint_timeout=1h max_wal_size=1GB
fail() {
  echo "wal_prealloc: $*" >&2
  echo "pg_wal holds: $(q "SELECT string_agg(name, ' ' ORDER BY name) FROM pg_ls_waldir()")" >&2
  exit 1
}

q "CREATE TABLE walgen (x int)"
# The number of the segment being written (after a row, so that the insert
# position is inside a segment, not at the boundary a switch leaves it at),
# and the file name of segment N (16 MB segments: 256 to a log id).
current() {
  local name
  q "INSERT INTO walgen VALUES (1)"
  name=$(q "SELECT pg_walfile_name(pg_current_wal_insert_lsn())")
  echo $((16#${name:8:8} * 256 + 16#${name:16:8}))
}
tli=$(q "SELECT left(pg_walfile_name(pg_current_wal_insert_lsn()), 8)")
[ "$(q "SHOW wal_segment_size")" = 16MB ] || fail "the test assumes 16 MB segments"
name_of() { printf '%s%08X%08X' "$tli" $(($1 / 256)) $(($1 % 256)); }
exists() { [ "$(q "SELECT count(*) FROM pg_ls_waldir() WHERE name = '$(name_of "$1")'")" = 1 ]; }
# Segments FROM..TO all exist within 5 s.
wait_for() {
  local k
  for _ in $(seq 50); do
    for ((k = $1; k <= $2; k++)); do exists "$k" || break; done
    [ "$k" -gt "$2" ] && return 0
    sleep 0.1
  done
  fail "segments $(name_of "$1")..$(name_of "$2") were not all created"
}
next_segment() {
  q "INSERT INTO walgen VALUES (0)"
  q "SELECT pg_switch_wal()" >/dev/null
}

# Off: nothing ahead, also after new segments were started.
next_segment
next_segment
cur=$(current)
sleep 1
for k in 1 2 3; do
  ! exists $((cur + k)) || fail "with 0, segment $(name_of $((cur + k))) exists ahead of $(name_of "$cur")"
done

# 3, on reload.
q "ALTER SYSTEM SET exchange.wal_prealloc_segments = 3" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
wait_for $((cur + 1)) $((cur + 3))
sleep 0.5
! exists $((cur + 4)) || fail "with 3, a 4th segment $(name_of $((cur + 4))) exists"

# It follows the insert position.
next_segment
next_segment
cur2=$(current)
[ "$cur2" = $((cur + 2)) ] || fail "two switches went from $cur to $cur2"
wait_for $((cur2 + 1)) $((cur2 + 3))

# Recovery through the preallocated segments.
q "INSERT INTO walgen SELECT g FROM generate_series(1, 1000) g"
next_segment
q "INSERT INTO walgen VALUES (-1)"
rows=$(q "SELECT count(*) FROM walgen")
scripts/pg-cluster.sh crash "$dir"
scripts/pg-cluster.sh start "$dir" "$port"
[ "$(q "SELECT count(*) FROM walgen")" = "$rows" ] || fail "after the crash walgen holds $(q "SELECT count(*) FROM walgen") rows, not $rows"
cur3=$(current)
wait_for $((cur3 + 1)) $((cur3 + 3))
echo "wal_prealloc: ok (segments ahead: 0 when off, 3 when set to 3, following the insert position and after a crash)"
