"""Unit tests of the job lifecycle calls without the real engine: ``Job`` conversion,
``wait_for_result``'s poll (with a stepped clock: no real time), its typed errors, and
``get_job`` / ``cancel_job`` / ``wait_for_result`` through a fake ``Queues`` service."""

from __future__ import annotations

import asyncio
import itertools
import pickle
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2

from _helpers import fake_engine
from switchyard_sdk import (CancelResult, FunctionErrorInfo, InvalidArgumentError, Job,
                            JobCancelledError, JobDeadError, JobNotFoundError, JobProgress,
                            SwitchyardError, SwitchyardTimeoutError, connect)
from switchyard_sdk._json import to_value
from switchyard_sdk._proto.google_rpc import error_details_pb2, status_pb2
from switchyard_sdk._proto.v1 import engine_pb2, queues_pb2, queues_pb2_grpc
from switchyard_sdk.errors import from_status
from switchyard_sdk.jobs import job_from_proto, poll_delays, wait_for_result


def _ts(seconds: int) -> Any:
    from google.protobuf import timestamp_pb2
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=500_000_000)


def _info(state: str, **fields: Any) -> queues_pb2.JobInfo:
    base: dict[str, Any] = {"message_receipt_id": "r1", "queue": "jobs", "function_id": "f",
                            "state": state, "attempts": 1, "max_attempts": 3}
    base.update(fields)
    return queues_pb2.JobInfo(**base)


def _job(state: str, **fields: Any) -> Job:
    return job_from_proto(_info(state, **fields))


# ---- conversion -----------------------------------------------------------------------

def test_job_from_proto_copies_every_field() -> None:
    info = _info(
        "completed", attempts=2, payload=to_value({"n": 1}), group="g1", priority=7,
        enqueued_at=_ts(100), finished_at=_ts(200), expires_at=_ts(300), result=to_value({"ok": True}),
        last_error=engine_pb2.FunctionError(message="boom", code="ValueError", stack="tb"),
        progress=engine_pb2.JobProgress(value=50, detail=to_value({"step": "upload"})),
        topic="orders.placed")
    job = job_from_proto(info)
    assert job == Job(
        message_receipt_id="r1", queue="jobs", function_id="f", state="completed", attempts=2,
        max_attempts=3, last_error=FunctionErrorInfo("boom", "ValueError", "tb", False),
        payload={"n": 1}, group="g1", priority=7,
        enqueued_at=datetime.fromtimestamp(100.5, tz=timezone.utc), due_at=None,
        finished_at=datetime.fromtimestamp(200.5, tz=timezone.utc),
        expires_at=datetime.fromtimestamp(300.5, tz=timezone.utc),
        result={"ok": True}, progress=JobProgress(50.0, {"step": "upload"}),
        cancel_requested=False, topic="orders.placed")
    assert job.finished
    assert pickle.loads(pickle.dumps(job)) == job


def test_job_from_proto_leaves_what_is_unset_none() -> None:
    job = job_from_proto(_info("ready", attempts=0))
    assert (job.last_error, job.group, job.topic, job.result, job.progress) == (None,) * 5
    assert (job.enqueued_at, job.due_at, job.finished_at, job.expires_at) == (None,) * 4
    assert job.priority == 0 and job.attempts == 0 and not job.finished
    only_detail = job_from_proto(_info("in_flight", progress=engine_pb2.JobProgress(detail=to_value("x"))))
    assert only_detail.progress == JobProgress(None, "x")
    a_null_result = job_from_proto(_info("completed", result=to_value(None)))
    assert a_null_result.result is None and a_null_result.finished


def test_non_retryable_flag_of_a_stored_error_is_kept() -> None:
    job = _job("dead", last_error=engine_pb2.FunctionError(message="m", code="NonRetryableError",
                                                             non_retryable=True))
    assert job.last_error is not None and job.last_error.non_retryable


# ---- the poll, with a stepped clock ---------------------------------------------------

class _Clock:
    """A clock that moves only when the poll sleeps; records each sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.look_timeouts: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def _wait(states: list[Job | BaseException], timeout_ms: int) -> tuple[Any, _Clock, int]:
    clock = _Clock()
    looks = itertools.count()
    last = states[-1]

    async def get_job(timeout: float) -> Job:
        clock.look_timeouts.append(round(timeout, 6))
        n = next(looks)
        item = states[n] if n < len(states) else last
        if isinstance(item, BaseException):
            raise item
        return item

    async def main() -> Any:
        return await wait_for_result(get_job, "jobs", "r1", timeout_ms, clock=clock, sleep=clock.sleep)
    result = asyncio.run(main())
    return result, clock, next(looks)


def test_poll_delays_double_from_50_ms_to_1_s() -> None:
    assert list(itertools.islice(poll_delays(), 8)) == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]


def test_wait_for_result_polls_until_completed_and_returns_the_result() -> None:
    states = [_job("ready", attempts=0), _job("in_flight"), _job("retrying"),
              _job("completed", result=to_value({"total": 42}))]
    result, clock, looks = _wait(states, 10_000)
    assert result == {"total": 42}
    assert looks == 4 and clock.sleeps == [0.05, 0.1, 0.2]
    # each look's own deadline: the time left plus 5 s
    assert clock.look_timeouts == [15.0, 14.95, 14.85, 14.65]


def test_a_look_never_gets_more_than_30_s_or_less_than_the_slack() -> None:
    _, clock, _ = _wait([_job("completed")], 600_000)
    assert clock.look_timeouts == [30.0]
    clock = _Clock()

    async def get_job(timeout: float) -> Job:
        clock.look_timeouts.append(round(timeout, 6))
        return _job("ready", attempts=0)

    async def main() -> None:
        await wait_for_result(get_job, "jobs", "r1", 100, clock=clock, sleep=clock.sleep)
    with pytest.raises(SwitchyardTimeoutError):
        asyncio.run(main())
    assert clock.look_timeouts == [5.1, 5.05, 5.0]  # the last look, at the deadline: the slack


def test_wait_for_result_of_a_dead_job_raises_job_dead_with_the_last_error() -> None:
    dead = _job("dead", attempts=3, last_error=engine_pb2.FunctionError(
        message="card declined", code="CardError", stack="Traceback …"))
    with pytest.raises(JobDeadError) as info:
        _wait([_job("in_flight"), dead], 10_000)
    err = info.value
    assert isinstance(err, SwitchyardError) and err.reason == "JOB_DEAD"
    assert err.message == str(err) and err.message.startswith("JOB_DEAD: job 'r1' of queue 'jobs'")
    assert "CardError: card declined" in err.message
    assert (err.error_message, err.error_code, err.stack) == ("card declined", "CardError", "Traceback …")
    assert err.details["queue"] == "jobs" and err.details["message_receipt_id"] == "r1"
    assert err.job == dead
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is JobDeadError and back.job == dead and back.details == err.details


def test_wait_for_result_of_a_cancelled_job_raises_job_cancelled() -> None:
    cancelled = _job("cancelled", attempts=0)
    with pytest.raises(JobCancelledError) as info:
        _wait([cancelled], 10_000)
    assert info.value.reason == "JOB_CANCELLED" and info.value.job == cancelled
    assert info.value.details == {"queue": "jobs", "message_receipt_id": "r1"}


def test_wait_for_result_times_out_with_timeout_after_a_last_look_at_the_deadline() -> None:
    with pytest.raises(SwitchyardTimeoutError) as info:
        _wait([_job("delayed", attempts=0)], 300)
    err = info.value
    assert err.reason == "TIMEOUT" and err.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert err.details["state"] == "delayed" and "within 300 ms" in err.message
    assert err.job is not None and err.job.state == "delayed"
    # 50 + 100 ms, then the rest of the 300 ms: the last look is at the deadline
    clock_sleeps = _sleeps_until_timeout(300)
    assert clock_sleeps == [0.05, 0.1, 0.15]


def _sleeps_until_timeout(timeout_ms: int) -> list[float]:
    clock = _Clock()

    async def get_job(timeout: float) -> Job:
        return _job("ready", attempts=0)

    async def main() -> None:
        await wait_for_result(get_job, "jobs", "r1", timeout_ms, clock=clock, sleep=clock.sleep)
    with pytest.raises(SwitchyardTimeoutError):
        asyncio.run(main())
    return clock.sleeps


def test_wait_for_result_passes_the_engines_error_through() -> None:
    gone = JobNotFoundError("JOB_NOT_FOUND", "JOB_NOT_FOUND: no such job", grpc.StatusCode.NOT_FOUND)
    with pytest.raises(JobNotFoundError):
        _wait([_job("in_flight"), gone], 10_000)


# ---- reasons --------------------------------------------------------------------------

def _trailers(reason: str, **metadata: str) -> tuple[tuple[str, bytes], ...]:
    info = error_details_pb2.ErrorInfo(reason=reason, domain="switchyard", metadata=metadata)
    detail = any_pb2.Any(type_url="type.googleapis.com/google.rpc.ErrorInfo", value=info.SerializeToString())
    return (("grpc-status-details-bin", status_pb2.Status(code=5, message="x", details=[detail])
             .SerializeToString()),)


@pytest.mark.parametrize("reason,cls,code", [
    ("JOB_NOT_FOUND", JobNotFoundError, grpc.StatusCode.NOT_FOUND),
    ("INVALID_PRIORITY", InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    ("PRIORITY_ON_FIFO_QUEUE", InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
])
def test_lifecycle_reasons_map_to_typed_errors(reason: str, cls: type[SwitchyardError],
                                              code: grpc.StatusCode) -> None:
    err = from_status(code, f"{reason}: text", _trailers(reason, queue="jobs"))
    assert type(err) is cls and err.reason == reason and err.details == {"queue": "jobs"}


# ---- through a fake Queues service ----------------------------------------------------

class _FakeQueues(queues_pb2_grpc.QueuesServicer):
    """GetJob answers the scripted states of job "r1" in turn (the last one for ever);
    any other id is JOB_NOT_FOUND as the engine says it. CancelJob cancels "r1"."""

    def __init__(self, states: list[queues_pb2.JobInfo]) -> None:
        self.states = states
        self.looks = 0
        self.lock = threading.Lock()
        self.cancels: list[tuple[str, str]] = []

    def _not_found(self, request: Any, context: Any) -> None:
        context.abort_with_status(_Status(
            grpc.StatusCode.NOT_FOUND, f"JOB_NOT_FOUND: queue '{request.queue}' has no job "
            f"'{request.message_receipt_id}'",
            _trailers("JOB_NOT_FOUND", queue=request.queue, message_receipt_id=request.message_receipt_id)))

    def GetJob(self, request: Any, context: Any) -> Any:  # noqa: N802
        if request.message_receipt_id != "r1":
            self._not_found(request, context)
        with self.lock:
            state = self.states[min(self.looks, len(self.states) - 1)]
            self.looks += 1
        return queues_pb2.GetJobResponse(job=state)

    def CancelJob(self, request: Any, context: Any) -> Any:  # noqa: N802
        if request.message_receipt_id != "r1":
            self._not_found(request, context)
        self.cancels.append((request.queue, request.message_receipt_id))
        return queues_pb2.CancelJobResponse(outcome="cancelled", job=_info("cancelled", attempts=0))


class _Status(grpc.Status):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: Any) -> None:
        self.code, self.details, self.trailing_metadata = code, details, trailing_metadata


@pytest.fixture
def queues() -> Iterator[tuple[_FakeQueues, str]]:
    fake = _FakeQueues([_info("ready", attempts=0), _info("in_flight"),
                        _info("completed", result=to_value([1, 2]))])
    with fake_engine(None, queues=fake) as port:
        yield fake, f"127.0.0.1:{port}"


def test_get_job_and_cancel_job_through_the_queues_service(queues: tuple[_FakeQueues, str]) -> None:
    fake, url = queues
    with connect(url) as client:
        job = client.get_job("jobs", "r1")
        assert job.state == "ready" and job.attempts == 0
        cancelled = client.cancel_job("jobs", "r1")
        assert cancelled == CancelResult(outcome="cancelled", job=_job("cancelled", attempts=0))
        assert fake.cancels == [("jobs", "r1")]
        with pytest.raises(JobNotFoundError) as info:
            client.get_job("jobs", "nope")
        assert info.value.details == {"queue": "jobs", "message_receipt_id": "nope"}
        with pytest.raises(JobNotFoundError):
            client.cancel_job("jobs", "nope")


def test_wait_for_result_through_the_queues_service(queues: tuple[_FakeQueues, str]) -> None:
    fake, url = queues
    with connect(url) as client:
        assert client.wait_for_result("jobs", "r1", timeout_ms=10_000) == [1, 2]
        assert fake.looks == 3
        with pytest.raises(JobNotFoundError):
            client.wait_for_result("jobs", "nope", timeout_ms=10_000)
        with pytest.raises(ValueError, match="timeout_ms"):
            client.wait_for_result("jobs", "r1", timeout_ms=0)


def test_async_lifecycle_calls_through_the_queues_service(queues: tuple[_FakeQueues, str]) -> None:
    fake, url = queues

    async def main() -> None:
        async with connect(url) as client:
            assert (await client.get_job_async("jobs", "r1")).state == "ready"
            assert await client.wait_for_result_async("jobs", "r1", timeout_ms=10_000) == [1, 2]
            assert (await client.cancel_job_async("jobs", "r1")).outcome == "cancelled"
    asyncio.run(main())
