//! One case's run: its worker, the record of every invocation its handlers saw, and the
//! step interpreter (the vocabulary of `../../README.md`).

mod connecting;
mod lifecycle;

use crate::check::{behave, json_eq, matches, stats_match};
use crate::logs::Logs;
use anyhow::{anyhow, bail, ensure};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use switchyard_sdk::{
    Context, EnqueueOptions, HandlerError, InitOptions, RegisterFunction, TriggerAction, TriggerRequest, Worker,
};

pub const WAIT_MS: u64 = 10_000;

/// One invocation as the handler saw it.
#[derive(Clone, Debug)]
struct Call {
    function: String,
    attempt: u32,
    max_attempts: u32,
    receipt: Option<String>,
    queue: Option<String>,
    group: Option<String>,
    topic: Option<String>,
    payload: Value,
    start: Instant,
    end: Option<Instant>,
    outcome: &'static str,
}

#[derive(Default)]
struct Record {
    specs: HashMap<String, Value>,
    calls: Vec<Call>,
    in_flight: HashMap<String, usize>,
    max_in_flight: HashMap<String, usize>,
}

/// One case: its worker, the record of every invocation, and the step interpreter.
pub struct Run {
    pub name: String,
    pub sy: Worker,
    record: Arc<Mutex<Record>>,
    receipts: HashMap<String, String>,
    /// Receipt name -> when its enqueue was sent.
    sent: HashMap<String, Instant>,
    /// The engine's `127.0.0.1:PORT` (`{engine}` in strings).
    engine: String,
    /// A local port nothing listens on (`{closed_port}`).
    closed_port: u16,
    logs: Logs,
    /// The first log record of this case.
    logs_from: usize,
    /// The worker of `start_worker`.
    second: Option<Worker>,
    /// The secure engine's address (`{secure_engine}`), CA files and secrets, if started.
    secure: Option<SecureInfo>,
    /// Callers built by `connect: {as: NAME}`.
    clients: HashMap<String, Worker>,
}

/// What a case needs to know of the secure engine.
struct SecureInfo {
    addr: String,
    ca: HashMap<String, std::path::PathBuf>,
    secrets: HashMap<String, String>,
}

/// Options for the workers a case makes: short drains, and signals left to the runner.
pub fn options() -> InitOptions {
    InitOptions { shutdown_grace: Duration::from_secs(1), drain_on_sigterm: false, ..Default::default() }
}

impl Run {
    pub async fn new(
        case: &Value,
        engine: &str,
        secure: Option<&crate::Secure>,
        closed_port: u16,
        logs: &Logs,
    ) -> anyhow::Result<Self> {
        let logs_from = logs.len();
        Ok(Self {
            name: case["name"].as_str().unwrap_or_default().to_string(),
            sy: switchyard_sdk::register_worker(&format!("http://{engine}"), options()).await?,
            record: Default::default(),
            receipts: HashMap::new(),
            sent: HashMap::new(),
            engine: engine.to_string(),
            closed_port,
            logs: logs.clone(),
            logs_from,
            second: None,
            secure: secure.map(|s| SecureInfo { addr: s.addr.clone(), ca: s.ca.clone(), secrets: s.secrets.clone() }),
            clients: HashMap::new(),
        })
    }

    /// Stops the case's workers.
    pub async fn finish(&mut self) {
        if let Some(w) = self.second.take() {
            w.shutdown().await;
        }
        for (_, client) in self.clients.drain() {
            client.shutdown().await;
        }
        self.sy.shutdown().await;
    }

    /// The worker a step runs through: `via` names a caller built by `connect`.
    fn via(&self, a: &Value) -> anyhow::Result<&Worker> {
        match a["via"].as_str() {
            None => Ok(&self.sy),
            Some(name) => self.clients.get(name).ok_or_else(|| anyhow!("no caller '{name}' (connect with as: {name})")),
        }
    }

    /// `{engine}` and `{closed_port}` replaced in every string of `v`.
    fn substitute(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => {
                let secure = self.secure.as_ref().map(|s| s.addr.as_str()).unwrap_or("{secure_engine}");
                json!(
                    s.replace("{secure_engine}", secure)
                        .replace("{engine}", &self.engine)
                        .replace("{closed_port}", &self.closed_port.to_string())
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(|v| self.substitute(v)).collect()),
            Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), self.substitute(v))).collect()),
            other => other.clone(),
        }
    }

    /// An `await_log` field value: `{receipt: NAME}`, `{function: F}`, `{queue: Q}` resolved.
    fn log_value(&self, v: &Value) -> Value {
        let one = v.as_object().filter(|o| o.len() == 1).and_then(|o| o.iter().next());
        match one {
            Some((k, name)) if k == "receipt" => json!(self.receipt(name)),
            Some((k, name)) if k == "function" => json!(self.function(name)),
            Some((k, name)) if k == "queue" => json!(self.queue(name)),
            _ => v.clone(),
        }
    }

    /// A case-local queue name; `TOPIC/FUNCTION` is that topic subscriber's queue.
    fn queue(&self, local: &Value) -> String {
        match local.as_str().unwrap_or_default().split_once('/') {
            Some((topic, function)) => format!("{}/{}", self.topic(&json!(topic)), self.function(&json!(function))),
            None => format!("{}.{}", self.name, local.as_str().unwrap_or_default()),
        }
    }

    fn topic(&self, local: &Value) -> String {
        format!("{}.{}", self.name, local.as_str().unwrap_or_default())
    }

    fn function(&self, local: &Value) -> String {
        match local.as_str().unwrap_or_default() {
            "" => String::new(), // passed through: the empty id is itself under test
            local => format!("{}::{local}", self.name),
        }
    }

    fn calls(&self, local: &Value) -> Vec<Call> {
        let f = self.function(local);
        self.record.lock().unwrap().calls.iter().filter(|c| c.function == f).cloned().collect()
    }

    fn handler(&self, function: String) -> RegisterFunction {
        let record = self.record.clone();
        RegisterFunction::new_async(function.clone(), move |payload: Value, ctx: Context| {
            let (record, function) = (record.clone(), function.clone());
            async move {
                let index = {
                    let mut r = record.lock().unwrap();
                    r.calls.push(Call {
                        function: function.clone(),
                        attempt: ctx.attempt,
                        max_attempts: ctx.max_attempts,
                        receipt: ctx.message_receipt_id.clone(),
                        queue: ctx.queue.clone(),
                        group: ctx.group.clone(),
                        topic: ctx.topic.clone(),
                        payload: payload.clone(),
                        start: Instant::now(),
                        end: None,
                        outcome: "running",
                    });
                    let n = r.in_flight.entry(function.clone()).or_default();
                    *n += 1;
                    let n = *n;
                    let max = r.max_in_flight.entry(function.clone()).or_default();
                    *max = (*max).max(n);
                    r.calls.len() - 1
                };
                let spec = record.lock().unwrap().specs[&function].clone();
                let mut outcome = Ok(());
                if let Some(p) = spec.get("progress") {
                    let detail = p.get("detail").cloned();
                    ctx.set_progress(p["value"].as_f64(), detail);
                }
                if let Some(ms) = spec["sleep_ms"].as_u64() {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                        _ = ctx.cancelled.cancelled() => outcome = Err(()),
                    }
                }
                let result = match outcome {
                    Ok(()) => behave(&spec, &payload, &ctx),
                    Err(()) => Err(HandlerError::new("cancelled").with_code("Cancelled")),
                };
                let mut r = record.lock().unwrap();
                *r.in_flight.get_mut(&function).unwrap() -= 1;
                let call = &mut r.calls[index];
                call.end = Some(Instant::now());
                call.outcome = match (&outcome, &result) {
                    (Err(()), _) => "cancelled",
                    (_, Ok(_)) => "ok",
                    (_, Err(_)) => "failed",
                };
                result
            }
        })
    }

    pub async fn step(&mut self, step: &Map<String, Value>) -> anyhow::Result<()> {
        let step = self.substitute(&Value::Object(step.clone()));
        let step = step.as_object().expect("a map stays a map");
        let (action, args) =
            step.iter().find(|(k, _)| *k != "expect" && *k != "expect_error").ok_or_else(|| anyhow!("empty step"))?;
        match (self.action(action, args).await?, step.get("expect_error")) {
            (Ok(result), None) => {
                if let Some(expected) = step.get("expect") {
                    ensure!(json_eq(&result, expected), "{action}: got {result}, expected {expected}");
                }
            }
            (Ok(result), Some(expected)) => bail!("{action} succeeded ({result}), expected {expected}"),
            (Err(e), None) => bail!("{action} failed: {e}"),
            (Err(e), Some(expected)) => {
                ensure!(e.reason.as_str() == expected["reason"], "{action}: {e}, expected {expected}");
                let contains = expected["message_contains"].as_str().unwrap_or_default();
                ensure!(e.message.contains(contains), "{action}: message {e}");
                let starts = expected["message_starts_with"].as_str().unwrap_or_default();
                ensure!(e.message.starts_with(starts), "{action}: message {e}, expected it to start with {starts}");
                for (key, value) in expected["details"].as_object().into_iter().flatten() {
                    ensure!(
                        e.details.get(key).map(|s| s.as_str()) == value.as_str(),
                        "{action}: details {:?}",
                        e.details
                    );
                }
                // The SDK's typed error kind.
                match expected["kind"].as_str() {
                    None => {}
                    Some("PermissionDenied") => {
                        ensure!(e.is_permission_denied(), "{action}: {e:?} is not PermissionDenied")
                    }
                    Some("Unauthenticated") => {
                        ensure!(e.is_unauthenticated(), "{action}: {e:?} is not Unauthenticated")
                    }
                    Some(other) => bail!("{action}: unknown error kind {other}"),
                }
            }
        }
        Ok(())
    }

    /// Runs one action: the outer error is a failed expectation, the inner one the SDK's.
    async fn action(&mut self, action: &str, a: &Value) -> anyhow::Result<Result<Value, switchyard_sdk::Error>> {
        let ok = |v: Value| Ok(Ok(v));
        match action {
            "register" => {
                let function = self.function(&a["function"]);
                self.record.lock().unwrap().specs.insert(function.clone(), a.clone());
                self.sy.register_function(self.handler(function.clone()));
                ensure!(self.sy.ready(Duration::from_millis(WAIT_MS)).await, "{function} never acknowledged");
                ok(Value::Null)
            }
            "enqueue" => {
                let sent = Instant::now();
                let receipt = match self
                    .via(a)?
                    .enqueue_with(
                        &self.queue(&a["queue"]),
                        &self.function(&a["function"]),
                        &a["payload"],
                        enqueue_options(a),
                    )
                    .await
                {
                    Ok(r) => r,
                    Err(e) => return Ok(Err(e)),
                };
                self.check_duplicate(a, &receipt.message_receipt_id, receipt.duplicate, &a["duplicate_of"])?;
                if let Some(name) = a["as"].as_str() {
                    self.receipts.insert(name.into(), receipt.message_receipt_id.clone());
                    self.sent.insert(name.into(), sent);
                }
                ok(json!({"messageReceiptId": receipt.message_receipt_id, "duplicate": receipt.duplicate}))
            }
            "publish" => {
                let published =
                    match self.sy.publish_with(&self.topic(&a["topic"]), &a["payload"], enqueue_options(a)).await {
                        Ok(p) => p,
                        Err(e) => return Ok(Err(e)),
                    };
                let prefix = format!("{}::", self.name);
                let mut functions = Vec::new();
                for r in &published.receipts {
                    let local = r.function_id.strip_prefix(&prefix).unwrap_or(&r.function_id).to_string();
                    let queue = self.queue(&json!(format!("{}/{local}", a["topic"].as_str().unwrap_or_default())));
                    ensure!(r.queue == queue, "receipt queue {}, expected {queue}", r.queue);
                    let first = match a["duplicate_of"].as_str() {
                        Some(name) => json!(format!("{name}.{local}")),
                        None => Value::Null,
                    };
                    self.check_duplicate(a, &r.message_receipt_id, r.duplicate, &first)?;
                    if let Some(name) = a["as"].as_str() {
                        self.receipts.insert(format!("{name}.{local}"), r.message_receipt_id.clone());
                    }
                    functions.push(json!(local));
                }
                ok(Value::Array(functions))
            }
            "call" | "void" => {
                let request = TriggerRequest {
                    function_id: self.function(&a["function"]),
                    payload: a["payload"].clone(),
                    action: (action == "void").then_some(TriggerAction::Void),
                    timeout_ms: a["timeout_ms"].as_u64(),
                };
                Ok(self.via(a)?.trigger(request).await)
            }
            "list_dlq" => {
                let via = self.via(a)?;
                Ok(via
                    .queues()
                    .list_dead_letters(&self.queue(&a["queue"]), 1000, None)
                    .await
                    .map(|d| json!(d.entries.len())))
            }
            "redrive" => {
                let ids: Vec<String> = a["ids"].as_array().into_iter().flatten().map(|n| self.receipt(n)).collect();
                Ok(self.sy.queues().redrive_dead_letters(&self.queue(&a["queue"]), &ids).await.map(|n| json!(n)))
            }
            "sleep_ms" => {
                tokio::time::sleep(Duration::from_millis(a.as_u64().unwrap_or(0))).await;
                ok(Value::Null)
            }
            "await_attempts" => {
                let count = a["count"].as_u64().unwrap_or(0) as usize;
                self.wait(a, || async { Ok(self.calls(&a["function"]).len() >= count) }).await?;
                ok(Value::Null)
            }
            "await_cancelled" => {
                let count = a["count"].as_u64().unwrap_or(0) as usize;
                self.wait(a, || async {
                    Ok(self.calls(&a["function"]).iter().filter(|c| c.outcome == "cancelled").count() >= count)
                })
                .await?;
                ok(Value::Null)
            }
            "await_stats" => {
                self.wait(a, || async { Ok(stats_match(&self.stats(&a["queue"]).await?, a).is_ok()) }).await?;
                ok(Value::Null)
            }
            "expect_stats" => {
                stats_match(&self.stats(&a["queue"]).await?, a)?;
                ok(Value::Null)
            }
            "await_dlq" => {
                let count = a["count"].as_u64().unwrap_or(0) as usize;
                self.wait(a, || async { Ok(self.dead_letters(&a["queue"]).await?.len() == count) }).await?;
                ok(Value::Null)
            }
            "expect_dlq" => {
                let entries = self.dead_letters(&a["queue"]).await?;
                let wanted = a["entries"].as_array().cloned().unwrap_or_default();
                ensure!(entries.len() == wanted.len(), "dead letters: {entries:?}");
                for (got, want) in entries.iter().zip(&wanted) {
                    let error = got.last_error.clone();
                    let actual = json!({
                        "receipt": got.message_receipt_id, "function": got.function_id, "attempts": got.attempts,
                        "payload": got.payload, "group": got.group,
                        "error_code": error.as_ref().map(|e| &e.code), "error_message": error.as_ref().map(|e| &e.message),
                    });
                    for (key, value) in want.as_object().into_iter().flatten() {
                        let value = match key.as_str() {
                            "receipt" => json!(self.receipt(value)),
                            "function" => json!(self.function(value)),
                            _ => value.clone(),
                        };
                        ensure!(json_eq(&actual[key], &value), "dead letter {key}: {}, expected {value}", actual[key]);
                    }
                }
                ok(Value::Null)
            }
            "expect_attempts" => {
                let calls = self.calls(&a["function"]);
                let attempts: Vec<Value> = calls.iter().map(|c| json!(c.attempt)).collect();
                ensure!(json_eq(&json!(attempts), &a["attempts"]), "attempts {attempts:?}, expected {}", a["attempts"]);
                let object = a.as_object().unwrap();
                for c in &calls {
                    let actual = json!({"max_attempts": c.max_attempts, "receipt": c.receipt, "queue": c.queue,
                                        "group": c.group, "topic": c.topic});
                    for key in ["max_attempts", "receipt", "queue", "group", "topic"] {
                        let Some(value) = object.get(key) else { continue };
                        let value = match (key, value) {
                            (_, Value::Null) => Value::Null,
                            ("receipt", v) => json!(self.receipt(v)),
                            ("queue", v) => json!(self.queue(v)),
                            ("topic", v) => json!(self.topic(v)),
                            (_, v) => v.clone(),
                        };
                        ensure!(json_eq(&actual[key], &value), "invocation {key}: {}, expected {value}", actual[key]);
                    }
                }
                ok(Value::Null)
            }
            "expect_started_after" => {
                let receipt = self.receipt(&a["receipt"]);
                let name = a["receipt"].as_str().unwrap_or_default();
                let start = self
                    .record
                    .lock()
                    .unwrap()
                    .calls
                    .iter()
                    .find(|c| c.receipt.as_deref() == Some(&receipt))
                    .map(|c| c.start);
                let start = start.ok_or_else(|| anyhow!("job {name} never started"))?;
                let sent = *self.sent.get(name).ok_or_else(|| anyhow!("no enqueue named {name}"))?;
                let waited = start - sent;
                let want = Duration::from_millis(a["ms"].as_u64().unwrap_or(0).saturating_sub(1));
                ensure!(waited >= want, "job {name} started {waited:?} after its enqueue, before {want:?}");
                ok(Value::Null)
            }
            "expect_retry_schedule" => {
                let backoff = a["backoff_ms"].as_u64().unwrap_or(0);
                let mut jobs: HashMap<Option<String>, Vec<Call>> = HashMap::new();
                for c in self.calls(&a["function"]) {
                    jobs.entry(c.receipt.clone()).or_default().push(c);
                }
                for calls in jobs.values() {
                    for pair in calls.windows(2) {
                        let (prev, next) = (&pair[0], &pair[1]);
                        if next.attempt == 1 {
                            continue; // redriven: a fresh budget
                        }
                        ensure!(next.attempt == prev.attempt + 1, "attempt {} then {}", prev.attempt, next.attempt);
                        let gap = next.start - prev.start;
                        let wait = Duration::from_millis((backoff << (prev.attempt - 1)).saturating_sub(1));
                        ensure!(gap >= wait, "retry {} after {gap:?}, before {wait:?}", prev.attempt);
                    }
                }
                ok(Value::Null)
            }
            "expect_fifo_order" => {
                let key = a["key"].as_str().unwrap_or_default();
                let mut groups: HashMap<Option<String>, Vec<Call>> = HashMap::new();
                for c in self.calls(&a["function"]) {
                    groups.entry(c.group.clone()).or_default().push(c);
                }
                for (group, calls) in &groups {
                    let keys: Vec<f64> = calls.iter().map(|c| c.payload[key].as_f64().unwrap_or(0.0)).collect();
                    ensure!(keys.is_sorted(), "group {group:?} ran out of order: {keys:?}");
                    let done: Vec<f64> = calls
                        .iter()
                        .filter(|c| c.outcome == "ok")
                        .map(|c| c.payload[key].as_f64().unwrap_or(0.0))
                        .collect();
                    ensure!(done.windows(2).all(|w| w[0] < w[1]), "group {group:?} completed {done:?}");
                    for pair in calls.windows(2) {
                        ensure!(pair[0].end.is_some_and(|end| pair[1].start >= end), "group {group:?} overlapped");
                    }
                }
                ok(Value::Null)
            }
            "expect_finished_before" => {
                let calls: Vec<Call> = self.calls(&a["function"]).into_iter().filter(|c| c.outcome == "ok").collect();
                let end = |pattern: &Value| {
                    calls
                        .iter()
                        .find(|c| matches(pattern, &c.payload))
                        .and_then(|c| c.end)
                        .ok_or_else(|| anyhow!("no success for {pattern}"))
                };
                ensure!(end(&a["first"])? <= end(&a["then"])?, "{} finished after {}", a["first"], a["then"]);
                ok(Value::Null)
            }
            "expect_max_in_flight" => {
                let f = self.function(&a["function"]);
                let seen = self.record.lock().unwrap().max_in_flight.get(&f).copied().unwrap_or(0) as u64;
                ensure!(seen <= a["max"].as_u64().unwrap_or(0), "{seen} in flight at once, limit {}", a["max"]);
                ensure!(
                    seen >= a["reaches"].as_u64().unwrap_or(0),
                    "only {seen} in flight at once, expected {}",
                    a["reaches"]
                );
                ok(Value::Null)
            }
            "expect_groups" => {
                let mut seen: Vec<String> = self.calls(&a["function"]).into_iter().filter_map(|c| c.group).collect();
                seen.sort();
                seen.dedup();
                let mut want: Vec<String> = a["groups"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|g| g.as_str().map(String::from).unwrap_or(g.to_string()))
                    .collect();
                want.sort();
                ensure!(seen == want, "groups {seen:?}, expected {want:?}");
                ok(Value::Null)
            }
            other => match self.connecting(other, a).await {
                Some(outcome) => outcome,
                None => match self.lifecycle(other, a).await {
                    Some(outcome) => outcome,
                    None => bail!("unknown step '{other}'"),
                },
            },
        }
    }

    /// A receipt without `duplicate_of` must be new; with it, a duplicate of that receipt.
    fn check_duplicate(&self, a: &Value, id: &str, duplicate: bool, first: &Value) -> anyhow::Result<()> {
        if a.get("duplicate_of").is_some() {
            let first_id = self.receipt(first);
            ensure!(
                duplicate && id == first_id,
                "receipt {id} (duplicate: {duplicate}), expected a duplicate of {first_id}"
            );
        } else {
            ensure!(!duplicate, "receipt {id} is a duplicate");
        }
        Ok(())
    }

    fn receipt(&self, name: &Value) -> String {
        self.receipts.get(name.as_str().unwrap_or_default()).cloned().unwrap_or_default()
    }

    async fn dead_letters(&self, queue: &Value) -> Result<Vec<switchyard_sdk::DeadLetter>, switchyard_sdk::Error> {
        Ok(self.sy.queues().list_dead_letters(&self.queue(queue), 1000, None).await?.entries)
    }

    async fn stats(&self, queue: &Value) -> anyhow::Result<Value> {
        let s = self.sy.queues().stats(&self.queue(queue)).await?;
        Ok(json!({"ready": s.ready, "delayed": s.delayed, "in_flight": s.in_flight, "dead": s.dead,
                  "enqueued": s.enqueued, "completed": s.completed, "failed": s.failed, "dead_lettered": s.dead_lettered}))
    }

    /// Polls `probe` until it holds, for at most the step's `timeout_ms` (default 10 s).
    async fn wait<F, Fut>(&self, a: &Value, probe: F) -> anyhow::Result<()>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<bool>>,
    {
        let timeout = Duration::from_millis(a["timeout_ms"].as_u64().unwrap_or(WAIT_MS));
        let deadline = Instant::now() + timeout;
        while !probe().await? {
            ensure!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {a}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

/// The enqueue options of an `enqueue` or `publish` step (`not_before_in_ms`: from now).
fn enqueue_options(a: &Value) -> EnqueueOptions {
    EnqueueOptions {
        delay_ms: a["delay_ms"].as_u64(),
        not_before: a["not_before_in_ms"].as_u64().map(|ms| SystemTime::now() + Duration::from_millis(ms)),
        idempotency_key: a["idempotency_key"].as_str().map(String::from),
        priority: a["priority"].as_u64().map(|p| p as u32),
    }
}
