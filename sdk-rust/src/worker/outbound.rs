//! What goes out on a worker stream: results (batched when they are ready together) and
//! the worker's own messages (registrations, progress), in the order they were queued.
//!
//! Invariant: items leave in the order they were queued; only a run of results queued
//! back to back (and taken at once) shares one `results` batch, and a batch closes at
//! [`MAX_BATCH_BYTES`]. Batching is on once the stream's `batch` flag is set (the engine
//! sent an `invokes` batch).

use crate::handler::RegisterFunction;
use prost::Message;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Poll, ready};
use switchyard_proto::wire::switchyard::v1::{
    InvocationResult, JobProgress, Progress, RegisterFunction as PbRegister, ResultBatch, UnregisterFunction,
    WorkerMessage, worker_message,
};
use tokio::sync::mpsc;

/// A `results` batch closes at about this many encoded bytes (the engine accepts 4 MiB).
const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Queued items the outbound stream takes at once.
const MAX_TAKE: usize = 1024;

/// What goes out on a stream: a message as is, or a result that may share a batch.
pub(crate) enum Outgoing {
    Message(WorkerMessage),
    Result(InvocationResult),
}

pub(super) type Outbox = mpsc::UnboundedSender<Outgoing>;

/// The outbound half of one stream: queued items become messages in order; each run of
/// results already queued together becomes one `results` batch once `batch` is set.
pub(super) struct Outbound {
    pub(super) rx: mpsc::UnboundedReceiver<Outgoing>,
    pub(super) batch: Arc<AtomicBool>,
    pub(super) taken: Vec<Outgoing>,
    pub(super) ready: VecDeque<WorkerMessage>,
}

impl Outbound {
    fn coalesce(&mut self) {
        let batch = self.batch.load(Ordering::Relaxed);
        let mut run: Vec<InvocationResult> = Vec::new();
        let mut bytes = 0;
        for item in self.taken.drain(..) {
            match item {
                Outgoing::Result(r) if batch => {
                    let len = r.encoded_len();
                    if !run.is_empty() && bytes + len > MAX_BATCH_BYTES {
                        self.ready.push_back(results_message(std::mem::take(&mut run)));
                        bytes = 0;
                    }
                    bytes += len;
                    run.push(r);
                }
                Outgoing::Result(r) => {
                    self.ready.push_back(WorkerMessage { kind: Some(worker_message::Kind::Result(r)) })
                }
                Outgoing::Message(m) => {
                    if !run.is_empty() {
                        self.ready.push_back(results_message(std::mem::take(&mut run)));
                        bytes = 0;
                    }
                    self.ready.push_back(m);
                }
            }
        }
        if !run.is_empty() {
            self.ready.push_back(results_message(run));
        }
    }
}

fn results_message(mut run: Vec<InvocationResult>) -> WorkerMessage {
    let kind = if run.len() == 1 {
        worker_message::Kind::Result(run.pop().expect("one result"))
    } else {
        worker_message::Kind::Results(ResultBatch { results: run })
    };
    WorkerMessage { kind: Some(kind) }
}

impl futures::Stream for Outbound {
    type Item = WorkerMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Option<WorkerMessage>> {
        let this = &mut *self;
        if let Some(m) = this.ready.pop_front() {
            return Poll::Ready(Some(m));
        }
        if ready!(this.rx.poll_recv_many(cx, &mut this.taken, MAX_TAKE)) == 0 {
            return Poll::Ready(None);
        }
        this.coalesce();
        Poll::Ready(this.ready.pop_front())
    }
}

pub(super) fn register_message(f: &RegisterFunction) -> WorkerMessage {
    WorkerMessage {
        kind: Some(worker_message::Kind::RegisterFunction(PbRegister {
            function_id: f.id.clone(),
            description: f.description.clone(),
        })),
    }
}

pub(super) fn unregister_message(id: &str) -> WorkerMessage {
    WorkerMessage {
        kind: Some(worker_message::Kind::UnregisterFunction(UnregisterFunction { function_id: id.into() })),
    }
}

/// Sends a job handler's progress reports on its stream, as `progress` messages.
pub(super) fn progress_reporter(invocation_id: String, tx: Outbox) -> crate::handler::Reporter {
    crate::handler::Reporter::to(move |p: crate::handler::Progress| {
        let detail = p.detail.as_ref().map(crate::json::value_bytes).unwrap_or_default();
        let progress = Progress {
            invocation_id: invocation_id.clone(),
            progress: Some(JobProgress { value: p.value, detail: detail.into() }),
        };
        let _ = tx.send(Outgoing::Message(WorkerMessage { kind: Some(worker_message::Kind::Progress(progress)) }));
    })
}
