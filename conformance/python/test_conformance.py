"""The conformance cases (../cases.yaml, vocabulary in ../README.md) run by the Python SDK:
one worker per case, each step one method of ``Run``. The engines they run against and
their fixtures are in ``engines.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
import time
from datetime import datetime, timedelta, timezone
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import switchyard_sdk
from switchyard_sdk import (Client, Context, FunctionNotFoundError, Job, JobNotFoundError, NonRetryableError,
                            SwitchyardError, TlsOptions, TriggerAction, Worker)

from engines import (CASES, ONLY, WAIT_MS, Capture, Secure, capture, engine_url,  # noqa: F401 (fixtures)
                     no_ambient_token, own_engine, secure)

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}


def closed_port() -> int:
    """A local port nothing listens on (bound once, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def substitute(value: Any, names: dict[str, str]) -> Any:
    """``{engine}`` and ``{closed_port}`` in every string of a step."""
    if isinstance(value, str):
        for name, text in names.items():
            value = value.replace("{" + name + "}", text)
        return value
    if isinstance(value, dict):
        return {k: substitute(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, names) for v in value]
    return value


class Run:
    """One case: its worker, the record of every invocation, and the step interpreter."""

    def __init__(self, case: dict[str, Any], url: str, capture: Capture, secure: Secure | None) -> None:
        self.name = case["name"]
        self.names = {"engine": url.removeprefix("http://"), "closed_port": str(closed_port())}
        self.secure = secure
        if secure is not None:
            self.names["secure_engine"] = secure.address
        self.clients: dict[str, Client] = {}
        self.capture = capture
        self.seen_logs = len(capture.snapshot())  # await_log looks at this case's records only
        self.second: Worker | None = None
        self.sy: Worker = switchyard_sdk.register_worker(url, shutdown_grace=1.0)
        self.specs: dict[str, dict[str, Any]] = {}
        self.calls: list[dict[str, Any]] = []
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self.receipts: dict[str, str] = {}
        self.sent: dict[str, float] = {}  # receipt name -> when its enqueue was sent

    def queue(self, local: str) -> str:
        if "/" in local:  # a topic subscriber's queue: TOPIC/FUNCTION
            topic, function = local.split("/", 1)
            return f"{self.topic(topic)}/{self.function(function)}"
        return f"{self.name}.{local}"

    def topic(self, local: str) -> str:
        return f"{self.name}.{local}"

    def function(self, local: str) -> str:
        return f"{self.name}::{local}" if local else ""

    def via(self, a: dict[str, Any]) -> Client:
        """The client a step runs through: ``via`` names one built by ``connect``."""
        return self.clients[a["via"]] if "via" in a else self.sy

    def security(self, a: dict[str, Any]) -> dict[str, Any]:
        """``token`` / ``tls`` keyword arguments for a step's ``token``, ``secret`` and ``ca``."""
        assert self.secure is not None or not {"token", "ca"} & set(a), "no secure engine"
        kwargs: dict[str, Any] = {"token": ""}  # none unless the step says
        if "token" in a:
            assert self.secure is not None
            kwargs["token"] = self.secure.secrets[f"{self.name}.{a['token']}"]
        if "secret" in a:
            kwargs["token"] = a["secret"]
        if "ca" in a:
            assert self.secure is not None
            kwargs["tls"] = TlsOptions(ca_file=self.secure.ca[a["ca"]])
        return kwargs

    def of(self, function: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["function"] == function]

    # ---- the handler every registered function runs ------------------------------------

    def handler(self, function: str) -> Callable[[Any, Context], Any]:
        async def handle(payload: Any, ctx: Context) -> Any:
            spec = self.specs[function]
            rec = {"function": function, "attempt": ctx.attempt, "max_attempts": ctx.max_attempts,
                   "receipt": ctx.message_receipt_id, "queue": ctx.queue, "group": ctx.group,
                   "topic": ctx.topic,
                   "payload": payload, "start": time.monotonic(), "end": None, "outcome": "running"}
            self.calls.append(rec)
            self.in_flight[function] = self.in_flight.get(function, 0) + 1
            self.max_in_flight[function] = max(self.max_in_flight.get(function, 0), self.in_flight[function])
            try:
                if "progress" in spec:
                    ctx.set_progress(spec["progress"].get("value"), spec["progress"].get("detail"))
                if spec.get("sleep_ms"):
                    await asyncio.sleep(spec["sleep_ms"] / 1000)
                result = behave(spec, payload, ctx)
                rec["outcome"] = "ok"
                return result
            except asyncio.CancelledError:
                rec["outcome"] = "cancelled"
                raise
            except Exception:
                rec["outcome"] = "failed"
                raise
            finally:
                rec["end"] = time.monotonic()
                self.in_flight[function] -= 1
        return handle

    # ---- steps -----------------------------------------------------------------------

    def step(self, step: dict[str, Any]) -> None:
        step = substitute(step, self.names)
        action = next(k for k in step if k not in ("expect", "expect_error"))
        args = step[action]
        try:
            result = getattr(self, action)(args)
        except SwitchyardError as err:
            assert "expect_error" in step, f"{action} failed: {err}"
            expected = step["expect_error"]
            assert err.reason == expected["reason"], f"{action}: reason {err.reason}, expected {expected}"
            assert expected.get("message_contains", "") in err.message, f"{action}: message {err}"
            assert err.message.startswith(expected.get("message_starts_with", "")), f"{action}: message {err}"
            assert str(err) == err.message, f"{action}: str(err) {str(err)!r} is not the message"
            for key, value in (expected.get("details") or {}).items():
                assert err.details.get(key) == value, f"{action}: details {err.details}"
            if "kind" in expected:  # the SDK's typed error class, e.g. PermissionDeniedError
                assert type(err).__name__ == expected["kind"] + "Error", f"{action}: {type(err).__name__}"
            return
        assert "expect_error" not in step, f"{action} succeeded ({result!r}), expected {step['expect_error']}"
        if "expect" in step:
            assert result == step["expect"], f"{action}: got {result!r}, expected {step['expect']!r}"

    def register(self, a: dict[str, Any]) -> None:
        function = self.function(a["function"])
        self.specs[function] = a
        self.sy.register_function(function, self.handler(function))
        assert self.sy.wait_registered(function, 10), f"{function} never acknowledged"

    def options(self, a: dict[str, Any]) -> dict[str, Any]:
        """The enqueue options of an enqueue or publish step, as keyword arguments."""
        options: dict[str, Any] = {k: a[k] for k in ("delay_ms", "idempotency_key", "priority") if k in a}
        if "not_before_in_ms" in a:
            options["not_before"] = datetime.now(timezone.utc) + timedelta(milliseconds=a["not_before_in_ms"])
        return options

    def check_duplicate(self, a: dict[str, Any], receipt_id: str, duplicate: bool, name: str) -> None:
        if "duplicate_of" in a:
            first = self.receipts[name]
            assert duplicate and receipt_id == first, f"receipt {receipt_id} duplicate={duplicate}, expected {first}"
        else:
            assert not duplicate, f"receipt {receipt_id} is a duplicate"

    def enqueue(self, a: dict[str, Any]) -> Any:
        sent = time.monotonic()
        receipt = self.via(a).trigger({"function_id": self.function(a["function"]), "payload": a.get("payload"),
                                       "action": TriggerAction.Enqueue(queue=self.queue(a["queue"]),
                                                                       **self.options(a))})
        self.check_duplicate(a, receipt["messageReceiptId"], receipt["duplicate"], a.get("duplicate_of", ""))
        if "as" in a:
            self.receipts[a["as"]] = receipt["messageReceiptId"]
            self.sent[a["as"]] = sent
        return receipt

    def publish(self, a: dict[str, Any]) -> list[str]:
        published = self.sy.publish(self.topic(a["topic"]), a.get("payload"), **self.options(a))
        functions = []
        for r in published.receipts:
            local = r.function_id.removeprefix(f"{self.name}::")
            assert r.queue == self.queue(f"{a['topic']}/{local}"), f"receipt queue {r.queue}"
            self.check_duplicate(a, r.message_receipt_id, r.duplicate, f"{a.get('duplicate_of')}.{local}")
            if "as" in a:
                self.receipts[f"{a['as']}.{local}"] = r.message_receipt_id
            functions.append(local)
        return functions

    def call(self, a: dict[str, Any]) -> Any:
        request: dict[str, Any] = {"function_id": self.function(a["function"]), "payload": a.get("payload")}
        if "timeout_ms" in a:
            request["timeout_ms"] = a["timeout_ms"]
        return self.via(a).trigger(request)

    def void(self, a: dict[str, Any]) -> Any:
        return self.via(a).trigger({"function_id": self.function(a["function"]), "payload": a.get("payload"),
                                    "action": TriggerAction.Void()})

    def list_dlq(self, a: dict[str, Any]) -> int:
        return len(self.via(a).list_dead_letters(self.queue(a["queue"])).entries)

    def redrive(self, a: dict[str, Any]) -> int:
        ids = [self.receipts[n] for n in a.get("ids") or []]
        return self.sy.redrive_dead_letters(self.queue(a["queue"]), ids)

    def connect(self, a: dict[str, Any]) -> None:
        client = switchyard_sdk.connect(a["url"], **self.security(a))
        if "as" in a:
            self.clients[a["as"]] = client
            return
        try:
            client.list_queues()
        finally:
            client.close()

    def start_worker(self, a: dict[str, Any]) -> None:
        self.stop_worker({})
        self.second = switchyard_sdk.register_worker(a["url"], fail_fast=a.get("fail_fast", False),
                                                     shutdown_grace=1.0, **self.security(a))
        for f in a.get("functions") or ["second"]:
            self.second.register_function(self.function(f), lambda payload: None)

    def await_registration(self, a: dict[str, Any]) -> None:
        assert self.second is not None, "await_registration needs start_worker"
        timeout = a.get("timeout_ms", WAIT_MS) / 1000
        function_id = self.function(a["function"])
        assert self.second.wait_registered(function_id, timeout), f"no answer for {function_id} in {timeout} s"

    def await_registered(self, a: dict[str, Any]) -> None:
        request = {"function_id": self.function(a["function"]), "payload": None}

        def served() -> bool:
            try:
                self.via(a).trigger(request)
                return True
            except FunctionNotFoundError:
                return False
        wait_until(served, a, f"a worker serving {request['function_id']}")

    def stop_worker(self, a: dict[str, Any]) -> None:
        if self.second is not None:
            self.second.shutdown(grace=1.0)
            self.second = None

    def await_log(self, a: dict[str, Any]) -> None:
        level = LEVELS[a["level"]]
        want = {k: self.log_value(v) for k, v in (a.get("fields") or {}).items()}
        texts = a.get("contains") or []
        texts = [texts] if isinstance(texts, str) else texts

        def found() -> bool:
            for r in self.capture.snapshot()[self.seen_logs:]:
                if r.levelno >= level and all(r.__dict__.get(k) == v for k, v in want.items()) \
                        and all(t in r.getMessage() for t in texts):
                    return True
            return False
        wait_until(found, a, lambda: f"a {a['level']} log with {want} {texts} (got "
                   f"{[(r.levelname, r.getMessage()) for r in self.capture.snapshot()[self.seen_logs:]][-5:]})")

    def log_value(self, v: Any) -> Any:
        if isinstance(v, dict) and "receipt" in v:
            return self.receipts[v["receipt"]]
        if isinstance(v, dict) and "function" in v:
            return self.function(v["function"])
        if isinstance(v, dict) and "queue" in v:
            return self.queue(v["queue"])
        return v

    # ---- the job lifecycle -------------------------------------------------------------

    def job_id(self, a: dict[str, Any]) -> str:
        return self.receipts[a["receipt"]] if "receipt" in a else str(a["id"])

    def get_job(self, a: dict[str, Any]) -> Job:
        return self.sy.get_job(self.queue(a["queue"]), self.job_id(a))

    def job_mismatch(self, a: dict[str, Any], job: Job) -> list[str]:
        """What of `a` (state, attempts, result, error_code, progress, priority) `job` does not match."""
        actual: dict[str, Any] = {
            "state": job.state, "attempts": job.attempts, "result": job.result, "priority": job.priority,
            "error_code": job.last_error.code if job.last_error else None,
            "progress": None if job.progress is None else
            {"value": job.progress.value, "detail": job.progress.detail}}
        wrong = []
        for key in ("state", "attempts", "result", "error_code", "priority", "progress"):
            if key not in a:
                continue
            want, got = a[key], actual[key]
            if key == "progress" and want is not None and got is not None:
                got = {k: got[k] for k in want}  # only the listed fields
            if got != want:
                wrong.append(f"{key} {got!r} (expected {want!r})")
        return wrong

    def expect_job(self, a: dict[str, Any]) -> None:
        job = self.get_job(a)
        wrong = self.job_mismatch(a, job)
        assert not wrong, f"job {a['receipt']}: {', '.join(wrong)}"

    def await_job(self, a: dict[str, Any]) -> None:
        last: list[str] = []

        def matches() -> bool:
            nonlocal last
            try:
                last = self.job_mismatch(a, self.get_job(a))
            except JobNotFoundError as err:  # waited through, as the README says
                last = [str(err)]
            return not last
        wait_until(matches, a, lambda: f"job {a['receipt']} to match {a} (last: {', '.join(last)})")

    def wait_for_result(self, a: dict[str, Any]) -> Any:
        return self.sy.wait_for_result(self.queue(a["queue"]), self.job_id(a), timeout_ms=a["timeout_ms"])

    def cancel_job(self, a: dict[str, Any]) -> str:
        return self.sy.cancel_job(self.queue(a["queue"]), self.job_id(a)).outcome

    def expect_start_order(self, a: dict[str, Any]) -> None:
        calls = sorted(self.of(self.function(a["function"])), key=lambda c: c["start"])
        order = [c["payload"].get(a["key"]) for c in calls]
        assert order == a["order"], f"started in order {order}, expected {a['order']}"

    def expect_start_spacing(self, a: dict[str, Any]) -> None:
        starts = sorted(c["start"] for c in self.of(self.function(a["function"])))
        assert len(starts) >= 2, f"{len(starts)} invocation(s): no spacing to measure"
        span_ms = (starts[-1] - starts[0]) * 1000
        assert span_ms >= a["min_span_ms"], f"first to last start {span_ms:.1f} ms < {a['min_span_ms']} ms"

    def sleep_ms(self, ms: int) -> None:
        time.sleep(ms / 1000)

    def stats(self, local: str) -> dict[str, int]:
        queue = self.queue(local)
        info = next(q for q in self.sy.list_queues() if q.name == queue)
        return {k: getattr(info.stats, k) for k in ("ready", "delayed", "in_flight", "dead", "enqueued",
                                                     "completed", "failed", "dead_lettered")}

    def await_attempts(self, a: dict[str, Any]) -> None:
        f = self.function(a["function"])
        wait_until(lambda: len(self.of(f)) >= a["count"], a, f"{a['count']} invocations of {f}")

    def await_cancelled(self, a: dict[str, Any]) -> None:
        f = self.function(a["function"])
        wait_until(lambda: sum(c["outcome"] == "cancelled" for c in self.of(f)) >= a["count"], a,
                   f"{a['count']} cancelled invocations of {f}")

    def await_stats(self, a: dict[str, Any]) -> None:
        want = {k: v for k, v in a.items() if k not in ("queue", "timeout_ms")}
        last: dict[str, int] = {}

        def matches() -> bool:
            nonlocal last
            last = self.stats(a["queue"])
            return all(last[k] == v for k, v in want.items())
        wait_until(matches, a, lambda: f"stats {want} of {a['queue']} (last {last})")

    def expect_stats(self, a: dict[str, Any]) -> None:
        stats = self.stats(a["queue"])
        for key, value in a.items():
            if key != "queue":
                assert stats[key] == value, f"{a['queue']}.{key} is {stats[key]}, expected {value} ({stats})"

    def await_dlq(self, a: dict[str, Any]) -> None:
        wait_until(lambda: self.list_dlq(a) == a["count"], a, f"{a['count']} dead letters in {a['queue']}")

    def expect_dlq(self, a: dict[str, Any]) -> None:
        entries = self.sy.list_dead_letters(self.queue(a["queue"])).entries
        assert len(entries) == len(a["entries"]), f"dead letters: {entries}"
        for got, want in zip(entries, a["entries"]):
            actual = {"receipt": got.message_receipt_id, "function": got.function_id, "attempts": got.attempts,
                      "payload": got.payload, "group": got.group,
                      "error_code": got.last_error.code if got.last_error else None,
                      "error_message": got.last_error.message if got.last_error else None}
            for key, value in want.items():
                if key == "receipt":
                    value = self.receipts[value]
                elif key == "function":
                    value = self.function(value)
                assert actual[key] == value, f"dead letter {key}: {actual[key]!r}, expected {value!r}"

    def expect_attempts(self, a: dict[str, Any]) -> None:
        calls = self.of(self.function(a["function"]))
        assert [c["attempt"] for c in calls] == a["attempts"], f"attempts {[c['attempt'] for c in calls]}"
        expected: dict[str, Any] = {}
        if "max_attempts" in a:
            expected["max_attempts"] = a["max_attempts"]
        if "receipt" in a:
            expected["receipt"] = a["receipt"] and self.receipts[a["receipt"]]
        if "queue" in a:
            expected["queue"] = a["queue"] and self.queue(a["queue"])
        if "group" in a:
            expected["group"] = a["group"]
        if "topic" in a:
            expected["topic"] = a["topic"] and self.topic(a["topic"])
        for c in calls:
            for key, value in expected.items():
                assert c[key] == value, f"invocation {key}: {c[key]!r}, expected {value!r}"

    def expect_started_after(self, a: dict[str, Any]) -> None:
        receipt = self.receipts[a["receipt"]]
        starts = [c["start"] for c in self.calls if c["receipt"] == receipt]
        assert starts, f"job {a['receipt']} never started"
        waited_ms = (starts[0] - self.sent[a["receipt"]]) * 1000
        assert waited_ms >= a["ms"] - 1, f"job {a['receipt']} started {waited_ms:.1f} ms after its enqueue, < {a['ms']} ms"

    def expect_retry_schedule(self, a: dict[str, Any]) -> None:
        jobs: dict[str, list[dict[str, Any]]] = {}
        for c in self.of(self.function(a["function"])):
            jobs.setdefault(c["receipt"], []).append(c)
        for calls in jobs.values():
            for prev, nxt in zip(calls, calls[1:]):
                if nxt["attempt"] == 1:
                    continue  # redriven: a fresh budget
                assert nxt["attempt"] == prev["attempt"] + 1, f"attempt {prev['attempt']} then {nxt['attempt']}"
                gap_ms = (nxt["start"] - prev["start"]) * 1000
                wait_ms = a["backoff_ms"] * 2 ** (prev["attempt"] - 1)
                assert gap_ms >= wait_ms - 1, f"retry {prev['attempt']} after {gap_ms:.1f} ms < {wait_ms} ms"

    def expect_fifo_order(self, a: dict[str, Any]) -> None:
        groups: dict[str, list[dict[str, Any]]] = {}
        for c in self.of(self.function(a["function"])):
            groups.setdefault(c["group"], []).append(c)
        key = a["key"]
        for group, calls in groups.items():
            keys = [c["payload"][key] for c in calls]
            assert keys == sorted(keys), f"group {group} ran out of order: {keys}"
            done = [c["payload"][key] for c in calls if c["outcome"] == "ok"]
            assert done == sorted(set(done)), f"group {group} completed {done}"
            for prev, nxt in zip(calls, calls[1:]):
                assert nxt["start"] >= prev["end"], f"group {group}: {keys} overlapped"

    def expect_finished_before(self, a: dict[str, Any]) -> None:
        calls = [c for c in self.of(self.function(a["function"])) if c["outcome"] == "ok"]
        first = next(c for c in calls if matches(a["first"], c["payload"]))
        then = next(c for c in calls if matches(a["then"], c["payload"]))
        assert first["end"] <= then["end"], f"{a['first']} finished after {a['then']}"

    def expect_max_in_flight(self, a: dict[str, Any]) -> None:
        seen = self.max_in_flight.get(self.function(a["function"]), 0)
        assert seen <= a["max"], f"{seen} in flight at once, limit {a['max']}"
        assert seen >= a.get("reaches", 0), f"only {seen} in flight at once, expected {a['reaches']}"

    def expect_groups(self, a: dict[str, Any]) -> None:
        seen = sorted({c["group"] for c in self.of(self.function(a["function"]))})
        assert seen == sorted(a["groups"]), f"groups {seen}"


def behave(spec: dict[str, Any], payload: Any, ctx: Context) -> Any:
    behavior = spec["behavior"]
    if not matches(spec.get("match"), payload) or behavior == "succeed":
        return True
    if behavior == "echo":
        return payload
    if behavior == "fail_permanent":
        raise NonRetryableError((spec.get("error") or {}).get("message", "conformance failure"))
    if behavior == "fail_always" or ctx.attempt < behavior["fail_until_attempt"]:
        error = spec.get("error") or {}
        raise type(error.get("code", "ConformanceError"), (Exception,), {})(
            error.get("message", "conformance failure"))
    return True


def matches(pattern: dict[str, Any] | None, payload: Any) -> bool:
    return not pattern or (isinstance(payload, dict) and all(payload.get(k) == v for k, v in pattern.items()))


def wait_until(predicate: Callable[[], Any], a: Any, what: Any) -> None:
    timeout_ms = a.get("timeout_ms", WAIT_MS) if isinstance(a, dict) else WAIT_MS
    deadline = time.monotonic() + timeout_ms / 1000
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_ms} ms waiting for {what() if callable(what) else what}")
        time.sleep(0.02)


@pytest.mark.parametrize("case", [c for c in CASES if not ONLY or c["name"] in ONLY], ids=lambda c: c["name"])
def test_case(case: dict[str, Any], engine_url: str, capture: Capture, request: pytest.FixtureRequest,
              tmp_path: Path) -> None:
    uses_secure = "{secure_engine}" in json.dumps(case["steps"]) or "tokens" in case
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(own_engine(case, tmp_path)) if case.get("schedules") else engine_url
        run = Run(case, url, capture, request.getfixturevalue("secure") if uses_secure else None)
        try:
            for step in case["steps"]:
                run.step(step)
        finally:
            run.stop_worker({})
            for client in run.clients.values():
                client.close()
            run.sy.shutdown(grace=1.0)
