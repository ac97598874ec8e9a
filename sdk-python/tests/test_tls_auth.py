"""TLS, mTLS and tokens against the real engine, with certificates from
``switchyard dev-certs`` (run twice: the second CA is one the engine does not use).

Each test starts its own engine (TLS, optionally mTLS, and three tokens: a producer limited
to ``orders*`` queues, a worker limited to ``orders::*`` functions, an admin), so no test
sees another's state.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ENGINE_BIN
from switchyard_sdk import (FunctionNotFoundError, PermissionDeniedError, TlsOptions, TriggerAction, UnauthenticatedError,
                            UnavailableError, Worker, connect, register_worker)
from switchyard_sdk.testing import EngineProcess

TOKENS = {
    "producer": {"roles": ["producer"], "queues": ["orders*"]},
    "worker": {"roles": ["worker"], "functions": ["orders::*"]},
    "admin": {"roles": ["admin"]},
}


def dev_certs(out: Path) -> Path:
    subprocess.run([str(ENGINE_BIN), "dev-certs", "--out", str(out)], check=True, timeout=60,
                   stdout=subprocess.DEVNULL)
    return out


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not ENGINE_BIN.exists():
        pytest.fail(f"engine binary not found at {ENGINE_BIN}")
    root = tmp_path_factory.mktemp("certs")
    return {"engine": dev_certs(root / "engine"), "other": dev_certs(root / "other")}


class SecureEngine:
    def __init__(self, engine: EngineProcess, secrets_by_name: dict[str, str], certs: Path) -> None:
        self.engine = engine
        self.url = f"https://{engine.address}"
        self.secret = secrets_by_name
        self.certs = certs

    def tls(self, **files: Path) -> TlsOptions:
        return TlsOptions(ca_file=files.get("ca_file", self.certs / "ca.pem"), cert_file=files.get("cert_file"),
                          key_file=files.get("key_file"))


@pytest.fixture
def start_engine(tmp_path: Path, certs: dict[str, Path],
                 request: pytest.FixtureRequest) -> Iterator[Callable[..., SecureEngine]]:
    started: list[EngineProcess] = []

    def start(*, mtls: bool = False) -> SecureEngine:
        tls: dict[str, Any] = {"cert_file": str(certs["engine"] / "server.pem"),
                               "key_file": str(certs["engine"] / "server-key.pem")}
        if mtls:
            tls["client_ca_file"] = str(certs["engine"] / "ca.pem")
        secrets_by_name, tokens = {}, []
        for name, spec in TOKENS.items():
            secrets_by_name[name] = secrets.token_urlsafe(24)
            secret_file = tmp_path / f"{name}.secret"
            secret_file.write_text(secrets_by_name[name])
            tokens.append({"name": name, "secret_file": str(secret_file), **spec})
        config = tmp_path / "secure.yaml"
        config.write_text(json.dumps({  # JSON is YAML
            "shutdown_grace_ms": 1000, "tls": tls, "auth": {"tokens": tokens},
            "queue_configs": {"orders": {"max_retries": 0}, "billing": {}}}))
        engine = EngineProcess(config, binary=str(ENGINE_BIN), log_path=tmp_path / "engine.log")
        started.append(engine)
        return SecureEngine(engine, secrets_by_name, certs["engine"])

    yield start
    for engine in started:
        engine.stop()
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            sys.stderr.write(f"\n--- engine log ---\n{engine.log()}\n")


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    made: list[Worker] = []
    yield made
    for w in made:
        w.shutdown(grace=1.0)


def test_tls_worker_and_caller_that_trust_the_engines_ca_work_end_to_end(
        start_engine: Callable[..., SecureEngine], workers: list[Worker]) -> None:
    eng = start_engine()
    worker = register_worker(eng.url, token=eng.secret["worker"], tls=eng.tls(), shutdown_grace=1.0)
    workers.append(worker)
    worker.register_function("orders::echo", lambda payload: payload)
    assert worker.wait_registered("orders::echo", 10)
    with connect(eng.url, token=eng.secret["producer"], tls=eng.tls()) as producer:
        assert producer.trigger({"function_id": "orders::echo", "payload": {"n": 1}}) == {"n": 1}
        receipt = producer.trigger({"function_id": "orders::echo", "payload": {"n": 2},
                                    "action": TriggerAction.Enqueue(queue="orders")})
        assert receipt["messageReceiptId"]
    with connect(eng.url, token=eng.secret["admin"], tls=eng.tls()) as admin:
        assert {q.name for q in admin.list_queues()} >= {"orders", "billing"}


def test_a_caller_that_trusts_another_ca_or_only_the_default_roots_is_refused(
        start_engine: Callable[..., SecureEngine], certs: dict[str, Path]) -> None:
    eng = start_engine()
    for tls in (eng.tls(ca_file=certs["other"] / "ca.pem"), None):
        with connect(eng.url, token=eng.secret["admin"], tls=tls) as client:
            with pytest.raises(UnavailableError) as info:
                client.list_queues()
        assert str(info.value).endswith("the TLS handshake failed"), str(info.value)
    with pytest.raises(UnavailableError, match="TLS handshake failed"):
        register_worker(eng.url, token=eng.secret["worker"], fail_fast=True,
                        tls=eng.tls(ca_file=certs["other"] / "ca.pem"))


def test_mtls_needs_a_client_certificate_signed_by_the_engines_client_ca(
        start_engine: Callable[..., SecureEngine], certs: dict[str, Path], workers: list[Worker]) -> None:
    eng = start_engine(mtls=True)
    identity = {"cert_file": certs["engine"] / "client.pem", "key_file": certs["engine"] / "client-key.pem"}
    with connect(eng.url, token=eng.secret["admin"], tls=eng.tls(**identity)) as admin:
        assert {q.name for q in admin.list_queues()} >= {"orders"}
    worker = register_worker(eng.url, token=eng.secret["worker"], tls=eng.tls(**identity), shutdown_grace=1.0)
    workers.append(worker)
    assert worker.wait_connected(10)
    other = {"cert_file": certs["other"] / "client.pem", "key_file": certs["other"] / "client-key.pem"}
    for tls in (eng.tls(), eng.tls(**other)):  # no client certificate / one from another CA
        with connect(eng.url, token=eng.secret["admin"], tls=tls) as client:
            with pytest.raises(UnavailableError):
                client.list_queues()


def test_a_missing_or_unknown_token_is_unauthenticated_for_calls_and_workers(
        start_engine: Callable[..., SecureEngine], monkeypatch: pytest.MonkeyPatch) -> None:
    eng = start_engine()
    monkeypatch.delenv("SWITCHYARD_TOKEN", raising=False)
    with connect(eng.url, tls=eng.tls()) as client:
        with pytest.raises(UnauthenticatedError) as missing:
            client.trigger({"function_id": "orders::x", "action": TriggerAction.Enqueue(queue="orders")})
    assert missing.value.reason == "TOKEN_MISSING"
    with connect(eng.url, token="not-a-known-secret", tls=eng.tls()) as client:
        with pytest.raises(UnauthenticatedError) as invalid:
            client.list_queues()
    assert invalid.value.reason == "TOKEN_INVALID"
    assert "not-a-known-secret" not in str(invalid.value) + eng.engine.log()
    with pytest.raises(UnauthenticatedError) as worker_missing:
        register_worker(eng.url, tls=eng.tls(), fail_fast=True)
    assert worker_missing.value.reason == "TOKEN_MISSING"
    # the environment's token is the default
    monkeypatch.setenv("SWITCHYARD_TOKEN", eng.secret["admin"])
    with connect(eng.url, tls=eng.tls()) as client:
        assert client.list_queues()


def test_a_producer_outside_its_queues_or_roles_is_permission_denied(
        start_engine: Callable[..., SecureEngine]) -> None:
    eng = start_engine()
    with connect(eng.url, token=eng.secret["producer"], tls=eng.tls()) as producer:
        producer.trigger({"function_id": "orders::x", "action": TriggerAction.Enqueue(queue="orders")})
        with pytest.raises(PermissionDeniedError) as queue:
            producer.trigger({"function_id": "orders::x", "action": TriggerAction.Enqueue(queue="billing")})
        assert queue.value.reason == "PERMISSION_DENIED" and queue.value.details.get("token") == "producer"
        with pytest.raises(PermissionDeniedError):
            producer.list_queues()  # the Queues service is the admin's
    with connect(eng.url, token=eng.secret["admin"], tls=eng.tls()) as admin:
        with pytest.raises(PermissionDeniedError):
            admin.trigger({"function_id": "orders::x", "action": TriggerAction.Enqueue(queue="orders")})


def test_a_worker_registering_outside_its_functions_is_refused_for_that_function_alone(
        start_engine: Callable[..., SecureEngine], workers: list[Worker],
        caplog: pytest.LogCaptureFixture) -> None:
    eng = start_engine()
    seen: list[Any] = []
    worker = register_worker(eng.url, token=eng.secret["worker"], tls=eng.tls(), shutdown_grace=1.0)
    workers.append(worker)
    worker.register_function("orders::charge", lambda payload: "charged")
    worker.register_function("emails::send", lambda payload: seen.append(payload))
    worker.register_function("orders::last", lambda payload: None)
    # The engine answers the refused registration with its typed refusal; the others go on.
    with pytest.raises(PermissionDeniedError) as refused:
        worker.wait_registered("emails::send", 10)
    assert refused.value.reason == "PERMISSION_DENIED"
    assert refused.value.details["function"] == "emails::send"
    assert "may not register function 'emails::send'" in str(refused.value)
    assert worker.wait_registered("orders::last", 10)
    assert worker.wait_registered("orders::charge", 10)
    with connect(eng.url, token=eng.secret["producer"], tls=eng.tls()) as producer:
        assert producer.trigger({"function_id": "orders::charge", "payload": {}}) == "charged"
        with pytest.raises(FunctionNotFoundError):  # nobody serves it: the registration was refused
            producer.trigger({"function_id": "emails::send", "payload": {}, "action": TriggerAction.Void()})
    assert seen == []
    errors = [r for r in caplog.records if r.levelname == "ERROR" and "refused to register" in r.getMessage()]
    assert [getattr(r, "function_id", None) for r in errors] == ["emails::send"], errors


def test_with_fail_fast_a_refused_registration_stops_the_worker_and_run_raises_it(
        start_engine: Callable[..., SecureEngine], workers: list[Worker]) -> None:
    import threading
    eng = start_engine()
    worker = register_worker(eng.url, token=eng.secret["worker"], tls=eng.tls(), shutdown_grace=1.0,
                             fail_fast=True)
    workers.append(worker)
    worker.register_function("orders::charge", lambda payload: "charged")
    worker.register_function("emails::send", lambda payload: None)
    bound = threading.Timer(20.0, worker.shutdown)  # bounds run() if the refusal never came
    bound.start()
    try:
        with pytest.raises(PermissionDeniedError, match="emails::send"):
            worker.run()
    finally:
        bound.cancel()
