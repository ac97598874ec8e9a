//! Scenario 3 — bulk email with rate limiting on the standard queue `bulk-email`
//! (`concurrency: 3`, `backoff_ms: 5000`, `max_retries: 5`; examples/README.md).
//!
//! A fake SMTP server accepts at most 5 messages per second and answers "421 rate limited"
//! beyond that. The engine never runs more than 3 sends at once, and retries each refused
//! send after backoff_ms × 2^(n−1): 5 s, 10 s, 20 s, 40 s, 80 s. At the end every email is
//! delivered, and the observed concurrency and retry gaps are checked.
//!
//! ```text
//! cargo run -p switchyard-examples --bin bulk-email
//! ```

use serde_json::json;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchyard_sdk::{Context, HandlerError, InitOptions, RegisterFunction};

const EMAILS: usize = 12;
const RATE_PER_SECOND: usize = 5;

/// The fake SMTP server, and what the check needs to know about it.
#[derive(Default)]
struct Smtp {
    accepted: VecDeque<Instant>,
    in_flight: usize,
    max_in_flight: usize,
    /// Start time of every attempt, per job.
    attempts: BTreeMap<String, Vec<(u32, Instant)>>,
    delivered: usize,
}

async fn send(smtp: &Mutex<Smtp>, to: &str, ctx: &Context) -> Result<(), HandlerError> {
    {
        let mut s = smtp.lock().unwrap();
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        let job = ctx.message_receipt_id.clone().unwrap_or_default();
        s.attempts.entry(job).or_default().push((ctx.attempt, Instant::now()));
    }
    tokio::time::sleep(Duration::from_millis(20)).await; // talking SMTP
    let mut s = smtp.lock().unwrap();
    s.in_flight -= 1;
    let now = Instant::now();
    while s.accepted.front().is_some_and(|t| now.duration_since(*t) > Duration::from_secs(1)) {
        s.accepted.pop_front();
    }
    if s.accepted.len() >= RATE_PER_SECOND {
        println!("{to}: 421 rate limited (attempt {}/{})", ctx.attempt, ctx.max_attempts);
        return Err(HandlerError::new("421 rate limited, try again later").with_code("RateLimited"));
    }
    s.accepted.push_back(now);
    s.delivered += 1;
    println!("{to}: sent (attempt {}/{})", ctx.attempt, ctx.max_attempts);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("SWITCHYARD_URL").unwrap_or_else(|_| "http://127.0.0.1:49134".into());
    let sy = switchyard_sdk::register_worker(&url, InitOptions::default()).await?;
    let smtp = Arc::new(Mutex::new(Smtp::default()));
    let server = smtp.clone();
    sy.register_function(RegisterFunction::new_async("emails::send", move |email, ctx: Context| {
        let server = server.clone();
        async move {
            send(&server, email["to"].as_str().unwrap_or("?"), &ctx).await?;
            Ok(json!({"sent": true}))
        }
    }));
    anyhow::ensure!(sy.ready(Duration::from_secs(10)).await, "engine at {url} not reachable");

    for i in 0..EMAILS {
        let email = json!({"to": format!("user{i}@example.com"), "subject": "Our spring newsletter"});
        sy.enqueue("bulk-email", "emails::send", email).await?;
    }
    let queue = sy.queues().list_queues().await?.into_iter().find(|q| q.name == "bulk-email");
    let backoff_ms = queue.map(|q| q.config.backoff_ms).unwrap_or(5000);

    // Worst case is 5 retries per email: 31 × backoff_ms.
    let deadline = Instant::now() + Duration::from_millis(31 * backoff_ms + 30_000);
    while smtp.lock().unwrap().delivered < EMAILS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sy.shutdown().await;

    let s = smtp.lock().unwrap();
    anyhow::ensure!(s.delivered == EMAILS, "delivered {} of {EMAILS}", s.delivered);
    anyhow::ensure!(s.max_in_flight <= 3, "{} sends were in flight at once", s.max_in_flight);
    let mut retries = 0;
    for attempts in s.attempts.values() {
        for pair in attempts.windows(2) {
            let ((n, started), (next, retried)) = (pair[0], pair[1]);
            let wait = Duration::from_millis(backoff_ms << (n - 1));
            anyhow::ensure!(next == n + 1, "attempt numbers skipped: {n} then {next}");
            anyhow::ensure!(retried - started >= wait, "retry {n} came after {:?}, before {wait:?}", retried - started);
            retries += 1;
        }
    }
    println!(
        "check ok: {EMAILS} delivered, at most {} in flight, {retries} retries each after >= {backoff_ms} ms × 2^(n−1)",
        s.max_in_flight
    );
    Ok(())
}
