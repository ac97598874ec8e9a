//! Conversions between the engine's types and the `switchyard.v1` wire types, shared by
//! the gRPC services and the dispatcher.

use crate::clock::Millis;
use crate::queue::{JobError, Payload};
use bytes::Bytes;
use prost::Message;
use switchyard_proto::v1::FunctionError;

/// Encodes a JSON value for storage; `None` (no payload sent) is JSON `null`.
pub fn encode_payload(value: Option<&prost_types::Value>) -> Payload {
    match value {
        Some(v) => Payload(Bytes::from(v.encode_to_vec())),
        None => Payload(Bytes::from(null().encode_to_vec())),
    }
}

/// Decodes a stored payload. Payloads are written only by [`encode_payload`].
pub fn decode_payload(payload: &Payload) -> prost_types::Value {
    prost_types::Value::decode(payload.0.clone()).unwrap_or_else(|_| null())
}

pub fn null() -> prost_types::Value {
    prost_types::Value { kind: Some(prost_types::value::Kind::NullValue(0)) }
}

pub fn timestamp(ms: Millis) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: (ms / 1000) as i64, nanos: ((ms % 1000) * 1_000_000) as i32 }
}

pub fn function_error(e: &JobError) -> FunctionError {
    FunctionError { message: e.message.clone(), code: e.code.clone(), stack: e.stack.clone() }
}
