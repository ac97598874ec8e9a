//! Conversions between the engine's types and the wire types, shared by the gRPC services
//! and the dispatcher.
//!
//! Payloads travel as the encoded bytes of a `google.protobuf.Value` (see the `wire` view
//! in `switchyard-proto`): the engine checks their shape once, on the way in, without
//! building the value (`switchyard_proto::value_wire`, the reader the Rust SDK decodes
//! them with), and passes them through untouched after that.

use crate::clock::Millis;
use crate::queue::{JobError, Payload};
use bytes::Bytes;
use prost::Message;
use switchyard_proto::value_wire::{DecodeError, MAX_DEPTH, check_value_within};
use switchyard_proto::wire::FunctionError;

/// JSON `null`, encoded.
pub fn null_bytes() -> Bytes {
    Bytes::from_static(&[0x08, 0x00])
}

/// A payload from the wire: empty (not sent) is `null`; anything else must be a
/// well-formed `google.protobuf.Value`.
pub fn payload_from_wire(bytes: Bytes) -> Result<Payload, String> {
    payload_within(bytes, MAX_DEPTH).map_err(|e| e.to_string())
}

/// As [`payload_from_wire`], nesting bounded at `max_depth` `Value` levels; the error says
/// whether the depth alone was the problem ([`DecodeError::is_too_deep`]).
pub fn payload_within(bytes: Bytes, max_depth: u32) -> Result<Payload, DecodeError> {
    if bytes.is_empty() {
        return Ok(Payload(null_bytes()));
    }
    check_value_within(&bytes, max_depth)?;
    // An exact-size copy: a slice would pin the whole receive buffer it came in for as
    // long as the job lives.
    Ok(Payload(Bytes::copy_from_slice(&bytes)))
}

/// Decodes a stored payload into a value (only where the engine must look inside: FIFO
/// groups).
pub fn decode_payload(payload: &Payload) -> prost_types::Value {
    prost_types::Value::decode(payload.0.clone())
        .unwrap_or(prost_types::Value { kind: Some(prost_types::value::Kind::NullValue(0)) })
}

pub fn timestamp(ms: Millis) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: (ms / 1000) as i64, nanos: ((ms % 1000) * 1_000_000) as i32 }
}

pub fn function_error(e: &JobError) -> FunctionError {
    FunctionError { message: e.message.clone(), code: e.code.clone(), stack: e.stack.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::value::Kind;
    use prost_types::{ListValue, Struct, Value};

    fn encode(v: &Value) -> Bytes {
        Bytes::from(v.encode_to_vec())
    }

    #[test]
    fn well_formed_values_pass_and_round_trip() {
        let mut s = Struct::default();
        s.fields.insert("orderId".into(), Value { kind: Some(Kind::StringValue("ord_789".into())) });
        s.fields.insert("n".into(), Value { kind: Some(Kind::NumberValue(1.5)) });
        s.fields.insert("Grüße".into(), Value { kind: Some(Kind::StringValue("naïve — ✓".into())) });
        s.fields.insert("big".into(), Value { kind: Some(Kind::StringValue("x".repeat(300))) });
        let list = ListValue {
            values: vec![Value { kind: Some(Kind::BoolValue(true)) }, Value { kind: Some(Kind::NullValue(0)) }],
        };
        s.fields.insert("list".into(), Value { kind: Some(Kind::ListValue(list)) });
        let v = Value { kind: Some(Kind::StructValue(s)) };
        let p = payload_from_wire(encode(&v)).unwrap();
        assert_eq!(decode_payload(&p), v);
    }

    #[test]
    fn empty_is_null() {
        let p = payload_from_wire(Bytes::new()).unwrap();
        assert_eq!(decode_payload(&p), Value { kind: Some(Kind::NullValue(0)) });
    }

    #[test]
    fn malformed_bytes_are_refused() {
        assert!(payload_from_wire(Bytes::from_static(&[0x1a, 0x05, b'a'])).is_err(), "truncated string");
        assert!(payload_from_wire(Bytes::from_static(&[0x1a, 0x01, 0xff])).is_err(), "invalid UTF-8");
        assert!(payload_from_wire(Bytes::from_static(&[0x2a, 0x02, 0x0a, 0x05])).is_err(), "truncated object entry");
        assert!(payload_from_wire(Bytes::from_static(&[0x00])).is_err(), "field 0");
        let mut deep = Value { kind: Some(Kind::NullValue(0)) };
        for _ in 0..150 {
            deep = Value { kind: Some(Kind::ListValue(ListValue { values: vec![deep] })) };
        }
        assert!(payload_from_wire(encode(&deep)).is_err(), "too deep");
    }
}
