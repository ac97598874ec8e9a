#!/usr/bin/env bash
# Python SDK checks: install, stub drift, mypy --strict, pytest against the engine binary.
# Expects an active virtualenv (python/pip on PATH); exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")"

echo "== sdk-python: install"
python -m pip install --quiet --disable-pip-version-check -e '.[dev]'

echo "== sdk-python: generated stubs match proto/"
python scripts/gen_stubs.py --check

echo "== sdk-python: mypy --strict"
python -m mypy --strict src/switchyard_sdk

echo "== sdk-python: pytest"
python -m pytest -q -p no:cacheprovider tests
