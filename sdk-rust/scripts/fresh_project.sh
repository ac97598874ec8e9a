#!/usr/bin/env bash
# The Rust SDK as a user gets it: `cargo package` the SDK and its proto crate, unpack them,
# build a fresh Cargo project (outside the workspace) that depends on the packaged SDK, and
# run its worker and producer (sdk-rust/fresh-project/main.rs) against a live engine.
#   bash sdk-rust/scripts/fresh_project.sh
# Needs the engine binary ($SWITCHYARD_BIN, else target/debug/switchyard). Builds offline
# from the local registry cache when it can (same versions as the workspace's Cargo.lock),
# else online. The project shares the workspace's target/ so dependencies are not rebuilt.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BIN=${SWITCHYARD_BIN:-$ROOT/target/debug/switchyard}
[ -x "$BIN" ] || { echo "no engine binary at $BIN"; exit 1; }
WORK=$(mktemp -d)
ENGINE_PID=
cleanup() { [ -n "$ENGINE_PID" ] && kill "$ENGINE_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

cargo_any() { cargo "$@" --offline 2>"$WORK/offline.err" || { cat "$WORK/offline.err" >&2; cargo "$@"; }; }

# 1. The packages, as they would be published (LICENSE included).
cargo_any package -q -p switchyard-proto -p switchyard-sdk --no-verify --allow-dirty
for crate in switchyard-proto switchyard-sdk; do
  tar -xzf "target/package/$crate-0.1.0.crate" -C "$WORK"
done
[ -f "$WORK/switchyard-sdk-0.1.0/LICENSE" ] || { echo "the packaged SDK has no LICENSE"; exit 1; }

# 2. A fresh project depending on them (the proto crate patched in, as if from crates.io).
mkdir -p "$WORK/app/src"
cp sdk-rust/fresh-project/main.rs "$WORK/app/src/main.rs"
cp Cargo.lock "$WORK/app/Cargo.lock"
cat >"$WORK/app/Cargo.toml" <<TOML
[package]
name = "switchyard-fresh-app"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
switchyard-sdk = { path = "$WORK/switchyard-sdk-0.1.0" }
tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
serde_json = "1"

[patch.crates-io]
switchyard-proto = { path = "$WORK/switchyard-proto-0.1.0" }

[profile.dev]
debug = "line-tables-only"
TOML
(cd "$WORK/app" && CARGO_TARGET_DIR="$ROOT/target" cargo_any build -q)

# 3. Against a live engine.
printf 'queue_configs:\n  default:\n    max_retries: 1\n' >"$WORK/iii-config.yaml"
"$BIN" serve --config "$WORK/iii-config.yaml" --listen 127.0.0.1:0 >"$WORK/engine.out" 2>"$WORK/engine.err" &
ENGINE_PID=$!
for _ in $(seq 100); do
  line=$(head -n1 "$WORK/engine.out")
  [[ $line == "switchyard listening on "* ]] && break
  sleep 0.1
done
[[ $line == "switchyard listening on "* ]] || { echo "engine did not start:"; tail "$WORK/engine.err"; exit 1; }
SWITCHYARD_URL="http://${line#switchyard listening on }" timeout 120 "$ROOT/target/debug/switchyard-fresh-app"
