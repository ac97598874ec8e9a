"""What the SDK logs about jobs: a failure at WARN with the engine's field names and the
traceback, one DEBUG line per start and end — and never the payload."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from _helpers import wait_until
from conftest import Engine
from switchyard_sdk import Context, TriggerAction, Worker

SECRET = "4111-1111-1111-1111"


def _job_records(caplog: pytest.LogCaptureFixture, function_id: str) -> list[logging.LogRecord]:
    return [r for r in list(caplog.records) if getattr(r, "function_id", None) == function_id]


def test_handler_failure_is_logged_at_warn_with_receipt_attempt_and_traceback(
        engine: Engine, worker: Worker, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="switchyard_sdk")

    class CardDeclined(Exception):
        pass

    def charge(payload: Any, ctx: Context) -> None:
        raise CardDeclined(f"card declined on attempt {ctx.attempt}")

    worker.register_function("pay::charge", charge)
    assert worker.wait_registered("pay::charge", 10)
    rid = worker.trigger({"function_id": "pay::charge", "payload": {"card": SECRET},
                          "action": TriggerAction.Enqueue(queue="default")})["messageReceiptId"]
    records = wait_until(lambda: len(r := _job_records(caplog, "pay::charge")) >= 2 and r,
                         what="two failed attempts logged")
    first = records[0]
    assert first.levelno == logging.WARNING
    assert {k: getattr(first, k) for k in ("queue", "function_id", "message_receipt_id", "attempt",
                                           "outcome", "error_code")} == {
        "queue": "default", "function_id": "pay::charge", "message_receipt_id": rid, "attempt": 1,
        "outcome": "failed", "error_code": "CardDeclined"}
    assert first.duration_ms >= 0  # type: ignore[attr-defined]
    assert "card declined on attempt 1" in first.getMessage() and rid not in first.getMessage()
    assert first.exc_info is not None and first.exc_info[0] is CardDeclined  # the stack
    assert records[1].attempt == 2  # type: ignore[attr-defined]
    assert SECRET not in caplog.text


def test_debug_logs_one_line_per_job_start_and_end(
        engine: Engine, make_worker: Callable[..., Worker], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="switchyard_sdk")
    w = make_worker()

    async def ok(payload: Any) -> str:
        return "fine"

    w.register_function("log::ok", ok)
    assert w.wait_registered("log::ok", 10)
    rid = w.trigger({"function_id": "log::ok", "payload": {"card": SECRET},
                     "action": TriggerAction.Enqueue(queue="default")})["messageReceiptId"]
    records = wait_until(lambda: len(r := _job_records(caplog, "log::ok")) >= 2 and r,
                         what="start and end lines")
    assert [(r.levelno, getattr(r, "outcome", None)) for r in records] == [
        (logging.DEBUG, None), (logging.DEBUG, "completed")]
    assert all(r.message_receipt_id == rid for r in records)  # type: ignore[attr-defined]
    assert SECRET not in caplog.text
