//! Time, injected. Every component reads "now" and sleeps through a [`Clock`], so a test
//! can drive retry schedules and timeouts with a [`ManualClock`] instead of sleeping.
//!
//! Times are milliseconds since the Unix epoch ([`Millis`]); the store keeps absolute due
//! times, so a restart keeps the schedule.

use futures::future::BoxFuture;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// The source of time for the engine.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Millis;
    /// Completes once `now() >= deadline`.
    fn sleep_until(&self, deadline: Millis) -> BoxFuture<'static, ()>;
}

/// Wall-clock time and tokio timers.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as Millis).unwrap_or(0)
    }

    fn sleep_until(&self, deadline: Millis) -> BoxFuture<'static, ()> {
        let wait = deadline.saturating_sub(self.now());
        Box::pin(tokio::time::sleep(Duration::from_millis(wait)))
    }
}

/// A clock that moves only when told to. Sleepers register their deadline, so a test can
/// ask "what is the engine waiting for?" ([`ManualClock::timers`]) and jump straight to it.
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

struct ManualInner {
    now: AtomicU64,
    next_id: AtomicU64,
    timers: Mutex<BTreeMap<(Millis, u64), Option<Waker>>>,
    timers_changed: Notify,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Millis) -> Self {
        Self {
            inner: Arc::new(ManualInner {
                now: AtomicU64::new(start),
                next_id: AtomicU64::new(0),
                timers: Mutex::new(BTreeMap::new()),
                timers_changed: Notify::new(),
            }),
        }
    }

    /// Moves time to `to` (never backwards) and wakes every sleeper that is due.
    pub fn advance_to(&self, to: Millis) {
        self.inner.now.fetch_max(to, Ordering::SeqCst);
        let now = self.inner.now.load(Ordering::SeqCst);
        let mut timers = self.inner.timers.lock();
        for ((deadline, _), waker) in timers.iter_mut() {
            if *deadline > now {
                break;
            }
            if let Some(w) = waker.take() {
                w.wake();
            }
        }
    }

    /// Moves time forward by `ms`.
    pub fn advance(&self, ms: Millis) {
        self.advance_to(self.now() + ms);
    }

    /// The deadlines of every pending sleeper, earliest first.
    pub fn timers(&self) -> Vec<Millis> {
        self.inner.timers.lock().keys().map(|(d, _)| *d).collect()
    }

    /// Waits until some sleeper's deadline satisfies `pred`, and returns the earliest such.
    pub async fn wait_for_timer(&self, pred: impl Fn(Millis) -> bool) -> Millis {
        loop {
            let changed = self.inner.timers_changed.notified();
            if let Some(t) = self.timers().into_iter().find(|t| pred(*t)) {
                return t;
            }
            changed.await;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.inner.now.load(Ordering::SeqCst)
    }

    fn sleep_until(&self, deadline: Millis) -> BoxFuture<'static, ()> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner.timers.lock().insert((deadline, id), None);
        self.inner.timers_changed.notify_waiters();
        Box::pin(ManualSleep { clock: self.inner.clone(), key: (deadline, id) })
    }
}

struct ManualSleep {
    clock: Arc<ManualInner>,
    key: (Millis, u64),
}

impl Future for ManualSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.clock.now.load(Ordering::SeqCst) >= self.key.0 {
            return Poll::Ready(());
        }
        let mut timers = self.clock.timers.lock();
        if let Some(slot) = timers.get_mut(&self.key) {
            *slot = Some(cx.waker().clone());
        }
        drop(timers);
        // Re-check: advance_to may have run between the load and the registration.
        if self.clock.now.load(Ordering::SeqCst) >= self.key.0 {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for ManualSleep {
    fn drop(&mut self) {
        self.clock.timers.lock().remove(&self.key);
        self.clock.timers_changed.notify_waiters();
    }
}
