"""Typed functions: the payload and result types follow the handler, for the type checker
and at run time (dataclasses in, dataclasses out), with plain JSON on the wire."""

from __future__ import annotations

import asyncio
import dataclasses
import textwrap
from pathlib import Path
from typing import Any, TypedDict

import pytest

from switchyard_sdk import Context, Function, Worker


@dataclasses.dataclass
class Money:
    amount: int
    currency: str


@dataclasses.dataclass
class Charge:
    order_id: str
    total: Money


@dataclasses.dataclass
class Receipt:
    order_id: str
    charged: Money


class Shout(TypedDict):
    text: str


async def charge(payload: Charge, ctx: Context) -> Receipt:
    assert isinstance(payload.total, Money)  # nested dataclasses arrive as such
    return Receipt(order_id=payload.order_id, charged=payload.total)


def shout(payload: Shout) -> str:
    return payload["text"].upper()


CHARGE = Function("typed::charge", charge)
SHOUT = Function("typed::shout", shout)


def test_typed_calls_carry_dataclasses_both_ways(worker: Worker) -> None:
    worker.serve(CHARGE)
    worker.serve(SHOUT)
    assert worker.wait_registered(CHARGE.id, 10) and worker.wait_registered(SHOUT.id, 10)
    got = CHARGE.call(worker, Charge("o1", Money(42, "EUR")))
    assert got == Receipt("o1", Money(42, "EUR"))
    assert SHOUT.call(worker, {"text": "hi"}) == "HI"
    # what other SDKs see: plain JSON
    assert worker.trigger({"function_id": CHARGE.id, "payload": {"order_id": "o2", "total": {
        "amount": 1, "currency": "USD"}}}) == {"order_id": "o2", "charged": {"amount": 1, "currency": "USD"}}
    # a producer declares the types without importing the handler
    declared = Function[Charge, Receipt]("typed::charge")
    assert asyncio.run(declared.call_async(worker, Charge("o3", Money(5, "GBP")))) == \
        Receipt("o3", Money(5, "GBP"))
    assert SHOUT.enqueue(worker, {"text": "later"}, queue="default")["messageReceiptId"]
    SHOUT.void(worker, {"text": "and forget"})


@pytest.fixture
def engine_config() -> str:
    from conftest import DEFAULT_CONFIG
    return DEFAULT_CONFIG + "  kept: {result_retention_ms: 60000}\n"


def test_a_typed_wait_for_result_decodes_the_jobs_result(worker: Worker) -> None:
    worker.serve(CHARGE)
    assert worker.wait_registered(CHARGE.id, 10)
    receipt = CHARGE.enqueue(worker, Charge("o4", Money(7, "EUR")), queue="kept", priority=3)
    job_id = receipt["messageReceiptId"]
    assert CHARGE.wait_for_result(worker, "kept", job_id, timeout_ms=10_000) == Receipt("o4", Money(7, "EUR"))
    assert asyncio.run(CHARGE.wait_for_result_async(worker, "kept", job_id, timeout_ms=10_000)) == \
        Receipt("o4", Money(7, "EUR"))


def test_a_declared_function_cannot_be_served() -> None:
    with pytest.raises(TypeError, match="has no handler"):
        Function[Shout, str]("typed::shout").adapted()


def test_the_type_checker_sees_payload_and_result_types(tmp_path: Path) -> None:
    mypy_api = pytest.importorskip("mypy.api")
    program = tmp_path / "user_code.py"
    program.write_text(textwrap.dedent("""
        from typing import TypedDict
        from switchyard_sdk import Context, Function, connect

        class In(TypedDict):
            n: int

        async def double(payload: In, ctx: Context) -> int:
            return payload["n"] * 2

        DOUBLE = Function("math::double", double)
        client = connect()
        result: int = DOUBLE.call(client, {"n": 2})
        wrong: str = DOUBLE.call(client, {"n": 2})
        DOUBLE.call(client, {"m": 2})
        reveal_type(Function[In, bytes]("x").call(client, {"n": 1}))
    """))
    out, _, status = mypy_api.run([str(program), "--no-incremental", "--cache-dir", str(tmp_path / "c")])
    # "FILE:LINE: error: …" -> (line, text)
    found = [(int(line.split(":")[1]), line.split(": ", 1)[1]) for line in out.splitlines()
             if line.startswith(str(program))]
    errors = [(n, text) for n, text in found if text.startswith("error:")]
    assert status == 1, out
    assert {n for n, _ in errors} == {14, 15}, out  # line 13, the right use, is clean
    assert any('expression has type "int", variable has type "str"' in t for n, t in errors if n == 14), out
    assert any('"m"' in t for n, t in errors if n == 15), out  # a payload key the handler lacks
    assert (16, 'note: Revealed type is "bytes"') in found, out
