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

# A broker can take TCP connections and never answer them (RabbitMQ 3.10 wedged by heavy
# quorum-queue churn: every test would hang on connect). The probe waits for the broker's
# reply to the AMQP protocol header; a broker that does not reply is restarted.
answers_amqp() {
  timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672 && printf "AMQP\x00\x00\x09\x01" >&3 && head -c 1 <&3' 2>/dev/null |
    od -An -tx1 | grep -q 01
}
if command -v rabbitmq-server >/dev/null; then
  if answers_port 5672 && ! answers_amqp && ! answers_amqp; then
    echo "services: rabbitmq takes connections but does not answer AMQP: restarting it"
    if ! timeout 30 rabbitmqctl stop >/dev/null 2>&1; then
      pid=$(cat /var/lib/rabbitmq/mnesia/rabbit@localhost.pid 2>/dev/null)
      [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    fi
    for _ in $(seq 1 60); do answers_port 5672 || break; sleep 0.5; done
  fi
  answers_port 5672 || rabbitmq-server -detached >/dev/null 2>&1
  wait_for rabbitmq answers_amqp
fi

if ! answers_port 5432 && command -v pg_ctlcluster >/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start >/dev/null 2>&1
fi
command -v pg_ctlcluster >/dev/null && wait_for postgresql answers_port 5432
exit 0
