//! When a schedule's ticks fall: a cron expression read by `croner` (seconds optional),
//! evaluated in one IANA time zone (`jiff`'s bundled database), on the engine's
//! millisecond clock.
//!
//! Invariant: every answer is a whole second of the absolute time line, and the forward
//! and backward searches agree on which instants are ticks — so every engine with the same
//! expression and zone names the same ticks, whatever instant it asks from.
//!
//! Daylight saving time follows croner (the Open Cron Pattern Specification, as Vixie cron):
//! - a fixed-time tick (single second, minute and hour, e.g. `0 30 2 * * *`) that falls in a
//!   spring-forward gap fires at the first second after the gap, that day; in a fall-back
//!   overlap it fires once, on the first pass;
//! - interval ticks (`*/15 * * * *`, `0 * * * * *`) in a gap do not exist, and in an
//!   overlap fire on both passes (they are distinct instants).

use crate::clock::Millis;
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// How late a tick may still be enqueued: at most one day (and never past the tick after
/// it, see [`Timetable::late_limit`]).
pub const MAX_LATE_MS: Millis = 24 * 3_600_000;

/// What a cron expression or a time zone name got wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimetableError {
    #[error(
        "not a cron expression: {0} (the syntax: [second] minute hour day-of-month month day-of-week [year], or @hourly, @daily, …)"
    )]
    Expression(String),
    #[error("never fires (no instant matches it)")]
    Never,
    #[error("unknown time zone '{0}' (an IANA name such as UTC, Europe/Berlin or America/New_York)")]
    Zone(String),
}

/// A parsed expression in its zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timetable {
    cron: Cron,
    expression: String,
    zone: TimeZone,
    zone_name: String,
}

impl Timetable {
    /// Parses `expression` (5 fields: minute granularity; 6: with seconds first; 7: with a
    /// year last; or a nickname such as `@daily`) in the zone named `zone`.
    pub fn parse(expression: &str, zone: &str) -> Result<Self, TimetableError> {
        // The zone first: an expression error then means the zone was fine.
        let tz = jiff::tz::db().get(zone.trim()).map_err(|_| TimetableError::Zone(zone.trim().to_string()))?;
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expression.trim())
            .map_err(|e| TimetableError::Expression(e.to_string()))?;
        let table =
            Self { cron, expression: expression.trim().to_string(), zone: tz, zone_name: zone.trim().to_string() };
        // A day-of-month no month has (`0 0 30 2 *`) never matches; ticks only in past
        // years are found at run time (the schedule then has nothing to do, and says so).
        if table.next_after(REFERENCE).is_none() {
            return Err(TimetableError::Never);
        }
        Ok(table)
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    pub fn zone_name(&self) -> &str {
        &self.zone_name
    }

    /// The first tick strictly after `at`.
    pub fn next_after(&self, at: Millis) -> Option<Millis> {
        let from = self.zoned(floor_second(at))?;
        let next = self.cron.find_next_occurrence(&from, false).ok()?;
        millis(&next)
    }

    /// The first tick at or after `at`.
    pub fn at_or_after(&self, at: Millis) -> Option<Millis> {
        match at.checked_sub(1) {
            Some(before) => self.next_after(before),
            None => self.zoned(0).and_then(|z| self.cron.find_next_occurrence(&z, true).ok()).and_then(|z| millis(&z)),
        }
    }

    /// The latest tick at or before `at`.
    pub fn latest_at_or_before(&self, at: Millis) -> Option<Millis> {
        let from = self.zoned(floor_second(at))?;
        let previous = self.cron.find_previous_occurrence(&from, true).ok()?;
        millis(&previous)
    }

    /// The latest tick strictly before `at`.
    pub fn latest_before(&self, at: Millis) -> Option<Millis> {
        self.latest_at_or_before(at.checked_sub(1)?)
    }

    /// How late `tick` may still be enqueued: until the tick after it, at most
    /// [`MAX_LATE_MS`]. An engine that comes (or wakes) later than that runs no job for it.
    pub fn late_limit(&self, tick: Millis) -> Millis {
        let gap = self.next_after(tick).map_or(MAX_LATE_MS, |next| next - tick);
        gap.min(MAX_LATE_MS)
    }

    fn zoned(&self, at: Millis) -> Option<jiff::Zoned> {
        let ts = Timestamp::from_millisecond(i64::try_from(at).ok()?).ok()?;
        Some(ts.to_zoned(self.zone.clone()))
    }
}

/// 2000-01-01T00:00:00Z: where the config check looks for a first tick.
const REFERENCE: Millis = 946_684_800_000;

fn floor_second(at: Millis) -> Millis {
    at - at % 1000
}

fn millis(z: &jiff::Zoned) -> Option<Millis> {
    Millis::try_from(z.timestamp().as_millisecond()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `2026-03-29T01:00:00Z` and friends as engine time.
    fn at(rfc3339: &str) -> Millis {
        millis(&rfc3339.parse::<Timestamp>().unwrap().to_zoned(TimeZone::UTC)).unwrap()
    }

    fn table(expr: &str, zone: &str) -> Timetable {
        Timetable::parse(expr, zone).unwrap()
    }

    #[test]
    fn five_six_and_seven_fields_and_nicknames_parse() {
        let five = table("30 2 * * *", "UTC");
        assert_eq!(five.next_after(at("2026-01-01T00:00:00Z")), Some(at("2026-01-01T02:30:00Z")));
        let six = table("15 30 2 * * *", "UTC");
        assert_eq!(six.next_after(at("2026-01-01T00:00:00Z")), Some(at("2026-01-01T02:30:15Z")));
        let seven = table("0 0 0 1 1 * 2030", "UTC");
        assert_eq!(seven.next_after(at("2026-06-01T00:00:00Z")), Some(at("2030-01-01T00:00:00Z")));
        let daily = table("@daily", "UTC");
        assert_eq!(daily.next_after(at("2026-01-01T12:00:00Z")), Some(at("2026-01-02T00:00:00Z")));
    }

    #[test]
    fn bad_expressions_and_zones_say_why() {
        let err = Timetable::parse("61 * * * *", "UTC").unwrap_err();
        assert!(matches!(&err, TimetableError::Expression(why) if why.contains("out of bounds")), "{err}");
        let err = Timetable::parse("* * *", "UTC").unwrap_err();
        assert!(err.to_string().contains("between 5 and 7 fields"), "{err}");
        assert_eq!(Timetable::parse("0 0 30 2 *", "UTC").unwrap_err(), TimetableError::Never);
        assert_eq!(
            Timetable::parse("@daily", "Europe/Berln").unwrap_err(),
            TimetableError::Zone("Europe/Berln".into())
        );
    }

    #[test]
    fn searches_from_a_fraction_of_a_second() {
        let every = table("* * * * * *", "UTC");
        let t = at("2026-01-01T00:00:00Z");
        assert_eq!(every.next_after(t), Some(t + 1000));
        assert_eq!(every.next_after(t + 500), Some(t + 1000));
        assert_eq!(every.at_or_after(t), Some(t));
        assert_eq!(every.at_or_after(t + 1), Some(t + 1000));
        assert_eq!(every.latest_at_or_before(t + 999), Some(t));
        assert_eq!(every.latest_before(t), Some(t - 1000));
        assert_eq!(every.latest_before(t + 1), Some(t));
    }

    #[test]
    fn the_zone_decides_the_wall_clock() {
        let berlin = table("0 30 2 * * *", "Europe/Berlin");
        // January: UTC+1.
        assert_eq!(berlin.next_after(at("2026-01-10T00:00:00Z")), Some(at("2026-01-10T01:30:00Z")));
        // July: UTC+2.
        assert_eq!(berlin.next_after(at("2026-07-10T00:00:00Z")), Some(at("2026-07-10T00:30:00Z")));
    }

    #[test]
    fn a_fixed_time_in_the_spring_gap_fires_right_after_it_and_once_in_the_autumn_overlap() {
        let berlin = table("0 30 2 * * *", "Europe/Berlin");
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z); 02:30 does not exist.
        let ticks: Vec<Millis> =
            std::iter::successors(berlin.next_after(at("2026-03-27T12:00:00Z")), |t| berlin.next_after(*t))
                .take(3)
                .collect();
        assert_eq!(ticks, vec![at("2026-03-28T01:30:00Z"), at("2026-03-29T01:00:00Z"), at("2026-03-30T00:30:00Z")]);
        // 2026-10-25: 03:00 CEST falls back to 02:00 CET (01:00Z); 02:30 happens twice.
        let ticks: Vec<Millis> =
            std::iter::successors(berlin.next_after(at("2026-10-24T12:00:00Z")), |t| berlin.next_after(*t))
                .take(2)
                .collect();
        assert_eq!(ticks, vec![at("2026-10-25T00:30:00Z"), at("2026-10-26T01:30:00Z")]);
        // Looking back from inside the second pass finds the same (first-pass) tick.
        assert_eq!(berlin.latest_at_or_before(at("2026-10-25T01:45:00Z")), Some(at("2026-10-25T00:30:00Z")));
    }

    #[test]
    fn interval_ticks_skip_the_gap_and_repeat_in_the_overlap() {
        let half_hourly = table("0 */30 * * * *", "Europe/Berlin");
        let from = at("2026-03-29T00:40:00Z"); // 01:40 CET
        let ticks: Vec<Millis> =
            std::iter::successors(half_hourly.next_after(from), |t| half_hourly.next_after(*t)).take(2).collect();
        assert_eq!(ticks, vec![at("2026-03-29T01:00:00Z"), at("2026-03-29T01:30:00Z")], "03:00 and 03:30 CEST");
        let from = at("2026-10-24T23:50:00Z"); // 01:50 CEST
        let ticks: Vec<Millis> =
            std::iter::successors(half_hourly.next_after(from), |t| half_hourly.next_after(*t)).take(5).collect();
        let expected = ["2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z"];
        assert_eq!(ticks[..4], expected.map(at), "02:00 and 02:30, each on both passes");
        assert_eq!(ticks[4], at("2026-10-25T02:00:00Z"), "03:00 CET");
    }

    #[test]
    fn a_tick_may_be_late_until_the_next_one_and_at_most_a_day() {
        let every_second = table("* * * * * *", "UTC");
        assert_eq!(every_second.late_limit(at("2026-01-01T00:00:00Z")), 1000);
        let twice_a_day = table("0 0 9,17 * * *", "UTC");
        assert_eq!(twice_a_day.late_limit(at("2026-01-01T09:00:00Z")), 8 * 3_600_000);
        assert_eq!(twice_a_day.late_limit(at("2026-01-01T17:00:00Z")), 16 * 3_600_000);
        let weekly = table("@weekly", "UTC");
        assert_eq!(weekly.late_limit(at("2026-01-04T00:00:00Z")), MAX_LATE_MS);
    }
}
