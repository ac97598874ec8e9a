//! The operator calls (`switchyard.v1.Queues`): queue stats, the dead-letter queue and
//! the connected workers.

use crate::Error;
use crate::connection::Connection;
use crate::handler::HandlerError;
use crate::json::from_proto;
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use switchyard_proto::v1 as pb;
use switchyard_proto::v1::queues_client::QueuesClient;

/// A queue, its effective config and its stats.
#[derive(Clone, Debug)]
pub struct QueueInfo {
    /// The queue's name in `queue_configs`.
    pub name: String,
    /// Its effective config (defaults applied).
    pub config: pb::QueueConfig,
    /// Its gauges and counters now.
    pub stats: QueueStats,
}

/// A queue's gauges (jobs in each state now) and counters (since the engine started).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Jobs waiting to be delivered.
    pub ready: u64,
    /// Jobs waiting for their retry time.
    pub delayed: u64,
    /// Jobs being run by a worker.
    pub in_flight: u64,
    /// Jobs in the dead-letter queue.
    pub dead: u64,
    /// Jobs enqueued.
    pub enqueued: u64,
    /// Jobs that succeeded.
    pub completed: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Jobs moved to the dead-letter queue.
    pub dead_lettered: u64,
}

/// One entry of a dead-letter queue.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    /// The id the producer got back when it enqueued the job.
    pub message_receipt_id: String,
    /// The queue it was enqueued to.
    pub queue: String,
    /// The function it was for.
    pub function_id: String,
    /// Its payload.
    pub payload: Value,
    /// FIFO jobs only: its message group.
    pub group: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's failure.
    pub last_error: Option<HandlerError>,
    /// When it was first enqueued.
    pub enqueued_at: Option<SystemTime>,
    /// When it was dead-lettered.
    pub dead_lettered_at: Option<SystemTime>,
}

/// One page of [`Queues::list_dead_letters`].
#[derive(Clone, Debug, Default)]
pub struct DeadLetterPage {
    /// The entries, oldest first.
    pub entries: Vec<DeadLetter>,
    /// Pass to the next call; `None` at the end.
    pub next_page_token: Option<String>,
}

/// A client of the `Queues` service.
#[derive(Clone)]
pub struct Queues {
    client: QueuesClient<crate::connection::Transport>,
    conn: Connection,
}

impl Queues {
    pub(crate) fn new(conn: Connection) -> Self {
        Self { client: QueuesClient::new(conn.channel.clone()), conn }
    }

    pub(crate) fn client(&self) -> QueuesClient<crate::connection::Transport> {
        self.client.clone()
    }

    pub(crate) fn error(&self, status: tonic::Status) -> Error {
        self.conn.error(status)
    }

    /// Every queue with its effective config and stats.
    pub async fn list_queues(&self) -> Result<Vec<QueueInfo>, Error> {
        let out = self
            .client
            .clone()
            .list_queues(pb::ListQueuesRequest {})
            .await
            .map_err(|s| self.conn.error(s))?
            .into_inner();
        Ok(out
            .queues
            .into_iter()
            .map(|q| {
                let s = q.stats.unwrap_or_default();
                QueueInfo {
                    name: q.name,
                    config: q.config.unwrap_or_default(),
                    stats: QueueStats {
                        ready: s.ready.unwrap_or(0),
                        delayed: s.delayed.unwrap_or(0),
                        in_flight: s.in_flight.unwrap_or(0),
                        dead: s.dead.unwrap_or(0),
                        enqueued: s.enqueued.unwrap_or(0),
                        completed: s.completed.unwrap_or(0),
                        failed: s.failed.unwrap_or(0),
                        dead_lettered: s.dead_lettered.unwrap_or(0),
                    },
                }
            })
            .collect())
    }

    /// The stats of one queue.
    pub async fn stats(&self, queue: &str) -> Result<QueueStats, Error> {
        self.list_queues()
            .await?
            .into_iter()
            .find(|q| q.name == queue)
            .map(|q| q.stats)
            .ok_or_else(|| Error::local(crate::Reason::QueueNotFound, format!("queue '{queue}' is not defined")))
    }

    /// One page (up to `page_size` entries; 0 = the engine's default) of `queue`'s dead letters,
    /// from `page_token` (a previous page's `next_page_token`) or the start.
    pub async fn list_dead_letters(
        &self,
        queue: &str,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<DeadLetterPage, Error> {
        let req = pb::ListDeadLettersRequest {
            queue: queue.into(),
            page_size,
            page_token: page_token.unwrap_or_default().into(),
        };
        let out = self.client.clone().list_dead_letters(req).await.map_err(|s| self.conn.error(s))?.into_inner();
        Ok(DeadLetterPage {
            entries: out.entries.into_iter().map(dead_letter).collect(),
            next_page_token: (!out.next_page_token.is_empty()).then_some(out.next_page_token),
        })
    }

    /// Moves dead letters back to the queue with a fresh budget; empty `ids` = all.
    pub async fn redrive_dead_letters(&self, queue: &str, ids: &[String]) -> Result<u64, Error> {
        let req = pb::RedriveDeadLettersRequest { queue: queue.into(), ids: ids.to_vec() };
        Ok(self.client.clone().redrive_dead_letters(req).await.map_err(|s| self.conn.error(s))?.into_inner().count)
    }

    /// Deletes dead letters; empty `ids` = all.
    pub async fn discard_dead_letters(&self, queue: &str, ids: &[String]) -> Result<u64, Error> {
        let req = pb::DiscardDeadLettersRequest { queue: queue.into(), ids: ids.to_vec() };
        Ok(self.client.clone().discard_dead_letters(req).await.map_err(|s| self.conn.error(s))?.into_inner().count)
    }

    /// The workers connected to this engine (not to others sharing its store), in the
    /// order they connected, each with its functions.
    pub async fn list_workers(&self) -> Result<Vec<pb::WorkerInfo>, Error> {
        Ok(self.client.clone().list_workers(pb::ListWorkersRequest {}).await?.into_inner().workers)
    }
}

pub(crate) fn time(t: Option<prost_types::Timestamp>) -> Option<SystemTime> {
    t.map(|t| UNIX_EPOCH + Duration::from_secs(t.seconds.max(0) as u64) + Duration::from_nanos(t.nanos.max(0) as u64))
}

fn dead_letter(d: pb::DeadLetter) -> DeadLetter {
    DeadLetter {
        message_receipt_id: d.message_receipt_id,
        queue: d.queue,
        function_id: d.function_id,
        payload: d.payload.as_ref().map(from_proto).unwrap_or_default(),
        group: (!d.group.is_empty()).then_some(d.group),
        attempts: d.attempts,
        last_error: d.last_error.map(|e| HandlerError {
            message: e.message,
            code: e.code,
            stack: e.stack,
            non_retryable: e.non_retryable,
        }),
        enqueued_at: time(d.enqueued_at),
        dead_lettered_at: time(d.dead_lettered_at),
    }
}
