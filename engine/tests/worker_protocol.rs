//! Property: whatever sequence of messages a worker sends — hellos repeated or missing,
//! registrations of empty or foreign names, results for unknown, repeated or never-sent
//! invocations, results whose value is not a `google.protobuf.Value`, empty messages — the
//! engine neither panics nor leaks a lease, and another worker is not affected.
//!
//! Each case: a live engine (memory store) with jobs queued for `f` and `g`; a well-behaved
//! bystander serving `g`; the hostile stream plays its sequence and closes. Then a
//! well-behaved worker for `f` connects, and every job must end completed (none stuck in
//! flight: a leaked lease would hold it there), and the bystander must still take new work.

mod support;

use proptest::prelude::*;
use std::sync::Arc;
use support::{RawWorker, TestEngine, eventually};
use switchyard_proto::wire::{
    FunctionError, Hello, InvocationResult, RegisterFunction, ResultBatch, UnregisterFunction, WorkerMessage,
    engine_client::EngineClient, engine_message, invocation_result, worker_message,
};
use tokio::sync::mpsc;

const JOBS: usize = 6;

#[derive(Clone, Debug)]
enum Outcome {
    Null,
    NotAValue,
    Error,
    Missing,
}

#[derive(Clone, Debug)]
enum Step {
    Hello {
        max_in_flight: u32,
        batches: bool,
    },
    Register(&'static str),
    Unregister(&'static str),
    /// A result for the `n`-th invocation received so far (mod their count), or for a made-up
    /// id when none was received.
    Result {
        n: usize,
        outcome: Outcome,
    },
    /// Several results in one `results` message, ids as for `Result`.
    Results(Vec<(usize, Outcome)>),
    /// A result for an id the engine never issued.
    UnknownResult,
    Empty,
    /// Lets the engine deliver.
    Pause,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![Just(Outcome::Null), Just(Outcome::NotAValue), Just(Outcome::Error), Just(Outcome::Missing)]
}

fn step() -> impl Strategy<Value = Step> {
    let name = prop_oneof![Just("f"), Just("g"), Just(""), Just("  "), Just("nobody::serves")];
    prop_oneof![
        (0u32..4, any::<bool>()).prop_map(|(max_in_flight, batches)| Step::Hello { max_in_flight, batches }),
        name.clone().prop_map(Step::Register),
        name.prop_map(Step::Unregister),
        (0usize..8, outcome()).prop_map(|(n, outcome)| Step::Result { n, outcome }),
        prop::collection::vec((0usize..8, outcome()), 0..4).prop_map(Step::Results),
        Just(Step::UnknownResult),
        Just(Step::Empty),
        Just(Step::Pause),
    ]
}

fn message(kind: worker_message::Kind) -> WorkerMessage {
    WorkerMessage { kind: Some(kind) }
}

fn result(id: String, outcome: &Outcome) -> InvocationResult {
    let outcome = match outcome {
        Outcome::Null => Some(invocation_result::Outcome::Value(vec![0x08, 0x00].into())),
        Outcome::NotAValue => Some(invocation_result::Outcome::Value(vec![0x1a, 0x05, b'a'].into())),
        Outcome::Error => Some(invocation_result::Outcome::Error(FunctionError {
            message: "hostile".into(),
            code: "Hostile".into(),
            stack: String::new(),
            non_retryable: false,
        })),
        Outcome::Missing => None,
    };
    InvocationResult { invocation_id: id, outcome }
}

/// Plays `steps` on one raw stream, then closes it.
async fn play(engine: &TestEngine, steps: &[Step]) {
    let (tx, out) = mpsc::unbounded_channel();
    let mut client = EngineClient::new(engine.channel().await);
    let mut inbound = client
        .connect(tokio_stream::wrappers::UnboundedReceiverStream::new(out))
        .await
        .expect("stream opens")
        .into_inner();
    let ids: Arc<parking_lot::Mutex<Vec<String>>> = Default::default();
    let seen = ids.clone();
    let reader = tokio::spawn(async move {
        while let Ok(Some(m)) = inbound.message().await {
            match m.kind {
                Some(engine_message::Kind::Invoke(i)) => seen.lock().push(i.invocation_id),
                Some(engine_message::Kind::Invokes(b)) => {
                    seen.lock().extend(b.invokes.into_iter().map(|i| i.invocation_id))
                }
                _ => {}
            }
        }
    });
    let id_for = |n: usize| {
        let ids = ids.lock();
        if ids.is_empty() { format!("made-up-{n}") } else { ids[n % ids.len()].clone() }
    };
    for s in steps {
        let m = match s {
            Step::Hello { max_in_flight, batches } => message(worker_message::Kind::Hello(Hello {
                worker_name: "hostile".into(),
                sdk_name: "proptest".into(),
                sdk_version: "0".into(),
                max_in_flight: *max_in_flight,
                batches: *batches,
            })),
            Step::Register(f) => message(worker_message::Kind::RegisterFunction(RegisterFunction {
                function_id: f.to_string(),
                description: String::new(),
            })),
            Step::Unregister(f) => {
                message(worker_message::Kind::UnregisterFunction(UnregisterFunction { function_id: f.to_string() }))
            }
            Step::Result { n, outcome } => message(worker_message::Kind::Result(result(id_for(*n), outcome))),
            Step::Results(rs) => message(worker_message::Kind::Results(ResultBatch {
                results: rs.iter().map(|(n, o)| result(id_for(*n), o)).collect(),
            })),
            Step::UnknownResult => message(worker_message::Kind::Result(result("no-such-id".into(), &Outcome::Null))),
            Step::Empty => WorkerMessage { kind: None },
            Step::Pause => {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                continue;
            }
        };
        if tx.send(m).is_err() {
            break; // the engine closed the stream: allowed
        }
    }
    drop(tx);
    let _ = tokio::time::timeout(support::WAIT, reader).await;
}

async fn case(steps: Vec<Step>) {
    let engine = TestEngine::start("queue_configs: {q: {max_retries: 1000, backoff_ms: 0}}").await;
    let client = engine.client().await;
    for n in 0..JOBS {
        client.enqueue("q", if n % 2 == 0 { "f" } else { "g" }, serde_json::json!({"n": n})).await.unwrap();
    }
    let mut bystander = RawWorker::connect(&engine, 2, &["g"]).await;
    let bystander_task = tokio::spawn(async move {
        loop {
            let i = bystander.next_invoke().await;
            bystander.reply_ok(&i.invocation_id, serde_json::Value::Null);
        }
    });

    play(&engine, &steps).await;

    let mut good = RawWorker::connect(&engine, 4, &["f"]).await;
    let good_task = tokio::spawn(async move {
        loop {
            let i = good.next_invoke().await;
            good.reply_ok(&i.invocation_id, serde_json::Value::Null);
        }
    });
    // The bystander still takes new work.
    for n in 0..2 {
        client.enqueue("q", "g", serde_json::json!({"after": n})).await.unwrap();
    }
    let total = (JOBS + 2) as u64;
    eventually("every job completed, none left leased", || async {
        let s = client.queues().stats("q").await.unwrap();
        s.completed == total && s.ready + s.delayed + s.in_flight + s.dead == 0
    })
    .await;
    assert!(!bystander_task.is_finished(), "the bystander's stream is intact");
    bystander_task.abort();
    good_task.abort();
    engine.stop().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn no_worker_message_sequence_panics_the_engine_leaks_a_lease_or_disturbs_another_worker(
        steps in prop::collection::vec(step(), 0..40)
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(case(steps));
    }
}
