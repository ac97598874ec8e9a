//! Conversions between the engine's types and the wire types, shared by the gRPC services
//! and the dispatcher.
//!
//! Payloads travel as the encoded bytes of a `google.protobuf.Value` (see the `wire` view
//! in `switchyard-proto`): the engine checks their shape once, on the way in, without
//! building the value (`switchyard_proto::value_wire`, the reader the Rust SDK decodes
//! them with), and passes them through untouched after that.

use crate::clock::Millis;
use crate::queue::{JobError, Payload, Progress};
use bytes::Bytes;
use prost::Message;
use switchyard_proto::value_wire::{DecodeError, MAX_DEPTH, check_value_within};
use switchyard_proto::wire::{FunctionError, JobProgress};

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

/// A job's progress as GetJob shows it.
pub fn job_progress(p: &Progress) -> JobProgress {
    JobProgress { value: p.value, detail: p.detail.as_ref().map(|d| d.0.clone()).unwrap_or_default() }
}

pub fn function_error(e: &JobError) -> FunctionError {
    FunctionError { message: e.message.clone(), code: e.code.clone(), stack: e.stack.clone(), non_retryable: false }
}

/// `2026-12-03T10:17:00.123Z`: a time as operators read it (the CLI, the console).
pub fn rfc3339(ms: Millis) -> String {
    // Days since the epoch to a civil date (H. Hinnant's algorithm, proleptic Gregorian).
    let (days, rem) = ((ms / 86_400_000) as i64, ms % 86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

/// A decoded `google.protobuf.Value` as JSON (for operators: the CLI, the console).
pub fn value_to_json(v: &prost_types::Value) -> serde_json::Value {
    use prost_types::value::Kind;
    match &v.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(*n).map_or(serde_json::Value::Null, |n| {
            // Whole numbers print as integers, as the producer most likely wrote them.
            match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => (f as i64).into(),
                _ => serde_json::Value::Number(n),
            }
        }),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::ListValue(l)) => l.values.iter().map(value_to_json).collect(),
        Some(Kind::StructValue(s)) => {
            serde_json::Value::Object(s.fields.iter().map(|(k, v)| (k.clone(), value_to_json(v))).collect())
        }
    }
}

/// JSON as a `google.protobuf.Value`, encoded (the CLI's `enqueue`).
pub fn json_to_wire(v: &serde_json::Value) -> Bytes {
    fn value(v: &serde_json::Value) -> prost_types::Value {
        use prost_types::value::Kind;
        let kind = match v {
            serde_json::Value::Null => Kind::NullValue(0),
            serde_json::Value::Bool(b) => Kind::BoolValue(*b),
            serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => Kind::StringValue(s.clone()),
            serde_json::Value::Array(a) => {
                Kind::ListValue(prost_types::ListValue { values: a.iter().map(value).collect() })
            }
            serde_json::Value::Object(o) => Kind::StructValue(prost_types::Struct {
                fields: o.iter().map(|(k, v)| (k.clone(), value(v))).collect(),
            }),
        };
        prost_types::Value { kind: Some(kind) }
    }
    Bytes::from(value(v).encode_to_vec())
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

    #[test]
    fn rfc3339_prints_utc_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_796_293_020_123), "2026-12-03T10:17:00.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn json_survives_the_trip_through_a_value() {
        let json = serde_json::json!({"orderId": "ord_1", "n": 3, "x": 1.5, "tags": [true, null]});
        let back = value_to_json(&prost_types::Value::decode(json_to_wire(&json)).unwrap());
        assert_eq!(back, json);
    }
}
