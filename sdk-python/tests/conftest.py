"""Fixtures that run a real engine binary on 127.0.0.1 and workers connected to it.

Invariant: every engine and worker a test starts is stopped when the test ends, and every
wait is bounded (pytest-timeout backs this up), so no test can hang or leak a process.
The engine is ``$SWITCHYARD_BIN`` if set, else ``target/debug/switchyard`` of this repo.
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import switchyard_sdk
from switchyard_sdk import Worker

REPO_ROOT = Path(__file__).resolve().parents[2]
ENGINE_BIN = Path(os.environ.get("SWITCHYARD_BIN") or REPO_ROOT / "target" / "debug" / "switchyard")
LISTEN_LINE = re.compile(r"switchyard listening on (127\.0\.0\.1:\d+)")

DEFAULT_CONFIG = """\
shutdown_grace_ms: 1000
queue_configs:
  default: {max_retries: 2, backoff_ms: 50, concurrency: 10}
  payment: {type: fifo, message_group_field: orderId, max_retries: 3, backoff_ms: 50, concurrency: 4}
"""


class Engine:
    """One engine process; ``restart()`` brings it back on the same port."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.address = "127.0.0.1:0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self, timeout: float = 20.0) -> None:
        if not ENGINE_BIN.exists():
            pytest.fail(f"engine binary not found at {ENGINE_BIN}; build it with "
                        "`cargo build -p switchyard-engine --bin switchyard` or set SWITCHYARD_BIN")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(ENGINE_BIN), "serve", "--config", str(self.config_path), "--listen", self.address],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        assert self.proc.stdout is not None
        line = _read_line(self.proc.stdout, timeout)
        match = LISTEN_LINE.search(line)
        if not match:
            self.kill()
            pytest.fail(f"engine did not report its address (got {line!r}); log:\n{self.log()}")
        self.address = match.group(1)
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # keep draining

    def kill(self) -> None:
        """SIGKILL (a crash), then reap."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM (graceful), escalating to SIGKILL after 10 s."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.kill()
        deadline = time.monotonic() + 10
        while True:  # the port can take a moment to be free again
            try:
                self.start()
                return
            except pytest.fail.Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def _read_line(stream: Any, timeout: float) -> str:
    """Read one line from a pipe without blocking past `timeout`."""
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    buf = b""
    deadline = time.monotonic() + timeout
    try:
        while not buf.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(remaining):
                break
            chunk = os.read(stream.fileno(), 1)
            if not chunk:
                break
            buf += chunk
    finally:
        sel.close()
    return buf.decode(errors="replace")


@pytest.fixture
def engine_config() -> str:
    """Override in a test module to run the engine with another config."""
    return DEFAULT_CONFIG


@pytest.fixture
def engine(tmp_path: Path, engine_config: str, request: pytest.FixtureRequest) -> Iterator[Engine]:
    config = tmp_path / "iii-config.yaml"
    config.write_text(engine_config)
    eng = Engine(config, tmp_path / "engine.log")
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
