//! `serde_json::Value` ⇄ `google.protobuf.Value`, lossless for every JSON value except
//! integers beyond 2^53, which the wire type carries as doubles.

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value as PbValue};
use serde_json::{Map, Number, Value};
// The wire reader the engine checks payloads with; this module builds JSON from it.
pub(crate) use switchyard_proto::value_wire::{DecodeError, WireKind, check_value, entries, kind, values};

/// `v` as a prost `google.protobuf.Value`.
pub fn to_proto(v: &Value) -> PbValue {
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(a) => Kind::ListValue(ListValue { values: a.iter().map(to_proto).collect() }),
        Value::Object(o) => {
            Kind::StructValue(Struct { fields: o.iter().map(|(k, v)| (k.clone(), to_proto(v))).collect() })
        }
    };
    PbValue { kind: Some(kind) }
}

/// A prost `google.protobuf.Value` as JSON (whole numbers below 2^53 as integers).
pub fn from_proto(v: &PbValue) -> Value {
    match &v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::NumberValue(n)) => number(*n),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(from_proto).collect()),
        Some(Kind::StructValue(s)) => {
            Value::Object(s.fields.iter().map(|(k, v)| (k.clone(), from_proto(v))).collect::<Map<_, _>>())
        }
    }
}

/// `v` as `google.protobuf.Value` wire bytes (what prost writes for [`to_proto`]`(v)`),
/// written in one pass by the SDK's serializer (`crate::wire_serde`), the same one typed
/// payloads go through.
pub(crate) fn value_bytes(v: &Value) -> Vec<u8> {
    crate::wire_serde::to_wire(v).expect("a serde_json::Value always serializes: string keys, finite numbers")
}

/// Reads a `google.protobuf.Value` from its wire bytes (as [`value_bytes`] writes them, or
/// any conforming encoder) straight into JSON, without building the prost tree: what
/// [`from_proto`] of the decoded message gives. Empty bytes are `null`.
pub(crate) fn decode_value(buf: &[u8]) -> Result<Value, DecodeError> {
    value(buf, 1)
}

fn value(buf: &[u8], depth: u32) -> Result<Value, DecodeError> {
    Ok(match kind(buf, depth)? {
        WireKind::Null => Value::Null,
        WireKind::Number(n) => number(n),
        WireKind::String(s) => Value::String(s.into()),
        WireKind::Bool(b) => Value::Bool(b),
        WireKind::Struct(buf) => {
            let mut map = Map::new();
            for e in entries(buf, depth) {
                let (k, v) = e?;
                map.insert(k.into(), value(v, depth + 1)?);
            }
            Value::Object(map)
        }
        WireKind::List(buf) => Value::Array(values(buf).map(|v| value(v?, depth + 1)).collect::<Result<_, _>>()?),
    })
}

/// Whole doubles come back as integers, so `{"n": 3}` round-trips as `3`, not `3.0`.
fn number(n: f64) -> Value {
    match WireNumber::of(n) {
        WireNumber::PosInt(u) => Value::Number(u.into()),
        WireNumber::NegInt(i) => Value::Number(i.into()),
        WireNumber::Float(f) => Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null),
        WireNumber::Null => Value::Null,
    }
}

/// What JSON makes of a double from the wire: the `serde_json::Number` (or `null`) that
/// [`decode_value`] builds, for readers that skip building it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum WireNumber {
    /// A whole double of magnitude below 2^53, not negative (`-0.0` included).
    PosInt(u64),
    /// A whole negative double of magnitude below 2^53.
    NegInt(i64),
    /// Any other finite double.
    Float(f64),
    /// NaN and the infinities, which JSON cannot hold.
    Null,
}

impl WireNumber {
    pub(crate) fn of(n: f64) -> Self {
        if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
            let i = n as i64;
            if i < 0 { WireNumber::NegInt(i) } else { WireNumber::PosInt(i as u64) }
        } else if n.is_finite() {
            WireNumber::Float(n)
        } else {
            WireNumber::Null
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips() {
        let v = json!({"orderId": "ord_789", "n": 3, "x": 1.5, "ok": true, "none": null, "list": [1, "a", {"b": []}]});
        assert_eq!(from_proto(&to_proto(&v)), v);
    }

    #[test]
    fn value_bytes_read_back_as_prost_reads_them() {
        use prost::Message;
        let long = "x".repeat(300);
        for v in [
            json!(null),
            json!(false),
            json!(true),
            json!(0),
            json!(-1.5),
            json!(""),
            json!(long),
            json!([]),
            json!({}),
            json!({"": ""}),
            json!({"orderId": "ord_789", "n": 3, "x": 1.5, "ok": true, "none": null, "list": [1, "a", {"b": [], "c": {}}]}),
            json!({"big": [long.clone(), {"deep": [[[{"k": long}]]]}]}),
        ] {
            let buf = value_bytes(&v);
            assert_eq!(from_proto(&PbValue::decode(buf.as_slice()).unwrap()), v, "{v}");
            assert_eq!(decode_value(&buf).unwrap(), v, "{v}");
            assert_eq!(decode_value(&to_proto(&v).encode_to_vec()).unwrap(), v, "prost's bytes: {v}");
        }
    }

    #[test]
    fn decode_value_reads_what_prost_reads() {
        use prost::Message;
        // Unknown fields skipped, the last kind wins, absent entry parts are defaults.
        let mut buf = vec![0x38, 0x05]; // field 7, varint (unknown)
        buf.extend_from_slice(&[0x20, 0x01]); // bool_value true
        buf.extend_from_slice(&[0x1a, 0x02, b'h', b'i']); // string_value "hi" (last wins)
        assert_eq!(decode_value(&buf).unwrap(), json!("hi"));
        assert_eq!(from_proto(&PbValue::decode(buf.as_slice()).unwrap()), json!("hi"));
        let entry_without_value = [0x2a, 0x05, 0x0a, 0x03, 0x0a, 0x01, b'k'];
        assert_eq!(decode_value(&entry_without_value).unwrap(), json!({"k": null}));
        assert_eq!(decode_value(&[]).unwrap(), json!(null));
        // Broken input is an error, never a panic or a wrong value.
        for bad in [&[0x1a, 0x05, b'a'][..], &[0x1a, 0x01, 0xff], &[0x11, 0, 0], &[0x0f], &[0x80]] {
            assert!(decode_value(bad).is_err(), "{bad:?}");
            assert!(PbValue::decode(bad).is_err(), "prost agrees: {bad:?}");
        }
        let mut deep = value_bytes(&json!(null));
        for _ in 0..200 {
            let mut outer = vec![0x32];
            let inner_len = 1 + prost::encoding::encoded_len_varint(deep.len() as u64) + deep.len();
            prost::encoding::encode_varint(inner_len as u64, &mut outer);
            outer.push(0x0a);
            prost::encoding::encode_varint(deep.len() as u64, &mut outer);
            outer.extend_from_slice(&deep);
            deep = outer;
        }
        assert!(decode_value(&deep).is_err(), "too deep");
    }
}
