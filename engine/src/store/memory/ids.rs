//! The id index: where each job the store holds is, by its id, so that `get_job` and
//! `cancel` find it without a search of the whole store.
//!
//! Invariant: every record the store holds has exactly one entry, and the entry names its
//! sequence number and which of three parts of the store it is in: live (ready, waiting,
//! delayed or in flight — under its route and priority), dead, or finished and kept. An
//! entry changes only when one of those does — enqueue, dead-letter, redrive (a new
//! sequence), a job's end (finished and kept, or deleted: completed without retention,
//! discarded, expired) — so the hot path (enqueue, lease, complete) pays one insert and
//! one removal, and leases, retries, releases and FIFO promotions none. Within the live
//! part the store finds a record by its sequence (see `lifecycle::locate`). Job ids are
//! unique in the store (the engine issues UUIDs).
//!
//! Compact: an engine-issued id is keyed by its 16 bytes and a place is 16 bytes, so an
//! entry costs 32 bytes plus the table's slack; other ids (rare) are keyed by their text.

use super::record::{IdKey, Record};
use foldhash::HashMap;

/// Which part of the store a record is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Part {
    /// Ready (in `routes[route]` at `priority`), waiting, delayed or in flight.
    Live,
    /// In its queue's `dead`, under `seq` (its dead-letter sequence).
    Dead,
    /// In `finished`, under `seq`.
    Finished,
}

/// Where a record is: its part of the store, its sequence there, and its route and priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Place {
    pub seq: u64,
    pub route: u32,
    pub priority: u8,
    pub part: Part,
}

impl Place {
    pub fn of(record: &Record, part: Part) -> Self {
        Place { seq: record.seq, route: record.route, priority: record.priority, part }
    }
}

#[derive(Default)]
pub(super) struct Ids {
    uuids: HashMap<[u8; 16], Place>,
    text: HashMap<Box<str>, Place>,
}

impl Ids {
    /// Files `record` as being in `part` now.
    pub fn set(&mut self, record: &Record, part: Part) {
        let place = Place::of(record, part);
        match record.key() {
            IdKey::Uuid(key) => {
                self.uuids.insert(key, place);
            }
            IdKey::Text(id) => match self.text.get_mut(id) {
                Some(p) => *p = place,
                None => {
                    self.text.insert(id.into(), place);
                }
            },
        }
    }

    pub fn remove(&mut self, record: &Record) {
        match record.key() {
            IdKey::Uuid(key) => self.uuids.remove(&key),
            IdKey::Text(id) => self.text.remove(id),
        };
    }

    pub fn get(&self, id: &str) -> Option<Place> {
        match IdKey::of(id) {
            IdKey::Uuid(key) => self.uuids.get(&key).copied(),
            IdKey::Text(id) => self.text.get(id).copied(),
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.uuids.len() + self.text.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_is_16_bytes() {
        assert_eq!(std::mem::size_of::<Place>(), 16);
    }
}
