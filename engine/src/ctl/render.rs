//! What the operator commands print: aligned tables for people, JSON (proto JSON names,
//! lowerCamel, as grpcurl shows them) for scripts.

use crate::wire::{rfc3339, value_to_json};
use prost::Message;
use serde_json::{Value, json};
use switchyard_proto::wire::{DeadLetter, JobInfo, QueueInfo, WorkerInfo};

/// Columns padded to their widest cell; numbers right-aligned.
fn table(header: &[&str], rows: Vec<Vec<String>>, numeric: &[usize]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = w - cell.chars().count();
            if i > 0 {
                out.push_str("  ");
            }
            if numeric.contains(&i) {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                if i + 1 < cells.len() {
                    out.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

fn pretty(v: &Value) -> String {
    format!("{}\n", serde_json::to_string_pretty(v).expect("JSON values serialize"))
}

fn millis(t: &Option<prost_types::Timestamp>) -> Option<u64> {
    t.as_ref().map(|t| t.seconds.max(0) as u64 * 1000 + t.nanos.max(0) as u64 / 1_000_000)
}

pub fn queues(queues: &[QueueInfo], as_json: bool) -> String {
    let stat = |q: &QueueInfo, f: fn(&switchyard_proto::wire::QueueStats) -> Option<u64>| {
        q.stats.as_ref().and_then(f).unwrap_or(0)
    };
    if as_json {
        let list: Vec<Value> = queues
            .iter()
            .map(|q| {
                let c = q.config.clone().unwrap_or_default();
                json!({
                    "name": q.name,
                    "config": {"type": c.r#type, "maxRetries": c.max_retries.unwrap_or(0), "backoffMs": c.backoff_ms,
                               "concurrency": c.concurrency, "messageGroupField": c.message_group_field,
                               "timeoutMs": c.timeout_ms, "maxBackoffMs": c.max_backoff_ms, "jitter": c.jitter},
                    "stats": {"ready": stat(q, |s| s.ready), "delayed": stat(q, |s| s.delayed),
                              "inFlight": stat(q, |s| s.in_flight), "dead": stat(q, |s| s.dead),
                              "enqueued": stat(q, |s| s.enqueued), "completed": stat(q, |s| s.completed),
                              "failed": stat(q, |s| s.failed), "deadLettered": stat(q, |s| s.dead_lettered)},
                })
            })
            .collect();
        return pretty(&Value::Array(list));
    }
    let rows = queues
        .iter()
        .map(|q| {
            let kind = q.config.as_ref().map(|c| c.r#type.clone()).unwrap_or_default();
            let mut row = vec![q.name.clone(), kind];
            let stats = q.stats.unwrap_or_default();
            for v in [
                stats.ready,
                stats.delayed,
                stats.in_flight,
                stats.dead,
                stats.enqueued,
                stats.completed,
                stats.failed,
                stats.dead_lettered,
            ] {
                row.push(v.unwrap_or(0).to_string());
            }
            row
        })
        .collect();
    let header =
        ["QUEUE", "TYPE", "READY", "DELAYED", "IN_FLIGHT", "DEAD", "ENQUEUED", "COMPLETED", "FAILED", "DEAD_LETTERED"];
    table(&header, rows, &[2, 3, 4, 5, 6, 7, 8, 9])
}

fn payload_json(d: &DeadLetter) -> Value {
    prost_types::Value::decode(d.payload.clone()).map(|v| value_to_json(&v)).unwrap_or(Value::Null)
}

pub fn dead_letters(entries: &[DeadLetter], as_json: bool) -> String {
    if as_json {
        let list: Vec<Value> = entries
            .iter()
            .map(|d| {
                let e = d.last_error.clone().unwrap_or_default();
                json!({
                    "messageReceiptId": d.message_receipt_id,
                    "queue": d.queue,
                    "functionId": d.function_id,
                    "payload": payload_json(d),
                    "group": d.group,
                    "attempts": d.attempts,
                    "lastError": {"message": e.message, "code": e.code, "stack": e.stack},
                    "enqueuedAt": millis(&d.enqueued_at).map(rfc3339),
                    "deadLetteredAt": millis(&d.dead_lettered_at).map(rfc3339),
                })
            })
            .collect();
        return pretty(&Value::Array(list));
    }
    if entries.is_empty() {
        return "no dead letters\n".into();
    }
    let rows = entries
        .iter()
        .map(|d| {
            let e = d.last_error.clone().unwrap_or_default();
            let error = if e.code.is_empty() { e.message } else { format!("{}: {}", e.code, e.message) };
            vec![
                d.message_receipt_id.clone(),
                d.function_id.clone(),
                d.attempts.to_string(),
                millis(&d.dead_lettered_at).map(rfc3339).unwrap_or_default(),
                error.replace('\n', " "),
            ]
        })
        .collect();
    table(&["ID", "FUNCTION", "ATTEMPTS", "DEAD_LETTERED_AT", "LAST_ERROR"], rows, &[2])
}

pub fn workers(workers: &[WorkerInfo], as_json: bool) -> String {
    if as_json {
        let list: Vec<Value> = workers
            .iter()
            .map(|w| {
                json!({
                    "workerId": w.worker_id, "workerName": w.worker_name, "sdkName": w.sdk_name,
                    "sdkVersion": w.sdk_version, "maxInFlight": w.max_in_flight, "inFlight": w.in_flight,
                    "functions": w.functions, "connectedAt": millis(&w.connected_at).map(rfc3339),
                })
            })
            .collect();
        return pretty(&Value::Array(list));
    }
    if workers.is_empty() {
        return "no workers connected\n".into();
    }
    let rows = workers
        .iter()
        .map(|w| {
            let sdk = format!("{} {}", w.sdk_name, w.sdk_version).trim().to_string();
            vec![
                w.worker_id.clone(),
                w.worker_name.clone(),
                sdk,
                format!("{}/{}", w.in_flight, w.max_in_flight),
                w.functions.join(", "),
            ]
        })
        .collect();
    table(&["WORKER", "NAME", "SDK", "IN_FLIGHT", "FUNCTIONS"], rows, &[3])
}

pub fn receipt(id: &str, duplicate: bool, as_json: bool) -> String {
    match (as_json, duplicate) {
        (true, false) => pretty(&json!({"messageReceiptId": id})),
        (true, true) => pretty(&json!({"messageReceiptId": id, "duplicate": true})),
        (false, false) => format!("{id}\n"),
        (false, true) => format!("{id} (duplicate: the idempotency key's first job)\n"),
    }
}

/// A publish's receipts: one line per subscriber (`queue id`), or JSON.
pub fn published(receipts: &[switchyard_proto::wire::SubscriberReceipt], as_json: bool) -> String {
    if as_json {
        let list: Vec<_> = receipts
            .iter()
            .map(|r| {
                json!({"functionId": r.function_id, "queue": r.queue, "messageReceiptId": r.message_receipt_id,
                       "duplicate": r.duplicate})
            })
            .collect();
        return pretty(&json!({"receipts": list}));
    }
    if receipts.is_empty() {
        return "no subscribers: nothing stored\n".into();
    }
    receipts
        .iter()
        .map(|r| format!("{} {}{}\n", r.queue, r.message_receipt_id, if r.duplicate { " (duplicate)" } else { "" }))
        .collect()
}

/// `redriven 2 dead letters of queue 'email'`.
pub fn count(done: &str, n: u64, queue: &str, as_json: bool) -> String {
    if as_json {
        pretty(&json!({"count": n}))
    } else {
        format!("{done} {n} dead letter{} of queue '{queue}'\n", if n == 1 { "" } else { "s" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_right_align_numbers() {
        let t = table(&["NAME", "N"], vec![vec!["a".into(), "100".into()], vec!["long-name".into(), "7".into()]], &[1]);
        assert_eq!(t, "NAME         N\na          100\nlong-name    7\n");
    }
}

/// One job (`job get`), with a cancel's outcome first (`job cancel`): `key  value` lines
/// for people, or JSON.
pub fn job(j: &JobInfo, outcome: Option<&str>, as_json: bool) -> String {
    let value = |bytes: &bytes::Bytes| {
        (!bytes.is_empty()).then(|| prost_types::Value::decode(bytes.clone()).map(|v| value_to_json(&v)).ok()).flatten()
    };
    let error = j.last_error.clone().unwrap_or_default();
    let progress = j.progress.as_ref().map(|p| json!({"value": p.value, "detail": value(&p.detail)}));
    let when = |t: &Option<prost_types::Timestamp>| millis(t).map(rfc3339);
    let fields = json!({
        "messageReceiptId": j.message_receipt_id, "queue": j.queue, "functionId": j.function_id,
        "state": j.state, "attempts": j.attempts.unwrap_or(0), "maxAttempts": j.max_attempts,
        "priority": j.priority.unwrap_or(0), "group": j.group, "payload": value(&j.payload),
        "lastError": j.last_error.as_ref().map(|_| json!({"code": error.code, "message": error.message})),
        "enqueuedAt": when(&j.enqueued_at), "dueAt": when(&j.due_at), "finishedAt": when(&j.finished_at),
        "expiresAt": when(&j.expires_at), "result": value(&j.result), "progress": progress,
        "cancelRequested": j.cancel_requested,
    });
    if as_json {
        return match outcome {
            Some(o) => pretty(&json!({"outcome": o, "job": fields})),
            None => pretty(&fields),
        };
    }
    let mut rows = Vec::new();
    if let Some(o) = outcome {
        rows.push(vec!["outcome".to_string(), o.to_string()]);
    }
    for (key, v) in fields.as_object().expect("an object") {
        match v {
            Value::Null | Value::Bool(false) => {}
            Value::String(s) if s.is_empty() => {}
            Value::String(s) => rows.push(vec![key.clone(), s.clone()]),
            other => rows.push(vec![key.clone(), other.to_string()]),
        }
    }
    table(&["field", "value"], rows, &[])
}
