//! The result table and its JSON form.

use crate::scenarios::{Outcome, Params, Scenario};

#[derive(serde::Serialize)]
pub struct Row {
    pub store: String,
    pub scenario: Scenario,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// CPU seconds this process (producers, worker, SDK) used for the scenario.
    pub client_cpu_s: f64,
    pub engine_cpu_s: Option<f64>,
    pub engine_peak_rss_mib: Option<f64>,
    /// Runtime threads of the engine and of this process, if set (`null`: one per core).
    pub engine_threads: Option<usize>,
    pub client_threads: Option<usize>,
}

pub fn table(rows: &[Row], p: &Params) {
    let threads = |n: Option<usize>| n.map_or("per-core".to_string(), |n| n.to_string());
    println!(
        "producers={} max_in_flight={} cores={} engine_threads={} client_threads={}",
        p.producers,
        p.max_in_flight,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        threads(p.engine_threads),
        threads(p.client_threads),
    );
    println!(
        "{:<11} {:<9} {:>9} {:>8} {:>10} {:>24} {:>24} {:>6} {:>9} {:>9} {:>9}",
        "store",
        "scenario",
        "jobs",
        "secs",
        "jobs/s",
        "ack ms p50/p99/p99.9",
        "start ms p50/p99/p99.9",
        "order",
        "engine s",
        "client s",
        "rss MiB"
    );
    for r in rows {
        let o = &r.outcome;
        let pct = |p: Option<crate::scenarios::Percentiles>| {
            p.map(|p| format!("{:.2}/{:.2}/{:.2}", p.p50, p.p99, p.p999)).unwrap_or_else(|| "-".into())
        };
        let opt = |v: Option<f64>, prec: usize| v.map(|v| format!("{v:.prec$}")).unwrap_or_else(|| "-".into());
        println!(
            "{:<11} {:<9} {:>9} {:>8.2} {:>10.0} {:>24} {:>24} {:>6} {:>9} {:>9} {:>9}",
            r.store,
            format!("{:?}", r.scenario).to_lowercase(),
            o.jobs,
            o.seconds,
            o.jobs_per_sec,
            pct(o.ack_ms),
            pct(o.start_ms),
            o.order_held.map(|h| if h { "held" } else { "BROKEN" }).unwrap_or("-"),
            opt(r.engine_cpu_s, 1),
            format!("{:.1}", r.client_cpu_s),
            opt(r.engine_peak_rss_mib, 0),
        );
    }
}
