//! Faults of the machine under the daemon (M12): a full disk under the
//! tenants' stores. The stores live on a small tmpfs mounted for the test
//! (the central store stays on the ordinary disk, so the audit log and the
//! registry keep working while the dealers' disk is full).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use touchpoint::client::{Client, ClientError};
use touchpoint_common::domain::{ImportReport, ImportStatus};
use touchpoint_common::queue::QueueFilter;
use touchpoint_tests::{bin, output_within, tid, Options, TestDaemon};

use crate::common::{import_fixture, large_export, MAY};

/// A tmpfs mounted for one test, unmounted when dropped (also when the test
/// fails).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `mib` MiB at `dir`. `Err` with the reason when
    /// this machine does not let us mount.
    fn mount(dir: &Path, mib: u64) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={mib}m,mode=0700"))
            .arg("tmpfs")
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn filler(&self) -> PathBuf {
        self.dir.join("filler")
    }

    /// Fills the file system up to `leave` bytes (rounded to pages).
    fn fill_leaving(&self, leave: u64) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.filler())
            .expect("filler");
        let block = vec![0u8; 256 * 1024];
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling {}: {e}", self.dir.display()),
            }
        }
        // Byte by byte to the last free page.
        while f.write(&[0]).is_ok_and(|n| n == 1) {}
        let len = f.metadata().expect("filler size").len();
        f.set_len(len.saturating_sub(leave))
            .expect("truncate filler");
    }

    fn free(&self) {
        std::fs::remove_file(self.filler()).expect("remove filler");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Busy (a daemon thread still has a file open): detach it now,
            // the kernel frees it once the last file closes.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

fn no_space(text: &str) -> bool {
    text.contains("No space left on device")
}

fn staging_files(tenants: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(tenants)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path().join("import.staging"))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default()
}

async fn customers(c: &mut Client, tenant: &str) -> u64 {
    c.tenant(&tid(tenant))
        .await
        .unwrap_or_else(|e| panic!("tenant {tenant}: {e}"))
        .summary
        .stats
        .customers
}

fn failed_for_want_of_space(r: &Result<ImportReport, ClientError>) -> bool {
    match r {
        Ok(ImportReport {
            status: ImportStatus::Failed { reason },
            ..
        }) => no_space(reason),
        Ok(_) => false,
        Err(e) => no_space(&e.to_string()),
    }
}

/// The disk under the dealers' stores fills up during an import: the import
/// is reported failed and nothing of it stays (not after space returns, not
/// after a restart); its staging file is gone at once; while the tenant
/// cannot be read, the listing still shows every tenant and the queue says
/// so instead of showing nothing; once space is freed the tenant works again
/// without a restart; and a restart on a full disk still serves.
#[tokio::test]
async fn a_full_disk_fails_an_import_cleanly_and_the_tenant_recovers_once_space_returns() {
    let root = tempfile::tempdir().expect("tempdir");
    let state = root.path().join("state");
    let tenants = state.join("tenants");
    let fs = match Tmpfs::mount(&tenants, 64) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!(
                "cannot mount a tmpfs here ({why}): the disk runs full under the store's own writes instead"
            );
            return full_disk_under_the_stores_own_writes().await;
        }
    };
    let opts = || Options {
        state_dir: Some(state.clone()),
        ..Options::default()
    };
    let d = TestDaemon::start_with(opts());
    let mut c = d.client().await;
    let may = c.upload(&tid("d002"), import_fixture(MAY)).await;
    assert_eq!(may.expect("May into d002").status, ImportStatus::Committed);

    // Room for the staged rows (about 1.3 times the file) but far from
    // enough for the store to take them (about 6 times).
    let export = large_export(root.path());
    let csv = std::fs::metadata(&export.path).expect("export").len();
    fs.fill_leaving(3 * csv);
    let r = c.upload(&tid("d001"), &export.path).await;
    assert!(failed_for_want_of_space(&r), "{r:?}");
    assert_eq!(
        staging_files(&tenants),
        Vec::<PathBuf>::new(),
        "the failed import's staging file is removed at once"
    );

    // Completely full now: d001 cannot even be read.
    fs.fill_leaving(0);
    let listed = c.tenants().await.expect("tenants while d001 is broken");
    let ids: Vec<String> = listed.iter().map(|t| t.id.to_string()).collect();
    assert_eq!(ids, ["d001", "d002", "d003"]);
    assert_eq!(listed[1].stats.customers, 8, "{:?}", listed[1]);
    assert_eq!(listed[1].error, None);
    assert_eq!(listed[2].error, None);
    let trouble = listed[0].error.as_deref().unwrap_or_default();
    assert!(
        no_space(trouble),
        "d001 is listed with its error: {:?}",
        listed[0]
    );
    let q = c.queue(&QueueFilter::default(), 0, 50).await;
    match &q {
        Err(e) => assert!(
            e.to_string().contains("d001") && no_space(&e.to_string()),
            "{e}"
        ),
        Ok(page) => panic!("the queue answers as if d001 had no messages: {page:?}"),
    }
    let detail = c.tenant(&tid("d001")).await;
    assert!(
        detail.as_ref().is_err_and(|e| no_space(&e.to_string())),
        "{:?}",
        detail.map(|d| d.summary)
    );
    let out = output_within(
        Command::new(bin("touchpoint"))
            .arg("--socket")
            .arg(&d.socket)
            .arg("tenants"),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("d001: store unreadable: ") && no_space(l)),
        "{stdout}"
    );

    // Space returns: d001 works again, without its failed import.
    fs.free();
    assert_eq!(
        customers(&mut c, "d001").await,
        0,
        "the failed import was rolled back"
    );
    let r = c
        .upload(&tid("d001"), import_fixture(MAY))
        .await
        .expect("May into d001 once space returned");
    assert_eq!(r.status, ImportStatus::Committed, "{r:?}");
    assert_eq!(customers(&mut c, "d001").await, 8);
    drop(c);
    d.stop();

    // A restart does not bring the failed import back.
    let d = TestDaemon::start_with(opts());
    let mut c = d.client().await;
    assert_eq!(customers(&mut c, "d001").await, 8);
    assert_eq!(staging_files(&tenants), Vec::<PathBuf>::new());
    drop(c);
    d.stop();

    // A restart on a full disk serves; the listing needs no tenant store.
    fs.fill_leaving(0);
    let d = TestDaemon::start_with(opts());
    let mut c = d.client().await;
    let listed = c.tenants().await.expect("tenants on a full disk");
    let figures: Vec<(String, u64)> = listed
        .iter()
        .map(|t| (t.id.to_string(), t.stats.customers))
        .collect();
    assert_eq!(
        figures,
        [
            ("d001".to_string(), 8),
            ("d002".to_string(), 8),
            ("d003".to_string(), 0)
        ]
    );
    fs.free();
    assert_eq!(customers(&mut c, "d001").await, 8);
    drop(c);
    d.stop();
}

/// Where no file system can be mounted: the store's own files (the undo
/// journal of an import being applied) run out of space through the
/// store's write seam, after part of the import reached the store.
#[tokio::test]
async fn a_full_disk_under_the_stores_own_writes_fails_an_import_cleanly() {
    full_disk_under_the_stores_own_writes().await;
}

async fn full_disk_under_the_stores_own_writes() {
    let root = tempfile::tempdir().expect("tempdir");
    let state = root.path().join("state");
    let opts = || Options {
        state_dir: Some(state.clone()),
        ..Options::default()
    };
    let d = TestDaemon::start_with(opts());
    let mut c = d.client().await;
    let may = c.upload(&tid("d002"), import_fixture(MAY)).await;
    assert_eq!(may.expect("May into d002").status, ImportStatus::Committed);

    let export = large_export(root.path());
    let full = touchpointd::store::fail_writes_under(
        &state
            .join("tenants/d001")
            .join(touchpointd::store::UNDO_DIR),
        256 * 1024,
    );
    let r = c.upload(&tid("d001"), &export.path).await;
    assert!(failed_for_want_of_space(&r), "{r:?}");
    let text = match &r {
        Err(e) => e.to_string(),
        Ok(report) => format!("{:?}", report.status),
    };
    assert!(text.contains("nothing of it was stored"), "{text}");
    assert_eq!(staging_files(&state.join("tenants")), Vec::<PathBuf>::new());
    let listed = c.tenants().await.expect("tenants");
    let figures: Vec<(String, u64, bool)> = listed
        .iter()
        .map(|t| (t.id.to_string(), t.stats.customers, t.error.is_some()))
        .collect();
    assert_eq!(
        figures,
        [
            ("d001".to_string(), 0, false),
            ("d002".to_string(), 8, false),
            ("d003".to_string(), 0, false)
        ]
    );
    assert_eq!(customers(&mut c, "d001").await, 0, "rolled back");

    drop(full);
    let r = c
        .upload(&tid("d001"), import_fixture(MAY))
        .await
        .expect("May into d001 once space returned");
    assert_eq!(r.status, ImportStatus::Committed, "{r:?}");
    drop(c);
    d.stop();
    let d = TestDaemon::start_with(opts());
    let mut c = d.client().await;
    assert_eq!(customers(&mut c, "d001").await, 8);
    drop(c);
    d.stop();
}

/// The whole state directory on a disk that fills up: the central store
/// (registry, audit log, figures) fails its writes too. While the disk is
/// full the daemon still lists and reads; once space returns the central
/// store takes writes again without a restart: the audit log records the
/// next import and the listing shows its figures.
#[tokio::test]
async fn a_full_disk_under_the_central_store_heals_once_space_returns() {
    const ATTEMPTS: usize = 64;
    let root = tempfile::tempdir().expect("tempdir");
    let state = root.path().join("state");
    let fs = match Tmpfs::mount(&state, 32) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("cannot mount a tmpfs here ({why}): the store's write seam covers the tenants' side");
            return full_disk_under_the_stores_own_writes().await;
        }
    };
    let d = TestDaemon::start_with(Options {
        state_dir: Some(state.clone()),
        ..Options::default()
    });
    let mut c = d.client().await;
    let may = c.upload(&tid("d002"), import_fixture(MAY)).await;
    assert_eq!(may.expect("May into d002").status, ImportStatus::Committed);

    fs.fill_leaving(0);
    // Each refused upload is audited: the audit log grows into space the
    // disk does not have, and the central store's writes fail.
    for _ in 0..ATTEMPTS {
        let r = c.upload(&tid("d001"), import_fixture(MAY)).await;
        assert!(
            !matches!(
                &r,
                Ok(ImportReport {
                    status: ImportStatus::Committed,
                    ..
                })
            ),
            "{r:?}"
        );
    }
    let listed = c.tenants().await.expect("tenants on a full disk");
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[1].stats.customers, 8);

    fs.free();
    let r = c
        .upload(&tid("d001"), import_fixture(MAY))
        .await
        .expect("May into d001 once space returned");
    assert_eq!(r.status, ImportStatus::Committed, "{r:?}");
    let listed = c.tenants().await.expect("tenants");
    assert_eq!(listed[0].stats.customers, 8, "{:?}", listed[0]);
    let audit = c
        .audit(Some(&tid("d001")), 2 * ATTEMPTS as u32, "")
        .await
        .expect("audit");
    let newest = audit.first().expect("an entry");
    assert_eq!(
        (newest.action.as_str(), &newest.outcome),
        (
            "import",
            // May has two rejected rows: imported in part.
            &touchpoint_common::protocol::AuditOutcome::Partial("2 rows rejected".into())
        ),
        "{audit:?}"
    );
    // Entries of the refused uploads that never reached the disk went with
    // the instance that failed: the central store did fail, and healed.
    let refused = audit
        .iter()
        .filter(|e| {
            matches!(
                e.outcome,
                touchpoint_common::protocol::AuditOutcome::Failed(_)
            )
        })
        .count();
    assert!(
        refused < ATTEMPTS,
        "{refused} of {ATTEMPTS} kept: the central store never failed"
    );
    drop(c);
    d.stop();
}

/// The disk under the dealers' stores is full and d001's store cannot be
/// read. The overview (the console's dashboard) and the dispatch status
/// still answer for every tenant: d001's row says why it has no figures,
/// instead of the whole answer failing (the overview) or the row silently
/// missing (the dispatch queues); the console prints the reason. Once
/// space returns, d001 is counted again.
#[tokio::test]
async fn one_broken_tenant_fails_neither_the_overview_nor_the_dispatch_status() {
    let root = tempfile::tempdir().expect("tempdir");
    let state = root.path().join("state");
    let tenants = state.join("tenants");
    let fs = Tmpfs::mount(&tenants, 64);
    if let Err(why) = &fs {
        eprintln!("cannot mount a tmpfs here ({why}): d001's store is made unopenable instead");
    }
    let spool = root.path().join("out");
    let opts = || {
        Options {
        state_dir: Some(state.clone()),
        dispatch: Some(format!(
            "[dispatch]\ntick_ms = 50\nbatch_at = \"23:59\"\nspool_dir = {:?}\nletters_dir = {:?}\ncalls_dir = {:?}\n",
            spool.join("mail").display().to_string(),
            spool.join("letters").display().to_string(),
            spool.join("calls").display().to_string(),
        )),
        ..Options::default()
    }
    };
    let mut d = TestDaemon::start_with(opts());
    let mut c = d.client().await;
    let may = c.upload(&tid("d002"), import_fixture(MAY)).await;
    assert_eq!(may.expect("May into d002").status, ImportStatus::Committed);
    let whole = c.overview(None).await.expect("overview before");
    assert!(whole.tenants.iter().all(|t| t.error.is_none()), "{whole:?}");

    match &fs {
        Ok(fs) => {
            let export = large_export(root.path());
            let csv = std::fs::metadata(&export.path).expect("export").len();
            fs.fill_leaving(3 * csv);
            let r = c.upload(&tid("d001"), &export.path).await;
            assert!(failed_for_want_of_space(&r), "{r:?}");
            fs.fill_leaving(0);
        }
        Err(_) => {
            // A file where d001's database belongs keeps it from opening
            // (put there while no daemon has it open).
            drop(c);
            d.stop();
            let store = tenants.join("d001").join("store");
            std::fs::rename(&store, tenants.join("d001").join("store.aside")).expect("aside");
            std::fs::write(&store, "not a database").expect("block the store");
            d = TestDaemon::start_with(opts());
            c = d.client().await;
        }
    }
    let trouble = |e: &Option<String>| e.as_deref().is_some_and(|e| !e.is_empty());

    let o = c
        .overview(None)
        .await
        .expect("the overview answers while d001 is broken");
    let rows: Vec<(&str, bool)> = o
        .tenants
        .iter()
        .map(|t| (t.tenant.as_str(), trouble(&t.error)))
        .collect();
    assert_eq!(
        rows,
        [("d001", true), ("d002", false), ("d003", false)],
        "{o:?}"
    );
    assert!(
        o.alerts.iter().any(|a| a.tenant == Some(tid("d001"))
            && a.level == touchpoint_common::protocol::AlertLevel::Critical
            && a.text.contains("store unreadable")),
        "{:?}",
        o.alerts
    );
    assert!(
        o.budgets.iter().all(|b| b.tenant != tid("d001")),
        "a broken tenant has no spending of 0: {:?}",
        o.budgets
    );

    let st = c.dispatch_status().await.expect("dispatch status");
    let queues: Vec<(&str, bool)> = st
        .queues
        .iter()
        .map(|q| (q.tenant.as_str(), trouble(&q.error)))
        .collect();
    assert_eq!(
        queues,
        [("d001", true), ("d002", false), ("d003", false)],
        "{st:?}"
    );

    for command in ["overview", "dispatch"] {
        let out = output_within(
            Command::new(bin("touchpoint"))
                .arg("--socket")
                .arg(&d.socket)
                .arg(command),
            Duration::from_secs(60),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{command}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("d001: store unreadable: ")),
            "{command}: {stdout}"
        );
    }

    // Space returns (or the block goes): d001 is counted again.
    match &fs {
        Ok(fs) => fs.free(),
        Err(_) => {
            let store = tenants.join("d001").join("store");
            std::fs::remove_file(&store).expect("unblock the store");
            std::fs::rename(tenants.join("d001").join("store.aside"), &store).expect("back");
        }
    }
    let o = c.overview(None).await.expect("overview after");
    assert!(o.tenants.iter().all(|t| t.error.is_none()), "{o:?}");
    // Its money is read again too: the overview's rows are the ledger's.
    let month = touchpoint_common::outbox::month_of(o.today);
    let costs = c
        .costs(None, Some(month))
        .await
        .expect("costs of every tenant");
    assert_eq!(o.budgets, costs);
    drop(c);
    d.stop();
}
