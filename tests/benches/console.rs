//! Console benchmark (release mode): the operator console attached to the
//! real `touchpointd` binary with 10k, 100k and 1M messages in the outbox.
//!
//! ```sh
//! cargo bench -p touchpoint-tests --bench console               # 10k, 100k, 1M
//! cargo bench -p touchpoint-tests --bench console -- 100000     # chosen sizes
//! ```
//!
//! For each size, in a fresh child process: the outbox of tenant b001 is
//! written through the store (as the planner writes it), the daemon binary
//! starts on it (dispatch off), and the console (`touchpoint::tui::harness`:
//! the console's own state, keymap and requests, drawing into a 160×48
//! in-memory terminal) measures:
//!
//! - attach to first frame: connect, hello, the overview's requests
//!   answered, the frame drawn. The first attach after the daemon started
//!   also builds the outbox index (once per tenant store); the warm figure is
//!   the median of 11 later attaches;
//! - a filter change to the redrawn result, daemon time included: Enter on
//!   the `/` line until the new rows are drawn (median and worst of 11);
//! - frame render time per view (median of 300 frames), at 160×48 and 80×24;
//! - peak RSS of the console side (the outbox is written by another
//!   process) and of the daemon.

// The daemon's benchmark helpers: one runner and one way to read RSS.
#[path = "../../daemon/benches/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use touchpoint::tui::action::View;
use touchpoint::tui::harness::Harness;
use touchpoint_common::config::StoresConfig;
use touchpoint_common::outbox::Message;
use touchpoint_common::TenantId;
use touchpoint_datagen::outbox;
use touchpoint_tests::{daemon_files_with, DaemonProcess};
use touchpointd::store::{PlanWrite, Stores};

const TENANT: &str = "b001";

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn worst(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

fn fill(state_dir: &Path, size: u64) {
    let tenant = TenantId::new(TENANT).expect("id");
    let stores = Stores::open(state_dir, &StoresConfig::default()).expect("stores");
    stores
        .central()
        .register_tenant(&tenant, "Bench")
        .expect("register");
    let store = stores.tenant(&tenant).expect("tenant");
    let mut next = 1;
    while next <= size {
        let end = (next + 50_000).min(size + 1);
        let batch: Vec<Message> = (next..end).map(|id| outbox::message(TENANT, id)).collect();
        store
            .commit_plan(&PlanWrite {
                new: &batch,
                revised: &[],
                stamp: next,
            })
            .expect("write");
        next = end;
    }
    drop(store);
    stores.close_all().expect("close");
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

async fn measure(socket: &Path, size: u64, daemon_pid: u32) {
    // Cold: the daemon opens the tenant store and builds its outbox index.
    let t = Instant::now();
    let mut c = Harness::attach(socket, 160, 48, false)
        .await
        .expect("attach");
    c.draw();
    let cold = ms(t);
    let mut warm = Vec::new();
    for _ in 0..11 {
        let t = Instant::now();
        let mut h = Harness::attach(socket, 160, 48, false)
            .await
            .expect("attach");
        h.draw();
        warm.push(ms(t));
    }
    println!(
        "attach to first frame (overview): first {cold:.1} ms (opens the store, builds the index); then median {:.1} ms, worst {:.1} ms",
        median(warm.clone()),
        worst(&warm)
    );

    let t = Instant::now();
    c.press(key('2')).await.expect("queue");
    c.draw();
    println!(
        "queue view, first window of rows: {:.1} ms ({} messages)",
        ms(t),
        c.app.state.queue.total()
    );
    assert_eq!(c.app.state.queue.total(), size);

    println!("| filter change | matches | median ms | worst ms |");
    println!("|---|---|---|---|");
    for filter in [
        "status:held",
        "status:sent channel:email",
        "service:inspection date:2026-03-01..2026-03-31",
        "kunde12345",
        "greylisted",
        "",
    ] {
        let mut times = Vec::new();
        for _ in 0..11 {
            // Another filter first, so that each Enter changes it.
            for text in ["status:planned", filter] {
                c.press(key('/')).await.expect("/");
                c.app
                    .key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
                c.type_text(text).await.expect("type");
                let t = Instant::now();
                c.press(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE))
                    .await
                    .expect("enter");
                c.draw();
                if text == filter {
                    times.push(ms(t));
                }
            }
        }
        let label = if filter.is_empty() {
            "(cleared)"
        } else {
            filter
        };
        println!(
            "| `{label}` | {} | {:.1} | {:.1} |",
            c.app.state.queue.total(),
            median(times.clone()),
            worst(&times)
        );
    }

    // Rows deep in the listing: G jumps to the last message.
    let t = Instant::now();
    c.press(KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT))
        .await
        .expect("G");
    c.draw();
    println!("G (last of {size}) to drawn: {:.1} ms", ms(t));

    println!("| frame render (µs, median of 300) | 160×48 | 80×24 |");
    println!("|---|---|---|");
    for view in View::ALL {
        c.app
            .update(touchpoint::tui::action::Action::ShowView(view));
        c.settle().await.expect("settle");
        let mut per_size = Vec::new();
        for (w, h) in [(160, 48), (80, 24)] {
            c.resize(w, h);
            c.settle().await.expect("settle");
            let mut times = Vec::new();
            for _ in 0..300 {
                let t = Instant::now();
                c.draw();
                times.push(t.elapsed().as_secs_f64() * 1e6);
            }
            per_size.push(median(times));
        }
        println!(
            "| {} | {:.0} | {:.0} |",
            view.title(),
            per_size[0],
            per_size[1]
        );
    }
    println!(
        "peak RSS: console {:.0} MB, daemon {:.0} MB",
        common::peak_rss_mb(),
        common::peak_rss_mb_of(daemon_pid)
    );
}

fn run(size: u64) {
    let root = tempfile::tempdir().expect("tempdir");
    let files = daemon_files_with(
        root.path(),
        &[(TENANT, "Bench")],
        "[dispatch]\nenabled = false\n",
    );
    // Written by a process of its own, so that the peak RSS below is the
    // console's alone.
    let t = Instant::now();
    let me = std::env::current_exe().expect("own path");
    let status = Command::new(&me)
        .arg("--fill")
        .arg(&files.state_dir)
        .arg(size.to_string())
        .status()
        .expect("fill");
    assert!(status.success(), "writing the outbox failed");
    println!(
        "\n{size} messages (written in {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    let daemon = DaemonProcess::spawn(&files.config_file, &files.socket, &files.log);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(measure(&files.socket, size, daemon.child.id()));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(pos) = args.iter().position(|a| a == "--fill") {
        let dir = args.get(pos + 1).expect("--fill <dir> <size>");
        let size = args
            .get(pos + 2)
            .and_then(|s| s.parse().ok())
            .expect("--fill <dir> <size>");
        fill(Path::new(dir), size);
        return;
    }
    common::each_size_in_a_child(&args, run);
}
