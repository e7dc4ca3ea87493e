//! A calendar date stored as a day number, so it is four bytes on disk, sorts
//! as an integer and costs no string parsing in planning loops.
//!
//! Serialized as the day number where the format is binary (bincode: records
//! and frames) and as ISO 8601 (`2026-12-07`) where it is human-readable
//! (`--json`); [`minutes`] and [`month`] do the same for a time of day and a
//! ledger month kept as plain numbers.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Days since 0001-01-01 (proleptic Gregorian, day 1 = 0001-01-01).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_i32(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            return i32::deserialize(d).map(Date);
        }
        let text = String::deserialize(d)?;
        Date::parse_iso(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{:?} is not a date (YYYY-MM-DD, like 2026-12-07)",
                shown(&text)
            ))
        })
    }
}

/// At most 32 characters of a text that failed to parse, for an error.
fn shown(text: &str) -> String {
    text.chars().take(32).collect()
}

impl Date {
    pub fn from_ymd(y: i32, m: u32, d: u32) -> Option<Self> {
        NaiveDate::from_ymd_opt(y, m, d).map(Self::from)
    }

    pub fn naive(self) -> NaiveDate {
        // Every Date is built from a NaiveDate, so this cannot fail in practice.
        NaiveDate::from_num_days_from_ce_opt(self.0).unwrap_or(NaiveDate::MIN)
    }

    /// The inverse of [`Date::days`].
    pub fn from_days(n: i32) -> Self {
        Self(n)
    }

    pub fn days(self) -> i32 {
        self.0
    }

    pub fn year(self) -> i32 {
        self.naive().year()
    }

    pub fn add_days(self, n: i32) -> Self {
        Self(self.0 + n)
    }

    /// Big-endian key bytes that sort in date order (sign bit flipped).
    pub fn key_bytes(self) -> [u8; 4] {
        ((self.0 as u32) ^ 0x8000_0000).to_be_bytes()
    }

    /// `n` calendar months later; a day the month lacks becomes its last
    /// day (Jan 31 + 1 month = Feb 28 or 29).
    pub fn add_months(self, n: u32) -> Self {
        self.naive()
            .checked_add_months(chrono::Months::new(n))
            .map(Self::from)
            .unwrap_or(self)
    }

    pub fn month(self) -> u32 {
        self.naive().month()
    }

    pub fn day(self) -> u32 {
        self.naive().day()
    }

    /// Whole years from `self` to `later` (an age).
    pub fn years_until(self, later: Date) -> i32 {
        let (a, b) = (self.naive(), later.naive());
        let mut y = b.year() - a.year();
        if (b.month(), b.day()) < (a.month(), a.day()) {
            y -= 1;
        }
        y
    }

    /// Whole months from `self` to `later`.
    pub fn months_until(self, later: Date) -> i32 {
        let (a, b) = (self.naive(), later.naive());
        let mut m = (b.year() - a.year()) * 12 + b.month() as i32 - a.month() as i32;
        if b.day() < a.day() {
            m -= 1;
        }
        m
    }

    /// `2026-12-07` (ISO 8601, what [`Date`]'s `Display` writes).
    pub fn parse_iso(text: &str) -> Option<Self> {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .map(Self::from)
    }

    /// Today in the local time zone, by the daemon's clock
    /// ([`crate::clock`]).
    pub fn today() -> Self {
        Self::from(crate::clock::now_local().date_naive())
    }
}

impl From<NaiveDate> for Date {
    fn from(d: NaiveDate) -> Self {
        Self(d.num_days_from_ce())
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.naive();
        let y = d.year();
        if (0..=9999).contains(&y) {
            // What "%Y-%m-%d" gives, without chrono parsing the format string
            // each time: planning writes millions of dates.
            write!(f, "{y:04}-{:02}-{:02}", d.month(), d.day())
        } else {
            write!(f, "{}", d.format("%Y-%m-%d"))
        }
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A time of day kept as minutes after midnight (`u16`): `08:00` where the
/// format is human-readable, the number where it is binary. For
/// `#[serde(with = "crate::date::minutes")]`.
pub mod minutes {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::date::shown;

    /// `480` → `08:00`.
    pub fn format(minutes: u16) -> String {
        format!("{:02}:{:02}", minutes / 60, minutes % 60)
    }

    /// `08:00` → `480`; `None` for anything but `HH:MM` within a day.
    pub fn parse(text: &str) -> Option<u16> {
        let (h, m) = text.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    }

    pub fn serialize<S: Serializer>(minutes: &u16, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&format(*minutes))
        } else {
            s.serialize_u16(*minutes)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
        if !d.is_human_readable() {
            return u16::deserialize(d);
        }
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{:?} is not a time of day (HH:MM, like 08:00)",
                shown(&text)
            ))
        })
    }
}

/// A ledger month kept as `yyyymm` (`u32`, 202612): `2026-12` where the
/// format is human-readable, the number where it is binary. For
/// `#[serde(with = "crate::date::month")]`.
pub mod month {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::date::shown;

    /// `202612` → `2026-12`.
    pub fn format(month: u32) -> String {
        format!("{:04}-{:02}", month / 100, month % 100)
    }

    /// `2026-12` → `202612`; `None` for anything but `YYYY-MM`.
    pub fn parse(text: &str) -> Option<u32> {
        let (y, m) = text.split_once('-')?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (y, m): (u32, u32) = (y.parse().ok()?, m.parse().ok()?);
        (1..=12).contains(&m).then_some(y * 100 + m)
    }

    pub fn serialize<S: Serializer>(month: &u32, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&format(*month))
        } else {
            s.serialize_u32(*month)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        if !d.is_human_readable() {
            return u32::deserialize(d);
        }
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{:?} is not a month (YYYY-MM, like 2026-12)",
                shown(&text)
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sorts() {
        let a = Date::from_ymd(2024, 2, 29).expect("leap day");
        let b = Date::from_ymd(2024, 3, 1).expect("date");
        assert_eq!(a.to_string(), "2024-02-29");
        assert_eq!(a.add_days(1), b);
        assert!(a.key_bytes() < b.key_bytes());
        assert!(Date::from_ymd(2023, 2, 29).is_none());
    }
}
