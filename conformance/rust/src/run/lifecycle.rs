//! The job lifecycle steps (README "The job lifecycle"): GetJob, CancelJob, the
//! wait-for-result helper, and what the start order and spacing of invocations say about
//! priorities and rate limits.

use super::Run;
use crate::check::json_eq;
use anyhow::ensure;
use serde_json::{Value, json};
use std::time::Duration;
use switchyard_sdk::{Error, Job};

/// The outer error is a failed expectation, the inner one the SDK's.
type Outcome = anyhow::Result<Result<Value, Error>>;

impl Run {
    /// Runs `action` if it is a lifecycle step; `None` when it is not one.
    pub(super) async fn lifecycle(&mut self, action: &str, a: &Value) -> Option<Outcome> {
        Some(match action {
            "get_job" => self.get_job(a).await.map(|job| job.map(|j| json!(j.state_word))),
            "expect_job" => match self.get_job(a).await {
                Ok(Ok(job)) => job_matches(&job, a).map(|()| Ok(Value::Null)),
                Ok(Err(e)) => Err(anyhow::anyhow!("expect_job: {e}")),
                Err(e) => Err(e),
            },
            "await_job" => self
                .wait(a, || async {
                    Ok(match self.get_job(a).await? {
                        Ok(job) => job_matches(&job, a).is_ok(),
                        Err(e) if e.reason == switchyard_sdk::Reason::JobNotFound => false,
                        Err(e) => return Err(e.into()),
                    })
                })
                .await
                .map(|()| Ok(Value::Null)),
            "wait_for_result" => {
                let timeout = Duration::from_millis(a["timeout_ms"].as_u64().unwrap_or(super::WAIT_MS));
                let (queue, id) = (self.queue(&a["queue"]), self.receipt(&a["receipt"]));
                Ok(self.sy.queues().wait_for_result(&queue, &id, timeout).await)
            }
            "cancel_job" => {
                let (queue, id) = (self.queue(&a["queue"]), self.receipt(&a["receipt"]));
                Ok(self.sy.queues().cancel_job(&queue, &id).await.map(|(outcome, _)| json!(outcome.as_str())))
            }
            "expect_start_order" => {
                let order: Vec<Value> = self
                    .calls(&a["function"])
                    .iter()
                    .map(|c| c.payload[a["key"].as_str().unwrap_or_default()].clone())
                    .collect();
                (|| {
                    ensure!(json_eq(&json!(order), &a["order"]), "start order {order:?}, expected {}", a["order"]);
                    Ok(Ok(Value::Null))
                })()
            }
            "expect_start_spacing" => {
                let calls = self.calls(&a["function"]);
                let span = match (calls.first(), calls.last()) {
                    (Some(first), Some(last)) => last.start.duration_since(first.start),
                    _ => Duration::ZERO,
                };
                let min = Duration::from_millis(a["min_span_ms"].as_u64().unwrap_or(0));
                (|| {
                    ensure!(span >= min, "{} starts spanned {span:?}, expected at least {min:?}", calls.len());
                    Ok(Ok(Value::Null))
                })()
            }
            _ => return None,
        })
    }

    /// GetJob of the step's `receipt` name, or its literal `id`.
    async fn get_job(&self, a: &Value) -> anyhow::Result<Result<Job, Error>> {
        let id = match a["id"].as_str() {
            Some(id) => id.to_string(),
            None => self.receipt(&a["receipt"]),
        };
        Ok(self.sy.queues().get_job(&self.queue(&a["queue"]), &id).await)
    }
}

/// The job has every field the step lists.
fn job_matches(job: &Job, a: &Value) -> anyhow::Result<()> {
    let progress = job.progress.as_ref().map(|p| json!({"value": p.value, "detail": p.detail}));
    let actual = json!({
        "state": job.state_word,
        "attempts": job.attempts,
        "result": job.result,
        "error_code": job.last_error.as_ref().map(|e| &e.code),
        "priority": job.priority,
        "progress": progress,
    });
    for key in ["state", "attempts", "result", "error_code", "priority"] {
        if let Some(want) = a.get(key) {
            ensure!(json_eq(&actual[key], want), "job {key}: {}, expected {want} ({job:?})", actual[key]);
        }
    }
    if let Some(want) = a.get("progress") {
        for (key, value) in want.as_object().into_iter().flatten() {
            let got = &actual["progress"][key];
            ensure!(json_eq(got, value), "job progress {key}: {got}, expected {value} ({job:?})");
        }
    }
    Ok(())
}
