#!/usr/bin/env bash
# The web console in a real headless browser. Installs what it needs, idempotently:
# Debian's chromium (only when /usr/bin/chromium is missing) and this folder's lockfile
# (playwright-core, which drives the installed browser and downloads none; the Node SDK is
# linked from ../../../sdk-node, which must be built: sdk-node/check.sh or npm run build).
# Screenshots of every page land in target/console-screenshots/.
# Needs the engine binary ($SWITCHYARD_BIN, else target/debug/switchyard).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
npm ci --no-audit --no-fund --silent
node --test --test-reporter=spec console.test.mjs
