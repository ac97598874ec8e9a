#!/usr/bin/env bash
# The conformance cases run by the Node SDK: installs this folder's lockfile (the SDK is
# linked from ../../sdk-node, which must be built: sdk-node/check.sh or npm run build), then
# runs node:test. Needs the engine binary ($SWITCHYARD_BIN, else target/debug/switchyard).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
npm ci --no-audit --no-fund --silent
node --test --test-reporter=spec conformance.test.mjs
