//! Instants in time, passed in by the caller (core never reads a clock).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A UTC instant with millisecond precision.
///
/// Serialized as an RFC 3339 string (`"2024-05-01T12:00:00.250Z"`), which keeps transcripts and
/// fixtures readable. Core never calls `now()`: callers pass the current time in.
///
/// ```
/// use switchboard_core::Timestamp;
/// let t = Timestamp::from_unix_seconds(1_700_000_000);
/// assert_eq!(t.to_string(), "2023-11-14T22:13:20Z");
/// assert_eq!(serde_json::to_string(&t).unwrap(), "\"2023-11-14T22:13:20Z\"");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix_millis: i64,
}

/// The range RFC 3339 can spell: years 0000 through 9999.
const MIN_MILLIS: i64 = -62_167_219_200_000;
const MAX_MILLIS: i64 = 253_402_300_799_999;

impl Timestamp {
    /// From milliseconds since the Unix epoch, clamped to years 0000–9999.
    pub fn from_unix_millis(unix_millis: i64) -> Self {
        Self {
            unix_millis: unix_millis.clamp(MIN_MILLIS, MAX_MILLIS),
        }
    }

    /// From whole seconds since the Unix epoch, clamped to years 0000–9999.
    pub fn from_unix_seconds(unix_seconds: i64) -> Self {
        Self::from_unix_millis(unix_seconds.saturating_mul(1000))
    }

    /// Converts a [`std::time::SystemTime`] the caller read (core never reads a clock itself).
    /// Times before the epoch or beyond year 9999 clamp.
    ///
    /// ```
    /// use switchboard_core::Timestamp;
    /// let now = Timestamp::from_system_time(std::time::SystemTime::now());
    /// assert!(now > Timestamp::from_unix_seconds(1_700_000_000));
    /// ```
    pub fn from_system_time(time: std::time::SystemTime) -> Self {
        let millis = match time.duration_since(std::time::UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |m| -m),
        };
        Self::from_unix_millis(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(self) -> i64 {
        self.unix_millis
    }

    /// Whole seconds since the Unix epoch (rounded towards negative infinity).
    pub fn unix_seconds(self) -> i64 {
        self.unix_millis.div_euclid(1000)
    }

    /// Parses an RFC 3339 string such as `2020-11-17T15:09:11.659Z`.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        let millis = parsed.unix_timestamp_nanos() / 1_000_000;
        Some(Self::from_unix_millis(i64::try_from(millis).ok()?))
    }

    /// This instant plus `duration`, saturating at the representable range.
    pub fn saturating_add(self, duration: Duration) -> Self {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self::from_unix_millis(self.unix_millis.saturating_add(millis))
    }

    /// The time from `earlier` to `self`, or `None` when `earlier` is later than `self`.
    pub fn checked_duration_since(self, earlier: Timestamp) -> Option<Duration> {
        let delta = self.unix_millis.checked_sub(earlier.unix_millis)?;
        u64::try_from(delta).ok().map(Duration::from_millis)
    }

    fn to_offset_date_time(self) -> OffsetDateTime {
        let nanos = i128::from(self.unix_millis) * 1_000_000;
        // Invariant: the constructor clamps to years 0000–9999, which `time` always represents.
        OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_offset_date_time().format(&Rfc3339) {
            Ok(text) => f.write_str(&text),
            Err(_) => write!(f, "@{}ms", self.unix_millis),
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 timestamp: {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_rfc3339_with_millis() {
        let t = Timestamp::parse_rfc3339("2020-11-17T15:09:11.659Z").unwrap();
        assert_eq!(t.unix_millis(), 1_605_625_751_659);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
    }

    #[test]
    fn extreme_inputs_clamp_instead_of_panicking() {
        let t = Timestamp::from_unix_seconds(i64::MAX);
        assert!(t.to_string().starts_with("9999-12-31"));
        let t = Timestamp::from_unix_seconds(i64::MIN);
        assert!(t.to_string().starts_with("0000-01-01"));
        assert!(t.saturating_add(Duration::MAX) >= t);
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        let a = Timestamp::parse_rfc3339("2024-01-01T10:00:00+02:00").unwrap();
        let b = Timestamp::parse_rfc3339("2024-01-01T08:00:00Z").unwrap();
        assert_eq!(a, b);
        assert!(Timestamp::parse_rfc3339("yesterday").is_none());
    }
}
