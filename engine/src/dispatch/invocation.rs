//! One invocation: a leased job or a direct call, waiting for a worker slot
//! (`worker: None`) or sent to a worker.

use super::CallResult;
use crate::clock::Millis;
use crate::config::EngineConfig;
use crate::queue::Payload;
use crate::store::Lease;
use crate::wire::timestamp;
use switchyard_proto::wire::{Cancel, Delivery, EngineMessage, Invoke, engine_message};
use tokio::sync::oneshot;

pub(super) struct Invocation {
    pub worker: Option<super::WorkerId>,
    pub deadline: Option<Millis>,
    /// When it was sent to `worker` (for the job event's `duration_ms`).
    pub sent_at: Option<Millis>,
    pub kind: Kind,
}

pub(super) enum Kind {
    Job(Lease),
    /// `reply` is `None` for a void call.
    Call {
        function_id: String,
        payload: Payload,
        reply: Option<oneshot::Sender<CallResult>>,
    },
}

impl Kind {
    pub fn function_id(&self) -> &str {
        match self {
            Kind::Job(lease) => &lease.job.function_id,
            Kind::Call { function_id, .. } => function_id,
        }
    }

    pub fn invoke(&self, id: u64, config: &EngineConfig) -> Invoke {
        let (function_id, payload, delivery) = match self {
            Kind::Job(lease) => {
                let job = &lease.job;
                let spec = config.queues.get(&job.queue);
                let max_attempts = spec.map_or(1, |q| q.max_attempts());
                let delivery = Delivery {
                    queue: job.queue.clone(),
                    message_receipt_id: job.id.clone(),
                    attempt: job.attempts,
                    max_attempts,
                    enqueued_at: Some(timestamp(job.enqueued_at)),
                    group: job.group.clone().unwrap_or_default(),
                    topic: spec.and_then(|q| q.topic.clone()).unwrap_or_default(),
                };
                (job.function_id.clone(), &job.payload, Some(delivery))
            }
            Kind::Call { function_id, payload, .. } => (function_id.clone(), payload, None),
        };
        Invoke { invocation_id: id.to_string(), function_id, payload: payload.0.clone(), delivery }
    }
}

pub(super) fn cancel_message(id: u64, reason: &str) -> EngineMessage {
    EngineMessage {
        kind: Some(engine_message::Kind::Cancel(Cancel { invocation_id: id.to_string(), reason: reason.to_string() })),
    }
}
