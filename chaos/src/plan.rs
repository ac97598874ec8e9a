//! The run's plan, drawn from its seed: which faults happen, when (offsets from the start of
//! the load) and to whom, and which attempts a worker fails.
//!
//! Invariant: everything the harness *decides* comes from the seed — the fault schedule and
//! targets, every payload, every handler's fail-or-succeed — so a run is reproduced by its
//! seed. What the seed cannot fix is the machine's interleaving (which job is in flight when
//! a fault lands); the checks hold for every interleaving.
//!
//! Protocol:
//! 1. The first faults are one of each kind the store supports, in a seeded order, so even a
//!    short run injects every kind; after that kinds are drawn uniformly.
//! 2. Gaps between faults are drawn uniformly from `gap`; faults stop `quiet` before the
//!    load ends, so the last one has recovered before the drain.
//! 3. A handler fails attempt `a` of job `j` (the producer's id in the payload, not the
//!    engine's receipt) iff `hash(seed, j, a) < fail_rate`, and works `hash'(seed, j, a)`
//!    milliseconds: the same delivery behaves alike in every process, whichever worker gets it.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::fmt;
use std::time::Duration;

/// One fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// `kill -9` of engine `n`, then a restart on the same port and store.
    EngineKill(usize),
    /// `kill -9` of the private `redis-server` (AOF, `appendfsync always`), then a restart
    /// on the same port and directory.
    RedisRestart,
    /// `kill -9` of the private RabbitMQ node, then a restart on the same ports and data.
    BrokerRestart,
    /// `kill -9` of worker process `n` (it has jobs running), then a fresh one.
    WorkerKill(usize),
    /// The proxy in front of a worker drops every connection through it at once.
    StreamCut,
}

impl Fault {
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::EngineKill(_) => "engine kill -9",
            Fault::RedisRestart => "redis-server kill -9 + restart",
            Fault::BrokerRestart => "RabbitMQ node kill -9 + restart",
            Fault::WorkerKill(_) => "worker kill -9 mid-job",
            Fault::StreamCut => "worker stream cut (proxy)",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::EngineKill(n) => write!(f, "kill -9 engine {n}"),
            Fault::RedisRestart => write!(f, "kill -9 redis-server, restart"),
            Fault::BrokerRestart => write!(f, "kill -9 the RabbitMQ node, restart"),
            Fault::WorkerKill(n) => write!(f, "kill -9 worker {n}"),
            Fault::StreamCut => write!(f, "cut the proxied worker stream"),
        }
    }
}

/// What a plan is drawn for.
pub struct Shape {
    pub engines: usize,
    pub workers: usize,
    pub redis: bool,
    /// A private RabbitMQ node the harness may restart.
    pub broker: bool,
    pub load: Duration,
    pub gap: (Duration, Duration),
    pub quiet: Duration,
}

/// The faults of a run, in order, each at its offset from the start of the load.
pub fn faults(seed: u64, shape: &Shape) -> Vec<(Duration, Fault)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut kinds: Vec<fn(&mut StdRng, &Shape) -> Fault> = vec![
        |r, s| Fault::EngineKill(r.random_range(0..s.engines)),
        |r, s| Fault::WorkerKill(r.random_range(0..s.workers)),
        |_, _| Fault::StreamCut,
    ];
    if shape.redis {
        kinds.push(|_, _| Fault::RedisRestart);
    }
    if shape.broker {
        kinds.push(|_, _| Fault::BrokerRestart);
    }
    let mut first: Vec<usize> = (0..kinds.len()).collect();
    first.shuffle(&mut rng);
    let mut out = Vec::new();
    let mut at = Duration::ZERO;
    loop {
        at += rng.random_range(shape.gap.0..=shape.gap.1);
        if at + shape.quiet > shape.load {
            return out;
        }
        let kind = match first.get(out.len()) {
            Some(k) => *k,
            None => rng.random_range(0..kinds.len()),
        };
        out.push((at, kinds[kind](&mut rng, shape)));
    }
}

/// Whether attempt `attempt` of job `job` fails, for a run seeded `seed`.
pub fn fails(seed: u64, job: &str, attempt: u32, fail_rate: f64) -> bool {
    fail_rate > 0.0 && unit(seed, job, attempt, 0) < fail_rate
}

/// How long attempt `attempt` of job `job` works: `0..=most` milliseconds.
pub fn work_ms(seed: u64, job: &str, attempt: u32, most: u64) -> u64 {
    (unit(seed, job, attempt, 1) * (most + 1) as f64) as u64
}

/// A number in [0, 1) fixed by its inputs: FNV-1a over them, with a splitmix-style finish
/// (FNV's low bits alone are poorly mixed).
fn unit(seed: u64, job: &str, attempt: u32, salt: u8) -> f64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in job.bytes().chain(attempt.to_le_bytes()).chain([salt]) {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(redis: bool) -> Shape {
        Shape {
            engines: 2,
            workers: 3,
            redis,
            broker: false,
            load: Duration::from_secs(60),
            gap: (Duration::from_secs(3), Duration::from_secs(6)),
            quiet: Duration::from_secs(5),
        }
    }

    #[test]
    fn a_seed_gives_the_same_plan_and_every_kind_comes_first() {
        let a = faults(42, &shape(true));
        assert_eq!(a, faults(42, &shape(true)));
        assert_ne!(a, faults(43, &shape(true)));
        let kinds: std::collections::HashSet<&str> = a[..4].iter().map(|(_, f)| f.kind()).collect();
        assert_eq!(kinds.len(), 4, "the first four faults are one of each kind: {a:?}");
        let file = faults(42, &shape(false));
        assert!(file.iter().all(|(_, f)| *f != Fault::RedisRestart));
        assert!(a.last().unwrap().0 + Duration::from_secs(5) <= Duration::from_secs(60));
    }

    #[test]
    fn fail_decisions_follow_the_rate_and_the_seed() {
        let n = 20_000;
        let failed = (0..n).filter(|i| fails(7, &format!("receipt-{i}"), 1, 0.25)).count();
        assert!((4_000..6_000).contains(&failed), "{failed} of {n} failed at rate 0.25");
        assert_eq!(fails(7, "r", 2, 0.5), fails(7, "r", 2, 0.5));
        assert!(!(0..1000).any(|i| fails(7, &format!("r{i}"), 1, 0.0)));
    }
}
