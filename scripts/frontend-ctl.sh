#!/usr/bin/env bash
# Starts or stops the Redis and pgx-frontend of `make run` (127.0.0.1 only).
#   frontend-ctl.sh start RUN_DIR BINARY CONNINFO REDIS_PORT HTTP_PORT WS_PORT
#   frontend-ctl.sh stop RUN_DIR
# Redis keeps its data in RUN_DIR/redis; the frontend logs to RUN_DIR/frontend.log
# and leaves its pid in RUN_DIR/frontend.pid. Stopping sends SIGTERM, which
# lets the frontend finish the requests in flight.
set -euo pipefail
cmd=${1:?usage: frontend-ctl.sh start|stop RUN_DIR ...}
run_dir=$(realpath -m "${2:?RUN_DIR missing}")

# Waits up to 10 s for the process in a pid file to exit.
wait_gone() {
  local pid=$1
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "error: process $pid did not stop" >&2
  return 1
}

case "$cmd" in
start)
  binary=${3:?BINARY missing}
  conninfo=${4:?CONNINFO missing}
  redis_port=${5:?REDIS_PORT missing}
  http_port=${6:?HTTP_PORT missing}
  ws_port=${7:?WS_PORT missing}
  mkdir -p "$run_dir/redis"
  if ! redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1; then
    redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$run_dir/redis" --daemonize yes \
      --pidfile "$run_dir/redis/redis.pid" --logfile "$run_dir/redis/redis.log"
    for _ in $(seq 50); do
      redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1 && break
      sleep 0.1
    done
  fi
  if [ -f "$run_dir/frontend.pid" ] && kill -0 "$(cat "$run_dir/frontend.pid")" 2>/dev/null; then
    echo "pgx-frontend already running (pid $(cat "$run_dir/frontend.pid"))"
    exit 0
  fi
  nohup "$binary" --db "$conninfo" --http-host 127.0.0.1 --http-port "$http_port" --ws-port "$ws_port" \
    --redis "127.0.0.1:$redis_port" >>"$run_dir/frontend.log" 2>&1 &
  echo $! >"$run_dir/frontend.pid"
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$http_port") 2>/dev/null && exit 0
    kill -0 "$(cat "$run_dir/frontend.pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "error: pgx-frontend did not start, see $run_dir/frontend.log" >&2
  exit 1
  ;;
stop)
  if [ -f "$run_dir/frontend.pid" ]; then
    pid=$(cat "$run_dir/frontend.pid")
    kill -TERM "$pid" 2>/dev/null && wait_gone "$pid"
    rm -f "$run_dir/frontend.pid"
  fi
  if [ -f "$run_dir/redis/redis.pid" ]; then
    pid=$(cat "$run_dir/redis/redis.pid")
    kill -TERM "$pid" 2>/dev/null && wait_gone "$pid"
    rm -f "$run_dir/redis/redis.pid"
  fi
  ;;
*)
  echo "usage: frontend-ctl.sh start|stop RUN_DIR ..." >&2
  exit 2
  ;;
esac
