//! Scenario 2 — a financial ledger on the fifo queue `ledger`, grouped by `account_id`
//! (examples/README.md).
//!
//! Deposits and withdrawals of one account apply in the order they were submitted: a
//! withdrawal that would overdraw fails and is retried, so it must never run before the
//! deposit submitted ahead of it. acct_A's first deposit hits a transient outage on its
//! first attempt: the engine retries it in place (500 ms later) and acct_A's withdrawal
//! waits behind it, while acct_B and acct_C carry on. At the end the balances are checked.
//!
//! ```text
//! cargo run -p switchyard-examples --bin ledger
//! ```

use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchyard_sdk::{Context, HandlerError, InitOptions, RegisterFunction};

#[derive(Deserialize)]
struct Op {
    account_id: String,
    seq: u32,
    kind: String,
    amount: i64,
    #[serde(default)]
    outage: bool,
}

#[derive(Default)]
struct Ledger {
    balances: BTreeMap<String, i64>,
    /// Every attempt in the order it happened: (account, seq, applied?).
    journal: Vec<(String, u32, bool)>,
    overdrafts_refused: u32,
}

const OPS: &[(&str, &str, i64)] = &[
    ("acct_A", "deposit", 100),
    ("acct_A", "withdraw", 80),
    ("acct_B", "deposit", 50),
    ("acct_C", "deposit", 10),
    ("acct_B", "withdraw", 20),
    ("acct_A", "deposit", 5),
    ("acct_C", "withdraw", 10),
    ("acct_A", "withdraw", 25),
    ("acct_B", "deposit", 5),
];

fn apply(ledger: &Mutex<Ledger>, op: Op, ctx: &Context) -> Result<(), HandlerError> {
    let mut l = ledger.lock().unwrap();
    if op.outage && ctx.attempt == 1 {
        l.journal.push((op.account_id, op.seq, false));
        return Err(HandlerError::new("ledger database timed out").with_code("Transient"));
    }
    let balance = l.balances.entry(op.account_id.clone()).or_default();
    let delta = if op.kind == "deposit" { op.amount } else { -op.amount };
    if *balance + delta < 0 {
        l.overdrafts_refused += 1;
        l.journal.push((op.account_id, op.seq, false));
        return Err(HandlerError::new("insufficient funds").with_code("InsufficientFunds"));
    }
    *balance += delta;
    println!(
        "{} #{} {} {} -> balance {} (attempt {})",
        op.account_id, op.seq, op.kind, op.amount, balance, ctx.attempt
    );
    l.journal.push((op.account_id, op.seq, true));
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("SWITCHYARD_URL").unwrap_or_else(|_| "http://127.0.0.1:49134".into());
    let sy = switchyard_sdk::register_worker(&url, InitOptions::default()).await?;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let state = ledger.clone();
    sy.register_function(RegisterFunction::typed("ledger::apply", move |op: Op, ctx: Context| {
        let state = state.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(10)).await; // the database round trip
            apply(&state, op, &ctx).map(|()| json!({"applied": true}))
        }
    }));
    anyhow::ensure!(sy.ready(Duration::from_secs(10)).await, "engine at {url} not reachable");

    let mut expected = BTreeMap::<String, i64>::new();
    for (seq, (account, kind, amount)) in OPS.iter().enumerate() {
        let payload = json!({"account_id": account, "seq": seq, "kind": kind, "amount": amount, "outage": seq == 0});
        sy.enqueue("ledger", "ledger::apply", payload).await?;
        *expected.entry(account.to_string()).or_default() += if *kind == "deposit" { *amount } else { -*amount };
    }

    // Wait (bounded) until every operation is applied.
    for _ in 0..600 {
        if ledger.lock().unwrap().journal.iter().filter(|j| j.2).count() == OPS.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sy.shutdown().await;

    let l = ledger.lock().unwrap();
    println!("balances: {:?}", l.balances);
    anyhow::ensure!(l.balances == expected, "balances {:?} != expected {expected:?}", l.balances);
    for account in expected.keys() {
        let applied: Vec<u32> = l.journal.iter().filter(|j| j.0 == *account && j.2).map(|j| j.1).collect();
        anyhow::ensure!(applied.is_sorted(), "{account} applied out of order: {applied:?}");
    }
    anyhow::ensure!(l.overdrafts_refused == 0, "a withdrawal ran before the deposit submitted ahead of it");
    let outage = l.journal.iter().position(|j| j.0 == "acct_A" && !j.2).unwrap_or(0);
    let recovered = l.journal.iter().position(|j| j.0 == "acct_A" && j.2).unwrap_or(0);
    anyhow::ensure!(
        l.journal[outage..recovered].iter().any(|j| j.0 != "acct_A"),
        "other accounts should proceed while acct_A waits for its retry"
    );
    println!("check ok: per-account order kept, balances correct, other accounts proceeded during acct_A's retry");
    Ok(())
}
