//! Messages handed to a transport per minute over the last hour (emails the
//! relay accepted, letters put in a batch, calls put on a list), in memory:
//! the overview's throughput chart starts empty after a restart.

use std::sync::Mutex;

const MINUTES: usize = 60;

#[derive(Debug)]
struct Ring {
    /// The minute (unix minutes) of the newest slot.
    minute: i64,
    counts: [u64; MINUTES],
}

impl Default for Ring {
    fn default() -> Self {
        Self {
            minute: 0,
            counts: [0; MINUTES],
        }
    }
}

impl Ring {
    /// Moves the newest slot to `minute`, emptying the minutes passed over.
    fn advance(&mut self, minute: i64) {
        if minute <= self.minute {
            return;
        }
        let gap = (minute - self.minute).min(MINUTES as i64);
        for k in 1..=gap {
            self.counts[(self.minute + k).rem_euclid(MINUTES as i64) as usize] = 0;
        }
        self.minute = minute;
    }
}

/// A per-minute counter of the last hour.
#[derive(Debug, Default)]
pub struct Throughput {
    ring: Mutex<Ring>,
}

impl Throughput {
    /// Counts `n` messages handed over at `now_ms` (unix ms).
    pub fn record(&self, now_ms: i64, n: u64) {
        if n == 0 {
            return;
        }
        let minute = now_ms.div_euclid(60_000);
        let mut r = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        r.advance(minute);
        // A count for a minute already past the hour is lost, not misplaced.
        if minute > r.minute - MINUTES as i64 {
            r.counts[minute.rem_euclid(MINUTES as i64) as usize] += n;
        }
    }

    /// The last 60 minutes up to `now_ms`, oldest first, the current minute last.
    pub fn last_hour(&self, now_ms: i64) -> Vec<u64> {
        let minute = now_ms.div_euclid(60_000);
        let mut r = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        r.advance(minute);
        (0..MINUTES as i64)
            .map(|k| {
                r.counts[(minute - (MINUTES as i64 - 1) + k).rem_euclid(MINUTES as i64) as usize]
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
