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
        }
    }

    pub fn all(&self) -> [(&'static str, &Script); 10] {
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
        ]
    }
}
