//! The chaos worker process (`switchyard-chaos worker …`): an SDK worker serving the
//! harness's two functions, reporting every handler start and end on stdout (`events`),
//! working a seeded while and failing the attempts the plan says fail (`plan::fails`).
//!
//! It is a process of its own so the harness can `kill -9` it mid-job; it runs until
//! killed, reconnecting through engine restarts and stream cuts as any SDK worker does.

use crate::events::{Line, now_ns};
use crate::plan::fails;
use serde_json::Value;
use std::io::Write;
use std::time::Duration;
use switchyard_sdk::{HandlerError, InitOptions, RegisterFunction};

pub const STANDARD_FN: &str = "chaos::standard";
pub const FIFO_FN: &str = "chaos::fifo";

#[derive(clap::Args, Clone, Debug)]
pub struct WorkerArgs {
    #[arg(long)]
    pub url: String,
    #[arg(long)]
    pub seed: u64,
    #[arg(long)]
    pub fail_rate: f64,
    /// A handler works 0..=work_ms milliseconds.
    #[arg(long)]
    pub work_ms: u64,
    #[arg(long)]
    pub max_in_flight: u32,
}

fn emit(line: Line) {
    let text = format!("{line}\n");
    let mut out = std::io::stdout().lock();
    // One write of the whole line; if the harness is gone there is nobody to tell.
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let options = InitOptions {
        worker_name: format!("chaos-{}", std::process::id()),
        max_in_flight: args.max_in_flight,
        reconnect_initial: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(250),
        shutdown_grace: Duration::from_secs(1),
        ..InitOptions::default()
    };
    let worker = switchyard_sdk::register_worker(&args.url, options).await?;
    for function in [STANDARD_FN, FIFO_FN] {
        let a = args.clone();
        worker.register_function(RegisterFunction::new_async(function, move |payload: Value, ctx| {
            let a = a.clone();
            async move {
                let receipt = ctx.message_receipt_id.clone().unwrap_or_default();
                // The plan keys on the producer's job id: receipts are the engine's, not seeded.
                let job = payload["job"].as_str().unwrap_or_default().to_string();
                let seq = payload["seq"].as_u64().unwrap_or(u64::MAX);
                emit(Line::Start {
                    at: now_ns(),
                    receipt: receipt.clone(),
                    queue: ctx.queue.clone().unwrap_or_default(),
                    group: ctx.group.clone(),
                    seq,
                    attempt: ctx.attempt,
                });
                // Seeded per delivery, so a rerun with the seed works the same while.
                let ms = crate::plan::work_ms(a.seed, &job, ctx.attempt, a.work_ms);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let fail = fails(a.seed, &job, ctx.attempt, a.fail_rate);
                emit(Line::End { at: now_ns(), receipt, attempt: ctx.attempt, ok: !fail });
                if fail {
                    return Err(HandlerError::new("chaos: planned failure").with_code("ChaosFailure"));
                }
                Ok(Value::Null)
            }
        }));
    }
    std::future::pending::<()>().await;
    Ok(())
}
