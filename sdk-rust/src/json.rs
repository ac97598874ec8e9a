//! `serde_json::Value` ⇄ `google.protobuf.Value`, lossless for every JSON value except
//! integers beyond 2^53, which the wire type carries as doubles.

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value as PbValue};
use serde_json::{Map, Number, Value};

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

/// [`to_proto`] that moves strings and keys instead of copying them.
pub(crate) fn to_proto_owned(v: Value) -> PbValue {
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(a) => Kind::ListValue(ListValue { values: a.into_iter().map(to_proto_owned).collect() }),
        Value::Object(o) => {
            Kind::StructValue(Struct { fields: o.into_iter().map(|(k, v)| (k, to_proto_owned(v))).collect() })
        }
    };
    PbValue { kind: Some(kind) }
}

/// [`from_proto`] that moves strings and keys instead of copying them.
pub(crate) fn from_proto_owned(v: PbValue) -> Value {
    match v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::NumberValue(n)) => number(n),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::ListValue(l)) => Value::Array(l.values.into_iter().map(from_proto_owned).collect()),
        Some(Kind::StructValue(s)) => {
            Value::Object(s.fields.into_iter().map(|(k, v)| (k, from_proto_owned(v))).collect::<Map<_, _>>())
        }
    }
}

/// Whole doubles come back as integers, so `{"n": 3}` round-trips as `3`, not `3.0`.
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        Value::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n).map(Value::Number).unwrap_or(Value::Null)
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
        assert_eq!(from_proto_owned(to_proto_owned(v.clone())), v);
        assert_eq!(to_proto_owned(v.clone()), to_proto(&v));
    }
}
