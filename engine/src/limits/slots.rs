//! Counted slots with guards: a global count (worker streams) and a count per client
//! connection (calls in flight).
//!
//! Invariant: a slot is taken by a successful `try_take` and given back exactly once, when
//! its guard drops; the count never passes the limit.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// At most `limit` taken at once.
pub struct Slots {
    taken: Arc<AtomicUsize>,
    limit: usize,
}

/// Gives its slot back when dropped.
pub struct SlotGuard(Arc<AtomicUsize>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Slots {
    pub fn new(limit: usize) -> Self {
        Self { taken: Arc::new(AtomicUsize::new(0)), limit }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A slot, or `None` when all `limit` are taken.
    pub fn try_take(&self) -> Option<SlotGuard> {
        self.taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.limit).then_some(n + 1))
            .ok()
            .map(|_| SlotGuard(self.taken.clone()))
    }
}

/// At most `limit` taken at once per connection (a client's address and port: one TCP
/// connection while it is open).
pub struct PerConnection {
    taken: Arc<Mutex<HashMap<SocketAddr, usize>>>,
    limit: usize,
}

/// Gives its connection's slot back when dropped.
pub struct ConnectionGuard {
    taken: Arc<Mutex<HashMap<SocketAddr, usize>>>,
    peer: SocketAddr,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut taken = self.taken.lock();
        if let Some(n) = taken.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                taken.remove(&self.peer); // the map holds only connections with calls in flight
            }
        }
    }
}

impl PerConnection {
    pub fn new(limit: usize) -> Self {
        Self { taken: Default::default(), limit }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A slot on `peer`'s connection, or `None` when it has `limit` calls in flight.
    pub fn try_take(&self, peer: SocketAddr) -> Option<ConnectionGuard> {
        let mut taken = self.taken.lock();
        let n = taken.entry(peer).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(ConnectionGuard { taken: self.taken.clone(), peer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_refuse_past_the_limit_and_come_back_when_dropped() {
        let s = Slots::new(2);
        let a = s.try_take().unwrap();
        let _b = s.try_take().unwrap();
        assert!(s.try_take().is_none());
        drop(a);
        assert!(s.try_take().is_some());
    }

    #[test]
    fn a_connection_at_its_limit_does_not_limit_another() {
        let p = PerConnection::new(1);
        let (x, y): (SocketAddr, SocketAddr) = ("127.0.0.1:1000".parse().unwrap(), "127.0.0.1:1001".parse().unwrap());
        let gx = p.try_take(x).unwrap();
        assert!(p.try_take(x).is_none());
        assert!(p.try_take(y).is_some());
        drop(gx);
        assert!(p.try_take(x).is_some());
        assert!(p.taken.lock().is_empty(), "no entry is kept for idle connections");
    }
}
