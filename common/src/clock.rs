//! The one clock: every production read of "now" goes through here
//! (`Timestamp::now` and `Date::today` too; `tests/layering.rs` fails on a
//! direct `chrono::Local::now`, `Utc::now` or `SystemTime::now` in the
//! daemon or in `common` outside this file).
//!
//! Normally it is the system's clock. `touchpointd --clock-start` sets it
//! once, at process start, to a chosen moment, from where it runs at
//! normal speed: a rehearsal, or the demo on a day nothing goes out. The
//! offset is process-wide; [`start`] says whether it was set, so that the
//! daemon can show it everywhere an operator looks.
//!
//! Two kinds of time: *domain time* ([`now_millis`], [`now_utc`],
//! [`now_local`]): what day it is for planning, when a message is due, its
//! history; and *wall time* ([`wall_millis`]): when something really
//! happened on this machine (audit lines, file names, entropy). Without a
//! start they are the same.
//!
//! A leaf: imports nothing of `common`. No I/O beyond reading the system
//! clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;

use chrono::{DateTime, Local, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// Where a started clock began: the simulated moment and the real moment it
/// was set, both milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Start {
    /// Domain time at the start (what `--clock-start` named).
    #[serde(with = "rfc3339", rename = "at")]
    pub at_ms: i64,
    /// Wall time when it was set.
    #[serde(with = "rfc3339", rename = "wall")]
    pub wall_ms: i64,
}

impl Start {
    /// Milliseconds domain time is ahead of wall time (negative: behind).
    pub fn offset_ms(self) -> i64 {
        self.at_ms.saturating_sub(self.wall_ms)
    }

    /// `simulated clock: started at Mon 2026-12-07 08:00 (real time then
    /// Sun 2026-12-06 12:31)`, what status, overview and log say.
    pub fn describe(self) -> String {
        format!(
            "simulated clock: started at {} (real time then {})",
            format_local(self.at_ms),
            format_local(self.wall_ms)
        )
    }
}

/// A clock: wall time plus an offset set at most once.
pub struct Clock {
    offset_ms: AtomicI64,
    start: OnceLock<Start>,
}

impl Clock {
    pub const fn new() -> Self {
        Self {
            offset_ms: AtomicI64::new(0),
            start: OnceLock::new(),
        }
    }

    /// Starts the clock at `at_ms` when the wall clock reads `wall_ms`.
    /// Only once: a second start is refused with the first one.
    pub fn start_at(&self, at_ms: i64, wall_ms: i64) -> Result<Start, Start> {
        let start = Start { at_ms, wall_ms };
        let mut first = false;
        let set = *self.start.get_or_init(|| {
            first = true;
            self.offset_ms.store(start.offset_ms(), Ordering::SeqCst);
            start
        });
        if first {
            Ok(set)
        } else {
            Err(set)
        }
    }

    /// Domain time when the wall clock reads `wall_ms`.
    pub fn at(&self, wall_ms: i64) -> i64 {
        wall_ms.saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    pub fn start(&self) -> Option<Start> {
        self.start.get().copied()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

static CLOCK: Clock = Clock::new();

/// Wall time: the system clock, whatever the start. For what really
/// happened when (audit lines, file names, entropy), never for planning.
pub fn wall_millis() -> i64 {
    Utc::now().timestamp_millis()
}

/// Wall time in UTC; see [`wall_millis`].
pub fn wall_utc() -> DateTime<Utc> {
    Utc::now()
}

/// Domain time, milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    CLOCK.at(wall_millis())
}

/// Domain time in UTC.
pub fn now_utc() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(now_millis()).unwrap_or_else(Utc::now)
}

/// Domain time in the local time zone (send windows, today).
pub fn now_local() -> DateTime<Local> {
    now_utc().with_timezone(&Local)
}

/// Domain time as a `SystemTime` (for APIs that take one).
pub fn now_system() -> std::time::SystemTime {
    let ms = now_millis();
    let epoch = std::time::UNIX_EPOCH;
    if ms >= 0 {
        epoch + std::time::Duration::from_millis(ms.unsigned_abs())
    } else {
        epoch - std::time::Duration::from_millis(ms.unsigned_abs())
    }
}

/// Starts the process's clock at `at_ms` (domain time), once, before
/// anything reads it. A second call is refused.
pub fn set_start(at_ms: i64) -> Result<Start, String> {
    CLOCK
        .start_at(at_ms, wall_millis())
        .map_err(|s| format!("the clock was already started at {}", format_local(s.at_ms)))
}

/// Moves domain time by `offset_ms` without a start (nothing shows a
/// simulated clock). For test processes only, which must not meet the
/// first minutes of a day (a plan made then spreads today's sends over
/// minutes still to come); the daemon never calls it, and a started clock
/// is left alone.
#[doc(hidden)]
pub fn shift_for_tests(offset_ms: i64) {
    if CLOCK.start().is_none() {
        CLOCK.offset_ms.store(offset_ms, Ordering::SeqCst);
    }
}

/// The start, when the clock was started (a rehearsal).
pub fn start() -> Option<Start> {
    CLOCK.start()
}

/// Parses `--clock-start`: RFC 3339 (`2026-12-07T08:00:00+01:00`) or local
/// time `YYYY-MM-DD HH:MM`. Returns milliseconds since the Unix epoch.
pub fn parse_start(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.timestamp_millis());
    }
    let naive = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M").map_err(|_| {
        format!(
            "{:?} is neither RFC 3339 (2026-12-07T08:00:00+01:00) nor local \"YYYY-MM-DD HH:MM\"",
            shown(t)
        )
    })?;
    match Local.from_local_datetime(&naive).single() {
        Some(d) => Ok(d.timestamp_millis()),
        None => Err(format!(
            "{t} is not one moment in the local time zone (a daylight-saving change); give it in RFC 3339 with an offset"
        )),
    }
}

/// `Mon 2026-12-07 08:00` in the local time zone.
pub fn format_local(ms: i64) -> String {
    match Local.timestamp_millis_opt(ms).single() {
        Some(d) => d.format("%a %Y-%m-%d %H:%M").to_string(),
        None => format!("@{ms}ms"),
    }
}

/// Milliseconds since the Unix epoch kept as an `i64`: RFC 3339 in UTC with
/// its offset (`2026-12-07T07:00:00+00:00`, fractions only when there are
/// any) where the format is human-readable (`--json`), the number where it
/// is binary. `Timestamp` serializes through it; for other fields,
/// `#[serde(with = "crate::clock::rfc3339")]`.
pub mod rfc3339 {
    use chrono::{DateTime, SecondsFormat};
    use serde::{Deserialize, Deserializer, Serializer};

    /// `1796626800000` → `2026-12-07T07:00:00+00:00`; `None` beyond chrono's range.
    pub fn format(ms: i64) -> Option<String> {
        DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, false))
    }

    /// RFC 3339 with any offset → milliseconds since the Unix epoch.
    pub fn parse(text: &str) -> Option<i64> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return s.serialize_i64(*ms);
        }
        match format(*ms) {
            Some(text) => s.serialize_str(&text),
            None => Err(serde::ser::Error::custom(format!(
                "{ms} ms is not a representable moment"
            ))),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        if !d.is_human_readable() {
            return i64::deserialize(d);
        }
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{:?} is not an RFC 3339 timestamp (like 2026-12-07T07:00:00+00:00)",
                crate::clock::shown(&text)
            ))
        })
    }
}

/// At most 64 characters of what the user typed, for an error message.
fn shown(t: &str) -> String {
    t.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_clock_runs_from_its_start_at_normal_speed() {
        let c = Clock::new();
        assert_eq!(c.at(1_000), 1_000, "not started: wall time");
        assert_eq!(c.start(), None);
        let start = c.start_at(50_000, 1_000).expect("first start");
        assert_eq!(start.offset_ms(), 49_000);
        assert_eq!(c.at(1_000), 50_000);
        assert_eq!(c.at(61_000), 110_000, "a minute later is a minute later");
        assert_eq!(c.start(), Some(start));
        // Set once: a second start changes nothing.
        assert_eq!(c.start_at(0, 1_000), Err(start));
        assert_eq!(c.at(1_000), 50_000);
        // Into the past too.
        let back = Clock::new();
        back.start_at(0, 10_000).expect("start");
        assert_eq!(back.at(10_500), 500);
    }

    #[test]
    fn the_start_is_rfc3339_or_local_minutes() {
        assert_eq!(
            parse_start("2026-12-07T08:00:00+01:00"),
            Ok(1_796_626_800_000)
        );
        assert_eq!(parse_start("2026-12-07T07:00:00Z"), Ok(1_796_626_800_000));
        let local = parse_start("2026-12-07 08:00").expect("local");
        assert_eq!(format_local(local), "Mon 2026-12-07 08:00");
        for bad in [
            "",
            "tomorrow",
            "2026-12-07",
            "2026-13-07 08:00",
            "07.12.2026 08:00",
        ] {
            let e = parse_start(bad).expect_err(bad);
            assert!(e.contains("YYYY-MM-DD HH:MM"), "{bad}: {e}");
        }
    }
}
