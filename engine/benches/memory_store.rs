//! The in-memory store on its own, no gRPC: what one job costs it through its hot path
//! (enqueue, lease, complete), so that the cost of its bookkeeping (the id index, the
//! priorities, the retained results) shows undiluted by the network.
//!
//! `cargo bench -p switchyard-engine --bench memory_store` (release). Each round enqueues
//! `BENCH_JOBS` jobs (default 200000) in batches of 64 from one task, then leases them 64
//! at a time and completes each lease batch with one `finish_many`, like the dispatcher;
//! then the same with a queue that keeps results (`CompleteRetained`) and expires them
//! afterwards. Prints the median jobs/s of `BENCH_ROUNDS` rounds (default 5) per variant,
//! then what `BENCH_MEMORY_JOBS` queued jobs (default 1000000) hold in memory, per job
//! (counted by this binary's allocator: records, containers and the id index).

use bytes::Bytes;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;
use switchyard_engine::queue::{NewJob, Payload, new_job_id};
use switchyard_engine::store::memory::MemoryStore;
use switchyard_engine::store::{Finish, LeaseRequest, Store};

const BATCH: usize = 64;

/// The system allocator, counting the bytes held.
struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HELD.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes per job held by a store with `jobs` ready jobs.
async fn bytes_per_queued_job(jobs: u64) -> f64 {
    let before = HELD.load(Ordering::Relaxed);
    let store = MemoryStore::new();
    let mut n = 0;
    while n < jobs {
        let batch: Vec<NewJob> = (n..(n + 1024).min(jobs)).map(|i| job("memory", i)).collect();
        n += batch.len() as u64;
        store.enqueue(batch).await.unwrap();
    }
    let held = HELD.load(Ordering::Relaxed) - before;
    drop(store);
    held as f64 / jobs as f64
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn job(queue: &str, n: u64) -> NewJob {
    NewJob {
        id: new_job_id(),
        queue: queue.into(),
        function_id: "bench::noop".into(),
        payload: Payload(Bytes::from_static(b"\x2a\x00")),
        group: None,
        enqueued_at: n,
        not_before: None,
        dedup: None,
        priority: 0,
    }
}

/// One round: jobs/s from the first enqueue to the last completion.
async fn round(jobs: u64, retain: bool) -> f64 {
    let store = Arc::new(MemoryStore::new());
    let queue = "bench";
    let started = Instant::now();
    let mut n = 0;
    while n < jobs {
        let batch: Vec<NewJob> = (n..(n + BATCH as u64).min(jobs)).map(|i| job(queue, i)).collect();
        n += batch.len() as u64;
        store.enqueue(batch).await.unwrap();
    }
    let mut done = 0;
    while done < jobs {
        let request =
            LeaseRequest { queue: queue.into(), functions: vec![("bench::noop".into(), BATCH)], max: BATCH, now: jobs };
        let leases = store.lease(request).await.unwrap();
        assert!(!leases.is_empty(), "every job enqueued is leased");
        done += leases.len() as u64;
        let finish = |_| match retain {
            false => Finish::Complete,
            true => {
                Finish::CompleteRetained { result: Payload(Bytes::from_static(b"\x08\x00")), at: jobs, until: jobs + 1 }
            }
        };
        let ends = leases.into_iter().map(|l| (l.token, finish(()))).collect();
        store.finish_many(ends).await;
    }
    let forgotten = store.expire_finished(jobs + 1).await.unwrap();
    let rate = jobs as f64 / started.elapsed().as_secs_f64();
    if retain && forgotten != jobs {
        eprintln!("only {forgotten} of {jobs} retained results were forgotten");
    }
    rate
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let jobs = env("BENCH_JOBS", 200_000);
    let rounds = env("BENCH_ROUNDS", 5).max(1);
    for (name, retain) in [("complete", false), ("complete, results kept", true)] {
        let mut rates = Vec::new();
        for _ in 0..rounds {
            rates.push(round(jobs, retain).await);
        }
        println!("memory store, {jobs} jobs, {name}: {:.0} jobs/s (median of {rounds})", median(rates));
    }
    let queued = env("BENCH_MEMORY_JOBS", 1_000_000);
    println!("memory store, {queued} jobs queued: {:.1} bytes per job", bytes_per_queued_job(queued).await);
}
