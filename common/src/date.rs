//! A calendar date stored as a day number, so it is four bytes on disk, sorts
//! as an integer and costs no string parsing in planning loops.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// Days since 0001-01-01 (proleptic Gregorian, day 1 = 0001-01-01).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Date(i32);

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
