//! Scenario 4 — dead letters (examples/README.md).
//!
//! `reports::generate` always fails (a missing template), so after its retries (queue
//! `reports`: `max_retries: 2`) the job lands in the dead-letter queue. The example lists
//! the DLQ, deploys a fix (registers a working handler), redrives the job, and sees it
//! complete — with the same receipt id and a fresh retry budget.
//!
//! ```text
//! cargo run -p switchyard-examples --bin dead-letters
//! ```

use serde_json::{Value, json};
use std::time::Duration;
use switchyard_sdk::{Context, HandlerError, InitOptions, RegisterFunction};
use tokio::sync::mpsc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("SWITCHYARD_URL").unwrap_or_else(|_| "http://127.0.0.1:49134".into());
    let sy = switchyard_sdk::register_worker(&url, InitOptions::default()).await?;
    sy.register_function(RegisterFunction::new_async("reports::generate", |report: Value, ctx: Context| async move {
        println!("generating {} (attempt {}/{}): template missing", report["name"], ctx.attempt, ctx.max_attempts);
        Err::<Value, _>(HandlerError::new("template 'monthly.html' not found").with_code("TemplateMissing"))
    }));
    anyhow::ensure!(sy.ready(Duration::from_secs(10)).await, "engine at {url} not reachable");

    let receipt = sy.enqueue("reports", "reports::generate", json!({"name": "monthly", "month": "2024-05"})).await?;
    let id = receipt.message_receipt_id;
    println!("enqueued {id}");

    // 1. Wait (bounded) for the job to exhaust its retries and land in the DLQ.
    let mut dead = None;
    for _ in 0..300 {
        let page = sy.queues().list_dead_letters("reports", 100, None).await?;
        dead = page.entries.into_iter().find(|d| d.message_receipt_id == id);
        if dead.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dead = dead.ok_or_else(|| anyhow::anyhow!("job {id} never reached the DLQ"))?;
    let error = dead.last_error.clone().unwrap_or_default();
    println!(
        "dead letter: {} after {} attempts, last error {}: {}",
        dead.function_id, dead.attempts, error.code, error.message
    );
    anyhow::ensure!(dead.attempts == 3 && error.code == "TemplateMissing", "unexpected dead letter {dead:?}");

    // 2. Deploy the fix: the same function id, a working handler.
    let (done, mut completed) = mpsc::unbounded_channel();
    sy.register_function(RegisterFunction::new_async("reports::generate", move |report: Value, ctx: Context| {
        let done = done.clone();
        async move {
            println!("generating {} (attempt {}/{}): done", report["name"], ctx.attempt, ctx.max_attempts);
            let _ = done.send((ctx.message_receipt_id, ctx.attempt));
            Ok(json!({"url": "https://reports.example.com/monthly-2024-05.pdf"}))
        }
    }));

    // 3. Redrive it: it runs again from attempt 1 and completes.
    let moved = sy.queues().redrive_dead_letters("reports", std::slice::from_ref(&id)).await?;
    println!("redrove {moved} job(s)");
    let (job, attempt) = tokio::time::timeout(Duration::from_secs(20), completed.recv())
        .await?
        .ok_or_else(|| anyhow::anyhow!("worker stopped"))?;
    anyhow::ensure!(
        job.as_deref() == Some(id.as_str()) && attempt == 1,
        "redriven job {job:?} ran at attempt {attempt}"
    );
    let left = sy.queues().list_dead_letters("reports", 100, None).await?.entries.len();
    anyhow::ensure!(left == 0, "{left} dead letters left");
    println!("check ok: {id} dead-lettered after 3 attempts, redriven, completed at attempt 1; DLQ empty");
    sy.shutdown().await;
    Ok(())
}
