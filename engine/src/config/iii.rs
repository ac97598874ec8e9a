//! What a config written for iii (the engine Switchyard replaces) may hold, and what each
//! of its keys means here.
//!
//! Invariant: every shape iii's docs and releases show loads unchanged — its settings
//! that mean the same here are applied, each one that has no meaning here is ignored with
//! one warning (path and line), and a key neither engine knows stays an error, so a typo
//! of our own keys is never silently dropped.
//!
//! The shapes (fixtures of each under `engine/tests/fixtures/iii/`):
//! 1. iii ≤ 0.10: `modules: [{class: modules::queue::QueueModule, config: {queue_configs,
//!    adapter: {class: modules::queue::BuiltinQueueAdapter, config}}}]`, top-level `port`.
//! 2. iii ≥ 0.11: `workers: [{name: iii-queue, config: {queue_configs, adapter: {name:
//!    builtin, config}}}]`; `modules:` entries may also be named (`name:`), entries may
//!    carry an `image`, or no `config` at all.
//! 3. The standalone `queue` worker (`workers: [{name: queue, …}]`, or its own seed file:
//!    `queue_configs` and `adapter` at the top level, adapter names `in_memory` and
//!    `file_based` as aliases of `builtin`).
//!
//! Deliberately not mapped: iii counts `max_retries` as delivery attempts; here it is the
//! number of retries after the first attempt (DESIGN §2), so a queue gets one attempt
//! more than it had under iii. The key keeps this engine's meaning; the README says so.

/// An iii key with no meaning here, and why.
pub type Foreign = (&'static str, &'static str);

/// Top-level keys of iii's engine config.
pub const TOP: &[Foreign] = &[("registration_namespace_grace_ms", "Switchyard workers have no namespaces")];

/// Per-queue keys (`queue_configs.<name>`).
pub const QUEUE: &[Foreign] = &[
    ("poll_interval_ms", "the engine wakes on events, it does not poll"),
    ("max_priority", "priorities are fixed at 0-9: give each enqueue its `priority`"),
    ("priority_field", "a job's priority is the enqueue's `priority` option, not a payload field"),
];

/// Keys of an iii module/worker list entry besides `name`/`class` and `config`.
pub const ENTRY: &[Foreign] = &[("image", "the queue module is built into this engine")];

/// iii ≤ 0.10 put defaults for its topic queues in the adapter's config; named queues
/// take theirs from `queue_configs`, as here.
const TOPIC_QUEUE_DEFAULTS: &str = "per-queue settings go in queue_configs";

/// `adapter.config` of `builtin`.
pub const BUILTIN: &[Foreign] = &[
    ("save_interval_ms", "file_based writes every enqueue to disk before acknowledging it"),
    ("max_attempts", TOPIC_QUEUE_DEFAULTS),
    ("backoff_ms", TOPIC_QUEUE_DEFAULTS),
    ("concurrency", TOPIC_QUEUE_DEFAULTS),
    ("poll_interval_ms", "the engine wakes on events, it does not poll"),
    ("mode", TOPIC_QUEUE_DEFAULTS),
];

/// `adapter.config` of `rabbitmq`.
pub const RABBITMQ: &[Foreign] = &[
    ("max_attempts", TOPIC_QUEUE_DEFAULTS),
    ("prefetch_count", "the engine leases what each queue's concurrency allows"),
    ("queue_mode", TOPIC_QUEUE_DEFAULTS),
    ("priority_field", "a job's priority is the enqueue's `priority` option, not a payload field"),
];

/// Is this list entry iii's queue module? `name` for `workers:` and newer `modules:`,
/// `class` for iii ≤ 0.10.
pub fn is_queue_module(name: Option<&str>, class: Option<&str>) -> bool {
    matches!(name, Some("iii-queue" | "queue")) || class.is_some_and(|c| c.ends_with("::QueueModule"))
}

/// An adapter as iii names it → `(adapter name here, store_method it implies)`.
/// `name:` takes `builtin`, `redis`, `rabbitmq`, and the queue worker's aliases
/// `in_memory` / `file_based`; `class:` (iii ≤ 0.10) is matched on its last segment.
pub fn adapter_name(name: Option<&str>, class: Option<&str>) -> Result<(&'static str, Option<&'static str>), String> {
    match (name, class) {
        (Some(name), _) => match name {
            "builtin" => Ok(("builtin", None)),
            "in_memory" => Ok(("builtin", Some("in_memory"))),
            "file_based" => Ok(("builtin", Some("file_based"))),
            "redis" => Ok(("redis", None)),
            "rabbitmq" => Ok(("rabbitmq", None)),
            "bridge" => Err(BRIDGE.to_string()),
            other => Err(format!("unknown adapter '{other}' (expected builtin, redis or rabbitmq)")),
        },
        (None, Some(class)) => match class.rsplit("::").next().unwrap_or(class) {
            "BuiltinQueueAdapter" => Ok(("builtin", None)),
            "RedisAdapter" => Ok(("redis", None)),
            "RabbitMQAdapter" | "RabbitMqAdapter" => Ok(("rabbitmq", None)),
            "Bridge" | "BridgeAdapter" => Err(BRIDGE.to_string()),
            _ => Err(format!(
                "unknown adapter class '{class}' (expected modules::queue::BuiltinQueueAdapter, RedisAdapter or RabbitMQAdapter)"
            )),
        },
        (None, None) => Ok(("builtin", None)),
    }
}

const BRIDGE: &str = "iii's bridge adapter forwards queue operations to another iii engine, which \
                      Switchyard has no equivalent of (expected builtin, redis or rabbitmq)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapter_classes_map_on_their_last_segment() {
        assert_eq!(adapter_name(None, Some("modules::queue::BuiltinQueueAdapter")), Ok(("builtin", None)));
        assert_eq!(adapter_name(None, Some("modules::queue::adapters::BuiltinQueueAdapter")), Ok(("builtin", None)));
        assert_eq!(adapter_name(None, Some("modules::queue::adapters::RedisAdapter")), Ok(("redis", None)));
        assert_eq!(adapter_name(None, Some("modules::queue::RabbitMQAdapter")), Ok(("rabbitmq", None)));
        assert!(adapter_name(None, Some("modules::queue::adapters::Bridge")).unwrap_err().contains("bridge"));
        assert!(adapter_name(None, Some("modules::state::adapters::KvStore")).is_err());
    }

    #[test]
    fn the_queue_workers_store_aliases_are_builtin() {
        assert_eq!(adapter_name(Some("file_based"), None), Ok(("builtin", Some("file_based"))));
        assert_eq!(adapter_name(Some("in_memory"), None), Ok(("builtin", Some("in_memory"))));
        assert!(adapter_name(Some("kafka"), None).unwrap_err().starts_with("unknown adapter 'kafka'"));
    }

    #[test]
    fn queue_modules_are_recognised_in_every_shape() {
        assert!(is_queue_module(Some("iii-queue"), None));
        assert!(is_queue_module(Some("queue"), None));
        assert!(is_queue_module(None, Some("modules::queue::QueueModule")));
        assert!(!is_queue_module(Some("iii-stream"), None));
        assert!(!is_queue_module(None, Some("modules::stream::StreamModule")));
    }
}
