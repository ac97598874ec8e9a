"""Helpers for testing code that uses Switchyard: a handler without an engine, and a real
engine for a test.

Invariant: ``run_handler`` calls a handler the way a worker does — the payload and the
result make the same JSON round trip (so a value the wire cannot carry fails here too),
``ctx`` is passed only to handlers that take it, ``async`` handlers are awaited — but
with no engine, no retry and no queue: it is the eager mode of Celery, or
``Sidekiq::Testing.inline!``. ``EngineProcess`` runs the real engine binary on
``127.0.0.1:0`` and always stops it.

1. Unit-test a handler: ``run_handler(charge, {"orderId": "o1"}, fake_context(attempt=3))``
   (``await run_handler_async(…)`` inside a running loop).
2. Run a worker against a real engine in a test::

       @pytest.fixture
       def engine():
           with EngineProcess(config="queue_configs: {payment: {max_retries: 0}}") as e:
               yield e

       def test_payment(engine):
           with register_worker(engine.url) as sy: ...

   The binary is `binary`, else ``$SWITCHYARD_BIN``, else ``switchyard`` on ``PATH``.

Not done: an in-process engine (the engine is Rust; a process is what users run).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import selectors
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ._handler import AdaptedHandler, Handler
from ._json import Encoder, to_python, to_value
from .context import Context
from .typed import Function

_LISTEN_LINE = re.compile(r"switchyard listening on (\S+)")


def fake_context(function_id: str = "test::function", *, attempt: int = 1, max_attempts: int = 1,
                 queue: str | None = None, message_receipt_id: str | None = None,
                 group: str | None = None, **fields: Any) -> Context:
    """A ``Context`` as a worker would build it; a queue without a receipt id gets one."""
    if queue is not None and message_receipt_id is None:
        message_receipt_id = "test-receipt"
    return Context(function_id=function_id, invocation_id=fields.pop("invocation_id", "test-invocation"),
                   attempt=attempt, max_attempts=max_attempts, queue=queue,
                   message_receipt_id=message_receipt_id, group=group, **fields)


def run_handler(handler: Handler | Function[Any, Any], payload: Any, ctx: Context | None = None, *,
                default: Encoder | None = None) -> Any:
    """Call `handler` with `payload` as a worker would and return its result (or raise what
    it raises). Not from inside a running event loop: use ``run_handler_async`` there."""
    return asyncio.run(run_handler_async(handler, payload, ctx, default=default))


async def run_handler_async(handler: Handler | Function[Any, Any], payload: Any,
                            ctx: Context | None = None, *, default: Encoder | None = None) -> Any:
    """``run_handler`` for asyncio tests (a ``def`` handler runs in a thread, as on a worker)."""
    fn = handler.adapted() if isinstance(handler, Function) else handler
    adapted = AdaptedHandler(fn)
    ctx = ctx or fake_context(handler.id if isinstance(handler, Function) else "test::function")
    args = (to_python(to_value(payload, default)),) + ((ctx,) if adapted.wants_context else ())
    if adapted.is_async:
        result = fn(*args)
    else:
        result = await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args))
    if inspect.isawaitable(result):
        result = await result
    return to_python(to_value(result, default))


class EngineProcess:
    """The engine binary on ``127.0.0.1:0`` (``restart`` keeps the port); a context manager.

    `config`: YAML text, or a path to a config file; None: the engine's built-in defaults.
    `log_path`: where its stderr goes (default: a file in a temporary directory).
    """

    def __init__(self, config: str | os.PathLike[str] | None = None, *, binary: str | None = None,
                 log_path: str | os.PathLike[str] | None = None, start: bool = True) -> None:
        self.binary = binary or os.environ.get("SWITCHYARD_BIN") or shutil.which("switchyard")
        if not self.binary or not Path(self.binary).exists():
            raise FileNotFoundError("no switchyard engine binary: pass binary=, set $SWITCHYARD_BIN "
                                    "or put switchyard on PATH (cargo install --path engine)")
        self._tmp = tempfile.TemporaryDirectory(prefix="switchyard-test-")
        self.config_path: Path | None = None
        if isinstance(config, os.PathLike) or (isinstance(config, str) and "\n" not in config
                                               and Path(config).is_file()):
            self.config_path = Path(config)
        elif config is not None:
            self.config_path = Path(self._tmp.name, "iii-config.yaml")
            self.config_path.write_text(config)
        self.log_path = Path(log_path) if log_path else Path(self._tmp.name, "engine.log")
        self.address = "127.0.0.1:0"
        self.proc: subprocess.Popen[bytes] | None = None
        if start:
            self.start()

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self, timeout: float = 20.0) -> None:
        args = [str(self.binary), "serve", "--listen", self.address]
        if self.config_path is not None:
            args += ["--config", str(self.config_path)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log,
                                         stdin=subprocess.DEVNULL, cwd=self._tmp.name)
        assert self.proc.stdout is not None
        line = read_line(self.proc.stdout, timeout)
        match = _LISTEN_LINE.search(line)
        if not match:
            self.kill()
            raise RuntimeError(f"the engine did not report its address (got {line!r}); log:\n{self.log()}")
        self.address = match.group(1)
        threading.Thread(target=_drain, args=(self.proc.stdout,), daemon=True).start()

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

    def restart(self, timeout: float = 10.0) -> None:
        """Kill and start again on the same port (retrying while the port is still busy)."""
        self.kill()
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.start()
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def log(self) -> str:
        """The last 4000 characters of the engine's log."""
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> EngineProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._tmp.cleanup()


def _drain(stream: Any) -> None:
    """Read the engine's stdout until it exits (so it never blocks on a full pipe)."""
    try:
        stream.read()
    finally:
        stream.close()


def read_line(stream: Any, timeout: float) -> str:
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
