//! Scenario 1 — HTTP API → queue pipeline (examples/README.md).
//!
//! `POST /orders` validates the order, enqueues the payment (fifo queue `payment`, grouped by
//! `orderId`) and the confirmation email (standard queue `email`), fires `analytics::track`
//! with `void`, and answers 201 with the order id at once. The same process serves the three
//! functions.
//!
//! ```text
//! cargo run -p switchyard-examples --bin http-to-queue              # HTTP on 127.0.0.1:$PORT (3000)
//! curl -i localhost:3000/orders -H 'content-type: application/json' -d '{"email":"ada@example.com","amount":4200}'
//! cargo run -p switchyard-examples --bin http-to-queue -- --check   # posts to itself, verifies, exits
//! ```

use axum::extract::{Json, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchyard_sdk::{Context, InitOptions, RegisterFunction, Worker};

#[derive(Deserialize)]
struct NewOrder {
    email: String,
    amount: i64,
}

type Reply = (StatusCode, Json<Value>);

async fn create_order(State(sy): State<Worker>, Json(order): Json<NewOrder>) -> Reply {
    if order.amount <= 0 || !order.email.contains('@') {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "need an email and a positive amount"})));
    }
    let order_id = format!("ord_{}", std::time::SystemTime::UNIX_EPOCH.elapsed().unwrap().as_nanos());
    let job = json!({"orderId": order_id, "email": order.email, "amount": order.amount});
    let enqueued = async {
        sy.enqueue("payment", "orders::process-payment", &job).await?;
        sy.enqueue("email", "emails::confirmation", &job).await
    };
    if let Err(e) = enqueued.await {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": e.to_string()})));
    }
    // Analytics is best effort: fire and forget, never fail the order over it.
    if let Err(e) = sy.void("analytics::track", json!({"event": "order_created", "orderId": order_id})).await {
        eprintln!("analytics event dropped: {e}");
    }
    (StatusCode::CREATED, Json(json!({"orderId": order_id})))
}

/// What the workers did, for `--check`: (function, orderId, fifo group).
type Log = Arc<Mutex<Vec<(String, String, Option<String>)>>>;

fn worker_fn(id: &'static str, log: Log) -> RegisterFunction {
    RegisterFunction::new_async(id, move |order: Value, ctx: Context| {
        let log = log.clone();
        async move {
            let order_id = order["orderId"].as_str().unwrap_or_default().to_string();
            println!("{id}: {order_id} (attempt {})", ctx.attempt);
            log.lock().unwrap().push((id.to_string(), order_id, ctx.group));
            Ok(json!({"ok": true}))
        }
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("SWITCHYARD_URL").unwrap_or_else(|_| "http://127.0.0.1:49134".into());
    let check = std::env::args().any(|a| a == "--check");
    let sy = switchyard_sdk::register_worker(&url, InitOptions::default()).await?;
    let log = Log::default();
    for id in ["orders::process-payment", "emails::confirmation", "analytics::track"] {
        sy.register_function(worker_fn(id, log.clone()));
    }
    anyhow::ensure!(sy.ready(Duration::from_secs(10)).await, "engine at {url} not reachable");

    let app = axum::Router::new().route("/orders", post(create_order)).with_state(sy.clone());
    let port = if check { "0".into() } else { std::env::var("PORT").unwrap_or_else(|_| "3000".into()) };
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    let http = listener.local_addr()?;
    println!("orders API on http://{http}/orders");
    if !check {
        axum::serve(listener, app).with_graceful_shutdown(async { tokio::signal::ctrl_c().await.unwrap() }).await?;
        sy.shutdown().await;
        return Ok(());
    }

    // --check: one good and one bad order; the good one reaches all three functions.
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (status, body) = post_json(http, r#"{"email":"ada@example.com","amount":4200}"#).await?;
    anyhow::ensure!(status == 201, "expected 201, got {status}: {body}");
    let order_id = serde_json::from_str::<Value>(&body)?["orderId"].as_str().unwrap_or_default().to_string();
    let (status, _) = post_json(http, r#"{"email":"nobody","amount":-1}"#).await?;
    anyhow::ensure!(status == 400, "an invalid order must be refused with 400, got {status}");
    for _ in 0..200 {
        let done = log.lock().unwrap().iter().filter(|(_, id, _)| *id == order_id).count();
        if done == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = log.lock().unwrap().clone();
    let ran = |f: &str| log.iter().find(|(func, id, _)| func == f && *id == order_id).cloned();
    let payment = ran("orders::process-payment").ok_or_else(|| anyhow::anyhow!("payment never ran"))?;
    anyhow::ensure!(payment.2.as_deref() == Some(order_id.as_str()), "payment must be grouped by orderId");
    anyhow::ensure!(ran("emails::confirmation").is_some(), "confirmation email never ran");
    anyhow::ensure!(ran("analytics::track").is_some(), "analytics event never ran");
    println!("check ok: 201 {order_id}, 400 for a bad order; payment (group {order_id}), email and analytics ran");
    sy.shutdown().await;
    Ok(())
}

/// A bare HTTP/1.1 POST, so the check needs no HTTP client dependency.
async fn post_json(addr: std::net::SocketAddr, body: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "POST /orders HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut response)).await??;
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    Ok((status, body))
}
