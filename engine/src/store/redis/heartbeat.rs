//! The store's background tasks, one set per store instance (= per engine process):
//!
//! - **heartbeat** — every `lease_ttl / 3`, pushes the deadline of every lease this engine
//!   holds to `now + lease_ttl`, then takes back expired leases of engines that stopped
//!   heartbeating (they crashed, hung or lost Redis for longer than the TTL);
//! - **wake-ups** — subscribes to `P:changed` and notifies [`Store::changed`] on every
//!   message, so a job enqueued through engine A reaches a worker connected to engine B at
//!   once; re-subscribes with backoff after a lost connection (and notifies then, since
//!   messages published meanwhile are gone);
//! - **safety poll** — notifies `changed` every `safety_poll` anyway, so a message lost
//!   during a reconnect delays a job by at most that long.
//!
//! All three end when the store is dropped.
//!
//! [`Store::changed`]: crate::store::Store::changed

use super::Shared;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const RESUBSCRIBE_MIN: Duration = Duration::from_millis(100);
const RESUBSCRIBE_MAX: Duration = Duration::from_secs(5);

pub(super) async fn heartbeat(shared: Arc<Shared>, stop: CancellationToken) {
    let period = (shared.options.lease_ttl / 3).max(Duration::from_millis(10));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; the leases are fresh
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match shared.heartbeat_once().await {
            Ok(reclaimed) => {
                if failing {
                    tracing::info!("redis heartbeat works again");
                    failing = false;
                }
                if reclaimed > 0 {
                    tracing::info!(reclaimed, "took back jobs whose engine stopped heartbeating");
                    shared.notify();
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "redis heartbeat failed; leases expire unless it recovers in time");
                }
                failing = true;
            }
        }
    }
}

pub(super) async fn wake_ups(client: ::redis::Client, shared: Arc<Shared>, stop: CancellationToken) {
    let channel = shared.keys.changed();
    let mut backoff = RESUBSCRIBE_MIN;
    loop {
        let subscribe = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, ::redis::RedisError>(pubsub)
        };
        let subscribed = tokio::select! {
            _ = stop.cancelled() => return,
            s = subscribe => s,
        };
        match subscribed {
            Ok(mut pubsub) => {
                if backoff > RESUBSCRIBE_MIN {
                    tracing::info!("redis wake-up subscription restored");
                }
                backoff = RESUBSCRIBE_MIN;
                shared.notify(); // whatever was published while unsubscribed is lost
                let mut messages = pubsub.on_message();
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        m = messages.next() => match m {
                            Some(_) => shared.notify(),
                            None => break,
                        },
                    }
                }
                tracing::warn!("redis wake-up subscription lost; resubscribing");
            }
            Err(e) => {
                if backoff == RESUBSCRIBE_MIN {
                    tracing::warn!(error = %e, "cannot subscribe to redis wake-ups; retrying");
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(RESUBSCRIBE_MAX);
    }
}

pub(super) async fn safety_poll(shared: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(shared.options.safety_poll.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => shared.notify(),
        }
    }
}
