//! The file store and the job lifecycle: what must survive a restart (kept results,
//! cancelled jobs, cancel requests of jobs in flight, priorities), expiry deleting rows,
//! and a version-5 file (before the lifecycle) opening with nothing lost.

use super::{DB_FILE, FileStore, SCHEMA_VERSION};
use crate::queue::{JobState, NewJob, Payload, Progress};
use crate::store::{CancelOutcome, Finish, Lease, LeaseRequest, Store};
use bytes::Bytes;

fn job(id: &str, group: Option<&str>, priority: u8) -> NewJob {
    NewJob {
        not_before: None,
        dedup: None,
        priority,
        id: id.into(),
        queue: "q".into(),
        function_id: "f".into(),
        payload: Payload(Bytes::from(format!("{{\"id\":\"{id}\"}}"))),
        group: group.map(Into::into),
        enqueued_at: 1_000,
    }
}

async fn lease(store: &FileStore, max: usize, now: u64) -> Vec<Lease> {
    let request = LeaseRequest { queue: "q".into(), functions: vec![("f".into(), max)], max, now };
    store.lease(request).await.unwrap()
}

fn ids(leases: &[Lease]) -> Vec<&str> {
    leases.iter().map(|l| l.job.id.as_str()).collect()
}

async fn state(store: &FileStore, id: &str, now: u64) -> Option<JobState> {
    store.get_job("q", id, now).await.unwrap().map(|j| j.state)
}

fn result() -> Payload {
    Payload(Bytes::from_static(b"\x1a\x02ok"))
}

#[tokio::test]
async fn restart_keeps_kept_results_cancelled_jobs_cancel_requests_and_priorities() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let jobs = vec![
        job("kept", None, 0),
        job("short", None, 0),
        job("running", None, 0),
        job("g0", Some("G"), 0),
        job("g1", Some("G"), 0),
        job("never", None, 0),
        job("low", None, 0),
        job("high", None, 7),
    ];
    store.enqueue(jobs).await.unwrap();
    assert!(matches!(store.cancel("q", "never", 2_000, 62_000).await.unwrap(), CancelOutcome::Cancelled(_)));
    let first = lease(&store, 4, 5_000).await;
    assert_eq!(ids(&first), ["high", "kept", "short", "running"], "the priority first, then enqueue order");
    store.finish(&first[0].token, Finish::Complete).await.unwrap();
    let kept = Finish::CompleteRetained { result: result(), at: 6_000, until: 16_000 };
    assert!(store.finish(&first[1].token, kept).await.unwrap());
    let short = Finish::CompleteRetained { result: result(), at: 6_000, until: 7_000 };
    assert!(store.finish(&first[2].token, short).await.unwrap());
    let head = lease(&store, 1, 5_000).await;
    assert_eq!(ids(&head), ["g0"]);
    assert!(store.set_progress(&first[3].token, Progress { value: Some(0.5), detail: None }).await.unwrap());
    for id in ["running", "g0"] {
        let asked = store.cancel("q", id, 6_500, 66_500).await.unwrap();
        assert!(matches!(asked, CancelOutcome::Cancelling(..)), "{id} is in flight");
    }
    let before = store.stats("q").await.unwrap();
    drop(store); // the engine stops with "running" and "g0" still in flight

    let store = FileStore::open(dir.path()).unwrap();
    let got = store.get_job("q", "kept", 8_000).await.unwrap().expect("a kept result survives a restart");
    assert_eq!((got.state, got.attempts, got.result), (JobState::Completed, 1, Some(result())));
    assert_eq!((got.finished_at, got.expires_at), (Some(6_000), Some(16_000)));
    let never = store.get_job("q", "never", 8_000).await.unwrap().expect("kept");
    assert_eq!((never.state, never.expires_at), (JobState::Cancelled, Some(62_000)));
    for id in ["running", "g0"] {
        let got = store.get_job("q", id, 8_000).await.unwrap().expect("kept");
        assert_eq!((got.state, got.expires_at), (JobState::Cancelled, Some(66_500)), "{id}: cancelled, not ready");
        assert_eq!(got.progress, None, "progress is not kept across a restart");
    }
    let s = store.stats("q").await.unwrap();
    assert_eq!((s.ready, s.in_flight, s.completed, s.failed), (2, 0, before.completed, 0), "g1 and low");
    assert_eq!(ids(&lease(&store, 10, 8_000).await), ["g1", "low"], "G goes on after its cancelled head");

    // Expiry deletes the rows: gone after the next restart too.
    assert_eq!(state(&store, "short", 6_500).await, Some(JobState::Completed));
    assert_eq!(store.expire_finished(7_000).await.unwrap(), 1);
    drop(store);
    let store = FileStore::open(dir.path()).unwrap();
    assert_eq!(state(&store, "short", 6_500).await, None, "its row is gone");
    assert_eq!(state(&store, "kept", 8_000).await, Some(JobState::Completed));
    assert_eq!(store.expire_finished(100_000).await.unwrap(), 4, "kept, never, running, g0");
    drop(store);
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    let left: Vec<String> = conn
        .prepare("SELECT id FROM jobs ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(left, ["g1", "low"], "no finished row outlives its expiry");
}

/// A store written before the job lifecycle (schema version 5) opens with everything in it:
/// the rows get priority 0 and no result, and lifecycle rows are written from then on.
#[tokio::test]
async fn a_version_5_store_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let db = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    for script in &super::schema::MIGRATIONS[..5] {
        db.execute_batch(script).unwrap();
    }
    db.execute_batch(&format!("PRAGMA application_id = {}; PRAGMA user_version = 5;", super::schema::APPLICATION_ID))
        .unwrap();
    // (seq, id, state, attempts, due_at, dead_at, not_before): pending, a retry, a dead letter.
    let rows = [
        (1, "p1", 1, 0, 1_000, None, None),
        (2, "r2", 2, 1, 9_000, None, None),
        (3, "d3", 4, 1, 1_000, Some(4_000), None),
        (4, "n4", 1, 0, 1_000, None, Some(3_000)),
    ];
    for (seq, id, state, attempts, due_at, dead_at, not_before) in rows {
        db.execute(
            "INSERT INTO jobs (seq, id, queue, function_id, payload, grp, state, attempts, enqueued_at, due_at,
                 error_message, error_code, error_stack, dead_at, not_before)
             VALUES (?1, ?2, 'q', 'f', X'7B7D', NULL, ?3, ?4, 1000, ?5, 'boom', 'E', 'stack', ?6, ?7)",
            rusqlite::params![seq, id, state, attempts, due_at, dead_at, not_before],
        )
        .unwrap();
    }
    db.execute_batch("INSERT INTO counters VALUES ('q', 4, 0, 2, 1);").unwrap();
    drop(db);

    let store = FileStore::open(dir.path()).unwrap();
    let s = store.stats("q").await.unwrap();
    assert_eq!((s.ready, s.delayed, s.dead, s.enqueued, s.failed, s.dead_lettered), (1, 2, 1, 4, 2, 1));
    let p1 = store.get_job("q", "p1", 2_000).await.unwrap().expect("migrated");
    assert_eq!((p1.state, p1.priority, p1.result), (JobState::Ready, 0, None));
    assert_eq!(state(&store, "d3", 2_000).await, Some(JobState::Dead));
    let r2 = store.get_job("q", "r2", 2_000).await.unwrap().expect("migrated");
    assert_eq!((r2.state, r2.due_at, r2.attempts), (JobState::Delayed, 9_000, 1));
    let l = lease(&store, 10, 3_000).await;
    assert_eq!(ids(&l), ["p1", "n4"]);
    let kept = Finish::CompleteRetained { result: result(), at: 3_100, until: 13_100 };
    assert!(store.finish(&l[0].token, kept).await.unwrap());
    drop(store);

    let store = FileStore::open(dir.path()).unwrap();
    assert_eq!(state(&store, "p1", 4_000).await, Some(JobState::Completed), "the new columns are written");
    drop(store);
    let db = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    let version: i32 = db.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}
