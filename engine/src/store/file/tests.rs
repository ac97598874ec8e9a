//! The file store: the conformance suite, plus what only a durable store promises —
//! state surviving a restart, refusing files that are not a store, and indexed queries.

use super::{DB_FILE, FileStore, SCHEMA_VERSION};
use crate::queue::{JobError, JobState, NewJob, Payload};
use crate::store::{Finish, Lease, LeaseRequest, Store, StoreError};
use bytes::Bytes;
use std::path::Path;
use std::sync::Arc;

/// A store in a fresh directory (removed when the returned guard drops).
fn fresh() -> (tempfile::TempDir, FileStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(&dir.path().join("queue_store")).unwrap();
    (dir, store)
}

mod conformance {
    use crate::store::conformance::Fixture;
    use std::sync::Arc;

    crate::store_conformance_tests!(|| async {
        let (dir, store) = super::fresh();
        Fixture::with_guard(Arc::new(store), dir)
    });
}

fn job(queue: &str, group: Option<&str>, n: u32) -> NewJob {
    NewJob {
        id: format!("{queue}-{}-{n}", group.unwrap_or("std")),
        queue: queue.into(),
        function_id: "f".into(),
        payload: Payload(Bytes::from(format!("{{\"n\":{n}}}"))),
        group: group.map(Into::into),
        enqueued_at: 1_000 + n as u64,
    }
}

fn req(queue: &str, max: usize, now: u64) -> LeaseRequest {
    LeaseRequest { queue: queue.into(), functions: vec![("f".into(), max)], max, now }
}

fn err(msg: &str) -> JobError {
    JobError { message: msg.into(), code: "E".into(), stack: "stack".into() }
}

async fn lease(store: &FileStore, queue: &str, max: usize, now: u64) -> Vec<Lease> {
    store.lease(req(queue, max, now)).await.unwrap()
}

fn ids(leases: &[Lease]) -> Vec<String> {
    leases.iter().map(|l| l.job.id.clone()).collect()
}

#[tokio::test]
async fn restart_keeps_retries_delays_dead_letters_counters_and_fifo_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/queue_store");
    let store = FileStore::open(&path).unwrap();

    // Standard queue: one completes, one retries at 9_000, one is dead-lettered.
    store.enqueue((0..3).map(|n| job("std", None, n)).collect()).await.unwrap();
    let l = lease(&store, "std", 3, 5_000).await;
    assert!(store.finish(&l[0].token, Finish::Complete).await.unwrap());
    assert!(store.finish(&l[1].token, Finish::Retry { due_at: 9_000, error: err("later") }).await.unwrap());
    assert!(store.finish(&l[2].token, Finish::DeadLetter { error: err("dead"), at: 5_500 }).await.unwrap());
    // FIFO: group A has four jobs; the head is in flight when the engine "crashes".
    store.enqueue((0..4).map(|n| job("fifo", Some("A"), n)).collect()).await.unwrap();
    store.enqueue(vec![job("fifo", Some("B"), 0)]).await.unwrap();
    let heads = lease(&store, "fifo", 10, 5_000).await;
    assert_eq!(ids(&heads), vec!["fifo-A-0", "fifo-B-0"]);
    assert!(store.finish(&heads[1].token, Finish::Retry { due_at: 8_000, error: err("b") }).await.unwrap());
    let before_std = store.stats("std").await.unwrap();
    let before_fifo = store.stats("fifo").await.unwrap();
    drop(store); // the writer thread stops and the database closes

    let store = FileStore::open(&path).unwrap();
    assert_eq!(store.stats("std").await.unwrap(), before_std, "gauges and counters survive");
    assert_eq!(store.recover().await.unwrap(), 1, "the in-flight FIFO head is ready again");
    let s = store.stats("fifo").await.unwrap();
    assert_eq!((s.ready, s.delayed, s.in_flight, s.enqueued, s.failed), (4, 1, 0, before_fifo.enqueued, 1));

    // The retry keeps its absolute due time.
    assert_eq!(store.next_due("std").await.unwrap(), Some(9_000));
    assert!(lease(&store, "std", 10, 8_999).await.is_empty());
    let retried = lease(&store, "std", 10, 9_000).await;
    assert_eq!(ids(&retried), vec!["std-std-1"]);
    assert_eq!(retried[0].job.attempts, 2);
    assert_eq!(retried[0].job.last_error, Some(err("later")));

    // The DLQ entry is intact and can be redriven.
    let dead = store.dead_letters("std", None, 10).await.unwrap();
    assert_eq!(dead.entries.len(), 1);
    let d = &dead.entries[0];
    assert_eq!((d.id.as_str(), d.state, d.attempts, d.dead_lettered_at), ("std-std-2", JobState::Dead, 1, Some(5_500)));
    assert_eq!(d.payload, job("std", None, 2).payload);
    assert_eq!(d.last_error, Some(err("dead")));

    // FIFO order per group: A's head was interrupted (attempt not counted), then A1..A3.
    let mut order = Vec::new();
    for _ in 0..4 {
        let l = lease(&store, "fifo", 10, 5_000).await;
        assert_eq!(l.len(), 1, "one head of A at a time (B is delayed until 8_000)");
        order.push((l[0].job.id.clone(), l[0].job.attempts));
        assert!(store.finish(&l[0].token, Finish::Complete).await.unwrap());
    }
    let want: Vec<_> = (0..4).map(|n| (format!("fifo-A-{n}"), 1)).collect();
    assert_eq!(order, want);
    assert_eq!(ids(&lease(&store, "fifo", 10, 8_000).await), vec!["fifo-B-0"]);
    let s = store.stats("fifo").await.unwrap();
    assert_eq!((s.completed, s.in_flight), (4, 1));

    // Sequences continue: a job enqueued after the restart queues behind older ones.
    store.enqueue(vec![job("std", None, 9)]).await.unwrap();
    assert_eq!(store.redrive("std", &[], 10_000).await.unwrap(), 1);
    assert_eq!(ids(&lease(&store, "std", 10, 10_000).await), vec!["std-std-9", "std-std-2"]);
}

#[tokio::test]
async fn restart_keeps_delayed_jobs_and_refuses_old_lease_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    store.enqueue(vec![job("q", None, 1)]).await.unwrap();
    let first = lease(&store, "q", 1, 5_000).await.remove(0);
    store.finish(&first.token, Finish::Retry { due_at: 60_000, error: err("x") }).await.unwrap();
    let second_token = {
        drop(store);
        let store = FileStore::open(dir.path()).unwrap();
        assert_eq!(store.recover().await.unwrap(), 0);
        assert_eq!(store.stats("q").await.unwrap().delayed, 1);
        let l = lease(&store, "q", 1, 60_000).await.remove(0);
        assert!(l.token.lease_id > first.token.lease_id, "lease ids keep growing across restarts");
        l.token
    };
    let store = FileStore::open(dir.path()).unwrap();
    assert_eq!(store.recover().await.unwrap(), 1);
    assert!(!store.finish(&second_token, Finish::Complete).await.unwrap(), "a lease from before recover is stale");
    let again = lease(&store, "q", 1, 60_000).await.remove(0);
    assert_eq!(again.job.attempts, 2, "the interrupted attempt is not counted");
}

fn open_err(dir: &Path) -> StoreError {
    match FileStore::open(dir) {
        Ok(_) => panic!("{} opened", dir.display()),
        Err(e) => e,
    }
}

#[test]
fn a_file_that_is_not_sqlite_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), vec![0x42u8; 8192]).unwrap();
    let e = open_err(dir.path());
    assert!(matches!(e, StoreError::Corrupt(_)), "{e}");
    assert_eq!(std::fs::read(dir.path().join(DB_FILE)).unwrap(), vec![0x42u8; 8192], "left untouched");
}

#[test]
fn another_programs_database_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let other = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    other.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hi');").unwrap();
    drop(other);
    let e = open_err(dir.path());
    assert!(matches!(&e, StoreError::Corrupt(m) if m.contains("not a Switchyard store")), "{e}");
}

#[test]
fn a_newer_schema_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    drop(FileStore::open(dir.path()).unwrap());
    let db = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    db.execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1)).unwrap();
    drop(db);
    let e = open_err(dir.path());
    assert!(matches!(&e, StoreError::Corrupt(m) if m.contains("newer")), "{e}");
}

#[test]
fn a_file_path_that_is_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("queue_store");
    std::fs::write(&file, b"").unwrap();
    assert!(matches!(open_err(&file), StoreError::Corrupt(_)));
}

#[test]
fn a_second_store_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = FileStore::open(dir.path()).unwrap();
    let e = open_err(dir.path());
    assert!(matches!(&e, StoreError::Unavailable(m) if m.contains("in use")), "{e}");
    drop(first);
    FileStore::open(dir.path()).expect("free again once the first is closed");
}

#[tokio::test]
async fn open_through_the_adapter_config() {
    let dir = tempfile::tempdir().unwrap();
    let spec = crate::config::AdapterSpec::File { path: dir.path().join("a/b") };
    crate::store::check(&spec).unwrap();
    let store: Arc<dyn Store> = crate::store::open(&spec).await.unwrap();
    store.enqueue(vec![job("q", None, 1)]).await.unwrap();
    assert!(dir.path().join("a/b").join(DB_FILE).exists());
}

/// Every statement on the hot path uses an index: none reads the whole `jobs` table.
#[test]
fn hot_path_queries_use_indexes() {
    let dir = tempfile::tempdir().unwrap();
    drop(FileStore::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    let queries = [
        "UPDATE jobs SET state = 1 WHERE queue = ?1 AND state = 2 AND due_at <= ?2",
        "SELECT seq, rowid FROM jobs WHERE queue = ?1 AND function_id = ?2 AND state = 1 ORDER BY seq LIMIT ?3",
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE queue = ?1 AND grp = ?2 AND state <> 4)",
        "SELECT rowid, state FROM jobs WHERE queue = ?1 AND grp = ?2 AND state <> 4 ORDER BY seq LIMIT 1",
        "SELECT rowid, queue, grp, state, lease_id FROM jobs WHERE id = ?1",
        "SELECT rowid, grp FROM jobs WHERE queue = ?1 AND state = 4 ORDER BY dead_seq",
        "SELECT dead_seq, id FROM jobs WHERE queue = ?1 AND state = 4 AND dead_seq > ?2 ORDER BY dead_seq LIMIT ?3",
        "SELECT MIN(due_at) FROM jobs WHERE queue = ?1 AND state = 2",
        "SELECT state, COUNT(*) FROM jobs WHERE queue = ?1 GROUP BY state",
        "UPDATE jobs SET state = 1, attempts = attempts - 1 WHERE state = 3",
    ];
    for sql in queries {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
        let rows = stmt.query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3)).unwrap();
        let plan: Vec<String> = rows.map(Result::unwrap).collect();
        let plan = plan.join(" | ");
        // A SCAN of a partial index reads only the rows in that state: fine. A bare SCAN reads all.
        assert!(
            plan.split(" | ").filter(|step| step.contains(" jobs")).all(|step| step.contains("USING")),
            "{sql}\n  plan: {plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "{sql} sorts instead of reading in index order\n  plan: {plan}");
    }
}
