//! The containers a job sits in while it is ready or in flight.
//!
//! Invariant: a [`Ready`] hands out its jobs oldest first (by enqueue sequence) whatever
//! order they came back in; [`ByPriority`] hands out the oldest of the highest priority
//! that has ready jobs; a [`Slab`] gives an in-flight record back only to the lease
//! token that names its slot, generation and job. Any job can also be found (and taken
//! out) by its sequence number, for the id index.

use super::record::Record;
use crate::clock::Millis;
use crate::store::LeaseToken;
use foldhash::HashMap;
use std::collections::{BTreeMap, VecDeque};

/// A queue's delayed jobs by due time, and each one's due time by its sequence (so that the
/// id index, which knows a job's sequence only, finds it).
#[derive(Default)]
pub(super) struct Delayed {
    by_due: BTreeMap<(Millis, u64), Record>,
    due_of: HashMap<u64, Millis>,
}

impl Delayed {
    pub fn len(&self) -> usize {
        self.by_due.len()
    }

    pub fn insert(&mut self, due: Millis, record: Record) {
        self.due_of.insert(record.seq, due);
        self.by_due.insert((due, record.seq), record);
    }

    pub fn next_due(&self) -> Option<Millis> {
        self.by_due.first_key_value().map(|((due, _), _)| *due)
    }

    /// The earliest record due at or before `now`, taken out.
    pub fn pop_due(&mut self, now: Millis) -> Option<Record> {
        if self.next_due()? > now {
            return None;
        }
        let ((_, seq), record) = self.by_due.pop_first()?;
        self.due_of.remove(&seq);
        Some(record)
    }

    /// The record `seq` and its due time.
    pub fn get(&self, seq: u64) -> Option<(Millis, &Record)> {
        let due = *self.due_of.get(&seq)?;
        self.by_due.get(&(due, seq)).map(|r| (due, r))
    }

    pub fn remove(&mut self, seq: u64) -> Option<Record> {
        let due = self.due_of.remove(&seq)?;
        self.by_due.remove(&(due, seq))
    }
}

/// A route's ready jobs by priority. Priority 0 (every job, unless producers set one) is
/// `base`; a higher priority gets its own [`Ready`] only while it has jobs, so a store
/// without priorities leases exactly as before, one branch more.
#[derive(Default)]
pub(super) struct ByPriority {
    base: Ready,
    /// Priorities above 0 with ready jobs, highest first.
    high: Vec<(u8, Ready)>,
}

impl ByPriority {
    pub fn len(&self) -> usize {
        self.base.len() + self.high.iter().map(|(_, r)| r.len()).sum::<usize>()
    }

    pub fn push(&mut self, record: Record) {
        if record.priority == 0 {
            return self.base.push(record);
        }
        let p = record.priority;
        let at = match self.high.iter().position(|(q, _)| *q <= p) {
            Some(i) if self.high[i].0 == p => i,
            Some(i) => {
                self.high.insert(i, (p, Ready::default()));
                i
            }
            None => {
                self.high.push((p, Ready::default()));
                self.high.len() - 1
            }
        };
        self.high[at].1.push(record);
    }

    /// The priority and enqueue sequence of the job a lease takes next.
    pub fn next(&self) -> Option<(u8, u64)> {
        match self.high.first() {
            Some((p, ready)) => ready.oldest().map(|seq| (*p, seq)),
            None => self.base.oldest().map(|seq| (0, seq)),
        }
    }

    pub fn pop_next(&mut self) -> Option<Record> {
        if self.high.is_empty() {
            return self.base.pop_oldest();
        }
        let record = self.high[0].1.pop_oldest();
        if self.high[0].1.len() == 0 {
            self.high.remove(0);
        }
        record
    }

    /// The oldest ready job of any priority (by enqueue sequence).
    pub fn oldest_record(&self) -> Option<&Record> {
        let all = std::iter::once(&self.base).chain(self.high.iter().map(|(_, r)| r));
        all.filter_map(Ready::oldest_record).min_by_key(|r| r.seq)
    }

    fn of(&self, priority: u8) -> Option<&Ready> {
        match priority {
            0 => Some(&self.base),
            p => self.high.iter().find(|(q, _)| *q == p).map(|(_, r)| r),
        }
    }

    pub fn get(&self, priority: u8, seq: u64) -> Option<&Record> {
        self.of(priority)?.get(seq)
    }

    pub fn remove(&mut self, priority: u8, seq: u64) -> Option<Record> {
        if priority == 0 {
            return self.base.remove(seq);
        }
        let i = self.high.iter().position(|(q, _)| *q == priority)?;
        let record = self.high[i].1.remove(seq);
        if self.high[i].1.len() == 0 {
            self.high.remove(i);
        }
        record
    }
}

/// Ready jobs in enqueue order: `fresh` takes jobs newer than any it holds (enqueues,
/// redrives) in O(1); `returned` takes older ones coming back (releases, due retries,
/// promoted FIFO members). The oldest of the two fronts is leased first.
#[derive(Default)]
pub(super) struct Ready {
    fresh: Chunked<Record>,
    returned: BTreeMap<u64, Record>,
}

/// In-flight records by slot; a lease token names its slot and lease generation.
#[derive(Default)]
pub(super) struct Slab {
    slots: Vec<Option<Record>>,
    free: Vec<u32>,
}

impl Slab {
    pub fn insert(&mut self, record: Record) -> u32 {
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(record);
                slot
            }
            None => {
                self.slots.push(Some(record));
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Takes the record `token` names, if the token is current.
    pub fn take(&mut self, token: &LeaseToken) -> Option<Record> {
        let (slot, lease) = ((token.lease_id >> 32) as usize, token.lease_id as u32);
        let cell = self.slots.get_mut(slot)?;
        if !cell.as_ref().is_some_and(|r| r.lease == lease && r.has_id(&token.job_id)) {
            return None;
        }
        self.free.push(slot as u32);
        cell.take()
    }

    /// The record in `slot`, whatever its lease.
    pub fn get(&self, slot: u32) -> Option<&Record> {
        self.slots.get(slot as usize)?.as_ref()
    }

    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Record> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    /// The slot of the in-flight record `seq`: a scan, as the slab holds no more than is in
    /// flight at once.
    pub fn find(&self, seq: u64) -> Option<u32> {
        self.slots.iter().position(|r| r.as_ref().is_some_and(|r| r.seq == seq)).map(|slot| slot as u32)
    }

    /// The record `token` names, if the token is current.
    pub fn leased(&self, token: &LeaseToken) -> Option<&Record> {
        let (slot, lease) = ((token.lease_id >> 32) as u32, token.lease_id as u32);
        self.get(slot).filter(|r| r.lease == lease && r.has_id(&token.job_id))
    }

    pub fn leased_mut(&mut self, token: &LeaseToken) -> Option<&mut Record> {
        let (slot, lease) = ((token.lease_id >> 32) as u32, token.lease_id as u32);
        self.get_mut(slot).filter(|r| r.lease == lease && r.has_id(&token.job_id))
    }

    pub fn drain(&mut self) -> Vec<Record> {
        self.free.clear();
        std::mem::take(&mut self.slots).into_iter().flatten().collect()
    }
}

impl Ready {
    pub fn len(&self) -> usize {
        self.fresh.len() + self.returned.len()
    }

    pub fn push(&mut self, record: Record) {
        if self.fresh.back().is_none_or(|last| last.seq < record.seq) {
            self.fresh.push_back(record);
        } else {
            self.returned.insert(record.seq, record);
        }
    }

    /// The enqueue sequence of the oldest ready job.
    pub fn oldest(&self) -> Option<u64> {
        let fresh = self.fresh.front().map(|r| r.seq);
        fresh.into_iter().chain(self.returned.keys().next().copied()).min()
    }

    /// The oldest ready job (by enqueue sequence).
    pub fn oldest_record(&self) -> Option<&Record> {
        let fresh = self.fresh.front();
        let returned = self.returned.values().next();
        match (fresh, returned) {
            (Some(f), Some(r)) => Some(if f.seq < r.seq { f } else { r }),
            (f, r) => f.or(r),
        }
    }

    pub fn pop_oldest(&mut self) -> Option<Record> {
        let oldest = self.oldest()?;
        if self.fresh.front().is_some_and(|r| r.seq == oldest) {
            self.fresh.pop_front()
        } else {
            self.returned.pop_first().map(|(_, r)| r)
        }
    }

    pub fn get(&self, seq: u64) -> Option<&Record> {
        self.returned.get(&seq).or_else(|| self.fresh.find(seq))
    }

    pub fn remove(&mut self, seq: u64) -> Option<Record> {
        self.returned.remove(&seq).or_else(|| self.fresh.remove(seq))
    }
}

/// `fresh` holds records in increasing sequence: found by binary search.
impl Chunked<Record> {
    /// The chunk that would hold `seq`, and its place in it.
    fn position(&self, seq: u64) -> Option<(usize, usize)> {
        let c = self.chunks.partition_point(|chunk| chunk.back().is_some_and(|r| r.seq < seq));
        let i = self.chunks.get(c)?.binary_search_by_key(&seq, |r| r.seq).ok()?;
        Some((c, i))
    }

    fn find(&self, seq: u64) -> Option<&Record> {
        let (c, i) = self.position(seq)?;
        self.chunks[c].get(i)
    }

    /// Takes the record `seq` out of the middle (a cancel): O(chunk), chunks stay non-empty.
    fn remove(&mut self, seq: u64) -> Option<Record> {
        let (c, i) = self.position(seq)?;
        let record = self.chunks[c].remove(i)?;
        if self.chunks[c].is_empty() {
            self.chunks.remove(c);
        }
        self.len -= 1;
        Some(record)
    }
}

/// A FIFO in chunks: growing never copies what is queued nor doubles the memory it holds,
/// unlike one `VecDeque` reallocating at a million entries. Chunks grow with the queue
/// (a new chunk holds as many items as are queued, from [`MIN_CHUNK`] to [`MAX_CHUNK`]), so
/// a short queue holds little and a long one is made of large allocations, which the
/// allocator maps without rounding waste.
struct Chunked<T> {
    chunks: VecDeque<VecDeque<T>>,
    len: usize,
}

const MIN_CHUNK: usize = 16;
const MAX_CHUNK: usize = 4096;

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Self { chunks: VecDeque::new(), len: 0 }
    }
}

impl<T> Chunked<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn front(&self) -> Option<&T> {
        self.chunks.front()?.front()
    }

    pub fn back(&self) -> Option<&T> {
        self.chunks.back()?.back()
    }

    pub fn push_back(&mut self, item: T) {
        match self.chunks.back_mut() {
            Some(last) if last.len() < last.capacity() => last.push_back(item),
            _ => {
                let mut chunk = VecDeque::with_capacity(self.len.clamp(MIN_CHUNK, MAX_CHUNK));
                chunk.push_back(item);
                self.chunks.push_back(chunk);
            }
        }
        self.len += 1;
    }

    pub fn pop_front(&mut self) -> Option<T> {
        let first = self.chunks.front_mut()?;
        let item = first.pop_front()?;
        if first.is_empty() {
            self.chunks.pop_front();
        }
        self.len -= 1;
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{NewJob, Payload};

    fn record(seq: u64, priority: u8) -> Record {
        let job = NewJob {
            id: format!("j{seq}"),
            queue: "q".into(),
            function_id: "f".into(),
            payload: Payload::default(),
            group: None,
            enqueued_at: seq,
            not_before: None,
            dedup: None,
            priority,
        };
        Record::new(job, seq, 0)
    }

    #[test]
    fn a_ready_record_is_found_and_taken_out_by_its_sequence_wherever_it_is() {
        let mut ready = Ready::default();
        let n = (MAX_CHUNK * 2 + 7) as u64;
        (1..=n).for_each(|seq| ready.push(record(seq, 0)));
        ready.push(record(0, 0)); // older than all: a released job, in `returned`
        for seq in [0, 1, MAX_CHUNK as u64, MAX_CHUNK as u64 + 1, n] {
            assert_eq!(ready.get(seq).map(|r| r.seq), Some(seq));
            assert_eq!(ready.remove(seq).map(|r| r.seq), Some(seq));
            assert!(ready.get(seq).is_none() && ready.remove(seq).is_none(), "{seq} is gone");
        }
        assert_eq!(ready.len(), n as usize - 4);
        ready.push(record(n + 1, 0));
        let order: Vec<u64> = std::iter::from_fn(|| ready.pop_oldest()).map(|r| r.seq).collect();
        let mut want: Vec<u64> =
            (2..=n + 1).filter(|s| ![MAX_CHUNK as u64, MAX_CHUNK as u64 + 1, n].contains(s)).collect();
        want.sort_unstable();
        assert_eq!(order, want, "what is left still comes out oldest first");
    }

    #[test]
    fn by_priority_hands_out_the_highest_first_then_the_oldest() {
        let mut ready = ByPriority::default();
        for (seq, priority) in [(1, 0), (2, 5), (3, 9), (4, 5), (5, 0), (6, 1)] {
            ready.push(record(seq, priority));
        }
        assert_eq!(ready.next(), Some((9, 3)));
        assert_eq!(ready.oldest_record().map(|r| r.seq), Some(1), "the oldest of any priority");
        assert_eq!(ready.remove(5, 4).map(|r| r.seq), Some(4));
        assert!(ready.remove(7, 1).is_none(), "no such priority");
        let order: Vec<(u8, u64)> = std::iter::from_fn(|| ready.pop_next()).map(|r| (r.priority, r.seq)).collect();
        assert_eq!(order, [(9, 3), (5, 2), (1, 6), (0, 1), (0, 5)]);
        assert!(ready.high.is_empty(), "no priority list is kept once empty");
    }

    #[test]
    fn chunked_keeps_fifo_order_across_chunks() {
        let mut c = Chunked::default();
        let n = MAX_CHUNK * 3 + 5;
        (0..n).for_each(|i| c.push_back(i));
        assert_eq!((c.len(), c.front(), c.back()), (n, Some(&0), Some(&(n - 1))));
        assert!(c.chunks.iter().all(|chunk| chunk.capacity() <= MAX_CHUNK));
        let drained: Vec<usize> = std::iter::from_fn(|| c.pop_front()).collect();
        assert_eq!(drained, (0..n).collect::<Vec<_>>());
        assert_eq!((c.len(), c.front()), (0, None));
    }
}
