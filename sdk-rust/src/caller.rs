//! The caller side: `Engine.Trigger` (sync call, void, enqueue, publish) on any
//! [`crate::Worker`].
//!
//! Enqueue options ([`EnqueueOptions`]: `delay_ms`, `not_before`, `idempotency_key`) are
//! the same words in the three SDKs; a duplicate enqueue answers the first job's receipt
//! with `duplicate: true`. `publish` fans a payload out to a topic's subscribers and
//! answers one [`SubscriberReceipt`] per subscriber, in `topic_configs` order.

use crate::batcher::{Batcher, item};
use crate::json::{DecodeError, check_value, decode_value, value_bytes};
use crate::wire_serde::{FromWireError, from_wire, to_wire};
use crate::{Error, Reason};
use prost::bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
// The wire view: payloads travel as `google.protobuf.Value` bytes, written and read
// straight from JSON (`crate::json`) or from serde types (`crate::wire_serde`).
use crate::connection::Connection;
use std::time::SystemTime;
use switchyard_proto::wire::engine_client::EngineClient;
use switchyard_proto::wire::{EnqueueAction, PublishAction, VoidAction, trigger_request, trigger_response};

/// What to do with a trigger; `None` in [`TriggerRequest::action`] is a synchronous call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TriggerAction {
    /// Durable enqueue to a named queue.
    Enqueue {
        /// The queue, as named in `queue_configs`.
        queue: String,
    },
    /// Fire-and-forget.
    Void,
    /// Durable fan-out to a topic's subscribers (`function_id` must be empty).
    Publish {
        /// The topic, as named in `topic_configs`.
        topic: String,
    },
}

/// Options of an enqueue or a publish; all optional (`EnqueueOptions::default()` is none).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnqueueOptions {
    /// The job is delayed until the engine's now + this. Not with `not_before`.
    pub delay_ms: Option<u64>,
    /// The job is delayed until this instant (one in the past runs now). Not with `delay_ms`
    /// (both: `CONFLICTING_DELAY`).
    pub not_before: Option<SystemTime>,
    /// A second enqueue with this key to the same queue within its `dedup_window_ms`
    /// creates no job and answers the first job's receipt, `duplicate: true`. At most 256
    /// bytes (`INVALID_IDEMPOTENCY_KEY`).
    pub idempotency_key: Option<String>,
    /// 0 (default, lowest) to 9 (highest): a ready job of higher priority runs first.
    /// Standard queues only (`PRIORITY_ON_FIFO_QUEUE`); above 9 is `INVALID_PRIORITY`.
    pub priority: Option<u32>,
}

impl EnqueueOptions {
    /// Delayed by `delay_ms` from the engine's now.
    pub fn delay_ms(mut self, delay_ms: u64) -> Self {
        self.delay_ms = Some(delay_ms);
        self
    }

    /// Delayed until `at`.
    pub fn not_before(mut self, at: SystemTime) -> Self {
        self.not_before = Some(at);
        self
    }

    /// With this idempotency key.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// With this priority.
    pub fn priority(mut self, priority: u32) -> Self {
        self.priority = Some(priority);
        self
    }
}

/// The answer to a publish: one receipt per subscriber, in `topic_configs` order; empty
/// when the topic has no subscribers (accepted and counted, nothing runs).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PublishReceipt {
    /// One per subscriber, in `topic_configs` order.
    pub receipts: Vec<SubscriberReceipt>,
}

/// One subscriber's job of a publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriberReceipt {
    /// The subscribed function.
    pub function_id: String,
    /// `<topic>/<function_id>`: its stats, DLQ and redrive as any queue's.
    pub queue: String,
    /// The subscriber's job (for a duplicate, the first publish's job).
    pub message_receipt_id: String,
    /// The publish's idempotency key matched an earlier one on this subscriber's queue.
    pub duplicate: bool,
}

pub(crate) fn timestamp(at: SystemTime) -> prost_types::Timestamp {
    let since = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp { seconds: since.as_secs() as i64, nanos: since.subsec_nanos() as i32 }
}

/// One call of `Engine.Trigger`, shaped like the iii SDK's.
#[derive(Clone, Debug, Default)]
pub struct TriggerRequest {
    /// The function to run.
    pub function_id: String,
    /// Its payload: any JSON.
    pub payload: Value,
    /// Enqueue, void, or `None` for a synchronous call.
    pub action: Option<TriggerAction>,
    /// Synchronous calls only (engine default 30 s).
    pub timeout_ms: Option<u64>,
}

/// The answer to an enqueue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnqueueReceipt {
    /// The job's id: its deliveries, dead letter and log lines carry it (for a duplicate,
    /// the first job's).
    pub message_receipt_id: String,
    /// The enqueue's idempotency key matched an earlier job: nothing was stored.
    pub duplicate: bool,
}

pub(crate) async fn trigger(conn: &Connection, batcher: &Batcher, req: TriggerRequest) -> Result<Value, Error> {
    let payload = value_bytes(&req.payload);
    if let Some(TriggerAction::Enqueue { queue }) = &req.action {
        let receipt =
            batcher.enqueue(item(queue.clone(), req.function_id, payload, &EnqueueOptions::default())).await?;
        return Ok(json!({ "messageReceiptId": receipt.message_receipt_id }));
    }
    Ok(match trigger_direct(conn, req.function_id, payload, req.action, req.timeout_ms, None).await? {
        Answer::Value(v) => decode_value(&v).map_err(bad_result)?,
        Answer::Receipt(id) => json!({ "messageReceiptId": id }),
        Answer::Published(p) => published_json(&p),
        Answer::Accepted => Value::Null,
    })
}

fn published_json(p: &PublishReceipt) -> Value {
    let receipts: Vec<Value> = p
        .receipts
        .iter()
        .map(|r| {
            json!({
                "functionId": r.function_id,
                "queue": r.queue,
                "messageReceiptId": r.message_receipt_id,
                "duplicate": r.duplicate,
            })
        })
        .collect();
    json!({ "receipts": receipts })
}

/// What the engine answered a `Trigger` call.
enum Answer {
    /// A sync call's value, as `google.protobuf.Value` wire bytes.
    Value(Bytes),
    Receipt(String),
    Published(PublishReceipt),
    /// A void call, or no outcome.
    Accepted,
}

/// One `Trigger` call (sync, void, or an enqueue that bypasses coalescing) with a payload
/// already encoded.
async fn trigger_direct(
    conn: &Connection,
    function_id: String,
    payload: Vec<u8>,
    action: Option<TriggerAction>,
    timeout_ms: Option<u64>,
    options: Option<&EnqueueOptions>,
) -> Result<Answer, Error> {
    let o = options.cloned().unwrap_or_default();
    let action = action.map(|a| match a {
        TriggerAction::Enqueue { queue } => trigger_request::Action::Enqueue(EnqueueAction {
            queue,
            delay_ms: o.delay_ms,
            not_before: o.not_before.map(timestamp),
            idempotency_key: o.idempotency_key.clone().unwrap_or_default(),
            priority: o.priority,
        }),
        TriggerAction::Void => trigger_request::Action::Void(VoidAction {}),
        TriggerAction::Publish { topic } => trigger_request::Action::Publish(PublishAction {
            topic,
            delay_ms: o.delay_ms,
            not_before: o.not_before.map(timestamp),
            idempotency_key: o.idempotency_key.clone().unwrap_or_default(),
        }),
    });
    let request = switchyard_proto::wire::TriggerRequest { function_id, payload: payload.into(), action, timeout_ms };
    let response =
        EngineClient::new(conn.channel.clone()).trigger(request).await.map_err(|s| conn.error(s))?.into_inner();
    Ok(match response.outcome {
        Some(trigger_response::Outcome::Result(v)) => Answer::Value(v),
        Some(trigger_response::Outcome::Receipt(r)) => Answer::Receipt(r.message_receipt_id),
        Some(trigger_response::Outcome::Published(p)) => Answer::Published(PublishReceipt {
            receipts: p
                .receipts
                .into_iter()
                .map(|r| SubscriberReceipt {
                    function_id: r.function_id,
                    queue: r.queue,
                    message_receipt_id: r.message_receipt_id,
                    duplicate: r.duplicate,
                })
                .collect(),
        }),
        Some(trigger_response::Outcome::Accepted(_)) | None => Answer::Accepted,
    })
}

fn bad_result(e: DecodeError) -> Error {
    Error::local(Reason::Other("BAD_RESULT".into()), format!("the engine's answer: {e}"))
}

pub(crate) async fn enqueue(
    batcher: &Batcher,
    queue: &str,
    function_id: &str,
    payload: impl Serialize,
    options: &EnqueueOptions,
) -> Result<EnqueueReceipt, Error> {
    let payload = to_payload(&payload)?;
    batcher.enqueue(item(queue.into(), function_id.into(), payload, options)).await
}

pub(crate) async fn publish(
    conn: &Connection,
    topic: &str,
    payload: impl Serialize,
    options: &EnqueueOptions,
) -> Result<PublishReceipt, Error> {
    let payload = to_payload(&payload)?;
    let action = Some(TriggerAction::Publish { topic: topic.into() });
    match trigger_direct(conn, String::new(), payload, action, None, Some(options)).await? {
        Answer::Published(p) => Ok(p),
        _ => Err(Error::local(Reason::Other("BAD_RESULT".into()), "the engine answered a publish without receipts")),
    }
}

pub(crate) async fn call<T: DeserializeOwned>(
    conn: &Connection,
    function_id: &str,
    payload: impl Serialize,
) -> Result<T, Error> {
    let payload = to_payload(&payload)?;
    let does_not_fit =
        |e| Error::local(Reason::InvalidArgument, format!("result of '{function_id}' does not fit: {e}"));
    match trigger_direct(conn, function_id.into(), payload, None, None, None).await? {
        Answer::Value(v) => from_wire(&v).map_err(|e| match e {
            FromWireError::NotAValue(e) => bad_result(e),
            FromWireError::DoesNotFit(e) => does_not_fit(e),
        }),
        Answer::Receipt(id) => serde_json::from_value(json!({ "messageReceiptId": id })).map_err(does_not_fit),
        Answer::Published(p) => serde_json::from_value(published_json(&p)).map_err(does_not_fit),
        Answer::Accepted => serde_json::from_value(Value::Null).map_err(does_not_fit),
    }
}

pub(crate) async fn void(conn: &Connection, function_id: &str, payload: impl Serialize) -> Result<(), Error> {
    let payload = to_payload(&payload)?;
    match trigger_direct(conn, function_id.into(), payload, Some(TriggerAction::Void), None, None).await? {
        Answer::Value(v) => check_value(&v).map_err(bad_result),
        Answer::Receipt(_) | Answer::Published(_) | Answer::Accepted => Ok(()),
    }
}

/// A caller's payload as `google.protobuf.Value` wire bytes, written straight from its
/// `Serialize` (`crate::wire_serde`): the JSON `serde_json::to_value` would make of it.
fn to_payload(payload: &impl Serialize) -> Result<Vec<u8>, Error> {
    to_wire(payload).map_err(|e| Error::local(Reason::InvalidArgument, format!("payload is not JSON: {e}")))
}
