//! The caller side: `Engine.Trigger` (sync call, void, enqueue) on any [`crate::Worker`].

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
use switchyard_proto::wire::engine_client::EngineClient;
use switchyard_proto::wire::{EnqueueAction, VoidAction, trigger_request, trigger_response};

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
    /// The job's id: its deliveries, dead letter and log lines carry it.
    pub message_receipt_id: String,
}

pub(crate) async fn trigger(conn: &Connection, batcher: &Batcher, req: TriggerRequest) -> Result<Value, Error> {
    let payload = value_bytes(&req.payload);
    if let Some(TriggerAction::Enqueue { queue }) = &req.action {
        let receipt = batcher.enqueue(item(queue.clone(), req.function_id, payload)).await?;
        return Ok(json!({ "messageReceiptId": receipt.message_receipt_id }));
    }
    Ok(match trigger_direct(conn, req.function_id, payload, req.action, req.timeout_ms).await? {
        Answer::Value(v) => decode_value(&v).map_err(bad_result)?,
        Answer::Receipt(id) => json!({ "messageReceiptId": id }),
        Answer::Accepted => Value::Null,
    })
}

/// What the engine answered a `Trigger` call.
enum Answer {
    /// A sync call's value, as `google.protobuf.Value` wire bytes.
    Value(Bytes),
    Receipt(String),
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
) -> Result<Answer, Error> {
    let action = action.map(|a| match a {
        TriggerAction::Enqueue { queue } => {
            trigger_request::Action::Enqueue(EnqueueAction { queue, ..Default::default() })
        }
        TriggerAction::Void => trigger_request::Action::Void(VoidAction {}),
    });
    let request = switchyard_proto::wire::TriggerRequest { function_id, payload: payload.into(), action, timeout_ms };
    let response =
        EngineClient::new(conn.channel.clone()).trigger(request).await.map_err(|s| conn.error(s))?.into_inner();
    Ok(match response.outcome {
        Some(trigger_response::Outcome::Result(v)) => Answer::Value(v),
        Some(trigger_response::Outcome::Receipt(r)) => Answer::Receipt(r.message_receipt_id),
        Some(trigger_response::Outcome::Accepted(_) | trigger_response::Outcome::Published(_)) | None => {
            Answer::Accepted
        }
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
) -> Result<EnqueueReceipt, Error> {
    let payload = to_payload(&payload)?;
    batcher.enqueue(item(queue.into(), function_id.into(), payload)).await
}

pub(crate) async fn call<T: DeserializeOwned>(
    conn: &Connection,
    function_id: &str,
    payload: impl Serialize,
) -> Result<T, Error> {
    let payload = to_payload(&payload)?;
    let does_not_fit =
        |e| Error::local(Reason::InvalidArgument, format!("result of '{function_id}' does not fit: {e}"));
    match trigger_direct(conn, function_id.into(), payload, None, None).await? {
        Answer::Value(v) => from_wire(&v).map_err(|e| match e {
            FromWireError::NotAValue(e) => bad_result(e),
            FromWireError::DoesNotFit(e) => does_not_fit(e),
        }),
        Answer::Receipt(id) => serde_json::from_value(json!({ "messageReceiptId": id })).map_err(does_not_fit),
        Answer::Accepted => serde_json::from_value(Value::Null).map_err(does_not_fit),
    }
}

pub(crate) async fn void(conn: &Connection, function_id: &str, payload: impl Serialize) -> Result<(), Error> {
    let payload = to_payload(&payload)?;
    match trigger_direct(conn, function_id.into(), payload, Some(TriggerAction::Void), None).await? {
        Answer::Value(v) => check_value(&v).map_err(bad_result),
        Answer::Receipt(_) | Answer::Accepted => Ok(()),
    }
}

/// A caller's payload as `google.protobuf.Value` wire bytes, written straight from its
/// `Serialize` (`crate::wire_serde`): the JSON `serde_json::to_value` would make of it.
fn to_payload(payload: &impl Serialize) -> Result<Vec<u8>, Error> {
    to_wire(payload).map_err(|e| Error::local(Reason::InvalidArgument, format!("payload is not JSON: {e}")))
}
