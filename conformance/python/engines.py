"""The engines the conformance cases run against, and the pytest fixtures that start them.

The cases (../cases.yaml) are read once here. One engine serves every case's queues and
topics for the module; the TLS + token engine (``{secure_engine}``, README "TLS and
tokens") has the same queues and every case's tokens; a case with ``schedules:`` gets an
engine of its own (``own_engine``), since on the shared engine a schedule would pile jobs up
before the case's worker arrives. ``capture`` collects the SDK's log records.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from switchyard_sdk.testing import EngineProcess

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CASES = yaml.safe_load((HERE.parent / "cases.yaml").read_text())["cases"]
ONLY = [c for c in os.environ.get("CONFORMANCE_CASES", "").split(",") if c]
ENGINE_BIN = os.environ.get("SWITCHYARD_BIN") or str(ROOT / "target" / "debug" / "switchyard")
WAIT_MS = 10_000


QUEUES = {f"{c['name']}.{q}": cfg for c in CASES for q, cfg in (c.get("queues") or {}).items()}
TOPICS = {f"{c['name']}.{t}": {**cfg, "subscribers": [f"{c['name']}::{f}" for f in cfg["subscribers"]]}
          for c in CASES for t, cfg in (c.get("topics") or {}).items()}


def schedule_entry(case: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """A case's schedule as a ``schedules`` entry: its queue and function made engine names
    (the case writes ``function``, the engine's key is ``function_id``)."""
    entry = {k: v for k, v in cfg.items() if k not in ("function", "function_id")}
    entry["queue"] = f"{case}.{cfg['queue']}"
    entry["function_id"] = f"{case}::{cfg.get('function') or cfg['function_id']}"
    return entry




@pytest.fixture(scope="module", autouse=True)
def no_ambient_token() -> Iterator[None]:
    """Cases say which token they send; one from the environment would blur that."""
    saved = os.environ.pop("SWITCHYARD_TOKEN", None)
    yield
    if saved is not None:
        os.environ["SWITCHYARD_TOKEN"] = saved


@pytest.fixture(scope="module")
def engine_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = tmp_path_factory.mktemp("engine") / "conformance.yaml"
    config.write_text(json.dumps({"shutdown_grace_ms": 1000, "queue_configs": QUEUES,  # JSON is YAML
                                  "topic_configs": TOPICS}))
    with EngineProcess(config, binary=ENGINE_BIN) as engine:
        yield engine.url


@contextlib.contextmanager
def own_engine(case: dict[str, Any], tmp_path: Path) -> Iterator[str]:
    """An engine for one case with ``schedules``: its queues and its schedules only."""
    name = case["name"]
    config = tmp_path / "scheduled.yaml"
    config.write_text(json.dumps({
        "shutdown_grace_ms": 1000,
        "queue_configs": {f"{name}.{q}": cfg for q, cfg in (case.get("queues") or {}).items()},
        "schedules": {f"{name}.{n}": schedule_entry(name, cfg) for n, cfg in case["schedules"].items()}}))
    with EngineProcess(config, binary=ENGINE_BIN) as engine:
        yield engine.url


class Secure:
    """The TLS + token engine: its address, the two CAs and every case token's secret."""

    def __init__(self, address: str, ca: dict[str, str], secrets_by_token: dict[str, str]) -> None:
        self.address = address
        self.ca = ca  # "engine" / "other" -> ca.pem path
        self.secrets = secrets_by_token  # engine token name -> secret


def dev_certs(out: Path) -> Path:
    subprocess.run([ENGINE_BIN, "dev-certs", "--out", str(out)], check=True, timeout=60,
                   stdout=subprocess.DEVNULL)
    return out


def local_glob(case: str, kind: str, glob: str) -> str:
    return f"{case}.{glob}" if kind == "queues" else f"{case}::{glob}"


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    root = tmp_path_factory.mktemp("secure")
    certs, other = dev_certs(root / "certs"), dev_certs(root / "other")
    tokens, secrets_by_token = [], {}
    for case in CASES:
        for local, spec in (case.get("tokens") or {}).items():
            name = f"{case['name']}.{local}"
            secrets_by_token[name] = secrets.token_urlsafe(24)
            secret_file = root / f"{name}.secret"
            secret_file.write_text(secrets_by_token[name])
            token: dict[str, Any] = {"name": name, "secret_file": str(secret_file), "roles": spec["roles"]}
            for kind in ("queues", "functions"):
                if kind in spec:
                    token[kind] = [local_glob(case["name"], kind, g) for g in spec[kind]]
            tokens.append(token)
    config = root / "secure.yaml"
    config.write_text(json.dumps({
        "shutdown_grace_ms": 1000, "queue_configs": QUEUES,
        "tls": {"cert_file": str(certs / "server.pem"), "key_file": str(certs / "server-key.pem")},
        "auth": {"tokens": tokens}}))
    with EngineProcess(config, binary=ENGINE_BIN) as engine:
        yield Secure(engine.address, {"engine": str(certs / "ca.pem"), "other": str(other / "ca.pem")},
                     secrets_by_token)


class Capture(logging.Handler):
    """Every record the SDK logs (logger ``switchyard_sdk`` and its children)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._records_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._records_lock:
            self.records.append(record)

    def snapshot(self) -> list[logging.LogRecord]:
        with self._records_lock:
            return list(self.records)


@pytest.fixture(scope="module")
def capture() -> Iterator[Capture]:
    logger = logging.getLogger("switchyard_sdk")
    handler, level = Capture(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)
