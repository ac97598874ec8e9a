//! A stored job in 80 bytes, so that a million queued jobs fit in well under 100 MB.
//!
//! Invariant: a [`Record`] holds everything a [`Job`] needs except what its position
//! says — its queue and function (the route it is filed under), its state (which index it
//! is in) and a retry's due time (the key of the delayed index). Rare or variable-sized
//! parts (a FIFO group, the last error, an id that is not an engine-issued UUID) live in
//! one optional box, so the common job allocates nothing beyond its payload, and not even
//! that when the payload is small; what only a running job may need (a cancel request,
//! progress) lives in a second box inside that one ([`Life`]), so a FIFO job that never
//! uses it pays one pointer. How a finished job ended and its result are kept beside its
//! record in the store's `finished` map, not in the record.

use crate::clock::Millis;
use crate::queue::{Job, JobError, JobState, NewJob, Payload, Progress, uuid_string};
use bytes::Bytes;

use super::journal::CancelRequest;

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
    /// 0 to [`crate::queue::MAX_PRIORITY`]; kept through releases, retries and redrives.
    pub priority: u8,
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
    /// A delayed enqueue's due time, until the job first becomes ready.
    pub not_before: Option<Millis>,
    pub life: Option<Box<Life>>,
}

/// What the job lifecycle adds to a few running jobs: those cancelled or reporting progress.
#[derive(Default)]
pub(super) struct Life {
    /// In flight, with a cancel request: what it becomes when its attempt ends.
    pub cancel: Option<CancelRequest>,
    /// The latest report of the attempt in flight (or of the last one, once finished).
    pub progress: Option<Progress>,
}

/// A job id as the id index keys it: the 16 bytes of an engine-issued UUID, or the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IdKey<'a> {
    Uuid([u8; 16]),
    Text(&'a str),
}

impl<'a> IdKey<'a> {
    pub fn of(id: &'a str) -> Self {
        compact_uuid(id).map_or(IdKey::Text(id), IdKey::Uuid)
    }
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
        if uuid.is_none() || job.group.is_some() || job.not_before.is_some() {
            extra = Some(Box::new(Extra {
                id: uuid.is_none().then(|| job.id.into_boxed_str()),
                group: job.group.map(String::into_boxed_str),
                not_before: job.not_before,
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
            priority: job.priority,
            extra,
        }
    }

    /// The key the id index files this record under.
    pub fn key(&self) -> IdKey<'_> {
        match self.extra.as_ref().and_then(|e| e.id.as_deref()) {
            Some(own) => IdKey::Text(own),
            None => IdKey::Uuid(self.uuid),
        }
    }

    pub fn life(&self) -> Option<&Life> {
        self.extra.as_ref()?.life.as_deref()
    }

    pub fn life_mut(&mut self) -> &mut Life {
        self.extra_mut().life.get_or_insert_with(Box::default)
    }

    pub fn cancel_request(&self) -> Option<CancelRequest> {
        self.life()?.cancel
    }

    /// Forgets the progress of the last attempt (a new one starts, or the job is queued again).
    pub fn clear_progress(&mut self) {
        if let Some(life) = self.extra.as_mut().and_then(|e| e.life.as_mut()) {
            life.progress = None;
        }
    }

    /// Its attempts are over (completed or cancelled): no cancel request is pending.
    pub fn end(&mut self) {
        if let Some(life) = self.extra.as_mut().and_then(|e| e.life.as_mut()) {
            life.cancel = None;
        }
    }

    pub fn group(&self) -> Option<&str> {
        self.extra.as_ref()?.group.as_deref()
    }

    pub fn not_before(&self) -> Option<Millis> {
        self.extra.as_ref()?.not_before
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
            None => uuid_string(uuid::Uuid::from_bytes(self.uuid)),
        }
    }

    /// The job as the store hands it out.
    pub fn job(&self, queue: &str, function: &str, state: JobState) -> Job {
        let extra = self.extra.as_deref();
        let life = self.life();
        Job {
            id: self.id(),
            queue: queue.to_string(),
            function_id: function.to_string(),
            payload: Payload(self.payload.to_bytes()),
            group: self.group().map(str::to_string),
            state,
            attempts: self.attempts,
            enqueued_at: self.enqueued_at,
            due_at: self.not_before().unwrap_or(self.enqueued_at),
            last_error: extra.and_then(|e| e.last_error.clone()),
            dead_lettered_at: extra.and_then(|e| e.dead_lettered_at),
            not_before: self.not_before(),
            priority: self.priority,
            cancel_requested: state == JobState::InFlight && life.is_some_and(|l| l.cancel.is_some()),
            progress: life.and_then(|l| l.progress.clone()),
            finished_at: None,
            expires_at: None,
            result: None,
        }
    }
}

/// The 16 bytes of `id` when it is a UUID in the canonical form the engine issues
/// (hyphenated, lower case), so that it can be given back exactly. Read by hand: this runs
/// for every enqueue and every finish, and parsing any form and then comparing the
/// canonical rendering costs several times as much.
pub(super) fn compact_uuid(id: &str) -> Option<[u8; 16]> {
    /// Where each byte's two hex digits start in `8-4-4-4-12`.
    const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    let text: &[u8; 36] = id.as_bytes().try_into().ok()?;
    if [text[8], text[13], text[18], text[23]] != [b'-'; 4] {
        return None;
    }
    let digit = |at: usize| LOWER_HEX[usize::from(text[at])];
    let mut bytes = [0u8; 16];
    let mut invalid = 0;
    let mut n = 0;
    while n < 16 {
        let (high, low) = (digit(AT[n]), digit(AT[n] + 1));
        invalid |= high | low;
        bytes[n] = (high << 4) | low;
        n += 1;
    }
    (invalid & 0xf0 == 0).then_some(bytes)
}

/// Each byte's value as a lower-case hex digit; 0xff for anything else.
static LOWER_HEX: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut c = 0;
    while c < 16 {
        table[b"0123456789abcdef"[c] as usize] = c as u8;
        c += 1;
    }
    table
};

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
            not_before: None,
            dedup: None,
            priority: 0,
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

    #[test]
    fn only_the_canonical_uuid_form_is_compacted() {
        let uuid = uuid::Uuid::now_v7();
        let canonical = uuid.hyphenated().to_string();
        assert_eq!(compact_uuid(&canonical), Some(*uuid.as_bytes()));
        assert_eq!(uuid_string(uuid), canonical);
        let misplaced = format!("{}-{}{}", &canonical[..7], &canonical[7..8], &canonical[9..]);
        for other in [
            canonical.to_uppercase(),
            uuid.simple().to_string(),
            uuid.braced().to_string(),
            canonical.replace('-', "_"),
            misplaced,
            format!("{}g", &canonical[..35]),
            String::new(),
        ] {
            assert_eq!(compact_uuid(&other), None, "{other}");
        }
    }
}
