//! The SDK's log records as a `tracing` layer sees them (targets `switchyard_sdk…`), kept
//! for `await_log`: level, message and structured fields (numbers as numbers, `%`-recorded
//! values as their text).

use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

/// One record.
#[derive(Clone, Debug)]
pub struct Record {
    pub level: Level,
    pub message: String,
    pub fields: Map<String, Value>,
}

/// Every SDK record since the process started; cheap to clone.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<Record>>>);

impl Logs {
    /// Captures the SDK's records at every level from now on (the one global subscriber).
    pub fn install() -> Self {
        use tracing_subscriber::layer::SubscriberExt;
        let logs = Logs::default();
        let subscriber = tracing_subscriber::registry().with(logs.clone());
        tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
        logs
    }

    /// How many records there are: a case reads only those after its start.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// The records from index `from` on.
    pub fn since(&self, from: usize) -> Vec<Record> {
        self.0.lock().unwrap()[from..].to_vec()
    }
}

impl<S: Subscriber> Layer<S> for Logs {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !meta.target().starts_with("switchyard_sdk") {
            return;
        }
        let mut visitor = Fields::default();
        event.record(&mut visitor);
        let record = Record { level: *meta.level(), message: visitor.message, fields: visitor.fields };
        self.0.lock().unwrap().push(record);
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: Map<String, Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        match field.name() {
            "message" => self.message = value.as_str().map(String::from).unwrap_or_else(|| value.to_string()),
            name => {
                self.fields.insert(name.to_string(), value);
            }
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, json!(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, json!(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, json!(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, json!(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, json!(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, json!(value));
    }
}

/// `level` as the cases spell it (`debug`, `info`, `warn`, `error`).
pub fn level(name: &str) -> anyhow::Result<Level> {
    Ok(match name {
        "debug" => Level::DEBUG,
        "info" => Level::INFO,
        "warn" => Level::WARN,
        "error" => Level::ERROR,
        other => anyhow::bail!("unknown log level '{other}'"),
    })
}
