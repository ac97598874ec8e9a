//! A stored job in 80 bytes, so that a million queued jobs fit in well under 100 MB.
//!
//! Invariant: a [`Record`] holds everything a [`Job`] needs except what its position
//! says — its queue and function (the route it is filed under), its state (which index it
//! is in) and a retry's due time (the key of the delayed index). Rare or variable-sized
//! parts (a FIFO group, the last error, an id that is not an engine-issued UUID) live in
//! one optional box, so the common job allocates nothing beyond its payload, and not even
//! that when the payload is small.

use crate::clock::Millis;
use crate::queue::{Job, JobError, JobState, NewJob, Payload};
use bytes::Bytes;

/// One stored job.
pub(super) struct Record {
    /// The id as UUID bytes, when [`Extra::id`] is `None`.
    uuid: [u8; 16],
    payload: StoredPayload,
    /// Enqueue order while live; dead-letter order while dead.
    pub seq: u64,
    pub enqueued_at: Millis,
    pub attempts: u32,
    /// The lease generation while in flight (see the store's lease tokens).
    pub lease: u32,
    /// Index of the (queue, function) route the job belongs to.
    pub route: u32,
    pub extra: Option<Box<Extra>>,
}

/// The parts few jobs have.
#[derive(Default)]
pub(super) struct Extra {
    /// The id, when it is not a canonical lower-case UUID.
    id: Option<Box<str>>,
    pub group: Option<Box<str>>,
    pub last_error: Option<JobError>,
    pub dead_lettered_at: Option<Millis>,
}

/// Payloads of up to [`INLINE`] bytes are kept inside the record.
enum StoredPayload {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

const INLINE: usize = 22;

impl Record {
    pub fn new(job: NewJob, seq: u64, route: u32) -> Self {
        let uuid = compact_uuid(&job.id);
        let mut extra = None;
        if uuid.is_none() || job.group.is_some() {
            extra = Some(Box::new(Extra {
                id: uuid.is_none().then(|| job.id.into_boxed_str()),
                group: job.group.map(String::into_boxed_str),
                ..Extra::default()
            }));
        }
        Record {
            uuid: uuid.unwrap_or_default(),
            payload: StoredPayload::from(job.payload.0),
            seq,
            enqueued_at: job.enqueued_at,
            attempts: 0,
            lease: 0,
            route,
            extra,
        }
    }

    pub fn group(&self) -> Option<&str> {
        self.extra.as_ref()?.group.as_deref()
    }

    pub fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Whether this is the job `id`.
    pub fn has_id(&self, id: &str) -> bool {
        match self.extra.as_ref().and_then(|e| e.id.as_deref()) {
            Some(own) => own == id,
            None => compact_uuid(id) == Some(self.uuid),
        }
    }

    pub fn id(&self) -> String {
        match self.extra.as_ref().and_then(|e| e.id.as_deref()) {
            Some(own) => own.to_string(),
            None => uuid::Uuid::from_bytes(self.uuid).hyphenated().to_string(),
        }
    }

    /// The job as the store hands it out.
    pub fn job(&self, queue: &str, function: &str, state: JobState) -> Job {
        let extra = self.extra.as_deref();
        Job {
            id: self.id(),
            queue: queue.to_string(),
            function_id: function.to_string(),
            payload: Payload(self.payload.to_bytes()),
            group: self.group().map(str::to_string),
            state,
            attempts: self.attempts,
            enqueued_at: self.enqueued_at,
            due_at: self.enqueued_at,
            last_error: extra.and_then(|e| e.last_error.clone()),
            dead_lettered_at: extra.and_then(|e| e.dead_lettered_at),
        }
    }
}

/// The 16 bytes of `id` when it is a UUID in the canonical form the engine issues
/// (hyphenated, lower case), so that it can be given back exactly.
fn compact_uuid(id: &str) -> Option<[u8; 16]> {
    if id.len() != 36 {
        return None;
    }
    let uuid = uuid::Uuid::try_parse(id).ok()?;
    let mut buf = uuid::Uuid::encode_buffer();
    (uuid.hyphenated().encode_lower(&mut buf) == id).then(|| *uuid.as_bytes())
}

impl From<Bytes> for StoredPayload {
    fn from(bytes: Bytes) -> Self {
        if bytes.len() <= INLINE {
            let mut inline = [0; INLINE];
            inline[..bytes.len()].copy_from_slice(&bytes);
            StoredPayload::Inline { len: bytes.len() as u8, bytes: inline }
        } else {
            StoredPayload::Heap(Vec::from(bytes).into_boxed_slice())
        }
    }
}

impl StoredPayload {
    fn to_bytes(&self) -> Bytes {
        match self {
            StoredPayload::Inline { len, bytes } => Bytes::copy_from_slice(&bytes[..*len as usize]),
            StoredPayload::Heap(b) => Bytes::copy_from_slice(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_80_bytes() {
        assert_eq!(std::mem::size_of::<Record>(), 80);
    }

    fn new_job(id: &str, payload: &[u8]) -> NewJob {
        NewJob {
            id: id.into(),
            queue: "q".into(),
            function_id: "f".into(),
            payload: Payload(Bytes::copy_from_slice(payload)),
            group: None,
            enqueued_at: 7,
        }
    }

    #[test]
    fn ids_and_payloads_come_back_exactly() {
        let uuid = uuid::Uuid::now_v7().to_string();
        let upper = uuid.to_uppercase();
        let long = vec![7u8; 300];
        for (id, payload) in [(uuid.as_str(), &b"{}"[..]), (upper.as_str(), &long), ("job-1", &[0u8; 22][..])] {
            let r = Record::new(new_job(id, payload), 1, 0);
            assert!(r.has_id(id) && !r.has_id("other"));
            let job = r.job("q", "f", JobState::Ready);
            assert_eq!((job.id.as_str(), &job.payload.0[..]), (id, payload));
        }
        assert!(Record::new(new_job(&uuid, b"x"), 1, 0).extra.is_none(), "an engine-issued id needs no box");
    }
}
