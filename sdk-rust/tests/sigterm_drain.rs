//! A plain `kill` (SIGTERM) of a worker process lets the job it is running finish: the job
//! completes on its first attempt, is not retried, and the process then dies of SIGTERM as
//! it would have without the SDK. The worker is this test binary run again as a child
//! (`child_worker`, which does nothing unless the parent sets `CHILD_URL`).

mod support;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use support::{TestEngine, WAIT, eventually};
use switchyard_sdk::{InitOptions, RegisterFunction};

const CHILD_URL: &str = "SWITCHYARD_TEST_CHILD_URL";

/// The child: a worker with the default options whose handler says it started and then
/// waits for a line on stdin, so the parent's SIGTERM lands while the job runs.
#[tokio::test]
async fn child_worker() {
    let Ok(url) = std::env::var(CHILD_URL) else { return };
    let sy = switchyard_sdk::register_worker(&url, InitOptions::default()).await.unwrap();
    sy.register_function(RegisterFunction::new_async("jobs::slow", |_payload: Value, _ctx| async move {
        println!("handler started");
        tokio::task::spawn_blocking(|| std::io::stdin().lines().next()).await.unwrap();
        println!("handler finished");
        Ok(json!(true))
    }));
    assert!(sy.ready(WAIT).await);
    println!("worker ready");
    tokio::time::sleep(WAIT * 3).await;
    panic!("the child was not terminated");
}

#[tokio::test]
async fn sigterm_during_a_job_lets_it_finish_and_the_job_is_not_retried() {
    if std::env::var(CHILD_URL).is_ok() {
        return;
    }
    let engine = TestEngine::start("queue_configs:\n  jobs:\n    max_retries: 3\n    backoff_ms: 10\n").await;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_worker", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_URL, &engine.url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut seen = Vec::new();
    // The harness may print `test child_worker ... ` on the same line as the first output.
    let mut wait_for = async |text: &str| {
        while !seen.iter().any(|l: &String| l.ends_with(text)) {
            let line = tokio::time::timeout(WAIT, lines.recv()).await.expect(text).expect("child output");
            seen.push(line);
        }
        seen.iter().filter(|l| l.ends_with(text)).count()
    };
    wait_for("worker ready").await;

    let client =
        switchyard_sdk::register_worker(&engine.url, InitOptions { drain_on_sigterm: false, ..Default::default() })
            .await
            .unwrap();
    client.enqueue("jobs", "jobs::slow", json!({"n": 1})).await.unwrap();
    wait_for("handler started").await;
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    // The drain is under way (or about to be); let the handler finish.
    child.stdin.take().unwrap().write_all(b"finish\n").unwrap();
    assert_eq!(wait_for("handler finished").await, 1);

    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "the process dies of SIGTERM after the drain: {status:?}");
    let queues = client.queues();
    eventually("the job completes", || async { queues.stats("jobs").await.unwrap().completed == 1 }).await;
    let stats = queues.stats("jobs").await.unwrap();
    assert_eq!((stats.failed, stats.ready, stats.delayed, stats.in_flight), (0, 0, 0, 0), "not retried: {stats:?}");
    assert_eq!(wait_for("handler started").await, 1, "one attempt");
    client.shutdown().await;
    engine.stop().await;
}
