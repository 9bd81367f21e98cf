#!/usr/bin/env bash
# A streaming standby of the test cluster (pg_basebackup -R, 127.0.0.1, the
# cluster's port + 5): it replays the tables, not the books, which live in the
# primary's memory. There verify and rebuild are refused with 55000
# "book_unavailable: order books are not kept on a standby", every trading
# function with 25006 "cannot execute exchange.place_order() during recovery"
# (before, a lock error named neither), and what reads the tables works:
# orderbook_at rebuilds the primary's book from the replayed journal, and
# since 0.16 orderbook and book_snapshot answer the primary's book (exactly,
# JSON text included) from the newest stored snapshot and the journal after
# it, also after more trading and a snapshot on the primary (a snapshot row
# made up on the primary shows that the standby starts from it); get_order,
# list_orders and candles answer. Promoted, it loads the primary's books
# from the tables and trades on. The standby is stopped and removed at the end, with its
# database on the primary. Runs against the cluster of scripts/test-pg.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${PGX_CLUSTER_DIR:?}
port=${PGPORT:?}
sb=$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")-standby  # absolute: the server runs in its data folder
sb_port=$((port + 5))
db=exchange_standby
BIN=/usr/lib/postgresql/15/bin
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
fail() { echo "standby: $*" >&2; exit 1; }
primary() { psql -X -At -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }
standby() { psql -X -At -v ON_ERROR_STOP=1 -p "$sb_port" -d "$db" -c "$1"; }
stop_standby() {
  if [ -f "$sb/data/postmaster.pid" ]; then as_pg "$BIN/pg_ctl" -D "$sb/data" -m fast -w -t 60 stop >/dev/null || true; fi
  rm -rf "$sb"
}
cleanup() {
  stop_standby
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
}
trap cleanup EXIT
stop_standby

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
CREATE EXTENSION exchange;
CREATE FUNCTION try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' ' || SQLERRM;
END $$;
SELECT exchange.create_instrument('SB-USD', 0.01, 0.001);
SELECT exchange.place_order('s1', 'SB-USD', 'sell', 'limit', 2, 101);
SELECT exchange.place_order('s2', 'SB-USD', 'buy', 'limit', 0.5, 101);
SELECT exchange.place_order('s3', 'SB-USD', 'buy', 'limit', 1, 99.5, display_quantity => 0.2);
SELECT exchange.place_order('s4', 'SB-USD', 'sell', 'market', 0.1, stop_price => 98);
SQL

mkdir -p "$sb"
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$sb"; fi
as_pg "$BIN/pg_basebackup" -h 127.0.0.1 -p "$port" -U postgres -D "$sb/data" -R -X stream -c fast
printf "port = %s\nunix_socket_directories = '%s'\nhot_standby = on\n" "$sb_port" "$sb" |
  as_pg tee -a "$sb/data/postgresql.conf" >/dev/null
as_pg "$BIN/pg_ctl" -D "$sb/data" -l "$sb/server.log" -o "-p $sb_port" -w -t 120 start >/dev/null

# Waits until the standby has replayed everything the primary has written.
caught_up() {
  local lsn i
  lsn=$(primary "SELECT pg_current_wal_lsn()")
  for i in $(seq 200); do
    [ "$(standby "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn")" = t ] && return 0
    sleep 0.05
  done
  fail "the standby did not replay up to $lsn"
}
caught_up
[ "$(standby "SELECT pg_is_in_recovery()")" = t ] || fail "not in recovery"

for f in verify rebuild; do
  [ "$(standby "SELECT try('SELECT * FROM exchange.$f(''SB-USD'')')")" = "55000 book_unavailable: order books are not kept on a standby" ] ||
    fail "$f on the standby: $(standby "SELECT try('SELECT * FROM exchange.$f(''SB-USD'')')")"
done
for call in "place_order('s5', 'SB-USD', 'buy', 'limit', 1, 100)|place_order" \
  "place_orders('[]')|place_orders" "cancel_all_orders('s1')|cancel_orders" \
  "amend_orders('[]')|amend_orders"; do
  sql=${call%|*} name=${call#*|}
  got=$(standby "SELECT try(\$q\$SELECT * FROM exchange.$sql\$q\$)")
  [ "$got" = "25006 cannot execute exchange.$name() during recovery" ] || fail "$sql on the standby: $got"
done
order=$(primary "SELECT order_id FROM exchange.orders WHERE client_id = 's1'")
got=$(standby "SELECT try('SELECT exchange.cancel_order(''$order'')')")
[ "$got" = "25006 cannot execute exchange.cancel_order() during recovery" ] || fail "cancel_order on the standby: $got"

# What reads the tables: the journal gives the primary's book back.
book_primary() { primary "SELECT string_agg(b::text, ' ') FROM exchange.orderbook('SB-USD', 100) b"; }
book_standby() { standby "SELECT string_agg(b::text, ' ') FROM exchange.orderbook_at('SB-USD', depth => 100) b"; }
[ -n "$(book_primary)" ] && [ "$(book_standby)" = "$(book_primary)" ] ||
  fail "orderbook_at on the standby '$(book_standby)' is not the primary's book '$(book_primary)'"
primary "SELECT exchange.place_order('s6', 'SB-USD', 'buy', 'limit', 1.5, 101)" >/dev/null
caught_up
[ "$(book_standby)" = "$(book_primary)" ] || fail "after more trading: '$(book_standby)' against '$(book_primary)'"
# orderbook and book_snapshot (0.16): the primary's book, from the journal (no snapshot stored yet), then
# from a snapshot and the entries after it.
orderbook_standby() { standby "SELECT string_agg(b::text, ' ') FROM exchange.orderbook('SB-USD', 100) b"; }
same_books() {
  [ "$(orderbook_standby)" = "$(book_primary)" ] || fail "$1: orderbook on the standby '$(orderbook_standby)', the primary's '$(book_primary)'"
  [ "$(standby "SELECT exchange.book_snapshot('SB-USD')::text")" = "$(primary "SELECT exchange.book_snapshot('SB-USD')::text")" ] ||
    fail "$1: book_snapshot on the standby $(standby "SELECT exchange.book_snapshot('SB-USD')"), the primary's $(primary "SELECT exchange.book_snapshot('SB-USD')")"
  [ "$(standby "SELECT string_agg(b::text, ' ') FROM exchange.orderbook('SB-USD', 1) b")" = \
    "$(primary "SELECT string_agg(b::text, ' ') FROM exchange.orderbook('SB-USD', 1) b")" ] || fail "$1: depth 1"
}
same_books "no snapshot"
primary "SELECT exchange.snapshot('SB-USD')" >/dev/null
primary "SELECT exchange.place_order('s8', 'SB-USD', 'sell', 'limit', 0.7, 100.5)" >/dev/null
primary "SELECT exchange.place_order('s9', 'SB-USD', 'buy', 'limit', 0.3, 97)" >/dev/null
caught_up
same_books "after a snapshot and more trading"
head=$(primary "SELECT max(seq) FROM exchange.events e JOIN exchange.instruments i USING (instrument_id) WHERE i.symbol = 'SB-USD'")
primary "INSERT INTO exchange.orderbook_snapshots (instrument, seq, bids, asks)
         VALUES ('SB-USD', $head, '[{\"price\": 1.00, \"quantity\": 9.000, \"order_count\": 3}]', '[]')" >/dev/null
caught_up
[ "$(orderbook_standby)" = "(buy,1.00,9.000,3)" ] || fail "a made-up snapshot at the head is not what the standby answers: $(orderbook_standby)"
primary "DELETE FROM exchange.orderbook_snapshots WHERE seq = $head AND bids->0->>'price' = '1.00'" >/dev/null
caught_up
same_books "the made-up snapshot removed"
[ "$(standby "SELECT status || ' ' || filled_quantity FROM exchange.get_order('$order')")" = "filled 2.000" ] ||
  fail "get_order on the standby"
[ "$(standby "SELECT count(*) FROM exchange.list_orders('s3')")" = 1 ] || fail "list_orders on the standby"
[ "$(standby "SELECT trade_count FROM exchange.candles('SB-USD', '1 day', max_rows => 1)")" = \
  "$(primary "SELECT count(*) FROM exchange.trades WHERE instrument = 'SB-USD'")" ] || fail "candles on the standby"
[ "$(primary "SELECT count(*) FROM exchange.verify('SB-USD')")" = 0 ] || fail "verify on the primary"

# Promoted (the primary lost), it loads its books from the tables on first
# use, as after a restart: the primary's book, its pending stop (at 98), and
# the journal goes on where the primary's ended.
caught_up
book=$(book_primary)
next=$(primary "SELECT max(seq) + 1 FROM exchange.events e JOIN exchange.instruments i USING (instrument_id)
                 WHERE i.symbol = 'SB-USD'")
as_pg "$BIN/pg_ctl" -D "$sb/data" -w -t 60 promote >/dev/null
[ "$(standby "SELECT pg_is_in_recovery()")" = f ] || fail "still in recovery after the promotion"
[ "$(standby "SELECT string_agg(b::text, ' ') FROM exchange.orderbook('SB-USD', 100) b")" = "$book" ] ||
  fail "the promoted server's book is not the primary's"
[ "$(standby "SELECT s.stop FROM exchange._book_stops((SELECT instrument_id FROM exchange.instruments
               WHERE symbol = 'SB-USD')) s")" = 9800 ] || fail "the pending stop order in the promoted server's book"
[ "$(standby "SELECT seq FROM exchange.place_order('s7', 'SB-USD', 'sell', 'limit', 1, 101.5)")" = "$next" ] ||
  fail "the promoted server's journal does not go on at $next"
[ "$(standby "SELECT count(*) FROM exchange.verify('SB-USD')")" = 0 ] || fail "verify on the promoted server"
echo "standby: verify and rebuild refused (55000), trading refused (25006), orderbook_at, orderbook and book_snapshot equal to the primary's book, also after more trading and a snapshot; promoted, it trades on from the primary's book and journal"
