//! What a message on a Switchyard queue carries: one job version, a catch-up marker, or a
//! shard's counters — in the body, in a small binary layout of our own.
//!
//! Invariant: `decode(encode(m)) == m` for every message, and a body that is not ours (no
//! magic, an unknown kind, a short field) is an error, never a guessed job. A job message
//! holds everything the store keeps about the job (attempts, last error, due time, priority,
//! and how it ended when it is kept after its end: completed with its result, or cancelled),
//! so the broker alone can rebuild a shard after any engine dies; `version` tells copies of
//! one job apart (each retry, cancel or kept completion publishes the next version, see
//! `shard`). Progress is not in the message: it is the owner's, and lost with it.
//!
//! Layout: `SY1` then a kind byte, then fields: integers little-endian, strings and bytes
//! as a `u32` length and the bytes, options as a `0`/`1` byte first. Headers and
//! properties are not used: the body is read once and copied nowhere else. Fields added
//! later come last and may be absent (a message written before them still decodes).

use crate::clock::Millis;
use crate::queue::{Job, JobError, JobId, JobState, Payload};
use crate::store::QueueStats;
use bytes::{Buf, BufMut, Bytes};

const MAGIC: &[u8; 3] = b"SY1";
const KIND_JOB: u8 = 1;
const KIND_MARKER: u8 = 2;
const KIND_COUNTERS: u8 = 3;
const KIND_KEPT: u8 = 4;
const END_COMPLETED: u8 = 1;
const END_CANCELLED: u8 = 2;

/// One version of a job, as published to a shard queue or to the dead-letter queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobMsg {
    pub id: JobId,
    pub queue: String,
    pub function_id: String,
    pub payload: Payload,
    pub group: Option<String>,
    pub enqueued_at: Millis,
    /// Where the job stands in its shard: its enqueue time, or its redrive time.
    pub order_at: Millis,
    /// Bumped by every copy (retry, dead-letter, redrive); the highest is the job.
    pub version: u32,
    /// Attempts made so far (failed ones: an interrupted attempt is never written).
    pub attempts: u32,
    /// Set while the job waits for a retry.
    pub due_at: Option<Millis>,
    pub last_error: Option<JobError>,
    /// Set in the dead-letter queue: when, and its place in the DLQ's order.
    pub dead: Option<(Millis, u64)>,
    /// A delayed enqueue's due time, until the job first becomes ready. Absent in a message
    /// written before it existed (decoded as `None`).
    pub not_before: Option<Millis>,
    /// 0 (default) to 9; absent in older messages (0).
    pub priority: u8,
    /// How the job ended, while it is kept after its end; absent in older messages.
    pub end: Option<End>,
}

/// A kept job's end, in its message: what a new owner restores it as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// Succeeded on a queue that keeps results: `Completed` with `result` until `until`.
    Completed { at: Millis, until: Millis, result: Payload },
    /// Cancelled (or cancel-requested while in flight: a new owner never runs it again),
    /// kept until `until`.
    Cancelled { at: Millis, until: Millis },
}

impl JobMsg {
    /// The job this version describes: dead in the DLQ, else completed or cancelled when it
    /// ended, else delayed while it has a due time, else ready.
    pub fn into_job(self) -> Job {
        let state = match (self.dead, &self.end, self.due_at) {
            (Some(_), _, _) => JobState::Dead,
            (None, Some(End::Completed { .. }), _) => JobState::Completed,
            (None, Some(End::Cancelled { .. }), _) => JobState::Cancelled,
            (None, None, Some(_)) => JobState::Delayed,
            (None, None, None) => JobState::Ready,
        };
        let (finished_at, expires_at, result) = match self.end {
            Some(End::Completed { at, until, result }) => (Some(at), Some(until), Some(result)),
            Some(End::Cancelled { at, until }) => (Some(at), Some(until), None),
            None => (None, None, None),
        };
        Job {
            state,
            priority: self.priority,
            finished_at,
            expires_at,
            result,
            due_at: self.due_at.unwrap_or(self.order_at),
            dead_lettered_at: self.dead.map(|(at, _)| at),
            id: self.id,
            queue: self.queue,
            function_id: self.function_id,
            payload: self.payload,
            group: self.group,
            attempts: self.attempts,
            enqueued_at: self.enqueued_at,
            last_error: self.last_error,
            not_before: self.not_before,
            ..Job::default()
        }
    }
}

/// A job's fields (the body of a job message after its kind).
fn put_job(out: &mut Vec<u8>, j: &JobMsg) {
    put_str(out, &j.id);
    put_str(out, &j.queue);
    put_str(out, &j.function_id);
    put_bytes(out, &j.payload.0);
    put_opt(out, j.group.as_ref(), |o, g| put_str(o, g));
    out.put_u64_le(j.enqueued_at);
    out.put_u64_le(j.order_at);
    out.put_u32_le(j.version);
    out.put_u32_le(j.attempts);
    put_opt(out, j.due_at.as_ref(), |o, d| o.put_u64_le(*d));
    put_opt(out, j.last_error.as_ref(), |o, e| {
        put_str(o, &e.message);
        put_str(o, &e.code);
        put_str(o, &e.stack);
    });
    put_opt(out, j.dead.as_ref(), |o, (at, seq)| {
        o.put_u64_le(*at);
        o.put_u64_le(*seq);
    });
    put_opt(out, j.not_before.as_ref(), |o, at| o.put_u64_le(*at));
    out.put_u8(j.priority);
    put_opt(out, j.end.as_ref(), |o, end| match end {
        End::Completed { at, until, result } => {
            o.put_u8(END_COMPLETED);
            o.put_u64_le(*at);
            o.put_u64_le(*until);
            put_bytes(o, &result.0);
        }
        End::Cancelled { at, until } => {
            o.put_u8(END_CANCELLED);
            o.put_u64_le(*at);
            o.put_u64_le(*until);
        }
    });
}

/// A job's fields (see [`put_job`]); the later fields may be absent at the end.
fn get_job(b: &mut &[u8]) -> Result<JobMsg, DecodeError> {
    Ok(JobMsg {
        id: get_str(b)?,
        queue: get_str(b)?,
        function_id: get_str(b)?,
        payload: Payload(Bytes::from(get_bytes(b)?)),
        group: get_opt(b, get_str)?,
        enqueued_at: get_u64(b)?,
        order_at: get_u64(b)?,
        version: get_u32(b)?,
        attempts: get_u32(b)?,
        due_at: get_opt(b, get_u64)?,
        last_error: get_opt(b, |b| Ok(JobError { message: get_str(b)?, code: get_str(b)?, stack: get_str(b)? }))?,
        dead: get_opt(b, |b| Ok((get_u64(b)?, get_u64(b)?)))?,
        not_before: if b.is_empty() { None } else { get_opt(b, get_u64)? },
        priority: if b.is_empty() { 0 } else { get_u8(b)? },
        end: if b.is_empty() { None } else { get_opt(b, get_end)? },
    })
}

/// A message on a Switchyard queue.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // `Job` is nearly every message: boxing it would cost an allocation each
pub enum Msg {
    Job(JobMsg),
    /// Published by an engine that became a shard's consumer; it has seen the whole shard
    /// once its own marker comes back.
    Marker {
        engine: String,
        nonce: u64,
    },
    /// Several jobs kept after their end (one finish's completions with results, or
    /// cancels), in one message: acked once every one of them is done with (see `shard`).
    Kept(Vec<JobMsg>),
    /// A shard's counters; the highest `version` is current.
    Counters {
        version: u64,
        stats: QueueStats,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("not a Switchyard message: {0}")]
pub struct DecodeError(pub(super) &'static str);

pub fn encode(msg: &Msg) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.put_slice(MAGIC);
    match msg {
        Msg::Job(j) => {
            out.put_u8(KIND_JOB);
            put_job(&mut out, j);
        }
        Msg::Kept(jobs) => {
            out.put_u8(KIND_KEPT);
            out.put_u32_le(jobs.len() as u32);
            for j in jobs {
                let mut one = Vec::with_capacity(128);
                put_job(&mut one, j);
                put_bytes(&mut out, &one);
            }
        }
        Msg::Marker { engine, nonce } => {
            out.put_u8(KIND_MARKER);
            put_str(&mut out, engine);
            out.put_u64_le(*nonce);
        }
        Msg::Counters { version, stats } => {
            out.put_u8(KIND_COUNTERS);
            out.put_u64_le(*version);
            for n in [stats.enqueued, stats.completed, stats.failed, stats.dead_lettered] {
                out.put_u64_le(n);
            }
        }
    }
    out
}

pub fn decode(body: &[u8]) -> Result<Msg, DecodeError> {
    let mut b = body;
    if b.len() < 4 || &b[..3] != MAGIC {
        return Err(DecodeError("no SY1 magic"));
    }
    b.advance(3);
    let kind = b.get_u8();
    let msg = match kind {
        KIND_JOB => Msg::Job(get_job(&mut b)?),
        KIND_KEPT => {
            let n = get_u32(&mut b)? as usize;
            let mut jobs = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let one = get_bytes(&mut b)?;
                let mut slice = one.as_slice();
                jobs.push(get_job(&mut slice)?);
                if !slice.is_empty() {
                    return Err(DecodeError("trailing bytes in a kept job"));
                }
            }
            Msg::Kept(jobs)
        }
        KIND_MARKER => Msg::Marker { engine: get_str(&mut b)?, nonce: get_u64(&mut b)? },
        KIND_COUNTERS => {
            let version = get_u64(&mut b)?;
            let mut n = [0u64; 4];
            for slot in &mut n {
                *slot = get_u64(&mut b)?;
            }
            let [enqueued, completed, failed, dead_lettered] = n;
            Msg::Counters {
                version,
                stats: QueueStats { enqueued, completed, failed, dead_lettered, ..Default::default() },
            }
        }
        _ => return Err(DecodeError("unknown kind")),
    };
    if !b.is_empty() {
        return Err(DecodeError("trailing bytes"));
    }
    Ok(msg)
}

pub(super) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

pub(super) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.put_u32_le(b.len() as u32);
    out.put_slice(b);
}

pub(super) fn put_opt<T>(out: &mut Vec<u8>, v: Option<&T>, put: impl FnOnce(&mut Vec<u8>, &T)) {
    match v {
        None => out.put_u8(0),
        Some(v) => {
            out.put_u8(1);
            put(out, v);
        }
    }
}

fn get_end(b: &mut &[u8]) -> Result<End, DecodeError> {
    match get_u8(b)? {
        END_COMPLETED => {
            Ok(End::Completed { at: get_u64(b)?, until: get_u64(b)?, result: Payload(Bytes::from(get_bytes(b)?)) })
        }
        END_CANCELLED => Ok(End::Cancelled { at: get_u64(b)?, until: get_u64(b)? }),
        _ => Err(DecodeError("unknown end")),
    }
}

pub(super) fn get_u8(b: &mut &[u8]) -> Result<u8, DecodeError> {
    if b.is_empty() {
        return Err(DecodeError("short u8"));
    }
    Ok(b.get_u8())
}

pub(super) fn get_u32(b: &mut &[u8]) -> Result<u32, DecodeError> {
    if b.len() < 4 {
        return Err(DecodeError("short u32"));
    }
    Ok(b.get_u32_le())
}

pub(super) fn get_u64(b: &mut &[u8]) -> Result<u64, DecodeError> {
    if b.len() < 8 {
        return Err(DecodeError("short u64"));
    }
    Ok(b.get_u64_le())
}

pub(super) fn get_bytes(b: &mut &[u8]) -> Result<Vec<u8>, DecodeError> {
    let n = get_u32(b)? as usize;
    if b.len() < n {
        return Err(DecodeError("short field"));
    }
    let v = b[..n].to_vec();
    b.advance(n);
    Ok(v)
}

pub(super) fn get_str(b: &mut &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(get_bytes(b)?).map_err(|_| DecodeError("text is not UTF-8"))
}

pub(super) fn get_opt<T>(
    b: &mut &[u8],
    get: impl FnOnce(&mut &[u8]) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    if b.is_empty() {
        return Err(DecodeError("short option"));
    }
    match b.get_u8() {
        0 => Ok(None),
        1 => get(b).map(Some),
        _ => Err(DecodeError("bad option tag")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_and_foreign_bodies_are_refused() {
        let job = JobMsg {
            id: "j1".into(),
            queue: "q".into(),
            function_id: "f".into(),
            payload: Payload(Bytes::from_static(b"\x00\x01raw")),
            group: Some("G".into()),
            enqueued_at: 1,
            order_at: 2,
            version: 3,
            attempts: 4,
            due_at: Some(5),
            last_error: Some(JobError { message: "m".into(), code: "c".into(), stack: "s".into() }),
            dead: Some((6, 7)),
            not_before: Some(8),
            priority: 9,
            end: Some(End::Completed { at: 9, until: 10, result: Payload(Bytes::from_static(b"r")) }),
        };
        let stats = QueueStats { enqueued: 1, completed: 2, failed: 3, dead_lettered: 4, ..Default::default() };
        for msg in [
            Msg::Job(job.clone()),
            Msg::Job(JobMsg { end: Some(End::Cancelled { at: 1, until: 2 }), ..job.clone() }),
            Msg::Job(JobMsg { group: None, due_at: None, last_error: None, dead: None, end: None, ..job.clone() }),
            Msg::Marker { engine: "e".into(), nonce: 9 },
            Msg::Counters { version: 8, stats },
            Msg::Kept(vec![job.clone(), JobMsg { id: "j2".into(), priority: 0, end: None, ..job.clone() }]),
        ] {
            assert_eq!(decode(&encode(&msg)).unwrap(), msg);
        }
        assert!(decode(b"hello").is_err());
        let mut long = encode(&Msg::Marker { engine: "e".into(), nonce: 1 });
        long.push(0);
        assert!(decode(&long).is_err(), "trailing bytes are refused");
        assert!(decode(&long[..long.len() - 3]).is_err(), "a cut message is refused");
    }

    #[test]
    fn a_message_from_before_priority_and_end_decodes_as_priority_zero_not_ended() {
        let job = JobMsg {
            id: "j".into(),
            queue: "q".into(),
            function_id: "f".into(),
            payload: Payload(Bytes::from_static(b"p")),
            group: None,
            enqueued_at: 1,
            order_at: 1,
            version: 0,
            attempts: 0,
            due_at: None,
            last_error: None,
            dead: None,
            not_before: None,
            priority: 0,
            end: None,
        };
        let body = encode(&Msg::Job(job.clone()));
        // The older layout stops after `not_before` (priority byte and end tag absent).
        assert_eq!(decode(&body[..body.len() - 2]).unwrap(), Msg::Job(job));
    }

    #[test]
    fn an_ended_message_is_a_kept_completed_or_cancelled_job() {
        let base = JobMsg {
            id: "j".into(),
            queue: "q".into(),
            function_id: "f".into(),
            payload: Payload(Bytes::from_static(b"p")),
            group: None,
            enqueued_at: 1,
            order_at: 1,
            version: 2,
            attempts: 1,
            due_at: None,
            last_error: None,
            dead: None,
            not_before: None,
            priority: 3,
            end: Some(End::Completed { at: 5, until: 65, result: Payload(Bytes::from_static(b"r")) }),
        };
        let done = base.clone().into_job();
        assert_eq!(
            (done.state, done.finished_at, done.expires_at, done.priority),
            (JobState::Completed, Some(5), Some(65), 3)
        );
        assert_eq!(done.result, Some(Payload(Bytes::from_static(b"r"))));
        let cancelled = JobMsg { end: Some(End::Cancelled { at: 7, until: 70 }), ..base }.into_job();
        assert_eq!(
            (cancelled.state, cancelled.finished_at, cancelled.expires_at),
            (JobState::Cancelled, Some(7), Some(70))
        );
        assert_eq!(cancelled.result, None);
    }
}
