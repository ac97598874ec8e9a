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
    /// With `--repeat`: every run's figure of merit ([`Row::metric`]), in the order they
    /// ran; this row is the median one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<f64>,
    /// What `runs` holds: `jobs_per_sec`, or `start_p99_ms` for the latency scenario (whose
    /// rate is fixed).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub runs_of: String,
}

impl Row {
    /// The figure runs are ranked by: jobs/s, or for the latency scenario (a fixed rate)
    /// the enqueue-to-start p99 in ms.
    pub fn metric(&self) -> (f64, &'static str) {
        match (self.scenario, self.outcome.start_ms) {
            (Scenario::Latency, Some(start)) => (start.p99, "start_p99_ms"),
            _ => (self.outcome.jobs_per_sec, "jobs_per_sec"),
        }
    }
}

/// One row per (store, scenario), in first-run order: the run with the median
/// [`Row::metric`] (the lower median for an even count), carrying every run's figure when
/// there were several.
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
            let all: Vec<f64> = group.iter().map(|r| r.metric().0).collect();
            group.sort_by(|a, b| a.metric().0.total_cmp(&b.metric().0));
            let mut median = group.swap_remove((group.len() - 1) / 2);
            if all.len() > 1 {
                median.runs_of = median.metric().1.into();
                median.runs = all;
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
    if rows.iter().any(|r| !r.runs.is_empty()) {
        println!("each row is the median run; every run, in the order they ran:");
        for r in rows.iter().filter(|r| !r.runs.is_empty()) {
            let prec = if r.runs_of == "jobs_per_sec" { 0 } else { 2 };
            let all: Vec<String> = r.runs.iter().map(|v| format!("{v:.prec$}")).collect();
            let scenario = format!("{:?}", r.scenario).to_lowercase();
            println!("{:<11} {:<9} {:<13} {}", r.store, scenario, r.runs_of, all.join(" "));
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
            runs: Vec::new(),
            runs_of: String::new(),
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
        let got: Vec<(&str, Scenario, f64, &[f64])> =
            rows.iter().map(|r| (r.store.as_str(), r.scenario, r.client_cpu_s, r.runs.as_slice())).collect();
        assert_eq!(
            got,
            [
                ("a", Scenario::Enqueue, 20.0, &[30.0, 10.0, 20.0][..]),
                ("a", Scenario::E2e, 5.0, &[5.0, 6.0][..]), // the lower median of two
                ("b", Scenario::Enqueue, 7.0, &[][..]),     // one run: no list
            ]
        );
        assert_eq!(rows[0].runs_of, "jobs_per_sec");
    }

    #[test]
    fn latency_runs_are_ranked_by_their_start_p99() {
        let latency = |p99: f64| {
            let mut row = run("a", Scenario::Latency, 1000.0);
            row.outcome.start_ms = Some(crate::scenarios::Percentiles { p50: 0.3, p99, p999: 9.0 });
            row.client_cpu_s = p99;
            row
        };
        let rows = medians(vec![latency(3.0), latency(0.9), latency(1.2)]);
        assert_eq!((rows[0].client_cpu_s, rows[0].runs_of.as_str()), (1.2, "start_p99_ms"));
        assert_eq!(rows[0].runs, [3.0, 0.9, 1.2]);
    }
}
