//! Measurement helpers shared by the benchmarks.

#![allow(dead_code)]

use std::path::Path;

/// Peak resident memory of this process so far (VmHWM), MB.
pub fn peak_rss_mb() -> f64 {
    rss_field("VmHWM:")
}

/// Resident memory of this process now (VmRSS), MB.
pub fn rss_mb() -> f64 {
    rss_field("VmRSS:")
}

fn rss_field(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Bytes of every file under `p`.
pub fn dir_size(p: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            n += if path.is_dir() {
                dir_size(&path)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            };
        }
    }
    n
}
