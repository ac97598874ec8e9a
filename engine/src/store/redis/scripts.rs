//! The Lua scripts: one per transition, each run atomically by Redis (`EVALSHA`, loaded
//! again by [`redis::Script`] after a Redis restart forgot them).
//!
//! Every script is `scripts/prelude.lua` (key builders and the shared steps: make ready,
//! join / leave a FIFO group, unlease, reclaim expired leases) followed by its own body.
//! `ARGV[1]` is always the key prefix; the scripts name their keys themselves, which is
//! why this store needs one Redis (or a primary with replicas), not Redis Cluster.

use ::redis::Script;

const PRELUDE: &str = include_str!("scripts/prelude.lua");

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

/// Every script the store runs, compiled once per store.
pub struct Scripts {
    pub enqueue: Script,
    pub lease: Script,
    pub finish: Script,
    pub stats: Script,
    pub oldest_ready: Script,
    pub dead_letters: Script,
    pub redrive: Script,
    pub discard: Script,
    pub heartbeat: Script,
    pub recover: Script,
    pub cancel: Script,
    pub set_progress: Script,
    pub cancel_requested: Script,
    pub expire_finished: Script,
    pub rate_take: Script,
    pub rate_refund: Script,
}

impl Scripts {
    pub fn new() -> Self {
        Self {
            enqueue: script(include_str!("scripts/enqueue.lua")),
            lease: script(include_str!("scripts/lease.lua")),
            finish: script(include_str!("scripts/finish.lua")),
            stats: script(include_str!("scripts/stats.lua")),
            oldest_ready: script(include_str!("scripts/oldest_ready.lua")),
            dead_letters: script(include_str!("scripts/dead_letters.lua")),
            redrive: script(include_str!("scripts/redrive.lua")),
            discard: script(include_str!("scripts/discard.lua")),
            heartbeat: script(include_str!("scripts/heartbeat.lua")),
            recover: script(include_str!("scripts/recover.lua")),
            cancel: script(include_str!("scripts/cancel.lua")),
            set_progress: script(include_str!("scripts/set_progress.lua")),
            cancel_requested: script(include_str!("scripts/cancel_requested.lua")),
            expire_finished: script(include_str!("scripts/expire_finished.lua")),
            rate_take: script(include_str!("scripts/rate_take.lua")),
            rate_refund: script(include_str!("scripts/rate_refund.lua")),
        }
    }

    pub fn all(&self) -> [(&'static str, &Script); 16] {
        [
            ("enqueue", &self.enqueue),
            ("lease", &self.lease),
            ("finish", &self.finish),
            ("stats", &self.stats),
            ("oldest_ready", &self.oldest_ready),
            ("dead_letters", &self.dead_letters),
            ("redrive", &self.redrive),
            ("discard", &self.discard),
            ("heartbeat", &self.heartbeat),
            ("recover", &self.recover),
            ("cancel", &self.cancel),
            ("set_progress", &self.set_progress),
            ("cancel_requested", &self.cancel_requested),
            ("expire_finished", &self.expire_finished),
            ("rate_take", &self.rate_take),
            ("rate_refund", &self.rate_refund),
        ]
    }
}
