//! FIFO message groups: the group of a job is the value of the queue's
//! `message_group_field`, a top-level payload field holding a string or a number.
//!
//! Strings are used as they are; numbers by their JSON text (`42`, `1.5`), so `42` and
//! `"42"` name the same group. Anything else (absent, null, bool, list, object) is refused.

use prost_types::value::Kind;

/// Why a payload names no group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupError {
    NotAnObject,
    Missing,
    Null,
    WrongType(&'static str),
}

impl std::fmt::Display for GroupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupError::NotAnObject => f.write_str("payload is not a JSON object"),
            GroupError::Missing => f.write_str("field is missing"),
            GroupError::Null => f.write_str("field is null"),
            GroupError::WrongType(t) => write!(f, "field is a {t}, not a string or number"),
        }
    }
}

/// Extracts the group named by `field` from a decoded payload.
pub fn group_of(payload: &prost_types::Value, field: &str) -> Result<String, GroupError> {
    let Some(Kind::StructValue(obj)) = &payload.kind else {
        return Err(GroupError::NotAnObject);
    };
    let value = obj.fields.get(field).ok_or(GroupError::Missing)?;
    match &value.kind {
        Some(Kind::StringValue(s)) => Ok(s.clone()),
        Some(Kind::NumberValue(n)) => Ok(number_text(*n)),
        None | Some(Kind::NullValue(_)) => Err(GroupError::Null),
        Some(Kind::BoolValue(_)) => Err(GroupError::WrongType("boolean")),
        Some(Kind::ListValue(_)) => Err(GroupError::WrongType("list")),
        Some(Kind::StructValue(_)) => Err(GroupError::WrongType("object")),
    }
}

fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 { format!("{}", n as i64) } else { format!("{n}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::{Struct, Value};

    fn obj(field: &str, kind: Option<Kind>) -> Value {
        let mut s = Struct::default();
        s.fields.insert(field.into(), Value { kind });
        Value { kind: Some(Kind::StructValue(s)) }
    }

    #[test]
    fn strings_and_numbers_name_groups() {
        assert_eq!(group_of(&obj("orderId", Some(Kind::StringValue("o1".into()))), "orderId"), Ok("o1".into()));
        assert_eq!(group_of(&obj("orderId", Some(Kind::NumberValue(42.0))), "orderId"), Ok("42".into()));
        assert_eq!(group_of(&obj("orderId", Some(Kind::NumberValue(1.5))), "orderId"), Ok("1.5".into()));
    }

    #[test]
    fn missing_null_and_other_types_are_refused() {
        assert_eq!(group_of(&obj("x", None), "orderId"), Err(GroupError::Missing));
        assert_eq!(group_of(&obj("orderId", Some(Kind::NullValue(0))), "orderId"), Err(GroupError::Null));
        assert_eq!(
            group_of(&obj("orderId", Some(Kind::BoolValue(true))), "orderId"),
            Err(GroupError::WrongType("boolean"))
        );
        assert_eq!(group_of(&Value { kind: Some(Kind::NumberValue(1.0)) }, "orderId"), Err(GroupError::NotAnObject));
    }
}
