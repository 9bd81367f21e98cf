# Sourced by bench-pg.sh, bench-pg-ab.sh and bench-pg-cpu-ab.sh: the benchmark
# database they use, so that they measure the same thing. Needs PGHOST/PGPORT/PGUSER set,
# PGDATABASE=bench, and the repository root as the working directory.
PGBENCH=/usr/lib/postgresql/15/bin/pgbench

# A fresh cluster in DIR on PORT with database bench: the extension, the
# plain-INSERT baseline table, the instruments B1..B8 (tick and lot 1) and
# bench_batches: 1,000 batches of 100 random orders for B1 as JSON text, the
# way the frontend sends them (place_batch_text.sql; place_batch_text_8.sql
# puts each pgbench client on its own instrument, B1..B8), made before the clock
# starts (the subquery's "WHERE b > 0" ties it to its batch, so that each
# batch gets its own random orders). For the cancel and amend cases
# (cancel_one.sql, cancel_batch.sql, bench-pg.sh's per-call timings):
# instrument C1 with 220,000 resting bids over 50 prices, their ids numbered
# in bench_cancel_ids (cancel_one.sql takes them from 1 on, cancel_batch.sql
# from 60,001; amend_one.sql amends 120,001-140,000, amend_batch.sql
# 140,001-180,000; bench-pg.sh's per-call timings use 180,001-220,000).
bench_db_start() {
  local dir=$1 port=$2
  scripts/pg-cluster.sh stop "$dir"
  rm -rf "$dir"
  scripts/pg-cluster.sh start "$dir" "$port" exchange.max_instruments=16 shared_buffers=512MB max_wal_size=4GB
  psql -X -q -d postgres -c "CREATE DATABASE bench"
  psql -X -q -c "CREATE EXTENSION exchange" \
    -c "CREATE TABLE bench_plain (id bigserial PRIMARY KEY, client int, v float8, at timestamptz DEFAULT now())"
  for i in 1 2 3 4 5 6 7 8; do psql -X -q -c "SELECT exchange.create_instrument('B$i', 1, 1)" >/dev/null; done
  psql -X -q -c "CREATE TABLE bench_batches AS
    SELECT b AS id, (SELECT jsonb_agg(jsonb_build_object('client_id', 'c' || (random() * 1000)::int, 'instrument', 'B1',
                                       'side', CASE WHEN random() < 0.5 THEN 'buy' ELSE 'sell' END, 'type', 'limit',
                                       'quantity', 1 + (random() * 4)::int, 'price', 95 + (random() * 10)::int))
                       FROM generate_series(1, 100) WHERE b > 0)::text AS body
      FROM generate_series(1, 1000) b" -c "ALTER TABLE bench_batches ADD PRIMARY KEY (id)"
  psql -X -q -c "SELECT exchange.create_instrument('C1', 1, 1)" >/dev/null
  psql -X -q -c "CREATE TABLE bench_cancel_ids (n bigserial PRIMARY KEY, order_id uuid NOT NULL)" \
    -c "CREATE SEQUENCE bench_cancel_next" -c "CREATE SEQUENCE bench_cancel_batch" \
    -c "CREATE SEQUENCE bench_amend_next" -c "CREATE SEQUENCE bench_amend_batch" \
    -c "INSERT INTO bench_cancel_ids (order_id)
        SELECT r.order_id FROM generate_series(1, 220) b,
               LATERAL exchange.place_orders((SELECT jsonb_agg(jsonb_build_object('client_id', 'k' || (g % 100),
                         'instrument', 'C1', 'side', 'buy', 'type', 'limit', 'quantity', 1, 'price', 1000 + g % 50))
                          FROM generate_series(1, 1000) g WHERE b > 0)) r"
}

# tps of one pgbench run of tests/perf/pgbench/SCRIPT: SCRIPT CLIENTS SECONDS
# (bench_tx: a fixed number of transactions per client instead).
bench_tx() {
  "$PGBENCH" -n -M prepared -t "$3" -c "$2" -j "$2" -f "tests/perf/pgbench/$1" 2>/dev/null |
    sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
bench_tps() {
  "$PGBENCH" -n -M prepared -T "$3" -c "$2" -j "$2" -f "tests/perf/pgbench/$1" 2>/dev/null |
    sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}

# The two builds of an A/B run (bench-pg-ab.sh, bench-pg-cpu-ab.sh): the
# extension at git revision REV and the working tree's, in WORK/base and
# WORK/new (exchange.so, control file, SQL scripts). The base revision's
# sources come from git archive (nothing checked out) and are built the way
# that revision builds (out of tree since the PGXS VPATH change, in its
# extension/ folder before). Run from the repository root.
ab_build() {
  local rev=$1 work=$2 sha out base_out b
  sha=$(git rev-parse --verify "$rev^{commit}")
  rm -rf "$work"
  mkdir -p "$work/src" "$work/base" "$work/new"
  git archive "$sha" | tar -x -C "$work/src"
  if grep -q 'out-of-tree\|out of tree' "$work/src/extension/Makefile"; then
    mkdir -p "$work/src/build/ext"
    make -s -C "$work/src/build/ext" -f "$work/src/extension/Makefile" -j "${JOBS:-2}" >/dev/null
    base_out=$work/src/build/ext
  else
    make -s -C "$work/src/extension" -j "${JOBS:-2}" >/dev/null
    base_out=$work/src/extension
  fi
  make -s ext >/dev/null
  for b in base new; do
    out=$([ "$b" = base ] && echo "$base_out" || echo "$(pwd)/build/ext")
    cp "$out/exchange.so" "$out/exchange.control" "$out"/exchange--*.sql "$work/$b/"
  done
}

# Installs build B (base or new) of WORK into PostgreSQL's folders (as root,
# or through sudo): install_build WORK B. A running server keeps the library
# it loaded until restarted: install(1) replaces the file (a new inode), where
# cp would rewrite the one the server's processes have mapped, and the
# previous round's server, still running at this point, crashed on its next
# call into it (seen as "server does not shut down" at its stop).
install_build() {
  local libdir sharedir as_root=()
  libdir=$(/usr/lib/postgresql/15/bin/pg_config --pkglibdir)
  sharedir=$(/usr/lib/postgresql/15/bin/pg_config --sharedir)/extension
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  "${as_root[@]}" install -m 755 "$1/$2/exchange.so" "$libdir/exchange.so"
  "${as_root[@]}" install -m 644 "$1/$2/exchange.control" "$1/$2"/exchange--*.sql "$sharedir/"
}

# How many differences exchange.verify finds over every instrument of the
# database (0: every book matches its tables).
verify_problems() {
  psql -X -At -c "SELECT count(*) FROM exchange.instruments i, exchange.verify(i.symbol)"
}
