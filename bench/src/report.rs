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
    /// With `--repeat`: the jobs/s of every run, in the order they ran; this row is the
    /// median one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runs_jobs_per_sec: Vec<f64>,
}

/// One row per (store, scenario), in first-run order: the run with the median jobs/s (the
/// lower median for an even count), carrying every run's jobs/s when there were several.
pub fn medians(runs: Vec<Row>) -> Vec<Row> {
    let mut groups: Vec<Vec<Row>> = Vec::new();
    for row in runs {
        match groups.iter_mut().find(|g| g[0].store == row.store && g[0].scenario == row.scenario) {
            Some(group) => group.push(row),
            None => groups.push(vec![row]),
        }
    }
    groups
        .into_iter()
        .map(|mut group| {
            let all: Vec<f64> = group.iter().map(|r| r.outcome.jobs_per_sec).collect();
            group.sort_by(|a, b| a.outcome.jobs_per_sec.total_cmp(&b.outcome.jobs_per_sec));
            let mut median = group.swap_remove((group.len() - 1) / 2);
            if all.len() > 1 {
                median.runs_jobs_per_sec = all;
            }
            median
        })
        .collect()
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
    if rows.iter().any(|r| !r.runs_jobs_per_sec.is_empty()) {
        println!("median of the runs above; every run's jobs/s, in the order they ran:");
        for r in rows.iter().filter(|r| !r.runs_jobs_per_sec.is_empty()) {
            let all: Vec<String> = r.runs_jobs_per_sec.iter().map(|v| format!("{v:.0}")).collect();
            println!("{:<11} {:<9} {}", r.store, format!("{:?}", r.scenario).to_lowercase(), all.join(" "));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(store: &str, scenario: Scenario, jobs_per_sec: f64) -> Row {
        Row {
            store: store.into(),
            scenario,
            outcome: Outcome { jobs: 1, seconds: 1.0, jobs_per_sec, ack_ms: None, start_ms: None, order_held: None },
            client_cpu_s: jobs_per_sec, // tells the runs apart
            engine_cpu_s: None,
            engine_peak_rss_mib: None,
            engine_threads: None,
            client_threads: None,
            runs_jobs_per_sec: Vec::new(),
        }
    }

    #[test]
    fn medians_keep_the_median_run_of_each_store_and_scenario_with_every_run() {
        let runs = vec![
            run("a", Scenario::Enqueue, 30.0),
            run("a", Scenario::E2e, 5.0),
            run("b", Scenario::Enqueue, 7.0),
            run("a", Scenario::Enqueue, 10.0),
            run("a", Scenario::E2e, 6.0),
            run("a", Scenario::Enqueue, 20.0),
        ];
        let rows = medians(runs);
        let got: Vec<(&str, Scenario, f64, &[f64])> = rows
            .iter()
            .map(|r| (r.store.as_str(), r.scenario, r.client_cpu_s, r.runs_jobs_per_sec.as_slice()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", Scenario::Enqueue, 20.0, &[30.0, 10.0, 20.0][..]),
                ("a", Scenario::E2e, 5.0, &[5.0, 6.0][..]), // the lower median of two
                ("b", Scenario::Enqueue, 7.0, &[][..]),     // one run: no list
            ]
        );
    }
}
