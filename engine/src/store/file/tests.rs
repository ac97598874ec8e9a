//! The file store: the conformance suite, plus what only a durable store promises —
//! state surviving a restart, refusing files that are not a store, migrating an old one,
//! stopping after a failed commit — and the writer's net effect per batch.

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
        not_before: None,
        dedup: None,
        priority: 0,
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
    assert_eq!(store.recover().await.unwrap(), 0, "opening made the in-flight FIFO head ready again");
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
async fn restart_keeps_delayed_jobs_and_an_interrupted_retry_is_not_counted() {
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
        assert_eq!(store.next_due("q").await.unwrap(), Some(60_000));
        let l = lease(&store, "q", 1, 60_000).await.remove(0);
        assert_eq!(l.job.attempts, 2);
        l.token
    }; // the engine stops with the retry in flight
    let store = FileStore::open(dir.path()).unwrap();
    let s = store.stats("q").await.unwrap();
    assert_eq!((s.delayed, s.in_flight, s.failed), (1, 0, 1), "still the first retry, due since 60_000");
    assert!(!store.finish(&second_token, Finish::Complete).await.unwrap(), "no lease survives a restart");
    let again = lease(&store, "q", 1, 60_000).await.remove(0);
    assert_eq!(again.job.attempts, 2, "the interrupted attempt is not counted");
    assert_eq!(again.job.last_error, Some(err("x")));
}

#[tokio::test]
async fn redrive_and_discard_are_on_disk_when_answered() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    store.enqueue((0..3).map(|n| job("q", None, n)).collect()).await.unwrap();
    for l in lease(&store, "q", 3, 5_000).await {
        store.finish(&l.token, Finish::DeadLetter { error: err("dead"), at: 5_100 }).await.unwrap();
    }
    assert_eq!(store.redrive("q", &["q-std-0".into()], 6_000).await.unwrap(), 1);
    assert_eq!(store.discard("q", &["q-std-1".into()]).await.unwrap(), 1);
    // Read the file while the store is open: both are there already.
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    let rows: Vec<(String, i64, u32)> = conn
        .prepare("SELECT id, state, attempts FROM jobs ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows, [("q-std-0".to_string(), 1, 0), ("q-std-2".to_string(), 4, 1)]);
    drop(conn);
    drop(store);
    let store = FileStore::open(dir.path()).unwrap();
    let dead = store.dead_letters("q", None, 10).await.unwrap();
    assert_eq!(dead.entries.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["q-std-2"]);
    assert_eq!(ids(&lease(&store, "q", 10, 7_000).await), ["q-std-0"]);
}

/// A dead-letter page cursor stays valid across a restart: entries dead-lettered after it
/// come after it, even when the newest entries it had passed were discarded (so the file
/// no longer holds the highest order number handed out).
#[tokio::test]
async fn a_dead_letter_cursor_from_before_a_restart_skips_nothing_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    store.enqueue((0..2).map(|n| job("q", None, n)).collect()).await.unwrap();
    for l in lease(&store, "q", 2, 5_000).await {
        store.finish(&l.token, Finish::DeadLetter { error: err("dead"), at: 5_100 }).await.unwrap();
    }
    let first = store.dead_letters("q", None, 1).await.unwrap();
    let cursor = first.next_cursor.expect("a second page");
    let rest = store.dead_letters("q", Some(&cursor), 10).await.unwrap();
    assert_eq!(rest.entries.len(), 1);
    let past_all = rest.entries[0].id.clone();
    // The operator has read everything; the last page's position is where they stand.
    let seen = store.dead_letters("q", None, 2).await.unwrap();
    assert!(seen.next_cursor.is_none());
    assert_eq!(store.discard("q", &["q-std-0".into(), past_all]).await.unwrap(), 2);
    drop(store);

    let store = FileStore::open(dir.path()).unwrap();
    store.enqueue(vec![job("q", None, 9)]).await.unwrap();
    let l = lease(&store, "q", 1, 8_000).await.remove(0);
    store.finish(&l.token, Finish::DeadLetter { error: err("dead"), at: 8_100 }).await.unwrap();
    let after = store.dead_letters("q", Some(&cursor), 10).await.unwrap();
    assert_eq!(
        after.entries.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        ["q-std-9"],
        "the new entry is after every cursor handed out before the restart"
    );
}

/// A commit that does not finish is a stall, reported while it lasts and no longer once the
/// commit goes through. (Here another connection holds the write lock for a while; the
/// writer waits for it, as it would for a disk that does not answer.)
#[tokio::test]
async fn a_commit_that_hangs_is_a_stall_until_it_completes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = FileStore::open(dir.path()).unwrap();
    store.stall_after = std::time::Duration::from_millis(50);
    assert_eq!(store.stall(), None);
    let blocker = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap(); // the write lock, until COMMIT
    let store = Arc::new(store);
    let enqueue = tokio::spawn({
        let store = store.clone();
        async move { store.enqueue(vec![job("q", None, 1)]).await }
    });
    // Well within the writer's 5 s busy timeout, after which the commit would fail instead.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    let reason = loop {
        if let Some(reason) = store.stall() {
            break reason;
        }
        assert!(tokio::time::Instant::now() < deadline, "no stall reported");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert!(reason.contains("disk is not answering"), "{reason}");
    assert!(!enqueue.is_finished(), "not acknowledged while stuck");
    blocker.execute_batch("COMMIT").unwrap();
    enqueue.await.unwrap().expect("acknowledged once the commit goes through");
    assert_eq!(store.stall(), None);
    assert_eq!(store.failure(), None);
}

/// A failed commit answers its waiters with an error and stops the store: every later call
/// is `Unavailable` until a restart, which resumes from the last commit.
#[tokio::test]
async fn a_failed_commit_stops_the_store_until_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    store.enqueue(vec![job("q", None, 1)]).await.unwrap();
    // Inject a failure: another connection adds a trigger that refuses one job's row.
    let other = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    other
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON jobs WHEN NEW.id = 'q-std-2'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
    let e = store.enqueue(vec![job("q", None, 2)]).await.unwrap_err();
    assert!(matches!(&e, StoreError::Unavailable(m) if m.contains("injected failure")), "{e}");
    let stopped = |e: StoreError| matches!(&e, StoreError::Unavailable(m) if m.contains("restart the engine"));
    assert!(stopped(store.enqueue(vec![job("q", None, 3)]).await.unwrap_err()), "no later enqueue is acknowledged");
    assert!(stopped(store.lease(req("q", 10, 5_000)).await.unwrap_err()));
    assert!(stopped(store.stats("q").await.unwrap_err()));
    assert!(stopped(store.redrive("q", &[], 5_000).await.unwrap_err()));
    drop(store);

    other.execute_batch("DROP TRIGGER refuse").unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let s = store.stats("q").await.unwrap();
    assert_eq!((s.ready, s.enqueued), (1, 1), "the last commit: only the acknowledged job");
    assert_eq!(ids(&lease(&store, "q", 10, 5_000).await), ["q-std-1"]);
}

/// A version-1 store (every state in SQL) opens as the current version with nothing lost: waiting and
/// in-flight jobs are pending (the in-flight attempt not counted), the DLQ keeps its order.
#[tokio::test]
async fn a_version_1_store_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let db = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    db.execute_batch(super::schema::MIGRATIONS[0]).unwrap();
    db.execute_batch(&format!("PRAGMA application_id = {}; PRAGMA user_version = 1;", super::schema::APPLICATION_ID))
        .unwrap();
    // (id, grp, state, seq, attempts, due_at, dead_seq): A's head in flight, A1 waiting,
    // a retry due at 9_000, two dead letters.
    let rows = [
        ("a0", Some("A"), 3, 1, 2, 1_000, None),
        ("a1", Some("A"), 0, 2, 0, 1_000, None),
        ("s3", None, 2, 3, 1, 9_000, None),
        ("d4", None, 4, 4, 1, 1_000, Some(8)),
        ("d5", None, 4, 5, 1, 1_000, Some(7)),
    ];
    for (id, grp, state, seq, attempts, due_at, dead_seq) in rows {
        db.execute(
            "INSERT INTO jobs (id, queue, function_id, payload, grp, state, seq, attempts, enqueued_at, due_at,
                 error_message, error_code, error_stack, dead_at, dead_seq)
             VALUES (?1, 'q', 'f', X'7B7D', ?2, ?3, ?4, ?5, 1000, ?6, 'boom', 'E', 'stack', ?7, ?7)",
            rusqlite::params![id, grp, state, seq, attempts, due_at, dead_seq],
        )
        .unwrap();
    }
    db.execute_batch(
        "INSERT INTO counters VALUES ('q', 5, 0, 4, 2); UPDATE meta SET value = 9 WHERE key = 'next_seq';",
    )
    .unwrap();
    drop(db);

    let store = FileStore::open(dir.path()).unwrap();
    let s = store.stats("q").await.unwrap();
    assert_eq!((s.ready, s.delayed, s.dead, s.in_flight), (2, 1, 2, 0));
    assert_eq!((s.enqueued, s.failed, s.dead_lettered), (5, 4, 2));
    let dead = store.dead_letters("q", None, 10).await.unwrap();
    assert_eq!(dead.entries.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["d5", "d4"], "DLQ order kept");
    let head = lease(&store, "q", 10, 5_000).await;
    assert_eq!(ids(&head), ["a0"], "A's head first, a1 behind it, s3 not due");
    assert_eq!(head[0].job.attempts, 2, "the in-flight attempt of version 1 is not counted");
    assert!(store.finish(&head[0].token, Finish::Complete).await.unwrap());
    assert_eq!(ids(&lease(&store, "q", 10, 9_000).await), ["a1", "s3"]);
    drop(store);
    let db = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    let version: i32 = db.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
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

/// The writer's net effect per batch: the last row image per job under the key it has
/// now, its old row gone when its key changed, a job enqueued and completed within one
/// batch writes no row, and the counters add up every change.
#[test]
fn a_batch_writes_one_net_row_per_job() {
    use super::writer::{Write, Writer};
    use crate::queue::Job;
    let dir = tempfile::tempdir().unwrap();
    drop(FileStore::open(dir.path()).unwrap());
    let conn = super::schema::open_writer(&dir.path().join(DB_FILE)).unwrap();
    let wal = super::schema::open_wal(&dir.path().join(DB_FILE)).unwrap();
    let mut writer = Writer::new(conn, wal, Default::default(), Default::default());
    let row = |id: &str, state: JobState, attempts: u32| Job {
        not_before: None,
        id: id.into(),
        queue: "q".into(),
        function_id: "f".into(),
        payload: Payload(Bytes::from_static(b"{}")),
        group: None,
        state,
        attempts,
        enqueued_at: 1,
        due_at: 1,
        last_error: None,
        dead_lettered_at: None,
        ..Job::default()
    };
    let put = |job: Job, seq: u64, was: Option<u64>, counts| Write::Put { job, seq, was, counts };
    let gone = |seq: u64| Write::Delete { seq, queue: "q".into(), completed: true };
    writer
        .commit(&[
            put(row("old", JobState::Ready, 0), 1, None, [1, 0, 0, 0]),
            put(row("dies", JobState::Ready, 0), 2, None, [1, 0, 0, 0]),
            put(row("done", JobState::Ready, 0), 3, None, [1, 0, 0, 0]),
        ])
        .unwrap();
    let batch = [
        put(row("a", JobState::Ready, 0), 10, None, [1, 0, 0, 0]),
        put(row("b", JobState::Ready, 0), 11, None, [1, 0, 0, 0]),
        gone(10),
        put(row("b", JobState::Delayed, 1), 11, Some(11), [0, 0, 1, 0]),
        put(row("old", JobState::Delayed, 1), 1, Some(1), [0, 0, 1, 0]),
        put(row("dies", JobState::Delayed, 1), 2, Some(2), [0, 0, 1, 0]),
        put(row("dies", JobState::Dead, 2), 12, Some(2), [0, 0, 1, 1]),
        gone(3),
    ];
    writer.commit(&batch).unwrap();
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    let rows: Vec<(u64, String, i64, u32)> = conn
        .prepare("SELECT seq, id, state, attempts FROM jobs ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let expected = [(1, "old".to_string(), 2, 1), (11, "b".to_string(), 2, 1), (12, "dies".to_string(), 4, 2)];
    assert_eq!(rows, expected, "a never written, done deleted, dies moved to its dead-letter key");
    let counters: (u64, u64, u64, u64) = conn
        .query_row("SELECT enqueued, completed, failed, dead_lettered FROM counters WHERE queue = 'q'", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap();
    assert_eq!(counters, (5, 2, 4, 1));
}

#[tokio::test]
async fn restart_keeps_delayed_jobs_and_idempotency_keys() {
    use crate::queue::{Dedup, Enqueued};
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let delayed = |mut j: NewJob, at: u64| {
        j.not_before = Some(at);
        j
    };
    let keyed = |mut j: NewJob| {
        j.dedup = Some(Dedup { key: "charge-1".into(), window_ms: 60_000 });
        j
    };
    store.enqueue(vec![delayed(job("std", None, 0), 9_000)]).await.unwrap();
    // FIFO: the head runs now, the next member is delayed until 9_500 (waiting meanwhile).
    store.enqueue(vec![job("fifo", Some("A"), 0), delayed(job("fifo", Some("A"), 1), 9_500)]).await.unwrap();
    let first = keyed(job("keyed", None, 0));
    store.enqueue(vec![first.clone()]).await.unwrap();
    assert_eq!(ids(&lease(&store, "fifo", 10, 5_000).await), vec!["fifo-A-0"]);
    drop(store);

    let store = FileStore::open(dir.path()).unwrap();
    assert_eq!(store.stats("std").await.unwrap().delayed, 1, "still delayed after the restart");
    assert_eq!(store.next_due("std").await.unwrap(), Some(9_000));
    assert!(lease(&store, "std", 10, 8_999).await.is_empty());
    assert_eq!(ids(&lease(&store, "std", 10, 9_000).await), vec!["std-std-0"]);
    let head = lease(&store, "fifo", 10, 5_000).await;
    assert_eq!(ids(&head), vec!["fifo-A-0"], "the interrupted head runs again");
    assert!(store.finish(&head[0].token, Finish::Complete).await.unwrap());
    assert!(lease(&store, "fifo", 10, 5_000).await.is_empty(), "its successor keeps its delay");
    assert_eq!(ids(&lease(&store, "fifo", 10, 9_500).await), vec!["fifo-A-1"]);
    let mut again = keyed(job("keyed", None, 1));
    again.id = "keyed-again".into();
    assert_eq!(store.enqueue(vec![again]).await.unwrap(), vec![Enqueued::duplicate_of(first.id.clone())]);
    let mut later = keyed(job("keyed", None, 2));
    later.id = "keyed-later".into();
    later.enqueued_at = first.enqueued_at + 60_000;
    assert_eq!(store.enqueue(vec![later]).await.unwrap(), vec![Enqueued::created("keyed-later")], "expired");
    drop(store);
    let store = FileStore::open(dir.path()).unwrap();
    let mut third = keyed(job("keyed", None, 3));
    third.id = "keyed-third".into();
    third.enqueued_at = first.enqueued_at + 60_001;
    assert_eq!(store.enqueue(vec![third]).await.unwrap(), vec![Enqueued::duplicate_of("keyed-later")]);
}
