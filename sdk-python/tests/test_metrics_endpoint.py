"""The engine's /metrics, scraped during a run with retries and dead letters: every counter
and gauge matches what happened, exactly, and the scrape parses with prometheus_client's
Prometheus text-format parser (a real one, not ours)."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from _helpers import wait_until
from switchyard_sdk import Context, TriggerAction, Worker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def metrics_port() -> int:
    return _free_port()


@pytest.fixture
def engine_config(metrics_port: int) -> str:
    return f"""\
shutdown_grace_ms: 1000
metrics_listen: 127.0.0.1:{metrics_port}
console_listen: ""
queue_configs:
  fine: {{max_retries: 0, concurrency: 4}}
  flaky: {{max_retries: 2, backoff_ms: 20, concurrency: 4}}
  unserved: {{}}
"""


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> tuple[str, Samples]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"{name}{labels} not in the scrape"
    return samples[key]


def test_metrics_count_retries_dead_letters_and_redrives_exactly(worker: Worker, metrics_port: int) -> None:
    fixed = threading.Event()
    attempts: dict[str, int] = {}
    lock = threading.Lock()

    def fine(payload: Any) -> None:
        return None

    def flaky(payload: Any, ctx: Context) -> None:
        with lock:
            attempts[payload["name"]] = ctx.attempt
        if payload["name"].startswith("once") and ctx.attempt == 1:
            raise RuntimeError("first attempt fails")
        if payload["name"] == "doomed" and not fixed.is_set():
            raise RuntimeError("downstream refused")

    worker.register_function("jobs::fine", fine)
    worker.register_function("jobs::flaky", flaky)
    assert worker.wait_registered("jobs::fine", 10) and worker.wait_registered("jobs::flaky", 10)

    def enqueue(queue: str, function: str, payload: Any) -> None:
        worker.trigger({"function_id": function, "payload": payload, "action": TriggerAction.Enqueue(queue=queue)})

    for i in range(5):
        enqueue("fine", "jobs::fine", {"n": i})
    enqueue("flaky", "jobs::flaky", {"name": "once-a"})
    enqueue("flaky", "jobs::flaky", {"name": "once-b"})
    enqueue("flaky", "jobs::flaky", {"name": "doomed"})
    enqueue("unserved", "jobs::nobody", {"n": 1})

    def settled() -> Samples | None:
        _, s = scrape(metrics_port)
        done = (value(s, "switchyard_jobs_completed_total", queue="fine") == 5
                and value(s, "switchyard_jobs_completed_total", queue="flaky") == 2
                and value(s, "switchyard_jobs_dead", queue="flaky") == 1
                and value(s, "switchyard_oldest_ready_job_age_seconds", queue="unserved") > 0)
        return s if done else None

    s = wait_until(settled, timeout=20, what="the run to settle (5 + 2 completed, 1 dead)")
    # What happened, by queue: fine 5 jobs x 1 attempt; flaky 2 jobs x 2 attempts + 1 job x 3.
    assert value(s, "switchyard_jobs_enqueued_total", queue="fine") == 5
    assert value(s, "switchyard_jobs_enqueued_total", queue="flaky") == 3
    assert value(s, "switchyard_jobs_enqueued_total", queue="unserved") == 1
    assert value(s, "switchyard_jobs_failed_total", queue="flaky") == 5
    assert value(s, "switchyard_jobs_retried_total", queue="flaky") == 4
    assert value(s, "switchyard_jobs_dead_lettered_total", queue="flaky") == 1
    assert value(s, "switchyard_jobs_failed_total", queue="fine") == 0
    assert value(s, "switchyard_jobs_redriven_total", queue="flaky") == 0
    for gauge, want in [("ready", 0), ("delayed", 0), ("in_flight", 0), ("dead", 1)]:
        assert value(s, f"switchyard_jobs_{gauge}", queue="flaky") == want, gauge
    assert value(s, "switchyard_jobs_ready", queue="unserved") == 1
    assert value(s, "switchyard_oldest_ready_job_age_seconds", queue="fine") == 0
    # Histograms by queue and function: every first attempt started, every attempt timed.
    fine_labels = {"queue": "fine", "function": "jobs::fine"}
    flaky_labels = {"queue": "flaky", "function": "jobs::flaky"}
    assert value(s, "switchyard_job_enqueue_to_start_seconds_count", **fine_labels) == 5
    assert value(s, "switchyard_job_enqueue_to_start_seconds_count", **flaky_labels) == 3
    assert value(s, "switchyard_job_enqueue_to_start_seconds_bucket", le="+Inf", **flaky_labels) == 3
    assert value(s, "switchyard_attempt_duration_seconds_count", **fine_labels) == 5
    assert value(s, "switchyard_attempt_duration_seconds_count", **flaky_labels) == 7
    # The engine: one worker, two functions, nothing failed in the store.
    assert value(s, "switchyard_workers_connected") == 1
    assert value(s, "switchyard_worker_streams_open") == 1
    assert value(s, "switchyard_functions_registered") == 2
    assert value(s, "switchyard_store_errors_total", operation="enqueue") == 0

    # Fixed: redrive the dead letter, and it completes.
    fixed.set()
    assert worker.redrive_dead_letters("flaky") == 1

    def redriven() -> Samples | None:
        _, s = scrape(metrics_port)
        return s if value(s, "switchyard_jobs_completed_total", queue="flaky") == 3 else None

    s = wait_until(redriven, timeout=20, what="the redriven job to complete")
    assert value(s, "switchyard_jobs_redriven_total", queue="flaky") == 1
    assert value(s, "switchyard_jobs_dead", queue="flaky") == 0
    assert value(s, "switchyard_jobs_failed_total", queue="flaky") == 5
    assert value(s, "switchyard_attempt_duration_seconds_count", **flaky_labels) == 8
    assert attempts["doomed"] == 1, "a redriven job starts with a fresh budget"


def test_metrics_is_the_only_path(engine: Any, metrics_port: int) -> None:
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/", timeout=10)
    assert e.value.code == 404
