//! Requests to the engine that owns a shard: `get_job` and `cancel` of a job whose shard
//! another engine holds, answered from that engine's mirror.
//!
//! Invariant: **an asker never takes silence for an answer.** A request is answered by the
//! engine it was sent to, saying which shards of the queue it looked at (those it owns,
//! caught up); a shard nobody answered for is not "not found", and an engine that does not
//! answer within the bound makes the call `UNAVAILABLE`, never a hang.
//!
//! Protocol:
//! 1. Every session declares `P.control-<engine id>` (classic, exclusive, auto-deleted: it
//!    goes with the connection) and consumes it. Engine ids are what `presence` announces,
//!    with the shards each engine owns.
//! 2. The asker publishes a request ([`Request`]) to that queue on a channel of its own that
//!    consumes RabbitMQ's direct reply-to pseudo-queue `amq.rabbitmq.reply-to` (no queue is
//!    declared for replies), with `reply_to` set to it and a fresh `correlation_id`; it is
//!    `mandatory` and confirmed, so a request to an engine that has gone is refused at once.
//! 3. The owner answers from its mirrors ([`super::lifecycle`]): a cancel is applied there,
//!    with its broker side (the job's next version) confirmed before the reply; the reply
//!    ([`Reply`]) goes to the request's `reply_to` with its `correlation_id`.
//! 4. The asker waits for the reply with its correlation id for at most [`ANSWER`]
//!    (the store's broker bound, [`session::BROKER_ANSWER`], which also bounds the owner's
//!    own publish); none by then is `UNAVAILABLE`.
//!
//! Replies that arrive after their asker gave up are dropped. Not done: the asker does not
//! retry a request whose owner changed meanwhile; it answers `UNAVAILABLE` (see
//! `lifecycle`), and the caller asks again.

use super::codec::{DecodeError, get_bytes, get_opt, get_str, get_u8, get_u32, get_u64, put_bytes, put_opt, put_str};
use super::session::{self, Session};
use super::unavailable;
use crate::clock::Millis;
use crate::queue::{Job, JobError, JobState, Payload, Progress};
use crate::store::{CancelOutcome, LeaseToken, StoreError};
use bytes::{BufMut, Bytes};
use foldhash::HashMap;
use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long an asker waits for the owner's reply.
pub const ANSWER: Duration = session::BROKER_ANSWER;

const REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// What one engine asks another.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Get { queue: String, id: String, now: Millis },
    Cancel { queue: String, id: String, at: Millis, until: Millis },
}

/// What the owner answers: the shards of the queue it looked at (bit `k`: shard `k`, owned
/// and caught up), and what it found there.
#[derive(Clone, Debug)]
pub enum Reply {
    Got { covered: u8, job: Option<Job> },
    Cancel { covered: u8, outcome: CancelOutcome },
    Failed(String),
}

/// The asking side of one session: the reply channel and the requests waiting on it.
pub struct Asker {
    channel: Channel,
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<Bytes>>>>,
    /// The reply consumer has ended: no reply can come any more.
    broken: Arc<std::sync::atomic::AtomicBool>,
}

impl Asker {
    /// Opens the reply channel (step 2): consumes direct reply-to before any request.
    pub async fn open(session_channel: Channel) -> Result<Self, StoreError> {
        let channel = session_channel;
        channel.confirm_select(ConfirmSelectOptions::default()).await.map_err(unavailable)?;
        let options = BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() };
        let mut replies = channel
            .basic_consume(REPLY_TO.into(), "".into(), options, FieldTable::default())
            .await
            .map_err(unavailable)?;
        let pending: Arc<Mutex<HashMap<String, oneshot::Sender<Bytes>>>> = Arc::default();
        let routed = Arc::downgrade(&pending);
        let broken = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ended = broken.clone();
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = replies.next().await {
                let Some(pending) = routed.upgrade() else { return };
                let Some(id) = delivery.properties.correlation_id().as_ref().map(|c| c.to_string()) else { continue };
                if let Some(tx) = pending.lock().remove(&id) {
                    let _ = tx.send(Bytes::from(delivery.data));
                }
            }
            ended.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        Ok(Self { channel, pending, broken })
    }

    /// The reply channel is gone (its consumer ended, or the channel closed): the session
    /// must be replaced.
    pub fn is_broken(&self) -> bool {
        self.broken.load(std::sync::atomic::Ordering::Relaxed) || !self.channel.status().connected()
    }

    /// Sends `request` to `engine` and waits for its reply (steps 2 and 4), at most `wait`.
    pub async fn ask(
        &self,
        names: &super::topology::Names,
        engine: &str,
        correlation: u64,
        request: &Request,
        wait: Duration,
    ) -> Result<Reply, StoreError> {
        let correlation = correlation.to_string();
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(correlation.clone(), tx);
        let asked = async {
            let to = names.control(engine);
            let props = BasicProperties::default()
                .with_reply_to(REPLY_TO.into())
                .with_correlation_id(correlation.as_str().into());
            let options = BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() };
            let body = encode_request(request);
            let confirm = self
                .channel
                .basic_publish("".into(), to.as_str().into(), options, &body, props)
                .await
                .map_err(unavailable)?
                .await
                .map_err(unavailable)?;
            match confirm {
                Confirmation::Ack(None) => {}
                Confirmation::Ack(Some(_)) | Confirmation::Nack(_) => {
                    return Err(StoreError::Unavailable(format!(
                        "RabbitMQ: engine {engine} (which owned a shard of the queue) has gone; try again"
                    )));
                }
                Confirmation::NotRequested => unreachable!("the reply channel is in confirm mode"),
            }
            let body = rx.await.map_err(|_| unavailable("the reply channel closed"))?;
            decode_reply(&body).map_err(|e| StoreError::Unavailable(format!("RabbitMQ: engine {engine} answered: {e}")))
        };
        let answered = tokio::time::timeout(wait, asked).await;
        self.pending.lock().remove(&correlation);
        match answered {
            Ok(reply) => reply,
            Err(_) => Err(StoreError::Unavailable(format!(
                "RabbitMQ: engine {engine}, which owns a shard of the queue, did not answer in {} ms",
                wait.as_millis()
            ))),
        }
    }
}

/// Declares and consumes this session's control queue (step 1), answering each request
/// on a task of its own (step 3).
pub async fn listen(session: &Arc<Session>) -> Result<(), StoreError> {
    let channel = session.channel().await?;
    let name = session.names.control(&session.id);
    let options = QueueDeclareOptions { exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() };
    channel.queue_declare(name.as_str().into(), options, FieldTable::default()).await.map_err(unavailable)?;
    let options = BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() };
    let mut requests = channel
        .basic_consume(name.as_str().into(), "".into(), options, FieldTable::default())
        .await
        .map_err(unavailable)?;
    let weak = Arc::downgrade(session);
    tokio::spawn(async move {
        let _channel = channel;
        while let Some(Ok(delivery)) = requests.next().await {
            let Some(session) = weak.upgrade() else { return };
            if session.is_failed() {
                return;
            }
            let reply_to = delivery.properties.reply_to().as_ref().map(|r| r.to_string());
            let correlation = delivery.properties.correlation_id().clone();
            let (Some(reply_to), Some(correlation)) = (reply_to, correlation) else { continue };
            tokio::spawn(async move {
                let reply = match decode_request(&delivery.data) {
                    Ok(request) => answer(&session, request).await,
                    Err(e) => Reply::Failed(e.to_string()),
                };
                let props = BasicProperties::default().with_correlation_id(correlation);
                if let Err(e) = session.reply(&reply_to, &encode_reply(&reply), props).await {
                    tracing::debug!(error = %e, "could not answer a control request");
                }
            });
        }
        // Other engines' requests to this one would go unanswered: start over.
        if let Some(session) = weak.upgrade() {
            session.fail("the control queue's consumer ended");
        }
    });
    Ok(())
}

async fn answer(session: &Arc<Session>, request: Request) -> Reply {
    match request {
        Request::Get { queue, id, now } => match super::lifecycle::get_local(session, &queue, &id, now).await {
            Ok((covered, job)) => Reply::Got { covered, job },
            Err(e) => Reply::Failed(e.to_string()),
        },
        Request::Cancel { queue, id, at, until } => {
            match super::lifecycle::cancel_local(session, &queue, &id, at, until).await {
                Ok((covered, outcome)) => Reply::Cancel { covered, outcome },
                Err(e) => Reply::Failed(e.to_string()),
            }
        }
    }
}

// ---- the bodies: codec's layout (little-endian, length-prefixed, `0`/`1` options) -------

const REQ_GET: u8 = 1;
const REQ_CANCEL: u8 = 2;
const REP_GOT: u8 = 1;
const REP_CANCEL: u8 = 2;
const REP_FAILED: u8 = 3;

pub fn encode_request(r: &Request) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    match r {
        Request::Get { queue, id, now } => {
            out.put_u8(REQ_GET);
            put_str(&mut out, queue);
            put_str(&mut out, id);
            out.put_u64_le(*now);
        }
        Request::Cancel { queue, id, at, until } => {
            out.put_u8(REQ_CANCEL);
            put_str(&mut out, queue);
            put_str(&mut out, id);
            out.put_u64_le(*at);
            out.put_u64_le(*until);
        }
    }
    out
}

pub fn decode_request(body: &[u8]) -> Result<Request, DecodeError> {
    let mut b = body;
    let r = match get_u8(&mut b)? {
        REQ_GET => Request::Get { queue: get_str(&mut b)?, id: get_str(&mut b)?, now: get_u64(&mut b)? },
        REQ_CANCEL => Request::Cancel {
            queue: get_str(&mut b)?,
            id: get_str(&mut b)?,
            at: get_u64(&mut b)?,
            until: get_u64(&mut b)?,
        },
        _ => return Err(DecodeError("unknown request")),
    };
    done(b)?;
    Ok(r)
}

pub fn encode_reply(r: &Reply) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    match r {
        Reply::Got { covered, job } => {
            out.put_u8(REP_GOT);
            out.put_u8(*covered);
            put_opt(&mut out, job.as_ref(), put_job);
        }
        Reply::Cancel { covered, outcome } => {
            out.put_u8(REP_CANCEL);
            out.put_u8(*covered);
            let (tag, job) = match outcome {
                CancelOutcome::NotFound => (0, None),
                CancelOutcome::Cancelled(j) => (1, Some(j)),
                CancelOutcome::Cancelling(j, _) => (2, Some(j)),
                CancelOutcome::AlreadyCancelled(j) => (3, Some(j)),
                CancelOutcome::AlreadyFinished(j) => (4, Some(j)),
            };
            out.put_u8(tag);
            put_opt(&mut out, job, put_job);
        }
        Reply::Failed(why) => {
            out.put_u8(REP_FAILED);
            put_str(&mut out, why);
        }
    }
    out
}

pub fn decode_reply(body: &[u8]) -> Result<Reply, DecodeError> {
    let mut b = body;
    let r = match get_u8(&mut b)? {
        REP_GOT => Reply::Got { covered: get_u8(&mut b)?, job: get_opt(&mut b, get_job)? },
        REP_CANCEL => {
            let covered = get_u8(&mut b)?;
            let tag = get_u8(&mut b)?;
            let job = get_opt(&mut b, get_job)?;
            let outcome = match (tag, job) {
                (0, None) => CancelOutcome::NotFound,
                (1, Some(j)) => CancelOutcome::Cancelled(j),
                // The lease is the owner's: no lease of this engine matches it (ids start at 1).
                (2, Some(j)) => {
                    let token = LeaseToken { job_id: j.id.clone(), lease_id: 0 };
                    CancelOutcome::Cancelling(j, token)
                }
                (3, Some(j)) => CancelOutcome::AlreadyCancelled(j),
                (4, Some(j)) => CancelOutcome::AlreadyFinished(j),
                _ => return Err(DecodeError("bad cancel outcome")),
            };
            Reply::Cancel { covered, outcome }
        }
        REP_FAILED => Reply::Failed(get_str(&mut b)?),
        _ => return Err(DecodeError("unknown reply")),
    };
    done(b)?;
    Ok(r)
}

fn done(b: &[u8]) -> Result<(), DecodeError> {
    match b.is_empty() {
        true => Ok(()),
        false => Err(DecodeError("trailing bytes")),
    }
}

fn state_tag(s: JobState) -> u8 {
    match s {
        JobState::Waiting => 0,
        JobState::Ready => 1,
        JobState::Delayed => 2,
        JobState::InFlight => 3,
        JobState::Dead => 4,
        JobState::Completed => 5,
        JobState::Cancelled => 6,
    }
}

fn state_of(tag: u8) -> Result<JobState, DecodeError> {
    Ok(match tag {
        0 => JobState::Waiting,
        1 => JobState::Ready,
        2 => JobState::Delayed,
        3 => JobState::InFlight,
        4 => JobState::Dead,
        5 => JobState::Completed,
        6 => JobState::Cancelled,
        _ => return Err(DecodeError("unknown job state")),
    })
}

fn put_u64_opt(out: &mut Vec<u8>, v: Option<Millis>) {
    put_opt(out, v.as_ref(), |o, v| o.put_u64_le(*v));
}

/// A whole job, as `GetJob` shows it (progress and cancel request included).
fn put_job(out: &mut Vec<u8>, j: &Job) {
    put_str(out, &j.id);
    put_str(out, &j.queue);
    put_str(out, &j.function_id);
    put_bytes(out, &j.payload.0);
    put_opt(out, j.group.as_ref(), |o, g| put_str(o, g));
    out.put_u8(state_tag(j.state));
    out.put_u32_le(j.attempts);
    out.put_u64_le(j.enqueued_at);
    out.put_u64_le(j.due_at);
    put_opt(out, j.last_error.as_ref(), |o, e| {
        put_str(o, &e.message);
        put_str(o, &e.code);
        put_str(o, &e.stack);
    });
    put_u64_opt(out, j.dead_lettered_at);
    put_u64_opt(out, j.not_before);
    out.put_u8(j.priority);
    out.put_u8(u8::from(j.cancel_requested));
    put_opt(out, j.progress.as_ref(), |o, p| {
        put_opt(o, p.value.as_ref(), |o, v| o.put_u64_le(v.to_bits()));
        put_opt(o, p.detail.as_ref(), |o, d| put_bytes(o, &d.0));
    });
    put_u64_opt(out, j.finished_at);
    put_u64_opt(out, j.expires_at);
    put_opt(out, j.result.as_ref(), |o, r| put_bytes(o, &r.0));
}

fn get_job(b: &mut &[u8]) -> Result<Job, DecodeError> {
    let payload = |b: &mut &[u8]| Ok(Payload(Bytes::from(get_bytes(b)?)));
    Ok(Job {
        id: get_str(b)?,
        queue: get_str(b)?,
        function_id: get_str(b)?,
        payload: payload(b)?,
        group: get_opt(b, get_str)?,
        state: state_of(get_u8(b)?)?,
        attempts: get_u32(b)?,
        enqueued_at: get_u64(b)?,
        due_at: get_u64(b)?,
        last_error: get_opt(b, |b| Ok(JobError { message: get_str(b)?, code: get_str(b)?, stack: get_str(b)? }))?,
        dead_lettered_at: get_opt(b, get_u64)?,
        not_before: get_opt(b, get_u64)?,
        priority: get_u8(b)?,
        cancel_requested: get_u8(b)? != 0,
        progress: get_opt(b, |b| {
            Ok(Progress { value: get_opt(b, |b| get_u64(b).map(f64::from_bits))?, detail: get_opt(b, payload)? })
        })?,
        finished_at: get_opt(b, get_u64)?,
        expires_at: get_opt(b, get_u64)?,
        result: get_opt(b, payload)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_job() -> Job {
        Job {
            id: "j".into(),
            queue: "q".into(),
            function_id: "f".into(),
            payload: Payload(Bytes::from_static(b"\x00p")),
            group: Some("G".into()),
            state: JobState::InFlight,
            attempts: 2,
            enqueued_at: 10,
            due_at: 11,
            last_error: Some(JobError { message: "m".into(), code: "c".into(), stack: "s".into() }),
            dead_lettered_at: Some(12),
            not_before: Some(13),
            priority: 7,
            cancel_requested: true,
            progress: Some(Progress { value: Some(0.25), detail: Some(Payload(Bytes::from_static(b"d"))) }),
            finished_at: Some(14),
            expires_at: Some(15),
            result: Some(Payload(Bytes::from_static(b"r"))),
        }
    }

    fn same(a: &Job, b: &Job) {
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    #[test]
    fn requests_and_replies_round_trip_with_every_job_field() {
        for r in [
            Request::Get { queue: "q".into(), id: "j".into(), now: 5 },
            Request::Cancel { queue: "q".into(), id: "j".into(), at: 6, until: 7 },
        ] {
            assert_eq!(decode_request(&encode_request(&r)).unwrap(), r);
        }
        let job = full_job();
        match decode_reply(&encode_reply(&Reply::Got { covered: 0b1010, job: Some(job.clone()) })).unwrap() {
            Reply::Got { covered: 0b1010, job: Some(j) } => same(&j, &job),
            other => panic!("{other:?}"),
        }
        let token = LeaseToken { job_id: "j".into(), lease_id: 99 };
        match decode_reply(&encode_reply(&Reply::Cancel {
            covered: 1,
            outcome: CancelOutcome::Cancelling(job.clone(), token),
        }))
        .unwrap()
        {
            Reply::Cancel { covered: 1, outcome: CancelOutcome::Cancelling(j, t) } => {
                same(&j, &job);
                assert_eq!(t.lease_id, 0, "the owner's lease is no lease of the asker");
            }
            other => panic!("{other:?}"),
        }
        let bare = Job { progress: Some(Progress::default()), ..Job::default() };
        match decode_reply(&encode_reply(&Reply::Cancel {
            covered: 3,
            outcome: CancelOutcome::AlreadyFinished(bare.clone()),
        }))
        .unwrap()
        {
            Reply::Cancel { outcome: CancelOutcome::AlreadyFinished(j), .. } => same(&j, &bare),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(decode_reply(&encode_reply(&Reply::Failed("x".into()))).unwrap(), Reply::Failed(w) if w == "x")
        );
        let mut long = encode_request(&Request::Get { queue: "q".into(), id: "j".into(), now: 5 });
        long.push(0);
        assert!(decode_request(&long).is_err(), "trailing bytes are refused");
        assert!(decode_reply(&[9]).is_err());
    }
}
