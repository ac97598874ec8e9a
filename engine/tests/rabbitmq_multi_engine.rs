//! Engine processes on one RabbitMQ (`adapter: rabbitmq`, one key prefix per test), against
//! the broker at `SWITCHYARD_TEST_AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2f`;
//! `scripts/services.sh` starts one). Each test deletes the queues of its prefix at the end.
//!
//! What must hold:
//! - with two engines consuming, every acknowledged job runs, and per FIFO group the first
//!   processing of each sequence number comes in increasing order — also while heads fail
//!   and wait for their retries;
//! - when an engine is killed (`kill -9`) mid-run, nothing acknowledged is lost: the other
//!   engine runs its jobs, and the interrupted attempts are not counted;
//! - when the broker goes away, enqueues answer `UNAVAILABLE`; when it is back, the engine
//!   reconnects by itself and carries on (the outage is a loopback proxy cut in the test:
//!   the shared broker is never stopped).

mod support;

use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::ledger::{FIFO, LOAD, Ledger, STANDARD, fast_reconnect, wait_drained, wait_until};
use support::logged::EngineProcess;
use switchyard_sdk::RegisterFunction;
use tokio::sync::watch;

fn amqp_url() -> String {
    std::env::var("SWITCHYARD_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A fresh key prefix; its queues are deleted when dropped.
struct Prefix(String);

impl Prefix {
    fn new() -> Self {
        Self(format!("sytest-{}", uuid::Uuid::now_v7().simple()))
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let (prefix, queues) = (self.0.clone(), vec!["default".to_string(), "work".into(), "ordered".into()]);
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(switchyard_engine::store::rabbitmq::RabbitStore::delete_prefix(&amqp_url(), &prefix, &queues))
        })
        .join();
        if let Ok(Err(e)) = done {
            eprintln!("could not clean up rabbitmq prefix {}: {e}", self.0);
        }
    }
}

fn config(prefix: &Prefix, url: &str) -> String {
    format!(
        "queue_configs:
  work: {{concurrency: 16, max_retries: 20, backoff_ms: 20}}
  ordered: {{type: fifo, message_group_field: group, concurrency: 8, max_retries: 20, backoff_ms: 20}}
adapter:
  name: rabbitmq
  config: {{amqp_url: '{url}', key_prefix: '{}'}}
",
        prefix.0
    )
}

/// Serves `function`, logging each start as `index`; the first attempt of every job whose
/// `seq` is a multiple of 4 fails, so FIFO heads wait for retries while others run.
fn serve_failing_some(worker: &switchyard_sdk::Worker, index: usize, function: &str, ledger: &Arc<Ledger>) {
    let ledger = ledger.clone();
    worker.register_function(RegisterFunction::new_async(function, move |p: Value, ctx| {
        let ledger = ledger.clone();
        async move {
            ledger.record(index, &ctx, &p);
            tokio::time::sleep(Duration::from_millis(rand::random_range(0..3))).await;
            if p["seq"].as_u64().unwrap().is_multiple_of(4) && ctx.attempt == 1 {
                return Err(
                    switchyard_sdk::HandlerError::new("first attempts of every 4th job fail").with_code("FLAKY")
                );
            }
            Ok(Value::Null)
        }
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_share_queues_and_keep_fifo_order_under_retries() {
    let prefix = Prefix::new();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("iii-config.yaml");
    std::fs::write(&config_path, config(&prefix, &amqp_url())).unwrap();
    let log = dir.path().join("engines.log");
    let engines = [EngineProcess::start(&config_path, &log, &[]), EngineProcess::start(&config_path, &log, &[])];
    let ledger = Arc::new(Ledger::default());
    let mut workers = Vec::new();
    for (i, engine) in engines.iter().enumerate() {
        let w = switchyard_sdk::register_worker(&engine.url, fast_reconnect(32)).await.unwrap();
        serve_failing_some(&w, i, STANDARD.function, &ledger);
        serve_failing_some(&w, i, FIFO.function, &ledger);
        assert!(w.ready(Duration::from_secs(20)).await, "worker {i} connects");
        workers.push(w);
    }

    // Rounds of load through both engines until each engine's worker has run jobs of both
    // queues (the shards are handed out once the engines have heard of each other).
    let ran_on = |ledger: &Ledger, w: usize, fifo: bool| {
        ledger.processed().iter().any(|p| p.worker == w && p.group.is_some() == fifo)
    };
    let mut rounds = 0;
    while !(0..2).all(|w| ran_on(&ledger, w, true) && ran_on(&ledger, w, false)) {
        assert!(rounds < 40, "after {rounds} rounds jobs still ran on one engine only");
        let mut producers = Vec::new();
        for p in 0..2 {
            let mut clients = Vec::new();
            for e in &engines {
                clients.push(switchyard_sdk::register_worker(&e.url, fast_reconnect(1)).await.unwrap());
            }
            producers.push(tokio::spawn(LOAD.produce(rounds * 2 + p, 60, clients, ledger.clone())));
        }
        for p in producers {
            p.await.unwrap();
        }
        rounds += 1;
    }
    ledger.assert_all_processed(Duration::from_secs(60), String::new).await;
    assert!(ledger.assert_fifo_order("") > 0, "fifo jobs were processed");
    let clients = [
        switchyard_sdk::register_worker(&engines[0].url, fast_reconnect(1)).await.unwrap(),
        switchyard_sdk::register_worker(&engines[1].url, fast_reconnect(1)).await.unwrap(),
    ];
    wait_drained(&clients[0], &["work", "ordered"]).await;
    wait_drained(&clients[1], &["work", "ordered"]).await;
    let jobs = ledger.acked() as u64 / 2;
    for (q, fifo) in [("work", false), ("ordered", true)] {
        // Each job whose seq is a multiple of 4 failed its first attempt, once.
        let failing: HashSet<String> = ledger
            .processed()
            .into_iter()
            .filter(|p| p.group.is_some() == fifo && p.seq % 4 == 0)
            .map(|p| p.receipt)
            .collect();
        let failing = failing.len() as u64;
        let runs = ledger.processed().iter().filter(|p| p.group.is_some() == fifo).count();
        eprintln!("{q}: {runs} runs, {failing} failing");
        // The other owner's counters come from its announcements (every 0.5 s): await them.
        let deadline = Instant::now() + Duration::from_secs(10);
        let s = loop {
            let s = clients[0].queues().stats(q).await.unwrap();
            if (s.completed, s.failed) == (jobs, failing) || Instant::now() > deadline {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!((s.completed, s.dead), (jobs, 0), "{q}: every job completed once: {s:?}");
        assert_eq!(s.failed, failing, "{q}: one failed attempt per 4th job: {s:?}");
    }
    for w in &workers {
        w.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_engine_loses_nothing_and_its_interrupted_attempts_are_not_counted() {
    let prefix = Prefix::new();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("iii-config.yaml");
    std::fs::write(&config_path, config(&prefix, &amqp_url())).unwrap();
    let log = dir.path().join("engines.log");
    let mut engines = [EngineProcess::start(&config_path, &log, &[]), EngineProcess::start(&config_path, &log, &[])];
    let ledger = Arc::new(Ledger::default());

    // The worker on engine 0 never finishes a job: what engine 0 runs stays in flight until
    // the engine dies, and must then run on engine 1.
    let stuck = switchyard_sdk::register_worker(&engines[0].url, fast_reconnect(8)).await.unwrap();
    let in_stuck = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
    for route in [STANDARD, FIFO] {
        let (ledger, in_stuck) = (ledger.clone(), in_stuck.clone());
        stuck.register_function(RegisterFunction::new_async(route.function, move |p: Value, ctx| {
            let (ledger, in_stuck) = (ledger.clone(), in_stuck.clone());
            async move {
                ledger.record(0, &ctx, &p);
                in_stuck.lock().push(ctx.message_receipt_id.clone().unwrap_or_default());
                std::future::pending::<()>().await;
                Ok(Value::Null)
            }
        }));
    }
    assert!(stuck.ready(Duration::from_secs(20)).await, "worker 0 connects");
    let alive = switchyard_sdk::register_worker(&engines[1].url, fast_reconnect(32)).await.unwrap();
    support::ledger::serve(&alive, 1, STANDARD.function, &ledger);
    support::ledger::serve(&alive, 1, FIFO.function, &ledger);
    assert!(alive.ready(Duration::from_secs(20)).await, "worker 1 connects");

    let jobs_per_producer = 200;
    let mut producers = Vec::new();
    for p in 0..2 {
        let mut clients = Vec::new();
        for e in &engines {
            clients.push(switchyard_sdk::register_worker(&e.url, fast_reconnect(1)).await.unwrap());
        }
        producers.push(tokio::spawn(LOAD.produce(p, jobs_per_producer, clients, ledger.clone())));
    }
    let total = 2 * jobs_per_producer;
    wait_until("engine 0 holds jobs mid-load", Duration::from_secs(60), || {
        in_stuck.lock().len() >= 4 && ledger.acked() >= total / 3
    })
    .await;
    let held: Vec<String> = in_stuck.lock().clone();
    engines[0].kill();
    eprintln!("killed engine 0 holding {} jobs, after {} acknowledged enqueues", held.len(), ledger.acked());
    for p in producers {
        p.await.unwrap();
    }
    assert_eq!(ledger.acked(), total);
    let client = switchyard_sdk::register_worker(&engines[1].url, fast_reconnect(1)).await.unwrap();
    ledger.assert_all_processed(Duration::from_secs(60), String::new).await;
    wait_drained(&client, &["work", "ordered"]).await;

    let processed = ledger.processed();
    let done_by_1: HashSet<&str> = processed.iter().filter(|p| p.worker == 1).map(|p| p.receipt.as_str()).collect();
    for r in ledger.receipts().iter().chain(&held) {
        assert!(done_by_1.contains(r.as_str()), "acknowledged job {r} was not completed by the live engine");
    }
    assert!(ledger.assert_fifo_order("") > 0, "fifo jobs were processed");
    for q in ["work", "ordered"] {
        let s = client.queues().stats(q).await.unwrap();
        assert_eq!((s.failed, s.dead), (0, 0), "{q}: the killed engine's attempts are not failures: {s:?}");
    }
    alive.shutdown().await;
}

/// A loopback TCP proxy to the broker that the test can cut (every connection dropped, new
/// ones refused) and restore.
struct Proxy {
    port: u16,
    up: watch::Sender<bool>,
}

impl Proxy {
    async fn start(to: &'static str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, watch) = watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                let mut watch = watch.clone();
                if !*watch.borrow() {
                    continue; // dropped: refused while cut
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watch.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { port, up }
    }

    fn set(&self, up: bool) {
        self.up.send_replace(up);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_is_unavailable_and_the_engine_reconnects_by_itself() {
    let prefix = Prefix::new();
    let proxy = Proxy::start("127.0.0.1:5672").await;
    let url = amqp_url().replacen("127.0.0.1:5672", &format!("127.0.0.1:{}", proxy.port), 1);
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("iii-config.yaml");
    std::fs::write(&config_path, config(&prefix, &url)).unwrap();
    let engine = EngineProcess::start(&config_path, &dir.path().join("engine.log"), &[]);
    let client = switchyard_sdk::register_worker(&engine.url, fast_reconnect(1)).await.unwrap();
    let enqueue = |n: u64| {
        let client = client.clone();
        async move { client.enqueue("work", "mt::work", &json!({"seq": n})).await }
    };
    let before = enqueue(0).await.expect("enqueue works while the broker is reachable");

    proxy.set(false);
    let mut refused = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while refused.is_none() {
        assert!(Instant::now() < deadline, "enqueues kept succeeding with the broker gone");
        match enqueue(1).await {
            Err(e) => refused = Some(e),
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let e = refused.unwrap();
    assert_eq!(e.reason, switchyard_sdk::Reason::Unavailable, "{e:?}");

    proxy.set(true);
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        match enqueue(2).await {
            Ok(r) => break r,
            Err(e) => {
                assert!(Instant::now() < deadline, "the engine did not come back: {e:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    // The job enqueued before the outage and the one after both run once a worker is there.
    let seen = Arc::new(parking_lot::Mutex::new(HashSet::<String>::new()));
    let worker = switchyard_sdk::register_worker(&engine.url, fast_reconnect(8)).await.unwrap();
    let s = seen.clone();
    worker.register_function(RegisterFunction::new_async("mt::work", move |_p: Value, ctx| {
        let s = s.clone();
        async move {
            s.lock().insert(ctx.message_receipt_id.clone().unwrap_or_default());
            Ok(Value::Null)
        }
    }));
    let want = [before.message_receipt_id.clone(), after.message_receipt_id.clone()];
    wait_until("both jobs ran after the outage", Duration::from_secs(30), || {
        let seen = seen.lock();
        want.iter().all(|r| seen.contains(r))
    })
    .await;
    worker.shutdown().await;
}

// ---- the job lifecycle through the engine that does not own the job's shard -----------

/// The shard a job without a group lives on: `topology::Names::shard_of` re-derived (FNV-1a
/// over the id as `str::hash` feeds it, 4 shards), so the test knows the job's owner.
fn shard_of(id: &str) -> usize {
    use std::hash::{Hash, Hasher};
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 ^= u64::from(*b);
                self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    id.hash(&mut h);
    (h.finish() % 4) as usize
}

type Queues = switchyard_proto::v1::queues_client::QueuesClient<tonic::transport::Channel>;

async fn queues_client(url: &str) -> Queues {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string()).unwrap().connect().await;
    Queues::new(channel.expect("the engine serves Queues"))
}

/// `GetJob` through `via`, retried while the store answers `UNAVAILABLE` (a shard changing
/// hands), until `want` holds for its state.
async fn job_state(
    via: &mut Queues,
    id: &str,
    what: &str,
    want: impl Fn(&str) -> bool,
) -> switchyard_proto::v1::JobInfo {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let asked = via
            .get_job(switchyard_proto::v1::GetJobRequest { queue: "work".into(), message_receipt_id: id.into() })
            .await;
        match asked {
            Ok(r) => {
                let job = r.into_inner().job.expect("GetJob answers a job");
                if want(&job.state) {
                    return job;
                }
                assert!(Instant::now() < deadline, "{what}: job {id} stays {}", job.state);
            }
            Err(s) => assert!(
                s.code() == tonic::Code::Unavailable && Instant::now() < deadline,
                "{what}: GetJob of {id}: {s:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn cancel_job(via: &mut Queues, id: &str) -> switchyard_proto::v1::CancelJobResponse {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let asked = via
            .cancel_job(switchyard_proto::v1::CancelJobRequest { queue: "work".into(), message_receipt_id: id.into() })
            .await;
        match asked {
            Ok(r) => return r.into_inner(),
            Err(s) => {
                assert!(s.code() == tonic::Code::Unavailable && Instant::now() < deadline, "CancelJob of {id}: {s:?}")
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two engines share the shards of `work` (two each). GetJob and CancelJob go through the
/// engine that does NOT own the job's shard: it asks the owner over the broker. A ready job
/// is cancelled and never runs; an in-flight one's worker hears the cancel (the owner's watch
/// loop finds the request) and the job ends cancelled; a kept result reads back too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_cancel_through_the_engine_that_does_not_own_the_shard() {
    let prefix = Prefix::new();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("iii-config.yaml");
    let config = format!(
        "queue_configs:
  work: {{concurrency: 16, max_retries: 0, result_retention_ms: 600000}}
adapter:
  name: rabbitmq
  config: {{amqp_url: '{}', key_prefix: '{}'}}
",
        amqp_url(),
        prefix.0
    );
    std::fs::write(&config_path, config).unwrap();
    let log = dir.path().join("engines.log");
    let engines = [EngineProcess::start(&config_path, &log, &[]), EngineProcess::start(&config_path, &log, &[])];
    let mut via = [queues_client(&engines[0].url).await, queues_client(&engines[1].url).await];

    // 1. Probes on both engines until each has run some: the shards are split. Then one
    //    more round tells which engine owns which shard (a job runs on its shard's owner).
    let ran: Arc<parking_lot::Mutex<Vec<(String, usize)>>> = Arc::default();
    let mut workers = Vec::new();
    for (index, engine) in engines.iter().enumerate() {
        let w = switchyard_sdk::register_worker(&engine.url, fast_reconnect(16)).await.unwrap();
        let ran = ran.clone();
        w.register_function(RegisterFunction::new_async("mt::probe", move |p: Value, ctx| {
            let ran = ran.clone();
            async move {
                ran.lock().push((ctx.message_receipt_id.clone().unwrap_or_default(), index));
                Ok(json!({"echo": p["n"]}))
            }
        }));
        assert!(w.ready(Duration::from_secs(20)).await, "worker {index} connects");
        workers.push(w);
    }
    let producer = switchyard_sdk::register_worker(&engines[0].url, fast_reconnect(1)).await.unwrap();
    let mut rounds = 0;
    let mut both = false;
    let owner = loop {
        assert!(rounds < 60, "the shards of work were not split between the engines after {rounds} rounds");
        rounds += 1;
        ran.lock().clear();
        let mut receipts = Vec::new();
        for n in 0..40 {
            receipts.push(producer.enqueue("work", "mt::probe", &json!({"n": n})).await.unwrap().message_receipt_id);
        }
        wait_until("the probes ran", Duration::from_secs(30), || ran.lock().len() >= receipts.len()).await;
        let ran_now = ran.lock().clone();
        let engines_seen: HashSet<usize> = ran_now.iter().map(|(_, e)| *e).collect();
        if !both {
            both = engines_seen.len() == 2;
            continue; // one more round, after the hand-over, for the map
        }
        let mut owner = [None::<usize>; 4];
        let mut consistent = true;
        for (id, e) in &ran_now {
            let k = shard_of(id);
            consistent &= owner[k].is_none_or(|o| o == *e);
            owner[k] = Some(*e);
        }
        if consistent && owner.iter().all(Option::is_some) && engines_seen.len() == 2 {
            break owner;
        }
    };
    let owner: Vec<usize> = owner.into_iter().map(Option::unwrap).collect();
    eprintln!("shard owners after {rounds} rounds: {owner:?}");

    // A kept result, read through the engine that does not own it.
    let (probe, ran_on) = ran.lock()[0].clone();
    let done = job_state(&mut via[1 - ran_on], &probe, "a completed probe", |s| s == "completed").await;
    assert!(done.result.is_some(), "the result is kept: {done:?}");

    // 2. A function only engine 0's worker serves, which holds each attempt until the
    //    engine cancels it. Jobs on engine 1's shards stay ready (no worker there).
    let started: Arc<parking_lot::Mutex<HashSet<String>>> = Arc::default();
    let cancelled: Arc<parking_lot::Mutex<HashSet<String>>> = Arc::default();
    let holder = switchyard_sdk::register_worker(&engines[0].url, fast_reconnect(16)).await.unwrap();
    {
        let (started, cancelled) = (started.clone(), cancelled.clone());
        holder.register_function(RegisterFunction::new_async("mt::hold", move |_p: Value, ctx| {
            let (started, cancelled) = (started.clone(), cancelled.clone());
            async move {
                let id = ctx.message_receipt_id.clone().unwrap_or_default();
                started.lock().insert(id.clone());
                ctx.cancelled.cancelled().await;
                cancelled.lock().insert(id);
                Err(switchyard_sdk::HandlerError::new("stopped by the engine's cancel"))
            }
        }));
    }
    assert!(holder.ready(Duration::from_secs(20)).await, "the holding worker connects");
    let (mut on_0, mut on_1) = (None, None);
    while on_0.is_none() || on_1.is_none() {
        let id = producer.enqueue("work", "mt::hold", &json!({})).await.unwrap().message_receipt_id;
        match owner[shard_of(&id)] {
            0 => on_0 = on_0.or(Some(id)),
            _ => on_1 = on_1.or(Some(id)),
        }
    }
    let (in_flight, ready) = (on_0.unwrap(), on_1.unwrap());

    // The ready job, through engine 0 (engine 1 owns it).
    let job = job_state(&mut via[0], &ready, "a job no worker of its owner serves", |s| s == "ready").await;
    assert_eq!(job.message_receipt_id, ready);
    let answer = cancel_job(&mut via[0], &ready).await;
    assert_eq!(answer.outcome, "cancelled", "{answer:?}");
    job_state(&mut via[0], &ready, "the cancelled ready job", |s| s == "cancelled").await;
    job_state(&mut via[1], &ready, "the cancelled ready job at its owner", |s| s == "cancelled").await;
    assert_eq!(cancel_job(&mut via[0], &ready).await.outcome, "already_cancelled");

    // The in-flight job, through engine 1 (engine 0 owns it and runs it).
    wait_until("engine 0's worker runs its job", Duration::from_secs(20), || started.lock().contains(&in_flight)).await;
    job_state(&mut via[1], &in_flight, "the running job", |s| s == "in_flight").await;
    let answer = cancel_job(&mut via[1], &in_flight).await;
    assert_eq!(answer.outcome, "cancelling", "{answer:?}");
    wait_until("the worker hears the cancel", Duration::from_secs(20), || cancelled.lock().contains(&in_flight)).await;
    let job = job_state(&mut via[1], &in_flight, "the cancelled running job", |s| s == "cancelled").await;
    assert_eq!(job.attempts, Some(1), "cancelled, not retried: {job:?}");
    assert!(!started.lock().contains(&ready), "the cancelled ready job never ran");
    let unknown = via[1]
        .get_job(switchyard_proto::v1::GetJobRequest { queue: "work".into(), message_receipt_id: "no-such-job".into() })
        .await
        .expect_err("an unknown id is not found");
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");
    holder.shutdown().await;
    for w in &workers {
        w.shutdown().await;
    }
}
