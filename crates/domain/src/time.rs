//! Instants are kept in UTC with microsecond precision.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// A point in time, UTC.
pub type Instant = DateTime<Utc>;

/// The instant as microseconds since the Unix epoch, the stored form.
pub fn to_micros(at: Instant) -> i64 {
    at.timestamp_micros()
}

/// The stored form back into an instant.
pub fn from_micros(micros: i64) -> Instant {
    Utc.timestamp_micros(micros).single().unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The instant written as RFC 3339 with seconds, the form users read and type.
pub fn rfc3339(at: Instant) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Parse an RFC 3339 instant typed by a user.
pub fn parse_rfc3339(text: &str) -> Result<Instant, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("`{text}` is not an RFC 3339 date-time such as 2026-05-01T08:00:00Z ({e})"))
}

/// The day an instant falls on in an IANA time zone (law counts local days); the UTC day when
/// the zone is unknown.
pub fn local_day(at: Instant, time_zone: &str) -> chrono::NaiveDate {
    match time_zone.parse::<chrono_tz::Tz>() {
        Ok(tz) => at.with_timezone(&tz).date_naive(),
        Err(_) => at.date_naive(),
    }
}
