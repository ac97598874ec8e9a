//! Quickstart worker: serves the seed's functions.
//!
//! ```text
//! cargo run -p switchyard-examples --bin quickstart-worker
//! ```
//! - `orders::process-payment` and `emails::confirmation` print the job and succeed;
//! - `demo::flaky` fails until the worker runs with `SWITCHYARD_DEMO_FIXED=1`, to walk a job
//!   through retries, the dead-letter queue and a redrive (see the README quickstart).
//!
//! Stops on Ctrl-C, letting running handlers finish.

use serde_json::{Value, json};
use switchyard_sdk::{Context, HandlerError, InitOptions, RegisterFunction};

fn describe(ctx: &Context) -> String {
    format!(
        "queue={} receipt={} attempt={}/{}{}",
        ctx.queue.as_deref().unwrap_or("-"),
        ctx.message_receipt_id.as_deref().unwrap_or("-"),
        ctx.attempt,
        ctx.max_attempts,
        ctx.group.as_deref().map(|g| format!(" group={g}")).unwrap_or_default()
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("SWITCHYARD_URL").unwrap_or_else(|_| "http://127.0.0.1:49134".into());
    let fixed = std::env::var("SWITCHYARD_DEMO_FIXED").is_ok_and(|v| v == "1");
    let sy = switchyard_sdk::register_worker(
        &url,
        InitOptions { worker_name: "quickstart-rust".into(), ..Default::default() },
    )
    .await?;

    sy.register_function(RegisterFunction::new_async("orders::process-payment", |payload: Value, ctx| async move {
        println!("processing payment {payload} ({})", describe(&ctx));
        Ok(json!({"charged": true, "orderId": payload["orderId"]}))
    }));
    sy.register_function(RegisterFunction::new_async("emails::confirmation", |payload: Value, ctx| async move {
        println!("sending confirmation {payload} ({})", describe(&ctx));
        Ok(json!({"sent": true}))
    }));
    sy.register_function(RegisterFunction::new_async("demo::flaky", move |payload: Value, ctx| async move {
        if !fixed {
            println!("demo::flaky failing {payload} ({})", describe(&ctx));
            return Err(HandlerError::new(
                "downstream service refused the request (run with SWITCHYARD_DEMO_FIXED=1 to fix)",
            )
            .with_code("DownstreamError"));
        }
        println!("demo::flaky succeeded {payload} ({})", describe(&ctx));
        Ok(json!({"ok": true}))
    }));

    if sy.ready(std::time::Duration::from_secs(30)).await {
        println!("worker ready on {url}");
    } else {
        println!("engine at {url} not reachable yet; retrying in the background");
    }
    tokio::signal::ctrl_c().await?;
    println!("draining…");
    sy.shutdown().await;
    Ok(())
}
