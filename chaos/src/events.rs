//! What a chaos worker process reports to the harness: one line on its stdout per handler
//! start and per handler end, each stamped with the machine's monotonic clock (shared by
//! every process on the host, so the harness can put the lines of all workers on one
//! time line).
//!
//! Invariant: a start line is written before the handler does anything, an end line
//! before its result is handed to the SDK, each with one `write` (a line is far below
//! `PIPE_BUF`, so a `kill -9` never leaves half a line). A recorded run is therefore
//! inside the engine's lease of that job: it cannot start before the engine leased it or
//! end after the engine learned the outcome.
//!
//! Format (space-separated, `-` for "no group"):
//! `S <ns> <receipt> <queue> <group> <seq> <attempt>` and `E <ns> <receipt> <attempt> ok|fail`.

use std::fmt;

/// Nanoseconds on `CLOCK_MONOTONIC`: the same clock in every process of the machine.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    Start { at: u64, receipt: String, queue: String, group: Option<String>, seq: u64, attempt: u32 },
    End { at: u64, receipt: String, attempt: u32, ok: bool },
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::Start { at, receipt, queue, group, seq, attempt } => {
                write!(f, "S {at} {receipt} {queue} {} {seq} {attempt}", group.as_deref().unwrap_or("-"))
            }
            Line::End { at, receipt, attempt, ok } => {
                write!(f, "E {at} {receipt} {attempt} {}", if *ok { "ok" } else { "fail" })
            }
        }
    }
}

impl Line {
    /// Reads a line written by [`Line`]'s `Display`; anything else is `None`.
    pub fn parse(text: &str) -> Option<Line> {
        let f: Vec<&str> = text.split(' ').collect();
        match f.as_slice() {
            ["S", at, receipt, queue, group, seq, attempt] => Some(Line::Start {
                at: at.parse().ok()?,
                receipt: receipt.to_string(),
                queue: queue.to_string(),
                group: (*group != "-").then(|| group.to_string()),
                seq: seq.parse().ok()?,
                attempt: attempt.parse().ok()?,
            }),
            ["E", at, receipt, attempt, outcome] => Some(Line::End {
                at: at.parse().ok()?,
                receipt: receipt.to_string(),
                attempt: attempt.parse().ok()?,
                ok: match *outcome {
                    "ok" => true,
                    "fail" => false,
                    _ => return None,
                },
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_back_as_written() {
        let lines = [
            Line::Start {
                at: 7,
                receipt: "r1".into(),
                queue: "fifo".into(),
                group: Some("p0-g1".into()),
                seq: 3,
                attempt: 2,
            },
            Line::Start { at: 8, receipt: "r2".into(), queue: "std".into(), group: None, seq: 0, attempt: 1 },
            Line::End { at: 9, receipt: "r1".into(), attempt: 2, ok: false },
        ];
        for l in lines {
            assert_eq!(Line::parse(&l.to_string()), Some(l));
        }
        assert_eq!(Line::parse("S 1 r"), None);
        assert_eq!(Line::parse("E 1 r 1 maybe"), None);
    }
}
