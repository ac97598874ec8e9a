"""``Client``: calls the engine (``Trigger``, ``EnqueueBatch``, the ``Queues`` service) and
never registers as a worker.

Invariant: a Client opens no ``Engine.Connect`` stream, so a producer-only process is
invisible to the engine's worker list. All its gRPC objects live on one loop (``_loop``):
the running loop of the code that made it, else a private loop thread. The blocking API
(``trigger``, ``list_queues``, …) submits to that loop and waits — from any thread but
that loop's own; the ``*_async`` API awaits the same coroutines from any loop. Every
failure is a ``SwitchyardError``; an engine nobody answers at is ``UnavailableError``
naming the URL (``_channel.call_error``). The token and TLS options are checked, and the
TLS files read, in the constructor (``_channel.channel_spec``); the token then goes out on
every call (``_security``).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import functools
import logging
import weakref
from collections.abc import Coroutine, Mapping
from datetime import datetime
from typing import Any, TypedDict, TypeVar

import grpc

from ._batcher import Enqueue, EnqueueBatcher
from ._channel import call_error, channel_spec, open_channel, resolve_url
from ._json import Encoder, fill_value, to_python
from ._loop import Host, host_for
from ._security import Tls
from ._proto.v1 import engine_pb2, engine_pb2_grpc, queues_pb2, queues_pb2_grpc
from .actions import Action, EnqueueAction, VoidAction, check_options, fill_options
from .errors import InvalidArgumentError
from .jobs import (DEFAULT_WAIT_TIMEOUT_MS, CancelResult, Job, cancel_result_from_proto,
                   check_timeout_ms, job_from_proto, wait_for_result)
from .queues import (DeadLetterPage, QueueInfo, dead_letter_page_from_proto,
                     queue_info_from_proto)
from .receipts import (EnqueueReceipt, PublishReceipt, enqueue_receipt_from_proto,
                       publish_receipt_from_proto)

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_SYNC_TIMEOUT_MS = 30_000
# Deadline slack over the engine's own sync timeout, so the engine's TIMEOUT wins.
_DEADLINE_SLACK_S = 5.0
_CALL_TIMEOUT_S = 30.0


class _TriggerRequired(TypedDict):
    function_id: str


class TriggerRequest(_TriggerRequired, total=False):
    """``{"function_id": …, "payload": …, "action": TriggerAction…, "timeout_ms": …}``."""

    payload: Any
    action: Action | None
    timeout_ms: int


def build_request(request: TriggerRequest | Mapping[str, Any], encoder: Encoder | None = None
                  ) -> tuple[engine_pb2.TriggerRequest | Enqueue, float]:
    """Validate and convert a trigger dict; returns (request, gRPC deadline in s). The
    request is an ``Enqueue`` for the batcher when it is an enqueue (see ``_batcher``), else
    the ``TriggerRequest`` to send as is."""
    unknown = set(request) - {"function_id", "payload", "action", "timeout_ms"}
    if unknown:
        raise ValueError(f"unknown trigger keys: {', '.join(sorted(unknown))}")
    function_id = request.get("function_id")
    if not isinstance(function_id, str) or not function_id.strip():
        # The engine's answer to this request, given without a round trip.
        raise InvalidArgumentError("INVALID_ARGUMENT", "INVALID_ARGUMENT: function_id is required",
                                   grpc.StatusCode.INVALID_ARGUMENT)
    action = request.get("action")
    if action is not None and not isinstance(action, (EnqueueAction, VoidAction)):
        raise TypeError("action must be TriggerAction.Enqueue(queue=...), TriggerAction.Void() or None")
    timeout_ms = request.get("timeout_ms")
    if timeout_ms is not None:
        if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool) or timeout_ms <= 0:
            raise ValueError("timeout_ms must be a positive int")
    if isinstance(action, EnqueueAction):
        # timeout_ms bounds sync calls only (the engine ignores it on an enqueue), so an
        # enqueue that sets it is coalesced like any other, as in the Rust and Node SDKs.
        item = engine_pb2.EnqueueItem(function_id=function_id, queue=action.queue)
        action.fill(item)
        fill_value(item.payload, request.get("payload"), encoder)
        return Enqueue(item), _CALL_TIMEOUT_S
    req = engine_pb2.TriggerRequest(function_id=function_id)
    fill_value(req.payload, request.get("payload"), encoder)
    deadline = _CALL_TIMEOUT_S
    if isinstance(action, VoidAction):
        req.void.SetInParent()
    if timeout_ms is not None:
        req.timeout_ms = timeout_ms
    if action is None:
        deadline = (timeout_ms or DEFAULT_SYNC_TIMEOUT_MS) / 1000 + _DEADLINE_SLACK_S
    return req, deadline


def build_publish(topic: str, payload: Any, delay_ms: int | None, not_before: datetime | None,
                  idempotency_key: str | None, encoder: Encoder | None = None
                  ) -> engine_pb2.TriggerRequest:
    """Validate and convert a publish: a ``Trigger`` with the ``publish`` action and no
    function id (the topic's subscribers are the functions)."""
    if not isinstance(topic, str) or not topic.strip():
        raise InvalidArgumentError("INVALID_ARGUMENT", "INVALID_ARGUMENT: topic is required",
                                   grpc.StatusCode.INVALID_ARGUMENT)
    check_options(delay_ms, not_before, idempotency_key)
    req = engine_pb2.TriggerRequest()
    req.publish.topic = topic
    fill_options(req.publish, delay_ms, not_before, idempotency_key)
    fill_value(req.payload, payload, encoder)
    return req


class Client:
    """A caller of a Switchyard engine. Create it with :func:`connect`.

    `url`: ``http://HOST:PORT`` or ``HOST:PORT`` (plaintext), ``https://HOST:PORT`` (TLS);
    default port 49134; None reads ``$SWITCHYARD_URL``, else ``http://127.0.0.1:49134``.
    Anything else raises ``InvalidUrlError`` here, before any I/O. `token`: sent as
    ``authorization: Bearer <token>`` on every call; None reads ``$SWITCHYARD_TOKEN``.
    `tls`: :class:`TlsOptions` (``ca_file``, and ``cert_file`` + ``key_file`` for mTLS),
    for an ``https://`` URL only. `default`: called for a payload value that
    is not JSON (as ``json.dumps(default=…)``), e.g. :func:`switchyard_sdk.json_default`.
    """

    def __init__(self, url: str | None = None, *, token: str | None = None, tls: Tls | None = None,
                 default: Encoder | None = None, _name: str = "switchyard-client") -> None:
        self.url = resolve_url(url)
        # refuse a bad URL, token or TLS file before starting anything
        self._spec = channel_spec(self.url, token=token, tls=tls)
        self.default = default
        self._closed = False
        self._loop: Host = host_for(_name)
        self._loop.call(self._open)
        _live.add(self)

    def _open(self) -> None:
        """On the loop: the channel, stubs and batcher."""
        self._channel = open_channel(self._spec)
        self._engine: Any = engine_pb2_grpc.EngineStub(self._channel)
        self._queues: Any = queues_pb2_grpc.QueuesStub(self._channel)
        self._error_of = functools.partial(call_error, self.url)
        self._batcher = EnqueueBatcher(self._channel, self._engine, self._error_of)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r})"

    # ---- calls -------------------------------------------------------------------------

    def trigger(self, request: TriggerRequest | Mapping[str, Any]) -> Any:
        """Call a function: sync (no action) returns its value, enqueue returns
        ``{"messageReceiptId": …, "duplicate": …}`` (an ``EnqueueReceipt``), void returns
        None. Raises ``SwitchyardError``."""
        req, deadline = build_request(request, self.default)
        return self._call(self._trigger(req, deadline))

    async def trigger_async(self, request: TriggerRequest | Mapping[str, Any]) -> Any:
        """``trigger`` for asyncio code."""
        req, deadline = build_request(request, self.default)
        return await self._call_async(self._trigger(req, deadline))

    async def _trigger(self, req: engine_pb2.TriggerRequest | Enqueue, deadline: float) -> Any:
        if isinstance(req, Enqueue):
            return enqueue_receipt_from_proto(await self._batcher.enqueue(req, deadline))
        resp: engine_pb2.TriggerResponse = await self._engine.Trigger(req, timeout=deadline)
        outcome = resp.WhichOneof("outcome")
        if outcome == "receipt":
            return enqueue_receipt_from_proto(resp.receipt)
        if outcome == "result":
            return to_python(resp.result)
        return None

    def publish(self, topic: str, payload: Any = None, *, delay_ms: int | None = None,
                not_before: datetime | None = None, idempotency_key: str | None = None
                ) -> PublishReceipt:
        """Publish to a topic of ``topic_configs``: one durable job per subscriber, each on
        its own queue ``<topic>/<function_id>`` with its own retries and DLQ. The options
        apply to every subscriber's job (see ``TriggerAction.Enqueue``). Raises
        ``TopicNotFoundError`` for a topic absent from the config."""
        req = build_publish(topic, payload, delay_ms, not_before, idempotency_key, self.default)
        return self._call(self._publish(req))

    async def publish_async(self, topic: str, payload: Any = None, *, delay_ms: int | None = None,
                            not_before: datetime | None = None,
                            idempotency_key: str | None = None) -> PublishReceipt:
        """``publish`` for asyncio code."""
        req = build_publish(topic, payload, delay_ms, not_before, idempotency_key, self.default)
        return await self._call_async(self._publish(req))

    async def _publish(self, req: engine_pb2.TriggerRequest) -> PublishReceipt:
        resp: engine_pb2.TriggerResponse = await self._engine.Trigger(req, timeout=_CALL_TIMEOUT_S)
        return publish_receipt_from_proto(resp.published)

    def list_queues(self) -> list[QueueInfo]:
        """Every queue with its effective config and stats."""
        return self._call(self._list_queues())

    async def list_queues_async(self) -> list[QueueInfo]:
        return await self._call_async(self._list_queues())

    async def _list_queues(self) -> list[QueueInfo]:
        resp: queues_pb2.ListQueuesResponse = await self._queues.ListQueues(
            queues_pb2.ListQueuesRequest(), timeout=_CALL_TIMEOUT_S)
        return [queue_info_from_proto(q) for q in resp.queues]

    def list_dead_letters(self, queue: str, *, page_size: int = 0, page_token: str = "") -> DeadLetterPage:
        """One page of `queue`'s dead letters (engine default page size when 0)."""
        return self._call(self._list_dead_letters(queue, page_size, page_token))

    async def list_dead_letters_async(self, queue: str, *, page_size: int = 0,
                                      page_token: str = "") -> DeadLetterPage:
        return await self._call_async(self._list_dead_letters(queue, page_size, page_token))

    async def _list_dead_letters(self, queue: str, page_size: int, page_token: str) -> DeadLetterPage:
        resp: queues_pb2.ListDeadLettersResponse = await self._queues.ListDeadLetters(
            queues_pb2.ListDeadLettersRequest(queue=queue, page_size=page_size, page_token=page_token),
            timeout=_CALL_TIMEOUT_S)
        return dead_letter_page_from_proto(resp)

    def redrive_dead_letters(self, queue: str, ids: list[str] | None = None) -> int:
        """Move dead letters (all when `ids` is None or empty) back to `queue` with a fresh
        retry budget; returns how many moved."""
        return self._call(self._redrive(queue, ids))

    async def redrive_dead_letters_async(self, queue: str, ids: list[str] | None = None) -> int:
        return await self._call_async(self._redrive(queue, ids))

    async def _redrive(self, queue: str, ids: list[str] | None) -> int:
        resp: queues_pb2.RedriveDeadLettersResponse = await self._queues.RedriveDeadLetters(
            queues_pb2.RedriveDeadLettersRequest(queue=queue, ids=ids or []), timeout=_CALL_TIMEOUT_S)
        return resp.count

    def discard_dead_letters(self, queue: str, ids: list[str] | None = None) -> int:
        """Delete dead letters (all when `ids` is None or empty); returns how many."""
        return self._call(self._discard(queue, ids))

    async def discard_dead_letters_async(self, queue: str, ids: list[str] | None = None) -> int:
        return await self._call_async(self._discard(queue, ids))

    async def _discard(self, queue: str, ids: list[str] | None) -> int:
        resp: queues_pb2.DiscardDeadLettersResponse = await self._queues.DiscardDeadLetters(
            queues_pb2.DiscardDeadLettersRequest(queue=queue, ids=ids or []), timeout=_CALL_TIMEOUT_S)
        return resp.count

    # ---- one job by its receipt --------------------------------------------------------

    def get_job(self, queue: str, message_receipt_id: str) -> Job:
        """The job `message_receipt_id` of `queue` (state, attempts, result, progress, …).
        Live jobs are always found; completed and cancelled ones while the queue's
        ``result_retention_ms`` keeps them. Raises ``JobNotFoundError`` otherwise."""
        return self._call(self._get_job(queue, message_receipt_id))

    async def get_job_async(self, queue: str, message_receipt_id: str) -> Job:
        return await self._call_async(self._get_job(queue, message_receipt_id))

    async def _get_job(self, queue: str, message_receipt_id: str, timeout: float = _CALL_TIMEOUT_S) -> Job:
        resp: queues_pb2.GetJobResponse = await self._queues.GetJob(
            queues_pb2.GetJobRequest(queue=queue, message_receipt_id=message_receipt_id), timeout=timeout)
        return job_from_proto(resp.job)

    def cancel_job(self, queue: str, message_receipt_id: str) -> CancelResult:
        """Cancel a job: a ready, waiting or delayed one never runs (outcome
        ``"cancelled"``); one in flight is cancelled on its worker and ends cancelled, not
        retried (``"cancelling"``). Idempotent: ``"already_cancelled"``,
        ``"already_finished"`` (completed or dead; nothing changed). Returns the outcome
        and the job after the call."""
        return self._call(self._cancel_job(queue, message_receipt_id))

    async def cancel_job_async(self, queue: str, message_receipt_id: str) -> CancelResult:
        return await self._call_async(self._cancel_job(queue, message_receipt_id))

    async def _cancel_job(self, queue: str, message_receipt_id: str) -> CancelResult:
        resp: queues_pb2.CancelJobResponse = await self._queues.CancelJob(
            queues_pb2.CancelJobRequest(queue=queue, message_receipt_id=message_receipt_id),
            timeout=_CALL_TIMEOUT_S)
        return cancel_result_from_proto(resp)

    def wait_for_result(self, queue: str, message_receipt_id: str, *,
                        timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS) -> Any:
        """Wait until an enqueued job completes and return its handler's value, polling
        ``get_job`` (50 ms, doubling to 1 s). Raises ``JobDeadError`` (reason ``JOB_DEAD``,
        with the last error) if it was dead-lettered, ``JobCancelledError``
        (``JOB_CANCELLED``) if cancelled, ``SwitchyardTimeoutError`` (``TIMEOUT``) if not
        finished within `timeout_ms`, and the engine's ``JobNotFoundError`` for a job the
        queue does not keep (give the queue a ``result_retention_ms``)."""
        return self._call(self._wait_for_result(queue, message_receipt_id, check_timeout_ms(timeout_ms)))

    async def wait_for_result_async(self, queue: str, message_receipt_id: str, *,
                                    timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS) -> Any:
        return await self._call_async(
            self._wait_for_result(queue, message_receipt_id, check_timeout_ms(timeout_ms)))

    async def _wait_for_result(self, queue: str, message_receipt_id: str, timeout_ms: int) -> Any:
        loop = asyncio.get_running_loop()
        return await wait_for_result(lambda timeout: self._get_job(queue, message_receipt_id, timeout), queue,
                                     message_receipt_id, timeout_ms, clock=loop.time, sleep=asyncio.sleep)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        self._check_open(coro)
        try:
            return self._loop.run(coro)
        except grpc.RpcError as err:
            raise self._error_of(err) from None

    async def _call_async(self, coro: Coroutine[Any, Any, T]) -> T:
        self._check_open(coro)
        try:
            return await self._loop.run_async(coro)
        except grpc.RpcError as err:
            raise self._error_of(err) from None

    def _check_open(self, coro: Coroutine[Any, Any, Any] | None = None) -> None:
        if self._closed:
            if coro is not None:
                coro.close()
            raise RuntimeError(f"this Switchyard {type(self).__name__.lower()} has been shut down")

    # ---- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the channel (calls in flight fail). Idempotent."""
        self.shutdown()

    async def close_async(self) -> None:
        await self.shutdown_async()

    def shutdown(self, grace: float | None = None) -> None:
        """Close; a ``Worker`` drains first (see ``Worker.shutdown``). Idempotent."""
        if self._loop.in_loop_thread and self._loop.loop.is_running():
            raise RuntimeError("shutdown() would block the event loop this client lives on: "
                               "use await shutdown_async() (or async with)")
        if not self._begin_close():
            return
        try:
            if self._loop.loop.is_running():
                self._loop.run(self._close(grace), timeout=self._close_timeout(grace))
        except concurrent.futures.TimeoutError:
            log.warning("switchyard_sdk: shutdown did not finish in time")
        finally:
            self._finish_close()

    async def shutdown_async(self, grace: float | None = None) -> None:
        if not self._begin_close():
            return
        try:
            await asyncio.wait_for(self._loop.run_async(self._close(grace)), self._close_timeout(grace))
        except asyncio.TimeoutError:
            log.warning("switchyard_sdk: shutdown did not finish in time")
        finally:
            self._finish_close()

    def _close_timeout(self, grace: float | None) -> float:
        return 10.0

    def _begin_close(self) -> bool:
        if self._closed:
            return False
        self._closed = True
        return True

    async def _close(self, grace: float | None) -> None:
        """On the loop: end what runs there, then the channel."""
        await self._channel.close()

    def _finish_close(self) -> None:
        self._loop.stop()
        _live.discard(self)

    def __enter__(self: C) -> C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    async def __aenter__(self: C) -> C:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown_async()


C = TypeVar("C", bound=Client)


def connect(url: str | None = None, *, token: str | None = None, tls: Tls | None = None,
            default: Encoder | None = None) -> Client:
    """A caller of the engine at `url` that never registers as a worker (see ``Client`` for
    `token` and `tls`)."""
    return Client(url, token=token, tls=tls, default=default)


_live: weakref.WeakSet[Client] = weakref.WeakSet()


@atexit.register
def _close_leftovers() -> None:
    """A client never shut down is closed quickly at exit, so grpc does not die mid-call."""
    for client in list(_live):
        try:
            client.shutdown(grace=1.0)
        except Exception:  # exiting anyway
            pass
