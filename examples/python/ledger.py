"""Scenario 2 — a financial ledger on the fifo queue ``ledger``, grouped by ``account_id``
(examples/README.md).

Deposits and withdrawals of one account apply in the order they were submitted: a
withdrawal that would overdraw fails and is retried, so it must never run before the
deposit submitted ahead of it. acct_A's first deposit hits a transient outage on its first
attempt: the engine retries it in place (500 ms later) and acct_A's withdrawal waits behind
it, while acct_B and acct_C carry on. At the end the balances are checked.

    python examples/python/ledger.py
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import defaultdict
from typing import Any

from switchyard_sdk import Context, TriggerAction, register_worker


class InsufficientFunds(Exception):
    pass


class Transient(Exception):
    pass


OPS = [("acct_A", "deposit", 100), ("acct_A", "withdraw", 80), ("acct_B", "deposit", 50),
       ("acct_C", "deposit", 10), ("acct_B", "withdraw", 20), ("acct_A", "deposit", 5),
       ("acct_C", "withdraw", 10), ("acct_A", "withdraw", 25), ("acct_B", "deposit", 5)]

balances: dict[str, int] = defaultdict(int)
journal: list[tuple[str, int, bool]] = []  # every attempt in order: (account, seq, applied?)
overdrafts_refused = 0

sy = register_worker(os.environ.get("SWITCHYARD_URL", "http://127.0.0.1:49134"))


@sy.function("ledger::apply")
async def apply(op: dict[str, Any], ctx: Context) -> dict[str, bool]:
    global overdrafts_refused
    await asyncio.sleep(0.01)  # the database round trip
    account, seq = op["account_id"], op["seq"]
    if op.get("outage") and ctx.attempt == 1:
        journal.append((account, seq, False))
        raise Transient("ledger database timed out")
    delta = op["amount"] if op["kind"] == "deposit" else -op["amount"]
    if balances[account] + delta < 0:
        overdrafts_refused += 1
        journal.append((account, seq, False))
        raise InsufficientFunds(f"{account} has {balances[account]}, cannot withdraw {op['amount']}")
    balances[account] += delta
    journal.append((account, seq, True))
    print(f"{account} #{seq} {op['kind']} {op['amount']} -> balance {balances[account]} "
          f"(attempt {ctx.attempt})", flush=True)
    return {"applied": True}


def main() -> None:
    assert sy.wait_registered("ledger::apply", timeout=10), "engine not reachable"
    expected: dict[str, int] = defaultdict(int)
    for seq, (account, kind, amount) in enumerate(OPS):
        sy.trigger({"function_id": "ledger::apply", "action": TriggerAction.Enqueue(queue="ledger"),
                    "payload": {"account_id": account, "seq": seq, "kind": kind, "amount": amount,
                                "outage": seq == 0}})
        expected[account] += amount if kind == "deposit" else -amount

    deadline = time.monotonic() + 30
    while sum(applied for *_, applied in journal) < len(OPS) and time.monotonic() < deadline:
        time.sleep(0.05)
    sy.shutdown()

    print("balances:", dict(balances))
    assert balances == expected, f"balances {dict(balances)} != expected {dict(expected)}"
    for account in expected:
        applied = [seq for acct, seq, ok in journal if acct == account and ok]
        assert applied == sorted(applied), f"{account} applied out of order: {applied}"
    assert overdrafts_refused == 0, "a withdrawal ran before the deposit submitted ahead of it"
    outage = next(i for i, (acct, _, ok) in enumerate(journal) if acct == "acct_A" and not ok)
    recovered = next(i for i, (acct, _, ok) in enumerate(journal) if acct == "acct_A" and ok)
    assert any(acct != "acct_A" for acct, *_ in journal[outage:recovered]), \
        "other accounts should proceed while acct_A waits for its retry"
    print("check ok: per-account order kept, balances correct, other accounts proceeded "
          "during acct_A's retry")


if __name__ == "__main__":
    main()
