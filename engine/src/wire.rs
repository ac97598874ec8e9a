//! Conversions between the engine's types and the wire types, shared by the gRPC services
//! and the dispatcher.
//!
//! Payloads travel as the encoded bytes of a `google.protobuf.Value` (see the `wire` view
//! in `switchyard-proto`): the engine checks their shape once, on the way in, without
//! building the value ([`check_value`]), and passes them through untouched after that.

use crate::clock::Millis;
use crate::queue::{JobError, Payload};
use bytes::Bytes;
use prost::Message;
use switchyard_proto::wire::FunctionError;

/// JSON `null`, encoded.
pub fn null_bytes() -> Bytes {
    Bytes::from_static(&[0x08, 0x00])
}

/// A payload from the wire: empty (not sent) is `null`; anything else must be a
/// well-formed `google.protobuf.Value`.
pub fn payload_from_wire(bytes: Bytes) -> Result<Payload, String> {
    if bytes.is_empty() {
        return Ok(Payload(null_bytes()));
    }
    check_value(&bytes, 0)?;
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

const MAX_DEPTH: usize = 100;

/// Checks that `buf` is a well-formed `google.protobuf.Value` (tags, lengths, UTF-8,
/// nesting at most 100 deep) without allocating.
pub fn check_value(buf: &[u8], depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("payload nests deeper than 100 levels".into());
    }
    walk(buf, |field, value| match (field, value) {
        (1 | 4, Field::Varint) | (2, Field::Fixed64) => Ok(()),
        (3, Field::Bytes(s)) => utf8(s),
        (5, Field::Bytes(s)) => check_struct(s, depth + 1),
        (6, Field::Bytes(l)) => walk(l, |f, v| match (f, v) {
            (1, Field::Bytes(item)) => check_value(item, depth + 2),
            _ => Ok(()),
        }),
        (1..=6, _) => Err(format!("payload field {field} has the wrong wire type")),
        _ => Ok(()), // unknown fields are skipped, as protobuf decoders do
    })
}

fn check_struct(buf: &[u8], depth: usize) -> Result<(), String> {
    walk(buf, |field, value| match (field, value) {
        (1, Field::Bytes(entry)) => walk(entry, |f, v| match (f, v) {
            (1, Field::Bytes(key)) => utf8(key),
            (2, Field::Bytes(value)) => check_value(value, depth + 1),
            (1 | 2, _) => Err("payload object entry has the wrong wire type".into()),
            _ => Ok(()),
        }),
        (1, _) => Err("payload object has the wrong wire type".into()),
        _ => Ok(()),
    })
}

fn utf8(s: &[u8]) -> Result<(), String> {
    if s.is_ascii() {
        return Ok(()); // most keys and strings: a word at a time, without the full decoder
    }
    std::str::from_utf8(s).map(|_| ()).map_err(|_| "payload string is not valid UTF-8".into())
}

enum Field<'a> {
    Varint,
    Fixed64,
    Fixed32,
    Bytes(&'a [u8]),
}

/// Calls `f` for every field of one message.
fn walk<'a>(mut buf: &'a [u8], mut f: impl FnMut(u64, Field<'a>) -> Result<(), String>) -> Result<(), String> {
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let (field, wire_type) = (key >> 3, key & 7);
        if field == 0 {
            return Err("payload is not a protobuf Value (field 0)".into());
        }
        let value = match wire_type {
            0 => {
                varint(&mut buf)?;
                Field::Varint
            }
            1 => {
                buf = buf.get(8..).ok_or("payload is truncated")?;
                Field::Fixed64
            }
            2 => {
                let len = varint(&mut buf)? as usize;
                let (head, tail) = (buf.get(..len).ok_or("payload is truncated")?, &buf[len..]);
                buf = tail;
                Field::Bytes(head)
            }
            5 => {
                buf = buf.get(4..).ok_or("payload is truncated")?;
                Field::Fixed32
            }
            _ => return Err(format!("payload has an unsupported wire type {wire_type}")),
        };
        f(field, value)?;
    }
    Ok(())
}

fn varint(buf: &mut &[u8]) -> Result<u64, String> {
    if let Some((&byte, rest)) = buf.split_first()
        && byte < 0x80
    {
        *buf = rest; // tags and short lengths: one byte
        return Ok(u64::from(byte));
    }
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first().ok_or("payload is truncated")?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err("payload has an overlong varint".into())
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
