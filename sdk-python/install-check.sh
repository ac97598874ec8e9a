#!/usr/bin/env bash
# The Python SDK as a user installs it: build the wheel, install it into fresh virtualenvs
# — one with the lowest protobuf and grpcio the package declares, one with the newest —
# and run a worker and a producer from each (scripts/smoke.py) against a live engine.
# Needs python3 with venv, the registry for pip, and the engine binary
# ($SWITCHYARD_BIN, else target/debug/switchyard). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")"
SDK=$(pwd)
BIN=${SWITCHYARD_BIN:-$SDK/../target/debug/switchyard}
PY=${PYTHON3:-python3}
# The floor of pyproject.toml's dependency ranges; keep the two in step.
LOWEST=("protobuf==4.21.6" "grpcio==1.59.0")

[ -x "$BIN" ] || { echo "no engine binary at $BIN"; exit 1; }
TMP=$(mktemp -d)
ENGINE_PID=
cleanup() {
  [ -n "$ENGINE_PID" ] && kill "$ENGINE_PID" 2>/dev/null && wait "$ENGINE_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

echo "== sdk-python install: build the wheel"
"$PY" -m pip wheel --quiet --disable-pip-version-check --no-deps "$SDK" -w "$TMP/dist"
WHEEL=$(ls "$TMP"/dist/switchyard_sdk-*.whl)
# (Read in Python, not piped to `grep -q`: grep stops at the first match, and the lister's
# broken pipe then fails the step under pipefail.)
"$PY" -c 'import sys, zipfile; sys.exit(not any(n.endswith("dist-info/licenses/LICENSE") for n in zipfile.ZipFile(sys.argv[1]).namelist()))' "$WHEEL" \
  || { echo "the wheel has no LICENSE"; exit 1; }

# The engine on built-in defaults (no config file in $TMP), on a free port.
(cd "$TMP" && exec "$BIN" serve --listen 127.0.0.1:0 >"$TMP/engine.out" 2>"$TMP/engine.err") &
ENGINE_PID=$!
URL=
for _ in $(seq 100); do
  line=$(head -n1 "$TMP/engine.out" 2>/dev/null || true)
  if [[ $line == "switchyard listening on "* ]]; then URL="http://${line#switchyard listening on }"; break; fi
  sleep 0.1
done
[ -n "$URL" ] || { echo "engine did not start:"; cat "$TMP/engine.err"; exit 1; }

check() { # name, extra requirements…
  local name=$1; shift
  echo "== sdk-python install: fresh venv, $name ${*:-(newest)}"
  "$PY" -m venv "$TMP/$name"
  "$TMP/$name/bin/pip" install --quiet --disable-pip-version-check "$WHEEL" "$@"
  # from $TMP, so `import switchyard_sdk` is the installed wheel, not ./src
  (cd "$TMP" && "$TMP/$name/bin/python" "$SDK/scripts/smoke.py" "$URL")
}
check lowest "${LOWEST[@]}"
check newest --upgrade protobuf grpcio
