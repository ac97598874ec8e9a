//! The Redis store against the Redis on `SWITCHYARD_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`; `scripts/services.sh` starts one). Every store here uses a fresh
//! key prefix and deletes its keys when dropped, so tests run in parallel and leave nothing.

use super::{RedisOptions, RedisStore, delete_all_keys};
use crate::queue::{JobError, NewJob, Payload};
use crate::store::{Finish, Lease, LeaseRequest, Store, StoreError};
use bytes::Bytes;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

fn url() -> String {
    std::env::var("SWITCHYARD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn fresh_prefix() -> String {
    format!("sytest-{}", uuid::Uuid::now_v7().simple())
}

/// Removes a prefix's keys when dropped (after the stores using it).
struct PrefixGuard(String);

impl Drop for PrefixGuard {
    fn drop(&mut self) {
        if let Err(e) = delete_all_keys(&url(), &self.0) {
            eprintln!("could not clean up redis prefix {}: {e}", self.0);
        }
    }
}

async fn connect(prefix: &str, options: RedisOptions) -> RedisStore {
    RedisStore::connect(&url(), prefix, options)
        .await
        .unwrap_or_else(|e| panic!("these tests need Redis at {} (scripts/services.sh starts one): {e}", url()))
}

mod conformance {
    crate::store_conformance_tests!(|| async {
        let prefix = super::fresh_prefix();
        let store = super::connect(&prefix, super::RedisOptions::default()).await;
        crate::store::conformance::Fixture::with_guard(std::sync::Arc::new(store), super::PrefixGuard(prefix))
    });
}

// ---- several engines on one prefix ------------------------------------------------------

fn job(queue: &str, group: Option<&str>, n: u32) -> NewJob {
    NewJob {
        not_before: None,
        dedup: None,
        priority: 0,
        id: format!("job-{n}-{}", uuid::Uuid::now_v7().simple()),
        queue: queue.into(),
        function_id: "f".into(),
        payload: Payload(Bytes::from(format!("payload-{n}"))),
        group: group.map(Into::into),
        enqueued_at: 1_000 + n as u64,
    }
}

async fn lease(store: &RedisStore, queue: &str, max: usize) -> Vec<Lease> {
    let req = LeaseRequest { queue: queue.into(), functions: vec![("f".into(), max)], max, now: 5_000 };
    store.lease(req).await.unwrap()
}

fn short_ttl() -> RedisOptions {
    RedisOptions { lease_ttl: Duration::from_millis(300), ..RedisOptions::default() }
}

#[tokio::test]
async fn lease_of_a_dead_engine_is_reclaimed_and_its_token_is_stale() {
    let prefix = fresh_prefix();
    let _guard = PrefixGuard(prefix.clone());
    let dead = connect(&prefix, short_ttl()).await;
    let alive = connect(&prefix, short_ttl()).await;
    dead.enqueue(vec![job("q", None, 1)]).await.unwrap();
    let old = lease(&dead, "q", 1).await.remove(0);
    dead.stop_heartbeat();
    assert!(lease(&alive, "q", 1).await.is_empty(), "a live lease is not taken");

    // Redis server time decides expiry, so this waits for real (TTL is 300 ms).
    let mut taken = Vec::new();
    for _ in 0..100 {
        taken = lease(&alive, "q", 1).await;
        if !taken.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(taken.len(), 1, "the expired lease is reclaimed");
    let new = taken.remove(0);
    assert_eq!(new.job.id, old.job.id);
    assert_eq!(new.job.attempts, 1, "the crashed engine's attempt is not counted");
    assert!(!dead.finish(&old.token, Finish::Complete).await.unwrap(), "the dead engine's token is stale");
    assert!(alive.finish(&new.token, Finish::Complete).await.unwrap());
    let s = alive.stats("q").await.unwrap();
    assert_eq!((s.completed, s.in_flight, s.ready, s.failed), (1, 0, 0, 0));
}

#[tokio::test]
async fn heartbeat_keeps_a_long_attempt_leased() {
    let prefix = fresh_prefix();
    let _guard = PrefixGuard(prefix.clone());
    let holder = connect(&prefix, short_ttl()).await;
    let other = connect(&prefix, short_ttl()).await;
    holder.enqueue(vec![job("q", None, 1)]).await.unwrap();
    let l = lease(&holder, "q", 1).await.remove(0);
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(lease(&other, "q", 1).await.is_empty(), "a heartbeating engine keeps its lease past the TTL");
    }
    assert!(holder.finish(&l.token, Finish::Complete).await.unwrap());
}

#[tokio::test]
async fn fifo_group_is_busy_across_engines() {
    let prefix = fresh_prefix();
    let _guard = PrefixGuard(prefix.clone());
    let a = connect(&prefix, RedisOptions::default()).await;
    let b = connect(&prefix, RedisOptions::default()).await;
    let g: Vec<_> = (0..3).map(|n| job("q", Some("G"), n)).collect();
    a.enqueue(g.clone()).await.unwrap();
    let head = lease(&a, "q", 10).await;
    assert_eq!(head.iter().map(|l| l.job.id.clone()).collect::<Vec<_>>(), vec![g[0].id.clone()]);
    assert!(lease(&b, "q", 10).await.is_empty(), "the group is busy on the other engine");
    a.finish(&head[0].token, Finish::Retry { due_at: 6_000, error: JobError::new("E", "x") }).await.unwrap();
    assert!(lease(&b, "q", 10).await.is_empty(), "a retrying head still blocks its group");
    let req = LeaseRequest { queue: "q".into(), functions: vec![("f".into(), 10)], max: 10, now: 6_000 };
    let again = b.lease(req).await.unwrap();
    assert_eq!((again[0].job.id.clone(), again[0].job.attempts), (g[0].id.clone(), 2));
    assert!(lease(&a, "q", 10).await.is_empty());
    b.finish(&again[0].token, Finish::Complete).await.unwrap();
    let next = lease(&a, "q", 10).await;
    assert_eq!(next.iter().map(|l| l.job.id.clone()).collect::<Vec<_>>(), vec![g[1].id.clone()]);
}

#[tokio::test]
async fn recover_leaves_the_live_leases_of_other_engines_alone() {
    let prefix = fresh_prefix();
    let _guard = PrefixGuard(prefix.clone());
    let a = connect(&prefix, RedisOptions::default()).await;
    a.enqueue(vec![job("q", None, 1)]).await.unwrap();
    let l = lease(&a, "q", 1).await.remove(0);
    let restarted = connect(&prefix, RedisOptions::default()).await;
    assert_eq!(restarted.recover().await.unwrap(), 0);
    assert!(a.finish(&l.token, Finish::Complete).await.unwrap(), "the lease is still a's");
}

#[tokio::test]
async fn concurrent_engines_never_lease_a_job_twice() {
    let prefix = fresh_prefix();
    let _guard = PrefixGuard(prefix.clone());
    let stores: Vec<Arc<RedisStore>> = vec![
        Arc::new(connect(&prefix, RedisOptions::default()).await),
        Arc::new(connect(&prefix, RedisOptions::default()).await),
        Arc::new(connect(&prefix, RedisOptions::default()).await),
    ];
    let jobs: Vec<_> = (0..300).map(|n| job("q", if n % 3 == 0 { Some("G") } else { None }, n)).collect();
    stores[0].enqueue(jobs.clone()).await.unwrap();
    let mut tasks = Vec::new();
    for s in &stores {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut idle = 0;
            while idle < 20 {
                let got = lease(&s, "q", 7).await;
                idle = if got.is_empty() { idle + 1 } else { 0 };
                for l in got {
                    seen.push(l.job.id.clone());
                    assert!(s.finish(&l.token, Finish::Complete).await.unwrap());
                }
                tokio::task::yield_now().await;
            }
            seen
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().cloned().collect();
    assert_eq!((all.len(), unique.len()), (300, 300), "every job leased exactly once");
    let s = stores[1].stats("q").await.unwrap();
    assert_eq!((s.completed, s.ready, s.in_flight), (300, 0, 0));
}

#[tokio::test]
async fn an_enqueue_on_one_engine_wakes_the_others() {
    let prefix = fresh_prefix();
    let _guard = PrefixGuard(prefix.clone());
    let no_poll = RedisOptions { safety_poll: Duration::from_secs(3600), ..RedisOptions::default() };
    let a = connect(&prefix, no_poll.clone()).await;
    let b = connect(&prefix, no_poll).await;
    // Both subscriptions are set up in the background: wait until Redis counts them.
    let mut con = ::redis::Client::open(url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let channel = super::keys::Keys::new(&prefix).changed();
    for _ in 0..200 {
        let (_, subscribers): (String, u64) =
            ::redis::cmd("PUBSUB").arg("NUMSUB").arg(&channel).query_async(&mut con).await.unwrap();
        if subscribers == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let changed = b.changed();
    // Drop a wake-up b may have stored already (its start-up notifications).
    let _ = tokio::time::timeout(Duration::from_millis(50), changed.notified()).await;
    let woke = changed.notified();
    a.enqueue(vec![job("q", None, 1)]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), woke).await.expect("b hears of a's enqueue");
}

#[tokio::test]
async fn an_unreachable_redis_is_a_clear_error_at_start() {
    let e = RedisStore::connect("redis://127.0.0.1:1", "sytest-none", RedisOptions::default()).await.err();
    let msg = e.expect("no Redis listens on port 1").to_string();
    assert!(msg.contains("cannot reach Redis at redis://127.0.0.1:1"), "{msg}");
}

#[test]
fn urls_are_redacted_in_messages() {
    assert_eq!(crate::config::redact_url("redis://:hunter2@db:6379/0"), "redis://***@db:6379/0");
    assert_eq!(crate::config::redact_url("redis://127.0.0.1"), "redis://127.0.0.1");
}

#[tokio::test]
async fn a_lease_the_engine_lost_track_of_expires_and_comes_back() {
    let prefix = fresh_prefix();
    let _guard = PrefixGuard(prefix.clone());
    let a = connect(&prefix, short_ttl()).await;
    let b = connect(&prefix, short_ttl()).await;
    a.enqueue(vec![job("q", None, 1)]).await.unwrap();
    let l = lease(&a, "q", 1).await.remove(0);
    // As after a finish that failed during an outage: the dispatcher has let go of it.
    a.shared.held.lock().clear();
    let mut again = Vec::new();
    for _ in 0..100 {
        again = lease(&b, "q", 1).await;
        if !again.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(again.len(), 1, "a's heartbeat does not keep a lease it no longer holds");
    assert_eq!(again[0].job.attempts, 1);
    assert!(!a.finish(&l.token, Finish::Complete).await.unwrap());
}

/// A TCP proxy in front of Redis whose "outage" closes the port and every connection.
struct Proxy {
    port: u16,
    stop: tokio_util::sync::CancellationToken,
}

impl Proxy {
    async fn start(port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream =
            url().trim_start_matches("redis://").rsplit('@').next().unwrap().split('/').next().unwrap().to_string();
        let stop = tokio_util::sync::CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                let inbound = tokio::select! {
                    _ = token.cancelled() => return,
                    a = listener.accept() => match a { Ok((s, _)) => s, Err(_) => return },
                };
                let (token, upstream) = (token.clone(), upstream.clone());
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(&upstream).await else { return };
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = pipe(&inbound, &outbound) => {}
                        _ = pipe(&outbound, &inbound) => {}
                    }
                });
            }
        });
        Self { port, stop }
    }

    fn outage(&self) {
        self.stop.cancel();
    }
}

async fn pipe(from: &tokio::net::TcpStream, to: &tokio::net::TcpStream) -> std::io::Result<()> {
    use std::io::ErrorKind::WouldBlock;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        from.readable().await?;
        let n = match from.try_read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == WouldBlock => continue,
            Err(e) => return Err(e),
        };
        let mut off = 0;
        while off < n {
            to.writable().await?;
            match to.try_write(&buf[off..n]) {
                Ok(k) => off += k,
                Err(e) if e.kind() == WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

#[tokio::test]
async fn an_outage_is_unavailable_and_the_store_resumes_after_it() {
    let prefix = fresh_prefix();
    let _guard = PrefixGuard(prefix.clone());
    let proxy = Proxy::start(0).await;
    let port = proxy.port;
    let store =
        RedisStore::connect(&format!("redis://127.0.0.1:{port}"), &prefix, RedisOptions::default()).await.unwrap();
    store.enqueue(vec![job("q", None, 1)]).await.unwrap();

    proxy.outage();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let refused = store.enqueue(vec![job("q", None, 2)]).await;
    assert!(matches!(refused, Err(StoreError::Unavailable(_))), "an enqueue during an outage fails: {refused:?}");
    assert!(matches!(store.stats("q").await, Err(StoreError::Unavailable(_))));

    let _back = Proxy::start(port).await;
    let mut resumed = false;
    for _ in 0..200 {
        if store.enqueue(vec![job("q", None, 3)]).await.is_ok() {
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(resumed, "the store reconnects once Redis is back");
    let s = store.stats("q").await.unwrap();
    assert_eq!((s.enqueued, s.ready), (2, 2), "the refused enqueue was not stored");
}

#[tokio::test]
async fn two_engines_agree_on_an_idempotency_key() {
    use crate::queue::{Dedup, Enqueued};
    let prefix = fresh_prefix();
    let _guard = PrefixGuard(prefix.clone());
    let a = connect(&prefix, RedisOptions::default()).await;
    let b = connect(&prefix, RedisOptions::default()).await;
    let keyed = |n: u32| {
        let mut j = job("q", None, n);
        j.dedup = Some(Dedup { key: "charge-1".into(), window_ms: 60_000 });
        j
    };
    let first = keyed(1);
    assert_eq!(a.enqueue(vec![first.clone()]).await.unwrap(), vec![Enqueued::created(first.id.clone())]);
    assert_eq!(b.enqueue(vec![keyed(2)]).await.unwrap(), vec![Enqueued::duplicate_of(first.id.clone())]);
    assert_eq!(b.stats("q").await.unwrap().enqueued, 1, "the other engine stored nothing");
}

mod lifecycle;
mod rate;
