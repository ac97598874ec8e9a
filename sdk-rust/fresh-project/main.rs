//! A program of a fresh Cargo project that depends on the packaged `switchyard-sdk` (see
//! `../scripts/fresh_project.sh`): a worker and a producer against a live engine at
//! `SWITCHYARD_URL`. Exits non-zero unless the queued job ran with its receipt id and the
//! synchronous call answered.

use serde_json::{Value, json};
use std::time::Duration;
use switchyard_sdk::{InitOptions, RegisterFunction};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = switchyard_sdk::url_from_env();
    let worker = switchyard_sdk::register_worker(&url, InitOptions { fail_fast: true, ..Default::default() }).await?;
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    worker.register_function(RegisterFunction::new_async("fresh::greet", move |payload: Value, ctx| {
        let seen_tx = seen_tx.clone();
        async move {
            let _ = seen_tx.send(ctx.message_receipt_id.clone());
            Ok(json!({"hello": payload["name"]}))
        }
    }));
    if !worker.ready(Duration::from_secs(30)).await {
        return Err("the worker did not become ready".into());
    }

    let producer = switchyard_sdk::register_worker(&url, InitOptions::default()).await?;
    let receipt = producer.enqueue("default", "fresh::greet", json!({"name": "queue"})).await?;
    let ran = tokio::time::timeout(Duration::from_secs(30), seen.recv()).await?.flatten();
    if ran.as_deref() != Some(receipt.message_receipt_id.as_str()) {
        return Err(format!("the job ran as {ran:?}, enqueued as {}", receipt.message_receipt_id).into());
    }
    let value: Value = producer.call("fresh::greet", json!({"name": "call"})).await?;
    if value != json!({"hello": "call"}) {
        return Err(format!("the call answered {value}").into());
    }
    println!("fresh project ok: job {} ran, the call answered {value}", receipt.message_receipt_id);
    producer.shutdown().await;
    worker.shutdown().await;
    Ok(())
}
