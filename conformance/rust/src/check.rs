//! What the steps compare: behaviours, payload patterns, stats, JSON equality.

use anyhow::ensure;
use serde_json::{Value, json};
use switchyard_sdk::{Context, HandlerError};

pub fn behave(spec: &Value, payload: &Value, ctx: &Context) -> Result<Value, HandlerError> {
    let behavior = &spec["behavior"];
    if !matches(&spec["match"], payload) || behavior == "succeed" {
        return Ok(json!(true));
    }
    if behavior == "echo" {
        return Ok(payload.clone());
    }
    if behavior == "fail_permanent" {
        return Err(HandlerError::permanent(spec["error"]["message"].as_str().unwrap_or("conformance failure")));
    }
    let until = behavior["fail_until_attempt"].as_u64();
    if behavior == "fail_always" || until.is_some_and(|n| u64::from(ctx.attempt) < n) {
        let message = spec["error"]["message"].as_str().unwrap_or("conformance failure");
        return Err(HandlerError::new(message).with_code(spec["error"]["code"].as_str().unwrap_or("ConformanceError")));
    }
    Ok(json!(true))
}

pub fn matches(pattern: &Value, payload: &Value) -> bool {
    match pattern.as_object() {
        None => true,
        Some(fields) => fields.iter().all(|(k, v)| json_eq(&payload[k], v)),
    }
}

pub fn stats_match(stats: &Value, want: &Value) -> anyhow::Result<()> {
    for (key, value) in want.as_object().into_iter().flatten() {
        if key != "queue" && key != "timeout_ms" {
            ensure!(stats[key] == *value, "{key} is {}, expected {value} ({stats})", stats[key]);
        }
    }
    Ok(())
}

/// JSON equality where numbers compare by value (1 == 1.0, as JSON has one number type).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}
