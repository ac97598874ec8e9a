#!/usr/bin/env bash
# Runs the four scenarios (examples/README.md) in the given languages, each against a fresh
# engine on examples/scenarios.yaml, and fails if any scenario's own check fails:
#   bash examples/check.sh rust python node
# The ledger runs twice (LEDGER_CONCURRENCY=1, the seed's, then 4); bulk-email runs with
# BULK_BACKOFF_MS=100 so its retries take ~3 s instead of minutes. Needs the engine binary
# ($SWITCHYARD_BIN, else target/debug/switchyard), and per language: the Rust examples
# built, .venv with the Python SDK, npm ci in examples/node.
# SWITCHYARD_STORE=rabbitmq runs them on the local RabbitMQ instead of in memory: each engine
# on one key prefix in a vhost of this run's own (made with rabbitmqctl, deleted at the end).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=${SWITCHYARD_BIN:-$ROOT/target/debug/switchyard}
PY=${PYTHON:-$ROOT/.venv/bin/python}
LOGS=$(mktemp -d)
CONFIG=examples/scenarios.yaml
STORE=${SWITCHYARD_STORE:-in_memory}
case $STORE in
  in_memory) ;;
  rabbitmq)
    VHOST="sycheck-$$-$RANDOM"
    timeout 60 rabbitmqctl -q add_vhost "$VHOST" >/dev/null && timeout 60 rabbitmqctl -q set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null \
      || { echo "cannot make a RabbitMQ vhost (is RabbitMQ running? scripts/services.sh starts it)"; exit 1; }
    trap 'timeout 120 rabbitmqctl -q delete_vhost "$VHOST" >/dev/null' EXIT
    # One key prefix for the whole run: every engine start declares the same quorum queues
    # (idempotent) instead of 30 new ones — RabbitMQ 3.10 wedges under heavy quorum-queue
    # churn. Each scenario drains its queues before it reports ok.
    PREFIX="run$$$RANDOM"
    CONFIG=$LOGS/scenarios.yaml ;;
  *) echo "SWITCHYARD_STORE must be in_memory or rabbitmq, not $STORE"; exit 1 ;;
esac
export BULK_BACKOFF_MS=${BULK_BACKOFF_MS:-100}
SCENARIO_TIMEOUT=${SCENARIO_TIMEOUT:-120}

command_for() { # language scenario
  case $1 in
    rust) echo "$ROOT/target/debug/$2" ;;
    python) echo "$PY $ROOT/examples/python/$2.py" ;;
    node) echo "node $ROOT/examples/node/$2.mjs" ;;
  esac
}

# Starts the engine on a free port; sets ENGINE_PID and SWITCHYARD_URL.
start_engine() {
  local out=$LOGS/engine.out
  : >"$out"
  if [ "$STORE" = rabbitmq ]; then # the scenarios' queues, on a fresh prefix
    sed '/^adapter:/,$d' examples/scenarios.yaml >"$CONFIG"
    printf 'adapter:\n  name: rabbitmq\n  config: {amqp_url: "amqp://guest:guest@127.0.0.1:5672/%s", key_prefix: "%s"}\n' \
      "$VHOST" "$PREFIX" >>"$CONFIG"
  fi
  "$BIN" serve --config "$CONFIG" --listen 127.0.0.1:0 >"$out" 2>>"$LOGS/engine.err" &
  ENGINE_PID=$!
  # Up to 30 s: on rabbitmq the first start declares every queue's quorum shard queues,
  # which takes seconds on a loaded machine.
  for _ in $(seq 300); do
    local line
    line=$(head -n1 "$out")
    if [[ $line == "switchyard listening on "* ]]; then
      export SWITCHYARD_URL="http://${line#switchyard listening on }"
      return 0
    fi
    sleep 0.1
  done
  echo "engine did not start; log:"; tail -20 "$LOGS/engine.err"; stop_engine; return 1
}

stop_engine() { kill "$ENGINE_PID" 2>/dev/null; wait "$ENGINE_PID" 2>/dev/null; }

failed=()
scenario() { # language scenario [args…]; env from the caller
  local lang=$1 name=$2; shift 2
  local label="$lang $name${LEDGER_CONCURRENCY:+ (concurrency ${LEDGER_CONCURRENCY})}"
  start_engine || { failed+=("$label"); return; }
  # shellcheck disable=SC2046
  if timeout "$SCENARIO_TIMEOUT" $(command_for "$lang" "$name") "$@" >"$LOGS/out" 2>&1; then
    echo "  ok    $label: $(grep '^check ok' "$LOGS/out")"
  else
    echo "  FAIL  $label"; sed 's/^/        /' "$LOGS/out" | tail -30
    failed+=("$label")
  fi
  stop_engine
}

[ -x "$BIN" ] || { echo "no engine binary at $BIN"; exit 1; }
for lang in "$@"; do
  if [ "$lang" = rust ]; then
    cargo build -q -p switchyard-examples --locked || { failed+=("rust build"); continue; }
  fi
  scenario "$lang" http-to-queue --check
  LEDGER_CONCURRENCY=1 scenario "$lang" ledger
  LEDGER_CONCURRENCY=4 scenario "$lang" ledger
  scenario "$lang" bulk-email
  scenario "$lang" dead-letters
done
rm -rf "$LOGS"
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed scenarios: ${failed[*]}"
  exit 1
fi
echo "all scenarios passed on $STORE: $*"
