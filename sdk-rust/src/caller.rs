//! The caller side: `Engine.Trigger` (sync call, void, enqueue) on any [`crate::Worker`].

use crate::batcher::{Batcher, item};
use crate::json::{decode_value, encode_value, value_len};
use crate::{Error, Reason};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
// The wire view: payloads travel as `google.protobuf.Value` bytes, encoded and read
// straight from JSON (`crate::json`).
use switchyard_proto::wire::engine_client::EngineClient;
use switchyard_proto::wire::{EnqueueAction, VoidAction, trigger_request, trigger_response};
use tonic::transport::Channel;

/// What to do with a trigger; `None` in [`TriggerRequest::action`] is a synchronous call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TriggerAction {
    /// Durable enqueue to a named queue.
    Enqueue { queue: String },
    /// Fire-and-forget.
    Void,
}

/// One call of `Engine.Trigger`, shaped like the iii SDK's.
#[derive(Clone, Debug, Default)]
pub struct TriggerRequest {
    pub function_id: String,
    pub payload: Value,
    pub action: Option<TriggerAction>,
    /// Synchronous calls only (engine default 30 s).
    pub timeout_ms: Option<u64>,
}

/// The answer to an enqueue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnqueueReceipt {
    pub message_receipt_id: String,
}

pub(crate) async fn trigger(channel: &Channel, batcher: &Batcher, req: TriggerRequest) -> Result<Value, Error> {
    if let Some(TriggerAction::Enqueue { queue }) = &req.action {
        let receipt = batcher.enqueue(item(queue.clone(), req.function_id, &req.payload)).await?;
        return Ok(json!({ "messageReceiptId": receipt.message_receipt_id }));
    }
    trigger_direct(channel, req).await
}

/// One `Trigger` call (sync, void, or an enqueue that bypasses coalescing).
async fn trigger_direct(channel: &Channel, req: TriggerRequest) -> Result<Value, Error> {
    let action = req.action.map(|a| match a {
        TriggerAction::Enqueue { queue } => trigger_request::Action::Enqueue(EnqueueAction { queue }),
        TriggerAction::Void => trigger_request::Action::Void(VoidAction {}),
    });
    let mut payload = Vec::with_capacity(value_len(&req.payload));
    encode_value(&req.payload, &mut payload);
    let request = switchyard_proto::wire::TriggerRequest {
        function_id: req.function_id,
        payload: payload.into(),
        action,
        timeout_ms: req.timeout_ms,
    };
    let response = EngineClient::new(channel.clone()).trigger(request).await?.into_inner();
    Ok(match response.outcome {
        Some(trigger_response::Outcome::Result(v)) => decode_value(&v)
            .map_err(|e| Error::local(Reason::Other("BAD_RESULT".into()), format!("the engine's answer: {e}")))?,
        Some(trigger_response::Outcome::Receipt(r)) => {
            json!({ "messageReceiptId": r.message_receipt_id })
        }
        Some(trigger_response::Outcome::Accepted(_)) | None => Value::Null,
    })
}

pub(crate) async fn enqueue(
    batcher: &Batcher,
    queue: &str,
    function_id: &str,
    payload: impl Serialize,
) -> Result<EnqueueReceipt, Error> {
    let payload = to_json(payload)?;
    batcher.enqueue(item(queue.into(), function_id.into(), &payload)).await
}

pub(crate) async fn call<T: DeserializeOwned>(
    channel: &Channel,
    function_id: &str,
    payload: impl Serialize,
) -> Result<T, Error> {
    let payload = to_json(payload)?;
    let request = TriggerRequest { function_id: function_id.into(), payload, action: None, timeout_ms: None };
    let out = trigger_direct(channel, request).await?;
    serde_json::from_value(out)
        .map_err(|e| Error::local(Reason::InvalidArgument, format!("result of '{function_id}' does not fit: {e}")))
}

pub(crate) fn to_json(payload: impl Serialize) -> Result<Value, Error> {
    serde_json::to_value(payload)
        .map_err(|e| Error::local(Reason::InvalidArgument, format!("payload is not JSON: {e}")))
}
