#!/usr/bin/env bash
# What can be checked of docker/ without a Docker engine (docker/README.md):
#  1. compose.yaml and prometheus.yml parse and agree with each other and with
#     the Dockerfile; every COPY source exists (in the build context or as
#     the build stage's output on this machine); .dockerignore drops no
#     tracked file.
#  2. every library pgx-frontend loads comes from a Debian package.
#  3. docker/postgres-entrypoint.sh on a scratch data folder (127.0.0.1:25420):
#     first start (initdb, extension, pgx_frontend, demo instrument), logins,
#     SIGTERM, a second start that does not repeat the first-start SQL, the
#     server keeping the script's PID, SIGINT as fast shutdown.
#  4. build/frontend/pgx-frontend as an unprivileged user with the frontend
#     environment of compose.yaml, addresses and ports remapped (PostgreSQL
#     25420, Redis 63820, REST 18620, WebSocket 18621, all on 127.0.0.1):
#     /readyz, /metrics, the image's health check, no permission errors.
# Needs the installed extension and the built frontend (make build install-ext),
# root (or sudo), and /usr/bin/python3 with python3-yaml (make test-docker installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
BIN=/usr/lib/postgresql/15/bin
PG_PORT=25420 REDIS_PORT=63820 HTTP_PORT=18620 WS_PORT=18621
PASSWORD='check pw with spaces'
failures=0

pass() { echo "PASS  $*"; }
fail() { echo "FAIL  $*"; failures=$((failures + 1)); }
die() { echo "FAIL  $*"; exit 1; }

# The entrypoint switches to the postgres user as the image does: root, or sudo for a normal user.
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "run as root or with sudo (the entrypoint switches to the postgres user)"
  exec sudo -n "$0" "$@"
fi
/usr/bin/python3 -c 'import yaml' 2>/dev/null || die "/usr/bin/python3 has no yaml module (apt-get install python3-yaml)"
[ -x build/frontend/pgx-frontend ] || die "build/frontend/pgx-frontend is missing (make build)"

# ------------------------------------------------------------ 1. static checks
echo "== 1. compose.yaml, prometheus.yml, Dockerfile, .dockerignore"
/usr/bin/python3 - <<'PY' || failures=$((failures + 1))
import fnmatch, glob, os, re, subprocess, sys, yaml

bad = []
def check(ok, what):
    print(("PASS  " if ok else "FAIL  ") + what)
    if not ok:
        bad.append(what)

compose = yaml.safe_load(open("docker/compose.yaml"))
prom = yaml.safe_load(open("docker/prometheus.yml"))
services = compose["services"]
check(set(services) == {"postgres", "redis", "frontend", "prometheus"}, "compose services: postgres, redis, frontend, prometheus")
for name, svc in services.items():
    check("test" in svc.get("healthcheck", {}), f"{name} has a health check")
    for port in svc.get("ports", []):
        check(str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on 127.0.0.1 only")
deps = services["frontend"]["depends_on"]
check(all(deps.get(s, {}).get("condition") == "service_healthy" for s in ("postgres", "redis")),
      "frontend waits for healthy postgres and redis")
check("pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"] and "pgdata" in compose["volumes"],
      "PostgreSQL data in the named volume pgdata")
env = services["frontend"]["environment"]
check(not any(k.startswith("PGX_NO_AUTH") for k in env), "frontend does not disable authentication")
check(env["PGX_HTTP_HOST"] == "0.0.0.0", "frontend listens on 0.0.0.0 inside its container")
check("user=pgx_frontend" in env["PGX_DB"], "frontend connects as pgx_frontend")
job = next(j for j in prom["scrape_configs"] if j["job_name"] == "pgx-frontend")
check(job.get("metrics_path", "/metrics") == "/metrics"
      and job["static_configs"][0]["targets"] == [f"frontend:{env['PGX_HTTP_PORT']}"],
      "prometheus scrapes frontend:<REST port>/metrics")
mounts = [v.split(":") for v in services["prometheus"]["volumes"]]
check(any(os.path.normpath(os.path.join("docker", m[0])) == "docker/prometheus.yml" for m in mounts),
      "prometheus mounts docker/prometheus.yml")

# Dockerfile: logical lines, stages, COPY and bind-mount sources.
text = open("docker/Dockerfile").read()
lines = re.sub(r"\\\n\s*", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))).splitlines()
stage, stages, runs, copies, mounts = None, [], {}, [], []
for line in lines:
    words = line.split()
    if not words:
        continue
    op = words[0].upper()
    if op == "FROM":
        stage = words[3] if len(words) > 3 and words[2].upper() == "AS" else None
        stages.append(stage)
    elif op == "RUN":
        runs.setdefault(stage, []).append(line)
        for m in re.finditer(r"--mount=(\S+)", line):
            opts = dict(kv.split("=", 1) for kv in m.group(1).split(","))
            mounts.append((stage, opts))
    elif op == "COPY":
        flags = [w for w in words[1:] if w.startswith("--")]
        args = [w for w in words[1:] if not w.startswith("--")]
        frm = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
        copies.append((stage, frm, args[:-1], args[-1]))
for name, svc in services.items():
    if "build" in svc:
        b = svc["build"]
        check(os.path.normpath(os.path.join("docker", b["context"])) == "." and b["dockerfile"] == "docker/Dockerfile"
              and b["target"] in stages, f"{name} builds target {b['target']} of docker/Dockerfile from the repository root")

# .dockerignore, approximately as Docker applies it (a pattern matches the path or a parent folder).
patterns = [p.strip().rstrip("/") for p in open(".dockerignore") if p.strip() and not p.startswith("#")]
def ignored(path):
    parts = path.split("/")
    for pat in patterns:
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if fnmatch.fnmatch(prefix, pat) or (pat.startswith("**/") and fnmatch.fnmatch(parts[i - 1], pat[3:])):
                return True
    return False
tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, check=True).stdout.split()
dropped = [f for f in tracked if ignored(f)]
check(not dropped, f".dockerignore keeps every tracked file {dropped if dropped else ''}".rstrip())
check(all(ignored(p) for p in ("build/frontend/pgx-frontend", "build-asan/x", "extension/exchange.so",
                               "extension/pg/books.o", ".git/HEAD", ".run/pg", "docker/.env")),
      ".dockerignore drops build output, .git, .run and docker/.env")

def in_context(src):
    hits = [f for f in tracked if fnmatch.fnmatch(f, src) or f.startswith(src.rstrip("/") + "/")] or \
           ([src] if os.path.exists(src) else [])
    return bool(hits) and not all(ignored(h) for h in hits)
build_outputs = " ".join(runs.get("build", []))
for stage_name, frm, srcs, dest in copies:
    for src in srcs:
        if frm is None:
            ok = in_context(src) if src != "." else True
            check(ok, f"[{stage_name}] COPY {src}: in the build context")
        elif frm == "build":
            local = os.path.join(".", src[len("/src/"):]) if src.startswith("/src/") else src
            check(bool(glob.glob(local)), f"[{stage_name}] COPY --from=build {src}: produced by the build stage ({local} here)")
for stage_name, opts in mounts:
    if opts.get("from") == "build":
        ok = opts["source"] in build_outputs
        check(ok, f"[{stage_name}] mount {opts['source']} from the build stage: written by its RUN")
    elif "source" in opts:
        check(in_context(opts["source"]), f"[{stage_name}] mount {opts['source']}: in the build context")
hc = services["frontend"]["healthcheck"]["test"][1]
check(any(s == "frontend" and d == hc for s, _, _, d in copies), f"frontend image contains its health check {hc}")
sys.exit(1 if bad else 0)
PY

# ------------------------------------------------------------ 2. runtime libraries
echo "== 2. pgx-frontend's libraries -> Debian packages (ldd, dpkg -S)"
if packages=$(scripts/runtime-packages.sh build/frontend/pgx-frontend); then
  pass "every library of pgx-frontend belongs to a package: $(echo "$packages" | tr '\n' ' ')"
else
  fail "scripts/runtime-packages.sh build/frontend/pgx-frontend"
fi

# ------------------------------------------------------------ 3. entrypoint
echo "== 3. docker/postgres-entrypoint.sh on 127.0.0.1:$PG_PORT"
grep -q exchange_trader /usr/share/postgresql/15/extension/exchange--*.sql ||
  die "the installed extension has no role exchange_trader (make install-ext); the first start needs it"
dir=$(mktemp -d /tmp/pgx-docker-check.XXXXXX)
chmod 755 "$dir"
pg_pid='' fe_pid='' redis_started=''
cleanup() {
  [ -n "$fe_pid" ] && kill -TERM "$fe_pid" 2>/dev/null && wait "$fe_pid" 2>/dev/null
  [ -n "$redis_started" ] && redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1
  [ -n "$pg_pid" ] && kill -INT "$pg_pid" 2>/dev/null && wait "$pg_pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

export PGDATA=$dir/data PGPORT=$PG_PORT PGX_LISTEN_ADDRESSES=127.0.0.1 PGX_SOCKET_DIR=$dir/sock \
  PGX_FRONTEND_PASSWORD=$PASSWORD PGX_DEMO_INSTRUMENT=1

# Starts the entrypoint in the background and waits until the server answers.
start_entrypoint() {
  docker/postgres-entrypoint.sh >"$dir/$1" 2>&1 &
  pg_pid=$!
  for _ in $(seq 600); do
    "$BIN/pg_isready" -q -h "$dir/sock" -p "$PG_PORT" && return 0
    kill -0 "$pg_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$dir/$1"
  die "the entrypoint did not start a server ($1 above)"
}
as_frontend() { PGPASSWORD=$1 "$BIN/psql" -X -At -h 127.0.0.1 -p "$PG_PORT" -U pgx_frontend -d exchange -c "$2" 2>&1; }
as_superuser() { runuser -u postgres -- "$BIN/psql" -X -At -h "$dir/sock" -p "$PG_PORT" -d exchange -c "$1" 2>&1; }
expect() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: got '$2', expected '$3'"; fi; }
expect_match() { if [[ $2 == *"$3"* ]]; then pass "$1"; else fail "$1: got '$2'"; fi; }

# A first start that fails halfway (here: its database cannot be connected to)
# leaves no server running and is repeated in full by the next start.
status=0
PGX_FRONTEND_PASSWORD='' docker/postgres-entrypoint.sh >"$dir/nopassword.log" 2>&1 || status=$?
if [ "$status" != 0 ] && [ ! -e "$PGDATA/PG_VERSION" ]; then
  pass "no PGX_FRONTEND_PASSWORD: refused before initdb"
else
  fail "no PGX_FRONTEND_PASSWORD: status $status, $(cat "$dir/nopassword.log")"
fi
status=0
PGX_DEMO_INSTRUMENT=maybe docker/postgres-entrypoint.sh >"$dir/baddemo.log" 2>&1 || status=$?
if [ "$status" != 0 ] && [ ! -e "$PGDATA/PG_VERSION" ] && grep -q "must be 0 or 1" "$dir/baddemo.log"; then
  pass "PGX_DEMO_INSTRUMENT=maybe: refused before initdb"
else
  fail "PGX_DEMO_INSTRUMENT=maybe: status $status, $(tail -3 "$dir/baddemo.log")"
fi
status=0
PGX_DATABASE=template0 timeout 120 docker/postgres-entrypoint.sh >"$dir/failed.log" 2>&1 || status=$?
if [ "$status" != 0 ] && [ "$status" != 124 ] && [ -e "$PGDATA/PG_VERSION" ] && [ ! -e "$PGDATA/postmaster.pid" ] &&
  [ ! -e "$PGDATA/pgx-first-start.done" ]; then
  pass "a first start that fails halfway exits non-zero and stops its temporary server"
else
  fail "failed first start: status $status; $(tail -3 "$dir/failed.log")"
fi
start_entrypoint first.log
expect_match "first start ran the first-start SQL" "$(cat "$dir/first.log")" "first start done"
expect "postgres kept the entrypoint's PID (exec)" "$(head -1 "$PGDATA/postmaster.pid")" "$pg_pid"
expect "listens on the PGX_LISTEN_ADDRESSES given" "$(as_superuser 'SHOW listen_addresses')" "127.0.0.1"
expect "shared_preload_libraries" "$(as_superuser 'SHOW shared_preload_libraries')" "exchange"
expect "extension created in database exchange" "$(as_superuser "SELECT extname FROM pg_extension WHERE extname = 'exchange'")" "exchange"
expect "pgx_frontend logs in over TCP with its password (scram), not a superuser, member of exchange_trader" \
  "$(as_frontend "$PASSWORD" "SELECT current_user, rolsuper, pg_has_role('exchange_trader', 'member') FROM pg_roles WHERE rolname = current_user")" \
  "pgx_frontend|f|t"
expect "demo instrument (PGX_DEMO_INSTRUMENT=1)" "$(as_frontend "$PASSWORD" "SELECT symbol FROM exchange.list_instruments()")" "BTC-USD"
expect "pgx_frontend can trade" \
  "$(as_frontend "$PASSWORD" "SELECT status FROM exchange.place_order('docker-check', 'BTC-USD', 'buy', 'limit', 1, 100)")" "open"
expect_match "pgx_frontend cannot read the tables directly" \
  "$(as_frontend "$PASSWORD" "SELECT count(*) FROM exchange.orders")" "permission denied"
expect_match "a wrong password is refused" "$(as_frontend wrong "SELECT 1")" "password authentication failed"
expect_match "postgres without a password cannot log in over TCP" \
  "$("$BIN/psql" -X -w -h 127.0.0.1 -p "$PG_PORT" -U postgres -d exchange -c 'SELECT 1' 2>&1)" "no password supplied"
expect "scram-sha-256 stored" "$(as_superuser "SELECT left(rolpassword, 13) FROM pg_authid WHERE rolname = 'pgx_frontend'")" "SCRAM-SHA-256"

# A changed password must survive a restart: the first-start SQL would reset it.
as_superuser "ALTER ROLE pgx_frontend PASSWORD 'changed'" >/dev/null
kill -TERM "$pg_pid"
status=0
wait "$pg_pid" || status=$?
pg_pid=
expect "SIGTERM stops the server (exit status)" "$status" 0
start_entrypoint second.log
if grep -q "first start" "$dir/second.log"; then fail "second start repeated the first start"; else pass "second start skipped the first start"; fi
expect "second start kept the changed password" "$(as_frontend changed "SELECT 'ok'")" "ok"
as_superuser "ALTER ROLE pgx_frontend PASSWORD '$PASSWORD'" >/dev/null

# ------------------------------------------------------------ 4. frontend
echo "== 4. pgx-frontend with compose.yaml's environment (remapped to 127.0.0.1, ports $REDIS_PORT, $HTTP_PORT, $WS_PORT)"
mkdir -p "$dir/redis"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$dir/redis" --daemonize yes --save '' --appendonly no \
  --logfile "$dir/redis/redis.log" --pidfile "$dir/redis/redis.pid"
redis_started=1
mapfile -t fe_env < <(PGX_FRONTEND_PASSWORD=$PASSWORD PG_PORT=$PG_PORT REDIS_PORT=$REDIS_PORT HTTP_PORT=$HTTP_PORT \
  WS_PORT=$WS_PORT /usr/bin/python3 - <<'PY'
import os, re, sys, yaml
# compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error}, with docker/.env.example as the .env.
defaults = dict(l.strip().split("=", 1) for l in open("docker/.env.example") if "=" in l and not l.startswith("#"))
defaults["PGX_FRONTEND_PASSWORD"] = os.environ["PGX_FRONTEND_PASSWORD"]
def value(m):
    name, op, arg = m.group(1), m.group(2), m.group(3)
    v = defaults.get(name, "")
    if op == ":?" and not v:
        sys.exit(f"{name} unset: {arg}")
    return v if v or op != ":-" else arg
env = {k: re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", value, str(v))
       for k, v in yaml.safe_load(open("docker/compose.yaml"))["services"]["frontend"]["environment"].items()}
# The compose network's names and ports, as they are on this machine.
remap = {"PGX_DB": ("host=postgres port=5432", f"host=127.0.0.1 port={os.environ['PG_PORT']}"),
         "PGX_HTTP_HOST": ("0.0.0.0", "127.0.0.1"),
         "PGX_HTTP_PORT": ("8000", os.environ["HTTP_PORT"]),
         "PGX_WS_PORT": ("8001", os.environ["WS_PORT"]),
         "PGX_REDIS": ("redis:6379", f"127.0.0.1:{os.environ['REDIS_PORT']}")}
for key, (old, new) in remap.items():
    if old not in env[key]:
        sys.exit(f"compose.yaml's {key} is {env[key]!r}, expected it to contain {old!r}")
    env[key] = env[key].replace(old, new)
for k, v in env.items():
    print(f"{k}={v}")
PY
)
[ ${#fe_env[@]} -gt 0 ] || die "could not read the frontend environment from compose.yaml"
printf '      %s\n' "${fe_env[@]}" | sed 's/^\(      PGPASSWORD=\).*/\1***/'
env -i PATH=/usr/bin:/bin "${fe_env[@]}" setpriv --reuid=nobody --regid=nogroup --clear-groups \
  "$repo/build/frontend/pgx-frontend" >"$dir/frontend.log" 2>&1 &
fe_pid=$!
code=
for _ in $(seq 300); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/readyz" || true)
  [ "$code" = 200 ] && break
  kill -0 "$fe_pid" 2>/dev/null || break
  sleep 0.1
done
expect "GET /readyz" "$code" 200
expect_match "GET /metrics" "$(curl -s "http://127.0.0.1:$HTTP_PORT/metrics")" "http_requests_total"
if PGX_HTTP_PORT=$HTTP_PORT docker/frontend-healthcheck.sh; then pass "docker/frontend-healthcheck.sh"; else fail "docker/frontend-healthcheck.sh"; fi
expect "runs as an unprivileged user" "$(ps -o user= -p "$fe_pid")" "nobody"
order='{"instrument":"BTC-USD","side":"buy","type":"limit","price":"100.00","quantity":"1"}'
post_order() {
  curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' "$@" -d "$order" \
    "http://127.0.0.1:$HTTP_PORT/orders"
}
if grep -q 'FUNCTION exchange.create_api_key' /usr/share/postgresql/15/extension/exchange--*.sql; then
  api_key=$(as_superuser "SELECT api_key FROM exchange.create_api_key('docker-check')")
  expect "POST /orders without an API key (authentication is on)" "$(post_order)" 401
  expect "POST /orders with a key from exchange.create_api_key" "$(post_order -H "X-API-Key: $api_key")" 201
else
  echo "SKIP  API keys: the installed extension has no exchange.create_api_key yet"
fi
sleep 2
if grep -qi "permission denied" "$dir/frontend.log"; then
  fail "pgx_frontend lacks a privilege the frontend uses: $(grep -i -m1 -o 'ERROR: .*' "$dir/frontend.log")"
else
  pass "no permission errors in the frontend's log"
fi
kill -TERM "$fe_pid"
status=0
wait "$fe_pid" || status=$?
fe_pid=
expect "frontend exits 0 on SIGTERM" "$status" 0

# SIGINT (the image's STOPSIGNAL) is a fast shutdown: it does not wait for clients.
PGPASSWORD=$PASSWORD "$BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U pgx_frontend -d exchange -c 'SELECT pg_sleep(60)' \
  >/dev/null 2>&1 &
client=$!
sleep 0.5
start=$SECONDS
kill -INT "$pg_pid"
status=0
wait "$pg_pid" || status=$?
pg_pid=
wait "$client" 2>/dev/null || true
if [ "$status" = 0 ] && [ $((SECONDS - start)) -lt 10 ]; then
  pass "SIGINT: fast shutdown with a client connected"
else
  fail "SIGINT: status $status after $((SECONDS - start)) s"
fi

echo
if [ "$failures" -eq 0 ]; then echo "docker-check: all passed"; else echo "docker-check: $failures failed"; exit 1; fi
