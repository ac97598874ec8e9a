//! The key layout, under the configured `key_prefix` (written `P` below).
//!
//! Names that come from users (queues, functions, groups, job ids) are only ever the *last*
//! part of a key or, for the queue, length-prefixed (`P:q:7:payment:…`), so two different
//! names can never produce the same key whatever characters they contain.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:job:<id>` | HASH | one job: `id queue fn payload group? state attempts enq due seq lease owner? nb? prio? err? err_message err_code err_stack dead_at?`; in flight `cancel? cat? ckeep? prog? prog_v? prog_d?`; completed / cancelled `fin exp result?` |
//! | `P:q:<len>:<queue>:ready:<fn>` | ZSET | `Ready` jobs of one function, scored by priority band then enqueue sequence: `(9 − prio) × 2^48 + seq` |
//! | `P:q:<len>:<queue>:delayed` | ZSET | `Delayed` jobs, scored by due time (ms) |
//! | `P:q:<len>:<queue>:group:<g>` | LIST | a FIFO group's members in order; the head is the only one not `Waiting` |
//! | `P:q:<len>:<queue>:dead` | ZSET | `Dead` jobs, scored by dead-letter sequence (the page cursor) |
//! | `P:q:<len>:<queue>:dedup:<key>` | STRING | an idempotency key's claim: `<expires_at>\|<first job id>`, PX = the queue's window |
//! | `P:q:<len>:<queue>:fns` | SET | every function the queue has had jobs of (where `oldest_ready` looks) |
//! | `P:q:<len>:<queue>:counts` | HASH | gauges `ready` (incl. waiting), `in_flight`; counters `enqueued completed failed dead_lettered` |
//! | `P:q:<len>:<queue>:rate` | HASH | the queue's token bucket (`tokens at`), shared by every engine; expires once full again |
//! | `P:retained` | ZSET | `Completed` and `Cancelled` jobs, scored by `expires_at` (engine clock, ms) |
//! | `P:leases` | ZSET | every `InFlight` job, scored by its lease deadline (Redis server time, ms) |
//! | `P:seq`, `P:lease-seq` | STRING | counters: enqueue / dead-letter order, lease ids |
//! | `P:changed` | channel | published when jobs may have become ready (enqueue, retry, release, …) |
//!
//! The Lua side builds the same names (`scripts/prelude.lua`); this module is the Rust side,
//! used for the few plain commands and by tests.

/// Key names for one prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_string() }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn queue(&self, queue: &str) -> String {
        format!("{}:q:{}:{}", self.prefix, queue.len(), queue)
    }

    pub fn job(&self, id: &str) -> String {
        format!("{}:job:{id}", self.prefix)
    }

    pub fn ready(&self, queue: &str, function: &str) -> String {
        format!("{}:ready:{function}", self.queue(queue))
    }

    pub fn delayed(&self, queue: &str) -> String {
        format!("{}:delayed", self.queue(queue))
    }

    pub fn group(&self, queue: &str, group: &str) -> String {
        format!("{}:group:{group}", self.queue(queue))
    }

    pub fn dead(&self, queue: &str) -> String {
        format!("{}:dead", self.queue(queue))
    }

    pub fn counts(&self, queue: &str) -> String {
        format!("{}:counts", self.queue(queue))
    }

    pub fn rate(&self, queue: &str) -> String {
        format!("{}:rate", self.queue(queue))
    }

    pub fn retained(&self) -> String {
        format!("{}:retained", self.prefix)
    }

    pub fn leases(&self) -> String {
        format!("{}:leases", self.prefix)
    }

    pub fn changed(&self) -> String {
        format!("{}:changed", self.prefix)
    }

    /// A `SCAN MATCH` pattern for every key of this prefix (glob characters escaped).
    pub fn all_pattern(&self) -> String {
        let mut out = String::with_capacity(self.prefix.len() + 2);
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push_str(":*");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Keys;

    #[test]
    fn user_names_cannot_collide() {
        let k = Keys::new("sy");
        assert_eq!(k.ready("payment", "orders::pay"), "sy:q:7:payment:ready:orders::pay");
        assert_ne!(k.ready("a:ready:b", "c"), k.ready("a", "b:ready:c"));
        assert_ne!(k.group("a:group:b", "c"), k.group("a", "b:group:c"));
    }

    #[test]
    fn scan_pattern_escapes_glob_characters() {
        assert_eq!(Keys::new("t*[x]").all_pattern(), "t\\*\\[x\\]:*");
    }
}
