"""Token and TLS options without an engine: checked at construction, the bearer header on
every kind of call (against an in-process fake engine that records the metadata), and the
typed errors of the engine's refusals."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2

from _helpers import fake_engine
from switchyard_sdk import (InvalidArgumentError, PermissionDeniedError, TlsOptions, TriggerAction,
                            UnauthenticatedError, connect, register_worker)
from switchyard_sdk._channel import channel_spec
from switchyard_sdk._proto.google_rpc import error_details_pb2, status_pb2
from switchyard_sdk._proto.v1 import engine_pb2, engine_pb2_grpc
from switchyard_sdk.errors import from_status

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_token_is_the_option_else_the_environment_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWITCHYARD_TOKEN", raising=False)
    assert channel_spec("127.0.0.1:1").token is None
    monkeypatch.setenv("SWITCHYARD_TOKEN", "from-env")
    assert channel_spec("127.0.0.1:1").token == "from-env"
    assert channel_spec("127.0.0.1:1", token="given").token == "given"
    assert channel_spec("127.0.0.1:1", token="").token is None  # explicitly none
    client = connect("127.0.0.1:1", token="s3cret-value")
    try:
        assert "s3cret-value" not in repr(client) and "s3cret-value" not in repr(client._spec)
    finally:
        client.close()


@pytest.mark.parametrize("token", ["has space", "line\nbreak", "tab\t", "é"])
def test_a_token_that_cannot_be_a_header_is_refused_at_construction(token: str) -> None:
    with pytest.raises(InvalidArgumentError, match="token must be printable ASCII"):
        connect("127.0.0.1:1", token=token)


def test_https_turns_tls_on_and_tls_options_with_a_plaintext_url_are_refused(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(PEM)
    assert channel_spec("https://127.0.0.1:1").credentials is not None  # default roots
    assert channel_spec("https://127.0.0.1:1", tls=TlsOptions(ca_file=ca)).credentials is not None
    assert channel_spec("https://127.0.0.1:1", tls={"ca_file": str(ca)}).credentials is not None
    assert channel_spec("http://127.0.0.1:1").credentials is None
    for url in ("http://127.0.0.1:1", "127.0.0.1:1"):
        with pytest.raises(InvalidArgumentError) as info:
            connect(url, tls=TlsOptions(ca_file=ca))
        assert str(info.value) == ("INVALID_ARGUMENT: tls options are set but 'http://127.0.0.1:1' is "
                                   "plaintext: use https://HOST:PORT")


def test_bad_tls_options_are_refused_at_construction_naming_option_and_file(tmp_path: Path) -> None:
    # InvalidArgumentError is a ValueError too
    missing = tmp_path / "nope.pem"
    with pytest.raises(ValueError, match=f"tls.ca_file: cannot read '{missing}'"):
        connect("https://127.0.0.1:1", tls=TlsOptions(ca_file=missing))
    not_pem = tmp_path / "x.pem"
    not_pem.write_text("hello")
    with pytest.raises(ValueError, match=f"tls.key_file: '{not_pem}' is not a PEM file"):
        register_worker("https://127.0.0.1:1", tls=TlsOptions(cert_file=not_pem, key_file=not_pem))
    with pytest.raises(ValueError, match="cert_file and tls.key_file go together"):
        connect("https://127.0.0.1:1", tls=TlsOptions(cert_file=not_pem))
    with pytest.raises(ValueError, match="unknown tls options: ca"):
        connect("https://127.0.0.1:1", tls={"ca": "x"})


def _status_details(reason: str, metadata: dict[str, str]) -> bytes:
    info = error_details_pb2.ErrorInfo(reason=reason, domain="switchyard", metadata=metadata)
    detail = any_pb2.Any(type_url="type.googleapis.com/google.rpc.ErrorInfo", value=info.SerializeToString())
    return status_pb2.Status(code=7, details=[detail]).SerializeToString()


@pytest.mark.parametrize("reason, cls", [("TOKEN_MISSING", UnauthenticatedError),
                                         ("TOKEN_INVALID", UnauthenticatedError),
                                         ("UNAUTHENTICATED", UnauthenticatedError),
                                         ("PERMISSION_DENIED", PermissionDeniedError)])
def test_auth_reasons_map_to_typed_errors(reason: str, cls: type[Exception]) -> None:
    code = grpc.StatusCode.PERMISSION_DENIED if cls is PermissionDeniedError else grpc.StatusCode.UNAUTHENTICATED
    err = from_status(code, f"{reason}: no", [("grpc-status-details-bin", _status_details(reason, {"token": "t"}))])
    assert type(err) is cls and err.reason == reason and err.details == {"token": "t"}


class _RecordingEngine(engine_pb2_grpc.EngineServicer):
    """Records the authorization header of every call; refuses calls without the right one
    the way the engine does."""

    def __init__(self) -> None:
        self.headers: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()

    def _check(self, method: str, context: Any) -> None:
        header = dict(context.invocation_metadata()).get("authorization")
        with self.lock:
            self.headers.append((method, header))
        if header != "Bearer good-token":
            reason = "TOKEN_MISSING" if header is None else "TOKEN_INVALID"
            context.abort_with_status(_Status(grpc.StatusCode.UNAUTHENTICATED, f"{reason}: refused",
                                              (("grpc-status-details-bin", _status_details(reason, {})),)))

    def Trigger(self, request: Any, context: Any) -> Any:  # noqa: N802
        self._check("Trigger", context)
        return engine_pb2.TriggerResponse(accepted=engine_pb2.VoidAccepted())

    def EnqueueBatch(self, request: Any, context: Any) -> Any:  # noqa: N802
        self._check("EnqueueBatch", context)
        return engine_pb2.EnqueueBatchResponse(results=[
            engine_pb2.EnqueueResult(receipt=engine_pb2.EnqueueReceipt(message_receipt_id="r2"))
            for _ in request.items])

    def Connect(self, request_iterator: Any, context: Any) -> Any:  # noqa: N802
        self._check("Connect", context)
        context.send_initial_metadata(())  # as the engine does: headers at once
        for msg in request_iterator:
            if msg.WhichOneof("kind") == "hello":
                yield engine_pb2.EngineMessage(welcome=engine_pb2.Welcome(worker_id="w1"))


class _Status(grpc.Status):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: Any) -> None:
        self.code, self.details, self.trailing_metadata = code, details, trailing_metadata


@pytest.fixture
def recording_engine() -> Iterator[tuple[_RecordingEngine, str]]:
    servicer = _RecordingEngine()
    with fake_engine(servicer, threads=8) as port:
        yield servicer, f"http://127.0.0.1:{port}"


def test_every_call_and_the_worker_stream_carry_the_bearer_token(
        recording_engine: tuple[_RecordingEngine, str]) -> None:
    servicer, url = recording_engine
    with connect(url, token="good-token") as client:
        client.trigger({"function_id": "f", "action": TriggerAction.Void()})  # Trigger
        client.trigger({"function_id": "f", "action": TriggerAction.Enqueue(queue="q")})  # EnqueueBatch
    with register_worker(url, token="good-token", shutdown_grace=0.5) as worker:
        assert worker.wait_connected(10)
    methods = {m for m, h in servicer.headers if h == "Bearer good-token"}
    assert {"Trigger", "EnqueueBatch", "Connect"} <= methods, servicer.headers
    assert all(h == "Bearer good-token" for _, h in servicer.headers)


def test_the_environment_token_is_sent_and_a_missing_or_wrong_one_is_unauthenticated(
        recording_engine: tuple[_RecordingEngine, str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, url = recording_engine
    monkeypatch.setenv("SWITCHYARD_TOKEN", "good-token")
    with connect(url) as client:
        assert client.trigger({"function_id": "f", "action": TriggerAction.Void()}) is None
    monkeypatch.delenv("SWITCHYARD_TOKEN")
    with connect(url) as client:
        with pytest.raises(UnauthenticatedError) as missing:
            client.trigger({"function_id": "f", "action": TriggerAction.Void()})
    assert missing.value.reason == "TOKEN_MISSING" and str(missing.value) == "TOKEN_MISSING: refused"
    with connect(url, token="bad-token") as client:
        with pytest.raises(UnauthenticatedError) as invalid:
            client.trigger({"function_id": "f", "action": TriggerAction.Enqueue(queue="q")})
    assert invalid.value.reason == "TOKEN_INVALID"


def test_a_fail_fast_worker_with_a_wrong_token_raises_the_engines_refusal(
        recording_engine: tuple[_RecordingEngine, str]) -> None:
    _, url = recording_engine
    with pytest.raises(UnauthenticatedError) as info:
        register_worker(url, token="bad-token", fail_fast=True)
    assert info.value.reason == "TOKEN_INVALID"
