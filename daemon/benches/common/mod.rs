//! Measurement helpers shared by the benchmarks.

#![allow(dead_code)]

use std::path::Path;

/// Runs `run(size)` for each size given on the command line (default
/// 10k, 100k, 1M), each in a fresh child process of this benchmark, so that
/// every size's peak RSS is its own. Call from `main` with the arguments
/// after the program name.
pub fn each_size_in_a_child(args: &[String], run: impl Fn(u64)) {
    if let Some(pos) = args.iter().position(|a| a == "--child") {
        let size = args
            .get(pos + 1)
            .and_then(|s| s.parse().ok())
            .expect("--child <size>");
        run(size);
        return;
    }
    let mut sizes: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![10_000, 100_000, 1_000_000];
    }
    let me = std::env::current_exe().expect("own path");
    for size in sizes {
        let status = std::process::Command::new(&me)
            .args(["--child", &size.to_string()])
            .status()
            .expect("child");
        assert!(status.success(), "size {size} failed");
    }
}

/// Peak resident memory of this process so far (VmHWM), MB.
pub fn peak_rss_mb() -> f64 {
    rss_field("VmHWM:")
}

/// Peak resident memory of another process (VmHWM), MB.
pub fn peak_rss_mb_of(pid: u32) -> f64 {
    status_field(&format!("/proc/{pid}/status"), "VmHWM:")
}

/// Resident memory of this process now (VmRSS), MB.
pub fn rss_mb() -> f64 {
    rss_field("VmRSS:")
}

fn rss_field(field: &str) -> f64 {
    status_field("/proc/self/status", field)
}

fn status_field(path: &str, field: &str) -> f64 {
    std::fs::read_to_string(path)
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

/// The shipped brand policy and templates, and the generated policy of
/// each dealer in `specs` (its DMS dialect's column mapping included), in
/// `dir`: what `touchpointd::policy::load_dir` reads.
pub fn write_policies(dir: &Path, specs: &[touchpoint_datagen::DealerSpec]) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let files = touchpointd::policy::read_dir(&shipped, "policies").expect("shipped policies");
    for (rel, text) in files {
        if rel.starts_with("dealers/") {
            continue;
        }
        let path = dir.join(&rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("policy dir");
        std::fs::write(path, text).expect("write policy");
    }
    std::fs::create_dir_all(dir.join("dealers")).expect("dealers dir");
    for s in specs {
        std::fs::write(
            dir.join("dealers").join(format!("{}.toml", s.id)),
            touchpoint_datagen::tenant_policy_toml(s),
        )
        .expect("write dealer policy");
    }
}
