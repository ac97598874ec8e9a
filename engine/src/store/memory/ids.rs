//! The id index: where each job the store holds sits, by its id, so that `get_job` and
//! `cancel` find it without a search.
//!
//! Invariant: every record the store holds — ready, waiting, delayed, in flight, dead, or
//! finished and kept — has exactly one entry, a [`Place`] naming the container it is in and
//! its key there; every transition that moves a record rewrites its entry under the store's
//! lock, and a record leaving the store (completed without retention, discarded, expired)
//! takes its entry with it. Job ids are unique in the store (the engine issues UUIDs).
//!
//! Compact: an engine-issued id is keyed by its 16 bytes and a place is 24 bytes, so an
//! entry costs 40 bytes plus the table's slack; other ids (rare) are keyed by their text.

use super::record::{IdKey, Record};
use crate::clock::Millis;
use foldhash::HashMap;

/// Where a record is: enough to find it in its container in O(log n).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Place {
    /// In `routes[route]`'s ready jobs of `priority`.
    Ready { route: u32, priority: u8, seq: u64 },
    /// In `queues[queue].waiting` (a FIFO member behind its group's head).
    Waiting { queue: u32, seq: u64 },
    /// In `queues[queue].delayed` under `(due, seq)`.
    Delayed { queue: u32, due: Millis, seq: u64 },
    /// In the in-flight slab.
    InFlight { slot: u32 },
    /// In `queues[queue].dead` under its dead-letter sequence.
    Dead { queue: u32, seq: u64 },
    /// `Completed` or `Cancelled`, in `finished` under `(expires_at, seq)`.
    Finished { expires_at: Millis, seq: u64 },
}

#[derive(Default)]
pub(super) struct Ids {
    uuids: HashMap<[u8; 16], Place>,
    text: HashMap<Box<str>, Place>,
}

impl Ids {
    pub fn set(&mut self, record: &Record, place: Place) {
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
    fn a_place_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Place>(), 24);
    }
}
