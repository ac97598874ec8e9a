"""``Function[P, R]``: a function id that carries its payload and result types.

Invariant: one ``Function`` object is what the worker serves (``worker.serve(CHARGE)``)
and what callers call (``CHARGE.call(client, payload)``, ``CHARGE.enqueue(client, payload,
queue=…)``, ``CHARGE.wait_for_result(client, queue, receipt_id)``, ``CHARGE.void(client,
payload)`` and their ``_async`` twins), so a type checker
sees the payload a caller sends and the result it gets back exactly as the handler
declares them (``Function("payments::charge", charge)`` infers both from ``charge``;
``Function[ChargeIn, ChargeOut]("payments::charge")`` declares them where the handler's
code is not imported, e.g. in a producer). The calls are methods of the Function, not of
the client, so that a ``TypedDict`` literal payload is checked against ``P``. On the wire
nothing changes: JSON.

Payload and result types may be ``TypedDict`` (plain dicts at run time), dataclasses, or
pydantic models (anything with ``model_validate`` / ``model_dump``), or plain JSON types:
- sending (caller's payload, handler's result): a dataclass becomes ``asdict(...)``, a
  model ``model_dump(mode="json")``, anything else goes as is;
- receiving (handler's payload, caller's result): a dict becomes the declared dataclass
  (fields that are dataclasses too, recursively) or model; anything else stays as is.

Not done: validating TypedDict keys at run time (that is the type checker's job), or
converting dataclasses nested inside lists and dicts.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

from .actions import Action, EnqueueAction, VoidAction
from .context import Context
from .jobs import DEFAULT_WAIT_TIMEOUT_MS

if TYPE_CHECKING:
    from datetime import datetime

    from .client import Client
    from .receipts import EnqueueReceipt

# A Function accepts what its handler accepts and gives what it returns.
P = TypeVar("P", contravariant=True)
R = TypeVar("R", covariant=True)


def encode(value: Any) -> Any:
    """A typed value as JSON-shaped Python (see the module doc)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return dump(mode="json")
    return value


def decode(cls: Any, value: Any) -> Any:
    """`value` (JSON-shaped) as an instance of `cls` when that is a dataclass or a model."""
    if not isinstance(cls, type) or not isinstance(value, dict):
        return value
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls)
        return cls(**{k: decode(hints.get(k), v) for k, v in value.items()})
    validate = getattr(cls, "model_validate", None)
    if callable(validate):
        return validate(value)
    return value


def _hints(handler: Callable[..., Any]) -> tuple[Any, Any]:
    """(payload type, result type) from a handler's annotations (None where absent)."""
    try:
        hints = typing.get_type_hints(handler)
        params = list(inspect.signature(handler).parameters)
    except (TypeError, ValueError, NameError):
        return None, None
    return (hints.get(params[0]) if params else None), hints.get("return")


class Function(Generic[P, R]):
    """A function id with its payload type `P` and result type `R` (see the module doc)."""

    @overload
    def __init__(self: Function[P, R], function_id: str,
                 handler: Callable[[P, Context], Awaitable[R]], *, description: str = "") -> None: ...
    @overload
    def __init__(self: Function[P, R], function_id: str,
                 handler: Callable[[P], Awaitable[R]], *, description: str = "") -> None: ...
    @overload
    def __init__(self: Function[P, R], function_id: str,
                 handler: Callable[[P, Context], R], *, description: str = "") -> None: ...
    @overload
    def __init__(self: Function[P, R], function_id: str,
                 handler: Callable[[P], R], *, description: str = "") -> None: ...
    @overload
    def __init__(self, function_id: str, handler: None = None, *, description: str = "") -> None: ...

    def __init__(self, function_id: str, handler: Callable[..., Any] | None = None, *,
                 description: str = "") -> None:
        if not function_id:
            raise ValueError("function_id must be non-empty")
        self.id = function_id
        self.handler = handler
        self.description = description
        types: tuple[Any, Any] = _hints(handler) if handler else (None, None)
        self._payload_type, self._result_type = types

    def __repr__(self) -> str:
        return f"Function({self.id!r})"

    def _types(self) -> tuple[Any, Any]:
        """(payload, result) runtime types: the handler's, else ``Function[P, R]``'s."""
        if self.handler is None:
            args = typing.get_args(getattr(self, "__orig_class__", None))
            if len(args) == 2:
                return args[0], args[1]
        return self._payload_type, self._result_type

    def decode_result(self, value: Any) -> R:
        return cast(R, decode(self._types()[1], value))

    def _request(self, payload: Any, action: Action | None, timeout_ms: int | None) -> dict[str, Any]:
        request: dict[str, Any] = {"function_id": self.id, "payload": encode(payload), "action": action}
        if timeout_ms is not None:
            request["timeout_ms"] = timeout_ms
        return request

    # ---- calls -------------------------------------------------------------------------

    def call(self, client: Client, payload: P, *, timeout_ms: int | None = None) -> R:
        """Synchronous call through `client`: the handler's result, as its declared type."""
        return self.decode_result(client.trigger(self._request(payload, None, timeout_ms)))

    async def call_async(self, client: Client, payload: P, *, timeout_ms: int | None = None) -> R:
        return self.decode_result(await client.trigger_async(self._request(payload, None, timeout_ms)))

    def enqueue(self, client: Client, payload: P, *, queue: str, delay_ms: int | None = None,
                not_before: datetime | None = None, idempotency_key: str | None = None,
                priority: int | None = None) -> EnqueueReceipt:
        """Durably enqueue a job of this function to `queue`, with the enqueue options of
        ``TriggerAction.Enqueue``."""
        action = EnqueueAction(queue, delay_ms, not_before, idempotency_key, priority)
        return cast("EnqueueReceipt", client.trigger(self._request(payload, action, None)))

    async def enqueue_async(self, client: Client, payload: P, *, queue: str,
                            delay_ms: int | None = None, not_before: datetime | None = None,
                            idempotency_key: str | None = None,
                            priority: int | None = None) -> EnqueueReceipt:
        action = EnqueueAction(queue, delay_ms, not_before, idempotency_key, priority)
        return cast("EnqueueReceipt", await client.trigger_async(self._request(payload, action, None)))

    def wait_for_result(self, client: Client, queue: str, message_receipt_id: str, *,
                        timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS) -> R:
        """``client.wait_for_result`` for a job of this function: its result, as the declared
        type (the same errors: ``JobDeadError``, ``JobCancelledError``, ``TIMEOUT``, …)."""
        return self.decode_result(client.wait_for_result(queue, message_receipt_id, timeout_ms=timeout_ms))

    async def wait_for_result_async(self, client: Client, queue: str, message_receipt_id: str, *,
                                    timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS) -> R:
        return self.decode_result(
            await client.wait_for_result_async(queue, message_receipt_id, timeout_ms=timeout_ms))

    def void(self, client: Client, payload: P) -> None:
        """Fire and forget."""
        client.trigger(self._request(payload, VoidAction(), None))

    async def void_async(self, client: Client, payload: P) -> None:
        await client.trigger_async(self._request(payload, VoidAction(), None))

    def adapted(self) -> Callable[..., Any]:
        """The handler as the worker calls it: the payload decoded to `P`, the result
        encoded; same shape (``def``/``async def``, with or without ``ctx``)."""
        handler = self.handler
        if handler is None:
            raise TypeError(f"{self!r} has no handler to serve; build it as Function(id, handler)")
        payload_type = self._payload_type
        takes_ctx = len(inspect.signature(handler).parameters) >= 2

        # (not functools.wraps: its __wrapped__ would make the worker read the handler's
        # signature instead of this wrapper's)
        if inspect.iscoroutinefunction(handler):
            async def run_async(payload: Any, ctx: Context) -> Any:
                args = (decode(payload_type, payload), ctx) if takes_ctx else (decode(payload_type, payload),)
                return encode(await handler(*args))
            return _named(run_async, handler)

        def run(payload: Any, ctx: Context) -> Any:
            args = (decode(payload_type, payload), ctx) if takes_ctx else (decode(payload_type, payload),)
            return encode(handler(*args))
        return _named(run, handler)


F = TypeVar("F", bound=Callable[..., Any])


def _named(wrapper: F, handler: Callable[..., Any]) -> F:
    wrapper.__name__ = getattr(handler, "__name__", wrapper.__name__)
    wrapper.__qualname__ = getattr(handler, "__qualname__", wrapper.__qualname__)
    wrapper.__doc__ = handler.__doc__
    return wrapper
