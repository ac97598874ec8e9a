//! The worker registry: who is connected, which functions each serves, and how many
//! invocations each has outstanding.
//!
//! Invariant: `outstanding <= max_in_flight` for every worker — [`Workers::pick`] never
//! chooses a full worker, and a slot is taken only through it.

use crate::clock::Millis;
use foldhash::HashMap;
use std::collections::{BTreeMap, BTreeSet};
use switchyard_proto::wire::EngineMessage;
use tokio::sync::mpsc;

pub type WorkerId = u64;

/// `max_in_flight` when a worker's hello says 0 (or it sends none).
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 64;

pub struct Worker {
    pub name: String,
    /// (name, version) from the hello; `None` until it arrives.
    pub sdk: Option<(String, String)>,
    pub connected_at: Millis,
    pub tx: mpsc::UnboundedSender<EngineMessage>,
    pub max_in_flight: u32,
    pub outstanding: u32,
    /// Takes several invocations per message (`hello.batches`).
    pub batches: bool,
    pub functions: BTreeSet<String>,
}

impl Worker {
    fn free(&self) -> u32 {
        self.max_in_flight.saturating_sub(self.outstanding)
    }
}

/// A worker as operators see it (`ListWorkers`, the console, `/metrics`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerView {
    pub id: WorkerId,
    pub name: String,
    pub sdk: Option<(String, String)>,
    pub max_in_flight: u32,
    pub outstanding: u32,
    /// Sorted.
    pub functions: Vec<String>,
    pub connected_at: Millis,
}

#[derive(Default)]
pub struct Workers {
    workers: HashMap<WorkerId, Worker>,
    /// Function → its workers, in registration order.
    by_function: BTreeMap<String, Vec<WorkerId>>,
    next_id: WorkerId,
}

impl Workers {
    pub fn add(&mut self, tx: mpsc::UnboundedSender<EngineMessage>, now: Millis) -> WorkerId {
        self.next_id += 1;
        let worker = Worker {
            name: String::new(),
            sdk: None,
            connected_at: now,
            tx,
            // No work before the hello says how much the worker takes.
            max_in_flight: 0,
            outstanding: 0,
            batches: false,
            functions: BTreeSet::new(),
        };
        self.workers.insert(self.next_id, worker);
        self.next_id
    }

    pub fn get(&self, id: WorkerId) -> Option<&Worker> {
        self.workers.get(&id)
    }

    pub fn get_mut(&mut self, id: WorkerId) -> Option<&mut Worker> {
        self.workers.get_mut(&id)
    }

    /// Removes a worker; returns the functions it served.
    pub fn remove(&mut self, id: WorkerId) -> BTreeSet<String> {
        let Some(worker) = self.workers.remove(&id) else {
            return BTreeSet::new();
        };
        for f in &worker.functions {
            self.detach(f, id);
        }
        worker.functions
    }

    pub fn register(&mut self, id: WorkerId, function: &str) {
        let Some(worker) = self.workers.get_mut(&id) else {
            return;
        };
        if worker.functions.insert(function.to_string()) {
            self.by_function.entry(function.to_string()).or_default().push(id);
        }
    }

    pub fn unregister(&mut self, id: WorkerId, function: &str) {
        if let Some(worker) = self.workers.get_mut(&id)
            && worker.functions.remove(function)
        {
            self.detach(function, id);
        }
    }

    fn detach(&mut self, function: &str, id: WorkerId) {
        if let Some(list) = self.by_function.get_mut(function) {
            list.retain(|w| *w != id);
            if list.is_empty() {
                self.by_function.remove(function);
            }
        }
    }

    pub fn serves(&self, function: &str) -> bool {
        self.by_function.contains_key(function)
    }

    /// The worker for `function` with the fewest outstanding invocations and a free slot.
    pub fn pick(&self, function: &str) -> Option<WorkerId> {
        self.by_function
            .get(function)?
            .iter()
            .filter_map(|id| self.workers.get(id).map(|w| (id, w)))
            .filter(|(_, w)| w.free() > 0)
            .min_by_key(|(_, w)| w.outstanding)
            .map(|(id, _)| *id)
    }

    /// Free slots per function (a worker serving several functions counts for each).
    pub fn capacities(&self) -> Vec<(String, usize)> {
        self.by_function
            .iter()
            .map(|(f, ids)| {
                let free: u32 = ids.iter().filter_map(|id| self.workers.get(id)).map(Worker::free).sum();
                (f.clone(), free as usize)
            })
            .filter(|(_, free)| *free > 0)
            .collect()
    }

    /// Every worker, in the order they connected.
    pub fn views(&self) -> Vec<WorkerView> {
        let mut views: Vec<WorkerView> = self
            .workers
            .iter()
            .map(|(id, w)| WorkerView {
                id: *id,
                name: w.name.clone(),
                sdk: w.sdk.clone(),
                max_in_flight: w.max_in_flight,
                outstanding: w.outstanding,
                functions: w.functions.iter().cloned().collect(),
                connected_at: w.connected_at,
            })
            .collect();
        views.sort_by_key(|v| v.id);
        views
    }

    pub fn ids(&self) -> Vec<WorkerId> {
        self.workers.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_prefers_least_outstanding_and_skips_full_workers() {
        let mut w = Workers::default();
        let (tx, _rx) = mpsc::unbounded_channel();
        let a = w.add(tx.clone(), 0);
        let b = w.add(tx, 0);
        w.register(a, "f");
        w.register(b, "f");
        w.get_mut(a).unwrap().max_in_flight = 1;
        w.get_mut(b).unwrap().max_in_flight = DEFAULT_MAX_IN_FLIGHT;
        w.get_mut(b).unwrap().outstanding = 3;
        assert_eq!(w.pick("f"), Some(a));
        w.get_mut(a).unwrap().outstanding = 1;
        assert_eq!(w.pick("f"), Some(b), "a is full");
        assert_eq!(w.capacities(), vec![("f".to_string(), 61)]);
        w.remove(b);
        assert_eq!(w.pick("f"), None);
        assert!(w.serves("f"));
        w.unregister(a, "f");
        assert!(!w.serves("f"));
    }
}
