//! The `limits` block: every key a bounded whole number, unknown keys refused.

use super::{Walker, join};
use crate::config::Limits;
use marked_yaml::Node;

const KEYS: &[&str] = &[
    "max_worker_streams",
    "max_calls_per_connection",
    "max_payload_depth",
    "http2_keepalive_interval_ms",
    "http2_keepalive_timeout_ms",
    "handshake_timeout_ms",
];

impl Walker<'_> {
    pub(super) fn limits(&mut self, path: &str, node: &Node, limits: &mut Limits) {
        let Some(map) = self.mapping(path, node) else {
            return;
        };
        self.unknown_keys(path, map, KEYS);
        let max_depth = switchyard_proto::value_wire::MAX_DEPTH as u64;
        let field = |w: &mut Self, key: &str, min: u64, max: u64| -> Option<u64> {
            let n = map.get_node(key)?;
            let v = w.uint(&join(path, key), n, max)?;
            if v < min {
                w.problem(&join(path, key), n, format!("must be at least {min}"));
                return None;
            }
            Some(v)
        };
        if let Some(v) = field(self, "max_worker_streams", 1, 1_000_000) {
            limits.max_worker_streams = v as usize;
        }
        if let Some(v) = field(self, "max_calls_per_connection", 1, 100_000) {
            limits.max_calls_per_connection = v as usize;
        }
        if let Some(v) = field(self, "max_payload_depth", 1, max_depth) {
            limits.max_payload_depth = v as u32;
        }
        if let Some(v) = field(self, "http2_keepalive_interval_ms", 100, 3_600_000) {
            limits.http2_keepalive_interval_ms = v;
        }
        if let Some(v) = field(self, "http2_keepalive_timeout_ms", 100, 3_600_000) {
            limits.http2_keepalive_timeout_ms = v;
        }
        if let Some(v) = field(self, "handshake_timeout_ms", 100, 3_600_000) {
            limits.handshake_timeout_ms = v;
        }
    }
}
