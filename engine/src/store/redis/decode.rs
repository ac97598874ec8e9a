//! Job hashes back into [`Job`]s: the one place that reads the fields the scripts write
//! (the layout is in [`super::keys`]).
//!
//! Invariant: a hash decodes only when its `state` is one of the closed set of
//! [`JobState`]s and every field the state needs is there; anything else is
//! [`StoreError::Corrupt`], never a guess.

use crate::queue::{Job, JobError, JobState, Payload, Progress};
use crate::store::StoreError;
use bytes::Bytes;
use std::collections::HashMap;

/// A job hash as `HGETALL` returns it.
pub(super) type Fields = HashMap<String, Vec<u8>>;

fn text(f: &mut Fields, name: &str) -> Result<String, StoreError> {
    let raw = f.remove(name).ok_or_else(|| StoreError::Corrupt(format!("job hash without '{name}'")))?;
    String::from_utf8(raw).map_err(|_| StoreError::Corrupt(format!("job field '{name}' is not UTF-8")))
}

fn number(f: &mut Fields, name: &str) -> Result<u64, StoreError> {
    let t = text(f, name)?;
    // Lua writes integers; a negative count would mean a broken transition.
    t.parse::<u64>().map_err(|_| StoreError::Corrupt(format!("job field '{name}' is not a count: '{t}'")))
}

fn optional_number(f: &mut Fields, name: &str) -> Result<Option<u64>, StoreError> {
    match f.contains_key(name) {
        true => number(f, name).map(Some),
        false => Ok(None),
    }
}

fn optional_text(f: &mut Fields, name: &str) -> Option<String> {
    f.remove(name).map(|v| String::from_utf8_lossy(&v).into_owned())
}

fn state(word: &str) -> Result<JobState, StoreError> {
    Ok(match word {
        "waiting" => JobState::Waiting,
        "ready" => JobState::Ready,
        "delayed" => JobState::Delayed,
        "inflight" => JobState::InFlight,
        "dead" => JobState::Dead,
        "completed" => JobState::Completed,
        "cancelled" => JobState::Cancelled,
        other => return Err(StoreError::Corrupt(format!("unknown job state '{other}'"))),
    })
}

fn progress(f: &mut Fields) -> Result<Option<Progress>, StoreError> {
    if f.remove("prog").is_none() {
        return Ok(None);
    }
    let value = match optional_text(f, "prog_v") {
        None => None,
        Some(t) => {
            Some(t.parse::<f64>().map_err(|_| StoreError::Corrupt(format!("progress value '{t}' is not a number")))?)
        }
    };
    let detail = f.remove("prog_d").map(|d| Payload(Bytes::from(d)));
    Ok(Some(Progress { value, detail }))
}

/// Decodes a job hash; returns the job and its current lease id.
pub(super) fn decode(mut f: Fields) -> Result<(Job, u64), StoreError> {
    let state = state(&text(&mut f, "state")?)?;
    let last_error = f.remove("err").map(|_| JobError {
        message: optional_text(&mut f, "err_message").unwrap_or_default(),
        code: optional_text(&mut f, "err_code").unwrap_or_default(),
        stack: optional_text(&mut f, "err_stack").unwrap_or_default(),
    });
    let priority = optional_number(&mut f, "prio")?.unwrap_or(0);
    let job = Job {
        id: text(&mut f, "id")?,
        queue: text(&mut f, "queue")?,
        function_id: text(&mut f, "fn")?,
        payload: Payload(Bytes::from(f.remove("payload").unwrap_or_default())),
        group: optional_text(&mut f, "group"),
        state,
        attempts: number(&mut f, "attempts")? as u32,
        enqueued_at: number(&mut f, "enq")?,
        due_at: number(&mut f, "due")?,
        last_error,
        dead_lettered_at: optional_number(&mut f, "dead_at")?,
        not_before: optional_number(&mut f, "nb")?,
        priority: u8::try_from(priority).map_err(|_| StoreError::Corrupt(format!("priority {priority}")))?,
        cancel_requested: state == JobState::InFlight && f.remove("cancel").is_some(),
        progress: progress(&mut f)?,
        finished_at: optional_number(&mut f, "fin")?,
        expires_at: optional_number(&mut f, "exp")?,
        result: f.remove("result").map(|r| Payload(Bytes::from(r))),
    };
    let lease = number(&mut f, "lease")?;
    Ok((job, lease))
}
