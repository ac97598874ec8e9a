//! The checks made once a chaos run has drained: what the producers were promised against
//! what the workers recorded.
//!
//! Invariants checked:
//! 1. **0 lost**: every acknowledged receipt has a run that returned success, or is in the
//!    DLQ.
//! 2. **FIFO order**: per group, the first start of each sequence number comes in increasing
//!    order (a job may run again after a fault — at-least-once — but never before an earlier
//!    job of its group ran at least once); and no two runs of one group overlap.
//! 3. **Concurrency**: per engine and queue, runs in flight at once never exceed the
//!    queue's `concurrency`.
//!
//! How a run's interval is judged: a recorded run lies inside the engine's lease (see
//! `events`). When a worker's connection is severed (its engine killed, its proxy cut, the
//! worker itself killed) at `t`, the engine's lease of what it ran ended at or after `t`,
//! so its runs are clipped at `t`; runs that *start* within `settle` after `t` on that
//! worker are invocations the old connection had already delivered (buffered bytes read
//! before the end of the stream), not leases of the new connection, and are left out of the
//! overlap checks 2–3 (they still count as first starts for the order check).
//!
//! Not checked here: that the queues drained (the harness waits for empty queues before it
//! calls [`check`]); duplicates are counted and reported, not failed — delivery is
//! at-least-once.

use std::collections::{BTreeMap, HashMap, HashSet};

/// A job a producer got a receipt for.
#[derive(Clone, Debug)]
pub struct Acked {
    pub receipt: String,
}

/// One handler run as a worker recorded it.
#[derive(Clone, Debug)]
pub struct Run {
    /// The worker slot (stable across restarts of its process).
    pub worker: usize,
    /// The engine the worker's stream goes to.
    pub engine: usize,
    pub receipt: String,
    pub queue: String,
    pub group: Option<String>,
    pub seq: u64,
    pub start: u64,
    /// `None`: no end line (the process was killed, or the handler is still running).
    pub end: Option<u64>,
    pub ok: bool,
}

pub struct Inputs<'a> {
    pub acked: &'a [Acked],
    pub runs: &'a [Run],
    /// Per worker slot, the moments its connection was severed.
    pub severed: &'a HashMap<usize, Vec<u64>>,
    pub dead_letters: &'a HashSet<String>,
    /// Queue name → its `concurrency`.
    pub concurrency: &'a HashMap<String, usize>,
    pub settle_ns: u64,
}

#[derive(Debug, Default)]
pub struct Report {
    pub acked: usize,
    pub runs: usize,
    pub completed: usize,
    pub dead_lettered: usize,
    pub lost: Vec<String>,
    /// Receipts that returned success more than once, and the extra successes.
    pub duplicated_receipts: usize,
    pub duplicate_successes: usize,
    /// Receipts run that no producer was acknowledged for (an enqueue that failed at the
    /// client but had been stored; the producer sent it again).
    pub unacknowledged_stored: usize,
    pub order_violations: Vec<String>,
    pub group_overlaps: Vec<String>,
    /// (engine, queue) → (most runs in flight at once, the limit).
    pub concurrency: BTreeMap<(usize, String), (usize, usize)>,
    pub concurrency_violations: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.lost.is_empty()
            && self.order_violations.is_empty()
            && self.group_overlaps.is_empty()
            && self.concurrency_violations.is_empty()
    }
}

pub fn check(i: &Inputs<'_>) -> Report {
    let mut r = Report { acked: i.acked.len(), runs: i.runs.len(), ..Default::default() };
    let acked: HashSet<&str> = i.acked.iter().map(|a| a.receipt.as_str()).collect();

    // 1. Lost, and duplicates.
    let mut successes: HashMap<&str, usize> = HashMap::new();
    for run in i.runs.iter().filter(|run| run.ok) {
        *successes.entry(&run.receipt).or_default() += 1;
    }
    for a in i.acked {
        match successes.get(a.receipt.as_str()) {
            Some(_) => r.completed += 1,
            None if i.dead_letters.contains(&a.receipt) => r.dead_lettered += 1,
            None => r.lost.push(a.receipt.clone()),
        }
    }
    for (_, n) in successes.iter().filter(|(_, n)| **n > 1) {
        r.duplicated_receipts += 1;
        r.duplicate_successes += n - 1;
    }
    let seen: HashSet<&str> = i.runs.iter().map(|run| run.receipt.as_str()).collect();
    r.unacknowledged_stored = seen.iter().filter(|s| !acked.contains(**s)).count();

    // 2a. FIFO order of first starts per group.
    let mut first: HashMap<(&str, u64), u64> = HashMap::new();
    for run in i.runs {
        if let Some(g) = &run.group {
            let at = first.entry((g, run.seq)).or_insert(run.start);
            *at = (*at).min(run.start);
        }
    }
    let mut by_group: HashMap<&str, Vec<(u64, u64)>> = HashMap::new();
    for ((g, seq), at) in first {
        by_group.entry(g).or_default().push((at, seq));
    }
    for (g, mut starts) in by_group {
        starts.sort();
        let mut highest: Option<u64> = None;
        for (_, seq) in starts {
            match highest {
                Some(h) if seq < h => r.order_violations.push(format!("group {g}: seq {seq} first ran after seq {h}")),
                _ => highest = Some(highest.map_or(seq, |h| h.max(seq))),
            }
        }
    }

    // 2b and 3: overlaps of clipped intervals.
    let intervals: Vec<(&Run, u64, u64)> =
        i.runs.iter().filter_map(|run| clipped(run, i).map(|(s, e)| (run, s, e))).collect();
    let mut per_group: HashMap<&str, Vec<(u64, u64)>> = HashMap::new();
    let mut per_slot: HashMap<(usize, &str), Vec<(u64, u64)>> = HashMap::new();
    for (run, s, e) in &intervals {
        if let Some(g) = &run.group {
            per_group.entry(g).or_default().push((*s, *e));
        }
        per_slot.entry((run.engine, &run.queue)).or_default().push((*s, *e));
    }
    for (g, iv) in per_group {
        let most = most_at_once(iv);
        if most > 1 {
            r.group_overlaps.push(format!("group {g}: {most} runs in flight at once"));
        }
    }
    for ((engine, queue), iv) in per_slot {
        let limit = i.concurrency.get(queue).copied().unwrap_or(usize::MAX);
        let most = most_at_once(iv);
        if most > limit {
            r.concurrency_violations.push(format!("engine {engine}, queue {queue}: {most} in flight, limit {limit}"));
        }
        r.concurrency.insert((engine, queue.to_string()), (most, limit));
    }
    r
}

/// A run's interval for the overlap checks: ended at its end line or the first severing of
/// its worker after it started, whichever is first; `None` for a run that started within
/// `settle` after a severing (delivered by the old connection).
fn clipped(run: &Run, i: &Inputs<'_>) -> Option<(u64, u64)> {
    let severed = i.severed.get(&run.worker).map(Vec::as_slice).unwrap_or(&[]);
    if severed.iter().any(|&t| run.start >= t && run.start < t + i.settle_ns) {
        return None;
    }
    let cut = severed.iter().copied().filter(|&t| t > run.start).min();
    let end = match (run.end, cut) {
        (Some(e), Some(c)) => e.min(c),
        (Some(e), None) => e,
        (None, Some(c)) => c,
        (None, None) => u64::MAX,
    };
    Some((run.start, end.max(run.start)))
}

/// The most intervals `[start, end)` covering one moment.
fn most_at_once(iv: Vec<(u64, u64)>) -> usize {
    let mut edges: Vec<(u64, i32)> = Vec::with_capacity(iv.len() * 2);
    for (s, e) in iv {
        edges.push((s, 1));
        edges.push((e, -1));
    }
    edges.sort(); // at equal times -1 sorts first: an end and a start at one instant do not overlap
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(worker: usize, receipt: &str, group: Option<&str>, seq: u64, start: u64, end: Option<u64>, ok: bool) -> Run {
        Run {
            worker,
            engine: 0,
            receipt: receipt.into(),
            queue: if group.is_some() { "fifo".into() } else { "std".into() },
            group: group.map(String::from),
            seq,
            start,
            end,
            ok,
        }
    }

    fn report(acked: &[&str], runs: &[Run], severed: &[(usize, u64)], dead: &[&str]) -> Report {
        let acked: Vec<Acked> = acked.iter().map(|r| Acked { receipt: r.to_string() }).collect();
        let mut sev: HashMap<usize, Vec<u64>> = HashMap::new();
        for (w, t) in severed {
            sev.entry(*w).or_default().push(*t);
        }
        let dead: HashSet<String> = dead.iter().map(|d| d.to_string()).collect();
        let concurrency: HashMap<String, usize> = [("std".to_string(), 2), ("fifo".to_string(), 2)].into();
        check(&Inputs {
            acked: &acked,
            runs,
            severed: &sev,
            dead_letters: &dead,
            concurrency: &concurrency,
            settle_ns: 5,
        })
    }

    #[test]
    fn a_receipt_neither_completed_nor_dead_is_lost() {
        let runs = [run(0, "a", None, 0, 1, Some(2), true), run(0, "b", None, 1, 3, Some(4), false)];
        let r = report(&["a", "b", "c"], &runs, &[], &["c"]);
        assert_eq!(r.lost, vec!["b".to_string()]);
        assert_eq!((r.completed, r.dead_lettered), (1, 1));
        assert!(!r.passed());
    }

    #[test]
    fn a_later_job_of_a_group_first_running_before_an_earlier_one_is_an_order_violation() {
        let ok = [run(0, "a", Some("g"), 0, 1, Some(2), true), run(0, "b", Some("g"), 1, 3, Some(4), true)];
        assert!(report(&["a", "b"], &ok, &[], &[]).passed());
        // a re-run of seq 0 after seq 1 is at-least-once, not a violation
        let rerun = [ok[0].clone(), ok[1].clone(), run(1, "a", Some("g"), 0, 10, Some(11), true)];
        let r = report(&["a", "b"], &rerun, &[], &[]);
        assert!(r.passed(), "{r:?}");
        assert_eq!(r.duplicate_successes, 1);
        let swapped = [run(0, "a", Some("g"), 0, 5, Some(6), true), run(0, "b", Some("g"), 1, 3, Some(4), true)];
        assert_eq!(report(&["a", "b"], &swapped, &[], &[]).order_violations.len(), 1);
    }

    #[test]
    fn overlapping_runs_of_one_group_or_past_the_limit_are_violations() {
        let overlap = [run(0, "a", Some("g"), 0, 1, Some(5), true), run(1, "b", Some("g"), 1, 3, Some(6), true)];
        assert_eq!(report(&["a", "b"], &overlap, &[], &[]).group_overlaps.len(), 1);
        let three = [
            run(0, "a", None, 0, 1, Some(9), true),
            run(1, "b", None, 1, 2, Some(9), true),
            run(2, "c", None, 2, 3, Some(9), true),
        ];
        let r = report(&["a", "b", "c"], &three, &[], &[]);
        assert_eq!(r.concurrency_violations.len(), 1, "{r:?}");
        assert_eq!(r.concurrency[&(0, "std".to_string())], (3, 2));
    }

    #[test]
    fn a_severed_worker_s_runs_end_at_the_cut_and_its_buffered_starts_are_left_out() {
        // worker 0 is cut at 4: its run (1..9) ends at 4; its run starting at 6 (< 4 + settle)
        // was delivered by the old connection. Worker 1 then runs two jobs from 5.
        let runs = [
            run(0, "a", None, 0, 1, Some(9), true),
            run(0, "x", None, 3, 6, Some(9), false),
            run(1, "b", None, 1, 5, Some(9), true),
            run(2, "c", None, 2, 5, Some(9), true),
            run(1, "x", None, 3, 10, Some(11), true),
        ];
        let r = report(&["a", "b", "c", "x"], &runs, &[(0, 4)], &[]);
        assert!(r.passed(), "{r:?}");
        assert!(!report(&["a", "b", "c", "x"], &runs, &[], &[]).passed(), "without the cut it is a violation");
    }
}
