#!/usr/bin/env bash
# Start (if needed) and require the services the suite talks to: PostgreSQL, Redis, RabbitMQ.
# CI fails here, loudly, rather than letting their tests skip.
set -uo pipefail

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_postgres() {
  command -v pg_ctlcluster >/dev/null && pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
}
start_redis() {
  command -v redis-server >/dev/null && redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 \
    --save "" --appendonly no --dir /tmp --logfile /tmp/billbyte-ci-redis.log
}
start_rabbitmq() {
  command -v rabbitmq-server >/dev/null && rabbitmq-server -detached
}

require() {  # name port starter
  local name=$1 port=$2 starter=$3
  if ! listening "$port"; then
    echo "$name is not listening on 127.0.0.1:$port; starting it"
    "$starter" || true
    for _ in $(seq 1 60); do listening "$port" && break; sleep 1; done
  fi
  if ! listening "$port"; then
    echo "FATAL: $name is required on 127.0.0.1:$port and could not be started" >&2
    return 1
  fi
  echo "$name: listening on 127.0.0.1:$port"
}

status=0
require PostgreSQL 5432 start_postgres || status=1
require Redis 6379 start_redis || status=1
require RabbitMQ 5672 start_rabbitmq || status=1
exit $status
