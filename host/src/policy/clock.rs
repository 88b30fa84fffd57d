//! Calendar time for quotas: what day it is in UTC, and where a usage plan's
//! DAY, WEEK or MONTH period starts and ends.
//!
//! Quota periods are calendar periods in UTC, as API Gateway's: a DAY runs
//! from 00:00 UTC, a WEEK from Monday 00:00 UTC (ISO 8601 weeks; AWS does not
//! document which day its weeks start, so wasmgate takes the standard's),
//! a MONTH from the first of the month. Days are counted from the Unix
//! epoch (`1970-01-01` is day 0), the unit the usage report and every
//! counter key use.
//!
//! The clock can be moved forward for tests ([`Clock::advance`]), which is
//! how a test crosses a period boundary without waiting for midnight.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use time::{Date, Duration as TimeDuration, Month};

/// A usage plan's quota period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub fn parse(text: &str) -> Option<Period> {
        match text.to_ascii_uppercase().as_str() {
            "DAY" => Some(Period::Day),
            "WEEK" => Some(Period::Week),
            "MONTH" => Some(Period::Month),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "DAY",
            Period::Week => "WEEK",
            Period::Month => "MONTH",
        }
    }

    /// The days `[start, end)` of the period that contains `day`.
    pub fn bounds(self, day: i64) -> (i64, i64) {
        match self {
            Period::Day => (day, day + 1),
            Period::Week => {
                let from_monday = i64::from(date_of(day).weekday().number_days_from_monday());
                (day - from_monday, day - from_monday + 7)
            }
            Period::Month => {
                let date = date_of(day);
                let first = date.replace_day(1).unwrap_or(date);
                let next = match first.month() {
                    Month::December => Date::from_calendar_date(first.year() + 1, Month::January, 1),
                    m => Date::from_calendar_date(first.year(), m.next(), 1),
                }
                .unwrap_or(first);
                (day_of(first), day_of(next))
            }
        }
    }

    /// Seconds from `now` until the period containing it ends (a counter's
    /// expiry in a shared store).
    pub fn seconds_left(self, now: SystemTime) -> u64 {
        let secs = unix_seconds(now);
        let (_, end) = self.bounds(secs.div_euclid(86_400));
        (end * 86_400 - secs).max(1) as u64
    }
}

/// The calendar date of an epoch day.
pub fn date_of(day: i64) -> Date {
    let epoch = Date::from_calendar_date(1970, Month::January, 1).expect("the epoch is a date");
    epoch.checked_add(TimeDuration::days(day)).unwrap_or(epoch)
}

/// The epoch day of a calendar date.
pub fn day_of(date: Date) -> i64 {
    i64::from(date.to_julian_day() - date_of(0).to_julian_day())
}

/// `YYYY-MM-DD` of an epoch day.
pub fn format_day(day: i64) -> String {
    let d = date_of(day);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// An epoch day from `YYYY-MM-DD`.
pub fn parse_day(text: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, format).ok().map(day_of)
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// The wall clock, UTC, with an offset a test may move forward.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> SystemTime {
        let offset = self.offset_secs.load(Ordering::Relaxed);
        let now = SystemTime::now();
        if offset >= 0 {
            now + std::time::Duration::from_secs(offset as u64)
        } else {
            now - std::time::Duration::from_secs(offset.unsigned_abs())
        }
    }

    /// Today's epoch day (UTC).
    pub fn today(&self) -> i64 {
        unix_seconds(self.now()).div_euclid(86_400)
    }

    /// Moves the clock by `secs` (tests cross period boundaries with it).
    pub fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, Ordering::Relaxed);
    }

    /// The current time as RFC 3339 to the millisecond, UTC (for records:
    /// as the registry writes its own).
    pub fn rfc3339(&self) -> String {
        humantime::format_rfc3339_millis(self.now()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_utc_calendar_periods() {
        let day = parse_day("2026-12-02").unwrap(); // a Wednesday
        assert_eq!(Period::Day.bounds(day), (day, day + 1));
        let (start, end) = Period::Week.bounds(day);
        assert_eq!(format_day(start), "2026-11-30");
        assert_eq!(format_day(end), "2026-12-07");
        let (start, end) = Period::Month.bounds(day);
        assert_eq!(format_day(start), "2026-12-01");
        assert_eq!(format_day(end), "2027-01-01");
        let feb = parse_day("2028-02-29").unwrap();
        assert_eq!(Period::Month.bounds(feb).1 - Period::Month.bounds(feb).0, 29);
        assert_eq!(format_day(0), "1970-01-01");
        assert_eq!(parse_day("1970-01-02"), Some(1));
    }
}
