//! Operation hours: a weekly schedule in a time zone, with holidays.
//!
//! The tz database is compiled into the binary (jiff's `tzdb-bundle-always`), so the same
//! configuration gives the same answer on every host, offline included.

use std::collections::BTreeSet;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use switchboard_core::Timestamp;

use crate::error::ValidationError;

/// Operation hours as configured.
///
/// ```toml
/// [accounts.hours]
/// time_zone = "Europe/Rome"
/// mon = ["09:00-13:00", "14:00-18:00"]
/// sat = ["10:00-12:00"]
/// holidays = ["2025-12-25", "2026-01-01"]
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HoursConfig {
    /// An IANA time zone name, e.g. `America/New_York`.
    pub time_zone: String,
    /// Monday's open intervals, `HH:MM-HH:MM` (end may be `24:00`).
    pub mon: Vec<String>,
    /// Tuesday's open intervals.
    pub tue: Vec<String>,
    /// Wednesday's open intervals.
    pub wed: Vec<String>,
    /// Thursday's open intervals.
    pub thu: Vec<String>,
    /// Friday's open intervals.
    pub fri: Vec<String>,
    /// Saturday's open intervals.
    pub sat: Vec<String>,
    /// Sunday's open intervals.
    pub sun: Vec<String>,
    /// Whole days closed, `YYYY-MM-DD` in the time zone.
    pub holidays: Vec<String>,
}

/// Compiled operation hours.
#[derive(Clone, Debug)]
pub struct Hours {
    tz: TimeZone,
    /// Open intervals per weekday (Monday = 0), in minutes from midnight, `[start, end)`.
    weekly: [Vec<(u16, u16)>; 7],
    holidays: BTreeSet<Date>,
}

impl HoursConfig {
    /// Checks and compiles the schedule; `path` prefixes the field paths of errors.
    pub fn compile(&self, path: &str) -> Result<Hours, Vec<ValidationError>> {
        let mut errors = Vec::new();
        let tz = match TimeZone::get(&self.time_zone) {
            Ok(tz) => Some(tz),
            Err(_) => {
                errors.push(ValidationError::new(
                    format!("{path}.time_zone"),
                    format!("`{}` is not a known IANA time zone", self.time_zone),
                ));
                None
            }
        };
        let days = [
            ("mon", &self.mon),
            ("tue", &self.tue),
            ("wed", &self.wed),
            ("thu", &self.thu),
            ("fri", &self.fri),
            ("sat", &self.sat),
            ("sun", &self.sun),
        ];
        let mut weekly: [Vec<(u16, u16)>; 7] = Default::default();
        for (index, (name, intervals)) in days.iter().enumerate() {
            for (i, text) in intervals.iter().enumerate() {
                match parse_interval(text) {
                    Some(interval) => weekly[index].push(interval),
                    None => errors.push(ValidationError::new(
                        format!("{path}.{name}[{i}]"),
                        format!("`{text}` is not an interval `HH:MM-HH:MM` with start before end"),
                    )),
                }
            }
            let mut sorted = weekly[index].clone();
            sorted.sort_unstable();
            if sorted.windows(2).any(|w| w[0].1 > w[1].0) {
                errors.push(ValidationError::new(
                    format!("{path}.{name}"),
                    "intervals overlap",
                ));
            }
        }
        let mut holidays = BTreeSet::new();
        for (i, text) in self.holidays.iter().enumerate() {
            match text.parse::<Date>() {
                Ok(date) => {
                    if !holidays.insert(date) {
                        errors.push(ValidationError::new(
                            format!("{path}.holidays[{i}]"),
                            format!("{text} is listed twice"),
                        ));
                    }
                }
                Err(_) => errors.push(ValidationError::new(
                    format!("{path}.holidays[{i}]"),
                    format!("`{text}` is not a date `YYYY-MM-DD`"),
                )),
            }
        }
        match tz {
            Some(tz) if errors.is_empty() => Ok(Hours {
                tz,
                weekly,
                holidays,
            }),
            _ => Err(errors),
        }
    }
}

fn parse_interval(text: &str) -> Option<(u16, u16)> {
    let (start, end) = text.trim().split_once('-')?;
    let (start, end) = (parse_minutes(start)?, parse_minutes(end)?);
    (start < end && start < 1440).then_some((start, end))
}

fn parse_minutes(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

impl Hours {
    /// Whether the contact center is open at `now`.
    pub fn is_open(&self, now: Timestamp) -> bool {
        let Ok(ts) = jiff::Timestamp::from_millisecond(now.unix_millis()) else {
            return false;
        };
        let local = self.tz.to_datetime(ts);
        if self.holidays.contains(&local.date()) {
            return false;
        }
        let day = usize::try_from(local.weekday().to_monday_zero_offset()).unwrap_or(0);
        let minute = u16::try_from(local.hour()).unwrap_or(0) * 60
            + u16::try_from(local.minute()).unwrap_or(0);
        self.weekly[day % 7]
            .iter()
            .any(|&(start, end)| minute >= start && minute < end)
    }
}

#[cfg(test)]
mod tests;
