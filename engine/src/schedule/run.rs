//! The scheduler's loop: one task per schedule, sleeping on the injected clock from tick
//! to tick (the protocol of [`super`]).
//!
//! Invariant: a task fires each tick at most once, in increasing tick order, and never a
//! tick later than its late limit; it stops within one poll of `stop`.

use super::{Fired, Scheduler, catch_up, due};
use crate::clock::Millis;
use crate::wire::rfc3339;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// How often a fire that failed on a store error is tried again (until its late limit).
pub const RETRY_MS: Millis = 1_000;

/// Runs every schedule of the config until `stop`; returns at once when there is none.
pub async fn run(scheduler: Arc<Scheduler>, stop: CancellationToken) {
    let names: Vec<String> = scheduler.config.schedules.keys().cloned().collect();
    let tasks: Vec<_> =
        names.into_iter().map(|name| tokio::spawn(one(scheduler.clone(), name, stop.clone()))).collect();
    for task in tasks {
        let _ = task.await;
    }
}

/// One schedule's loop.
async fn one(scheduler: Arc<Scheduler>, name: String, stop: CancellationToken) {
    let Some(spec) = scheduler.config.schedules.get(&name) else { return };
    let table = &spec.timetable;
    let clock = scheduler.clock.clone();
    let started = clock.now();
    if let Some(tick) = catch_up(table, spec.missed, started) {
        tracing::debug!(schedule = %name, tick = %rfc3339(tick), "start-up: firing the latest tick before now, unless it already ran");
        if !attempt(&scheduler, &name, tick, &stop).await {
            return;
        }
    }
    let mut expected = match table.at_or_after(started) {
        Some(t) => t,
        None => return ended(&name),
    };
    tracing::info!(
        schedule = %name,
        cron = %table.expression(),
        timezone = %table.zone_name(),
        queue = %spec.queue,
        next = %rfc3339(expected),
        "schedule armed"
    );
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = clock.sleep_until(expected) => {}
        }
        let now = clock.now();
        let (fire, passed_over) = due(table, expected, now);
        if passed_over {
            tracing::warn!(
                schedule = %name,
                from = %rfc3339(expected),
                now = %rfc3339(now),
                "woken late: only the latest tick that has come is fired, the ones before it are passed over"
            );
        }
        let last = match fire {
            Some(tick) => {
                if !attempt(&scheduler, &name, tick, &stop).await {
                    return;
                }
                tick
            }
            None => {
                tracing::warn!(schedule = %name, now = %rfc3339(now), "woken past the tick's late limit: not fired");
                table.latest_at_or_before(now).unwrap_or(expected)
            }
        };
        expected = match table.next_after(last.max(expected)) {
            Some(t) => t,
            None => return ended(&name),
        };
    }
}

/// Fires `tick`, retrying store errors every [`RETRY_MS`] while the tick is within its
/// late limit. `false` when stopped meanwhile.
async fn attempt(scheduler: &Scheduler, name: &str, tick: Millis, stop: &CancellationToken) -> bool {
    let Some(spec) = scheduler.config.schedules.get(name) else { return true };
    let deadline = tick.saturating_add(spec.timetable.late_limit(tick));
    loop {
        match scheduler.fire(name, tick).await {
            Ok(Fired::Enqueued(_) | Fired::Duplicate(_)) => return true,
            Err(e) => {
                let now = scheduler.clock.now();
                let retry_at = now + RETRY_MS;
                if !e.is_transient() || retry_at > deadline {
                    tracing::error!(schedule = %name, tick = %rfc3339(tick), error = %e, "schedule tick not enqueued");
                    scheduler.gave_up(name);
                    return true;
                }
                tracing::warn!(schedule = %name, tick = %rfc3339(tick), error = %e, retry_in_ms = RETRY_MS, "schedule tick not enqueued yet; retrying");
                tokio::select! {
                    _ = stop.cancelled() => return false,
                    _ = scheduler.clock.sleep_until(retry_at) => {}
                }
            }
        }
    }
}

fn ended(name: &str) {
    tracing::warn!(schedule = %name, "the schedule has no tick after now: it has ended");
}
