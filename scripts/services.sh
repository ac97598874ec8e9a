#!/usr/bin/env bash
# Makes sure the local services the tests may use answer (Redis, RabbitMQ, PostgreSQL),
# starting any that is installed but down. Prints one line per service; never fails the
# run by itself — a suite that needs a service fails with its own clear message.
set -u

answers_redis() { (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null; }
answers_port() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # name, check command…
  local name=$1; shift
  for _ in $(seq 1 60); do "$@" && { echo "services: $name answers"; return 0; }; sleep 0.5; done
  echo "services: $name does not answer"; return 1
}

if ! answers_redis && command -v redis-server >/dev/null; then
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null 2>&1
fi
wait_for redis answers_redis

if ! answers_port 5672 && command -v rabbitmq-server >/dev/null; then
  rabbitmq-server -detached >/dev/null 2>&1
fi
command -v rabbitmq-server >/dev/null && wait_for rabbitmq answers_port 5672

if ! answers_port 5432 && command -v pg_ctlcluster >/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start >/dev/null 2>&1
fi
command -v pg_ctlcluster >/dev/null && wait_for postgresql answers_port 5432
exit 0
