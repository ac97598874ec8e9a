"""Fixtures that run a real engine binary on 127.0.0.1 and workers connected to it.

Invariant: every engine and worker a test starts is stopped when the test ends, and every
wait is bounded (pytest-timeout backs this up), so no test can hang or leak a process.
The engine is ``$SWITCHYARD_BIN`` if set, else ``target/debug/switchyard`` of this repo.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import switchyard_sdk
from switchyard_sdk import Worker
from switchyard_sdk.testing import EngineProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
ENGINE_BIN = Path(os.environ.get("SWITCHYARD_BIN") or REPO_ROOT / "target" / "debug" / "switchyard")

DEFAULT_CONFIG = """\
shutdown_grace_ms: 1000
queue_configs:
  default: {max_retries: 2, backoff_ms: 50, concurrency: 10}
  payment: {type: fifo, message_group_field: orderId, max_retries: 3, backoff_ms: 50, concurrency: 4}
"""


Engine = EngineProcess


@pytest.fixture
def engine_config() -> str:
    """Override in a test module to run the engine with another config."""
    return DEFAULT_CONFIG


@pytest.fixture
def engine(tmp_path: Path, engine_config: str, request: pytest.FixtureRequest) -> Iterator[Engine]:
    if not ENGINE_BIN.exists():
        pytest.fail(f"engine binary not found at {ENGINE_BIN}; build it with "
                    "`cargo build -p switchyard-engine --bin switchyard` or set SWITCHYARD_BIN")
    config = tmp_path / "iii-config.yaml"
    config.write_text(engine_config)
    eng = EngineProcess(config, binary=str(ENGINE_BIN), log_path=tmp_path / "engine.log")
    yield eng
    eng.stop()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        sys.stderr.write(f"\n--- engine log ---\n{eng.log()}\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]


@pytest.fixture
def make_worker(engine: Engine) -> Iterator[Callable[..., Worker]]:
    """Factory for workers on the test's engine; all are shut down at teardown."""
    workers: list[Worker] = []

    def make(**kwargs: Any) -> Worker:
        kwargs.setdefault("shutdown_grace", 2.0)
        w = switchyard_sdk.register_worker(engine.url, **kwargs)
        workers.append(w)
        return w

    yield make
    for w in workers:
        w.shutdown(grace=1.0)


@pytest.fixture
def worker(make_worker: Callable[..., Worker]) -> Worker:
    w = make_worker()
    assert w.wait_connected(10), "worker was not welcomed by the engine"
    return w
