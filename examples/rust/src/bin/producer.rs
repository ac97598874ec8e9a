//! Producer: enqueues a payment (fifo by `orderId`) and a confirmation email, then reads
//! the queue stats.
//!
//! ```text
//! cargo run -p switchyard-examples --bin producer -- ord_789
//! ```

use serde_json::json;
use switchyard_sdk::{InitOptions, Reason, TriggerAction, TriggerRequest};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("SWITCHYARD_URL").unwrap_or_else(|_| "http://127.0.0.1:49134".into());
    let order_id = std::env::args().nth(1).unwrap_or_else(|| "ord_789".into());
    let sy = switchyard_sdk::register_worker(&url, InitOptions::default()).await?;

    let receipt = sy
        .trigger(TriggerRequest {
            function_id: "orders::process-payment".into(),
            payload: json!({"orderId": order_id, "amount": 4200}),
            action: Some(TriggerAction::Enqueue { queue: "payment".into() }),
            timeout_ms: None,
        })
        .await?;
    println!("payment enqueued: {}", receipt["messageReceiptId"]);

    let email =
        sy.enqueue("email", "emails::confirmation", json!({"orderId": order_id, "to": "ada@example.com"})).await?;
    println!("email enqueued: {}", email.message_receipt_id);

    match sy.enqueue("paymnet", "orders::process-payment", json!({"orderId": order_id})).await {
        Err(e) if e.reason == Reason::QueueNotFound => println!("as expected: {e}"),
        other => println!("unexpected: {other:?}"),
    }

    for q in sy.queues().list_queues().await? {
        println!("{:<14} {:?}", q.name, q.stats);
    }
    sy.shutdown().await;
    Ok(())
}
