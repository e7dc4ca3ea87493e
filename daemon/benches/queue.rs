//! Queue benchmark (release mode): the console's `Queue` request against an
//! outbox of 10k, 100k and 1M messages in one tenant.
//!
//! ```sh
//! cargo bench -p touchpoint-daemon --bench queue               # 10k, 100k, 1M
//! cargo bench -p touchpoint-daemon --bench queue -- 100000     # chosen sizes
//! ```
//!
//! Each size runs in a fresh child process (so peak RSS is its own): the
//! outbox is written through the store's planning writer
//! (`TenantStore::commit_plan`), the store is closed and opened again, and
//! the first request builds the index from disk (timed). Then each filter
//! is asked for 21 times through `queue::page` (index scan, counts, and the
//! 50 rows of the page read from the store, as the socket answers it);
//! median and worst are printed, with the index's bytes per message and the
//! process's peak RSS.

mod common;

use std::time::Instant;

use common::{peak_rss_mb, rss_mb};
use touchpoint_common::config::StoresConfig;
use touchpoint_common::outbox::Message;
use touchpoint_common::queue::QueueFilter;
use touchpoint_common::TenantId;
use touchpoint_datagen::outbox;
use touchpointd::store::{PlanWrite, Stores};

fn run(size: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let tenant = TenantId::new("b001").expect("id");
    let cfg = StoresConfig::default();
    let started = Instant::now();
    {
        let stores = Stores::open(dir.path(), &cfg).expect("stores");
        stores
            .central()
            .register_tenant(&tenant, "Bench")
            .expect("register");
        let store = stores.tenant(&tenant).expect("tenant");
        let mut next = 1;
        while next <= size {
            let end = (next + 50_000).min(size + 1);
            let batch: Vec<Message> = (next..end).map(|id| outbox::message("b001", id)).collect();
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
    let fill = started.elapsed().as_secs_f64();
    let stores = Stores::open(dir.path(), &cfg).expect("stores");
    let tenants = [tenant.clone()];
    let rss_before = rss_mb();
    let t = Instant::now();
    let first = touchpointd::queue::page(&stores, &tenants, &QueueFilter::default(), 0, 50)
        .expect("first page");
    let build_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(first.total, size);
    let index_bytes = stores
        .tenant(&tenant)
        .expect("tenant")
        .with_index(|ix| ix.heap_bytes())
        .expect("index");
    let rss_after = rss_mb();
    println!(
        "\n{size} messages: written in {fill:.1} s; first request (index built from disk) {build_ms:.0} ms; index {:.1} bytes/message ({:.1} MB); RSS +{:.0} MB over the build",
        index_bytes as f64 / size as f64,
        index_bytes as f64 / 1e6,
        rss_after - rss_before
    );
    println!("| filter | matches | median ms | worst ms |");
    println!("|---|---|---|---|");
    let half = size / 2;
    let cases: Vec<(String, u64)> = vec![
        ("(none)".into(), 0),
        ("status:held".into(), 0),
        ("status:sent channel:email".into(), 0),
        ("service:inspection date:2026-03-01..2026-03-31".into(), 0),
        ("kunde12345".into(), 0),
        ("example".into(), 0),
        ("greylisted".into(), 0),
        ("(none), page in the middle".into(), half),
    ];
    for (text, offset) in cases {
        let filter = if text.starts_with('(') {
            QueueFilter::default()
        } else {
            QueueFilter::parse(&text).expect("filter")
        };
        let mut times = Vec::new();
        let mut total = 0;
        for _ in 0..21 {
            let t = Instant::now();
            let p = touchpointd::queue::page(&stores, &tenants, &filter, offset, 50).expect("page");
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            total = p.total;
        }
        times.sort_by(|a, b| a.total_cmp(b));
        println!(
            "| `{text}` | {total} | {:.1} | {:.1} |",
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
    println!("peak RSS {:.0} MB", peak_rss_mb());
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    common::each_size_in_a_child(&args, run);
}
