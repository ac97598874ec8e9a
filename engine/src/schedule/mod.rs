//! Schedules (`schedules:` in `iii-config.yaml`): a cron expression in a time zone that
//! enqueues one job — queue, function, payload — per tick.
//!
//! Invariant: a store holds at most one job per tick of a schedule, however many engines
//! fire it and however often they restart. Each tick's job carries the idempotency key
//! `schedule:<name>:<tick epoch ms>` ([`tick_key`]); the store's atomic dedup claim keeps
//! the first and answers every other enqueue of that key as a duplicate. Every engine may
//! (and does) fire every tick; none coordinates with another.
//!
//! The claim lives [`claim_window`] = the tick's [late limit](Timetable::late_limit) (the
//! gap to the next tick, at most 24 h) plus [`CLAIM_MARGIN_MS`] (60 s), counted from the
//! enqueue (never before the tick). No engine enqueues a tick later than its late limit, so
//! no engine can fire a tick whose claim has expired: the margin covers the engines'
//! clocks disagreeing by up to a minute (and Redis dropping expired claims on its own
//! clock). A tick's claim is thus at most ~24 h of memory: a per-second schedule holds
//! about 61 live claims, a nightly one one or two.
//!
//! The protocol, per schedule and engine ([`run`]):
//! 1. Start-up, `missed: run_once` (the default): the latest tick before now, if it is
//!    within its late limit, is fired once. "Missed" is read from the store, not from
//!    this engine: if any engine (this one before a restart, or another) enqueued that
//!    tick, its claim is live and the fire is a duplicate — nothing runs twice. Otherwise
//!    the tick was missed while no engine ran, and its job runs now (late). Older missed
//!    ticks never run: never a burst. `missed: skip` fires nothing at start-up. (A first
//!    start looks like a restart to the store: a schedule new to it also runs its latest
//!    tick under `run_once`.)
//! 2. Sleep on the injected clock until the next tick; fire it.
//! 3. Woken late (the process was suspended, the host slept): fire only the latest tick
//!    that has come, within its late limit; the ticks in between are passed over, logged.
//! 4. A store error is retried every [`RETRY_MS`] until the tick's late limit; a full queue
//!    (`max_ready`) passes the tick over. Both are logged and counted `failed`.
//!
//! What a fire looks like: one INFO line per job enqueued (`schedule`, `tick`, `queue`,
//! `function_id`, `message_receipt_id`), a DEBUG line per duplicate, and the counter
//! `switchyard_schedule_ticks_total{schedule, outcome = enqueued | duplicate | failed}`.
//!
//! Stores: Redis and RabbitMQ share claims between engines, so several engines fire each
//! tick once between them. `file_based` keeps claims across restarts. `in_memory` forgets
//! every claim with the process: a restart within a tick's window fires that tick again
//! under `run_once` (its earlier job was lost with the store anyway); a single engine never
//! fires a tick twice while it runs.
//!
//! Deliberately not done: no overlap guard (a tick is enqueued even if the previous tick's
//! job has not run yet — set the queue's `concurrency` for that); schedules come from the
//! config only (no API to add one at run time); ticks are whole seconds.

mod fire;
mod run;
pub mod timetable;

#[cfg(test)]
mod tests;

pub use fire::{FireError, Fired, Scheduler};
pub use run::{RETRY_MS, run};
pub use timetable::{MAX_LATE_MS, Timetable, TimetableError};

use crate::clock::Millis;
use crate::queue::Payload;

/// Extra life of a tick's claim beyond its late limit (clock disagreement between engines).
pub const CLAIM_MARGIN_MS: Millis = 60_000;

/// A validated `schedules` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleSpec {
    pub timetable: Timetable,
    /// A defined queue.
    pub queue: String,
    pub function_id: String,
    /// The job's payload (YAML in the config, JSON on the wire; `null` by default).
    pub payload: Payload,
    /// On a FIFO queue: the payload's group (checked at load).
    pub group: Option<String>,
    /// 0–9 on standard queues; 0 on FIFO ones.
    pub priority: u8,
    pub missed: Missed,
}

impl ScheduleSpec {
    /// One line of `check-config`.
    pub fn describe(&self) -> String {
        let mut line = format!(
            "cron \"{}\" timezone={} queue={} function_id={} missed={}",
            self.timetable.expression(),
            self.timetable.zone_name(),
            self.queue,
            self.function_id,
            self.missed.as_str()
        );
        if self.priority > 0 {
            line.push_str(&format!(" priority={}", self.priority));
        }
        line
    }
}

/// What start-up does about ticks that came while no engine ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Missed {
    /// Enqueue the latest missed tick once (if within its late limit).
    #[default]
    RunOnce,
    /// Enqueue none.
    Skip,
}

impl Missed {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "run_once" => Some(Missed::RunOnce),
            "skip" => Some(Missed::Skip),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Missed::RunOnce => "run_once",
            Missed::Skip => "skip",
        }
    }
}

/// The idempotency key of `name`'s `tick`.
pub fn tick_key(name: &str, tick: Millis) -> String {
    format!("schedule:{name}:{tick}")
}

/// How long the claim of `tick` lives after its enqueue: see the module doc.
pub fn claim_window(timetable: &Timetable, tick: Millis) -> Millis {
    timetable.late_limit(tick) + CLAIM_MARGIN_MS
}

/// Start-up (protocol step 1): the tick to fire at `now`, if any.
pub fn catch_up(timetable: &Timetable, missed: Missed, now: Millis) -> Option<Millis> {
    if missed == Missed::Skip {
        return None;
    }
    let tick = timetable.latest_before(now)?;
    (now - tick <= timetable.late_limit(tick)).then_some(tick)
}

/// Woken at `now` for the tick `expected` (protocol steps 2–3): the tick to fire (the
/// latest that has come, if still within its late limit) and whether ticks between
/// `expected` and it were passed over.
pub fn due(timetable: &Timetable, expected: Millis, now: Millis) -> (Option<Millis>, bool) {
    let latest = timetable.latest_at_or_before(now).filter(|t| *t >= expected).unwrap_or(expected);
    let passed_over = latest > expected;
    let fire = (now.saturating_sub(latest) <= timetable.late_limit(latest)).then_some(latest);
    (fire, passed_over)
}
