#!/usr/bin/env bash
# Everything sdk-node promises, in one command: clean install from the lockfile, proto
# copies identical to ../proto, type-checked build (ESM and CommonJS), and the node:test
# suite (unit tests, the worker protocol against a fake engine, end-to-end tests against
# the real engine binary: SWITCHYARD_BIN, else ../target/debug/switchyard, including the
# examples/node quickstart, and the `npm pack` tarball installed into fresh CommonJS, ESM
# and tsc-commonjs projects). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

echo "== sdk-node: npm ci"
npm ci --no-audit --no-fund
echo "== sdk-node: proto drift check"
npm run --silent check-proto
echo "== sdk-node: build"
npm run --silent build
echo "== sdk-node: type tests (test/types)"
npx tsc -p test/types/tsconfig.json
echo "== examples/node: npm ci (links the built package)"
(cd ../examples/node && npm ci --no-audit --no-fund)
echo "== sdk-node: test"
npm test
