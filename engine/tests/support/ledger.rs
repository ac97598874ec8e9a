//! The ledger of a load test that kills engines: what producers were promised and what
//! handlers did, and the checks made on it once the load has drained.
//!
//! Invariant: a receipt is in the ledger only once its enqueue was acknowledged, and once
//! per job (a failed enqueue is retried with the same payload and logs nothing); a
//! processing is logged every time a handler starts, repeats included.
//!
//! The checks: every receipt was processed at least once (acknowledged means durable), and
//! per FIFO group the *first* processing of each sequence number came in increasing order
//! from 0 (a job may run again after a crash, but never before an earlier job of its group
//! ran at least once).
#![allow(dead_code)]

use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard_sdk::{InitOptions, RegisterFunction, Worker};

/// The two queues every multi-engine test loads (its config defines `work` and `ordered`).
pub const STANDARD: Route = Route { queue: "work", function: "mt::work" };
pub const FIFO: Route = Route { queue: "ordered", function: "mt::ordered" };
/// Producers enqueue through their own engine first, and the next one when it fails.
pub const LOAD: Load = Load { standard: STANDARD, fifo: FIFO, retry_pause: Duration::from_millis(10) };

/// FIFO groups each producer spreads its FIFO jobs over.
pub const GROUPS_PER_PRODUCER: usize = 3;

/// One handler start: which worker, which job, and for FIFO jobs the group and sequence.
#[derive(Clone, Debug)]
pub struct Processed {
    pub worker: usize,
    pub receipt: String,
    pub group: Option<String>,
    pub seq: u64,
}

#[derive(Default)]
pub struct Ledger {
    processed: parking_lot::Mutex<Vec<Processed>>,
    receipts: parking_lot::Mutex<Vec<String>>,
}

impl Ledger {
    /// Logs a handler start on `worker`.
    pub fn record(&self, worker: usize, ctx: &switchyard_sdk::Context, payload: &Value) {
        self.processed.lock().push(Processed {
            worker,
            receipt: ctx.message_receipt_id.clone().unwrap_or_default(),
            group: ctx.group.clone(),
            seq: payload["seq"].as_u64().unwrap(),
        });
    }

    /// Acknowledged enqueues so far.
    pub fn acked(&self) -> usize {
        self.receipts.lock().len()
    }

    pub fn receipts(&self) -> Vec<String> {
        self.receipts.lock().clone()
    }

    /// Every processing so far, in the order handlers started.
    pub fn processed(&self) -> Vec<Processed> {
        self.processed.lock().clone()
    }

    /// Waits (up to `limit`) until every acknowledged receipt was processed at least once;
    /// panics naming the missing ones and `context()` otherwise.
    pub async fn assert_all_processed(&self, limit: Duration, context: impl FnOnce() -> String) {
        let deadline = Instant::now() + limit;
        loop {
            let seen: HashSet<String> = self.processed.lock().iter().map(|p| p.receipt.clone()).collect();
            let missing: Vec<String> = self.receipts.lock().iter().filter(|r| !seen.contains(*r)).cloned().collect();
            if missing.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} acknowledged jobs never processed (e.g. {:?}); {}",
                    missing.len(),
                    &missing[..missing.len().min(5)],
                    context()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Asserts that per group the first processing of each sequence number came in
    /// increasing order from 0 (none skipped); returns how many groups were processed.
    pub fn assert_fifo_order(&self, context: &str) -> usize {
        let mut first: HashMap<String, Vec<u64>> = HashMap::new();
        let mut seen: HashSet<(String, u64)> = HashSet::new();
        for p in self.processed.lock().iter() {
            if let Some(g) = &p.group
                && seen.insert((g.clone(), p.seq))
            {
                first.entry(g.clone()).or_default().push(p.seq);
            }
        }
        for (g, seqs) in &first {
            let want: Vec<u64> = (0..seqs.len() as u64).collect();
            assert_eq!(seqs, &want, "group {g}: first processings out of order; {context}");
        }
        first.len()
    }
}

/// A queue and the function its jobs are for.
#[derive(Clone, Copy)]
pub struct Route {
    pub queue: &'static str,
    pub function: &'static str,
}

/// What producers enqueue: the even-numbered jobs to `standard`, the odd ones to `fifo` over
/// [`GROUPS_PER_PRODUCER`] groups of the producer's own (`p{id}-g{g}`), each group's `seq`
/// counting from 0.
#[derive(Clone, Copy)]
pub struct Load {
    pub standard: Route,
    pub fifo: Route,
    /// The pause before retrying a failed enqueue.
    pub retry_pause: Duration,
}

impl Load {
    /// Producer `id` enqueues `jobs` jobs through `clients[id % clients.len()]`, moving to
    /// the next client after each failure, and logs each receipt once acknowledged. A failed
    /// enqueue (an engine is down) is retried with the same seq for up to 30 s: if the failed
    /// attempt was stored after all, that seq is simply processed twice.
    pub async fn produce(self, id: usize, jobs: usize, clients: Vec<Worker>, ledger: Arc<Ledger>) {
        let mut next_seq = [0u64; GROUPS_PER_PRODUCER];
        let mut at = id % clients.len();
        for n in 0..jobs {
            let (route, payload) = if n % 2 == 0 {
                (self.standard, json!({"producer": id, "seq": n}))
            } else {
                let g = (n / 2) % GROUPS_PER_PRODUCER;
                let seq = next_seq[g];
                next_seq[g] += 1;
                (self.fifo, json!({"group": format!("p{id}-g{g}"), "seq": seq}))
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            let receipt = loop {
                match clients[at].enqueue(route.queue, route.function, &payload).await {
                    Ok(r) => break r,
                    Err(e) => {
                        assert!(Instant::now() < deadline, "producer {id} cannot enqueue: {e}");
                        at = (at + 1) % clients.len();
                        tokio::time::sleep(self.retry_pause).await;
                    }
                }
            };
            ledger.receipts.lock().push(receipt.message_receipt_id);
        }
    }
}

/// Worker options that ride out an engine restart quickly.
pub fn fast_reconnect(max_in_flight: u32) -> InitOptions {
    InitOptions {
        max_in_flight,
        reconnect_initial: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(2),
        ..Default::default()
    }
}

/// Serves `function` on `worker` (logged as worker `index`) with a handler that logs each
/// processing and then works 0–2 ms, so some jobs are in flight whenever an engine dies.
pub fn serve(worker: &Worker, index: usize, function: &str, ledger: &Arc<Ledger>) {
    let ledger = ledger.clone();
    worker.register_function(RegisterFunction::new_async(function, move |p: Value, ctx| {
        let ledger = ledger.clone();
        async move {
            ledger.record(index, &ctx, &p);
            let ms = rand::random_range(0..3);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(Value::Null)
        }
    }));
}

/// Polls `f` until it holds; fails the test naming `what` once `limit` has passed.
pub async fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (at most a minute) until none of `queues` holds a job in any state, as `client`'s
/// engine sees it: everything stored was completed.
pub async fn wait_drained(client: &Worker, queues: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut left = Vec::new();
        for q in queues {
            let s = client.queues().stats(q).await.unwrap();
            if s.ready + s.delayed + s.in_flight + s.dead > 0 {
                left.push((q, s));
            }
        }
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "queues did not drain: {left:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
