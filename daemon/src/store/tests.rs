use super::*;
use touchpoint_common::domain::{Channel, Consent, Customer, ImportReport, Timestamp, Vehicle};
use touchpoint_common::outbox::{Message, MessageStatus};

fn cfg(max_open: u32) -> StoresConfig {
    StoresConfig {
        max_open_tenants: max_open,
        ..StoresConfig::default()
    }
}

fn tid(s: &str) -> TenantId {
    TenantId::new(s).expect("tenant id")
}

fn customer(no: &str, last: &str) -> Customer {
    Customer {
        customer_no: no.into(),
        last_name: last.into(),
        language: "de".into(),
        ..Default::default()
    }
}

fn vehicle(vin: &str, owner: &str) -> Vehicle {
    Vehicle {
        vin: vin.into(),
        customer_no: owner.into(),
        model: "Fjord".into(),
        ..Default::default()
    }
}

fn report(tenant: &TenantId, id: u64, hash: &str) -> ImportReport {
    ImportReport::new(id, tenant.clone(), "kunden.csv", hash, Timestamp(0))
}

fn stores(dir: &std::path::Path, max_open: u32) -> Stores {
    let s = Stores::open(dir, &cfg(max_open)).expect("open stores");
    for t in ["d001", "d002", "d003", "d004"] {
        s.central().register_tenant(&tid(t), t).expect("register");
    }
    s
}

/// A customer `no` who said yes to email, into an import.
fn put_opted_in(tx: &mut ImportTxn<'_>, no: &str) {
    tx.put_customer(&customer(no, "Neu")).expect("put");
    tx.put_consent(&Consent {
        customer_no: no.into(),
        channel: Channel::Email,
        granted: true,
        source: "test".into(),
        at: Timestamp(100),
    })
    .expect("consent");
}

fn import_one(store: &TenantStore, c: Customer, v: Option<Vehicle>, hash: &str) {
    let id = store.next_import_id().expect("id");
    let mut tx = store.begin_import(id).expect("begin");
    tx.put_customer(&c).expect("put");
    if let Some(v) = v {
        tx.put_vehicle(&v).expect("put vehicle");
    }
    tx.commit(&report(store.id(), id, hash)).expect("commit");
}

#[test]
fn one_tenants_data_is_invisible_through_another_tenants_handle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 8);
    let a = s.tenant(&tid("d001")).expect("a");
    let b = s.tenant(&tid("d002")).expect("b");
    import_one(
        &a,
        customer("K1", "Müller"),
        Some(vehicle("WNW12345678901234", "K1")),
        "h1",
    );

    assert!(a.customer("K1").expect("read").is_some());
    assert!(b.customer("K1").expect("read").is_none());
    assert!(b.vehicle("WNW12345678901234").expect("read").is_none());
    assert_eq!(b.customers().count(), 0);
    assert_eq!(b.vehicles().count(), 0);
    assert_eq!(b.vehicles_of("K1").expect("read").len(), 0);
    assert_eq!(b.imports(10).expect("read").len(), 0);
    assert_eq!(b.import_by_hash("h1").expect("read"), None);
    assert_eq!(b.stats().expect("stats").customers, 0);
    assert_eq!(a.stats().expect("stats").customers, 1);
    // Separate databases on disk, too.
    assert_ne!(s.tenant_dir(a.id()), s.tenant_dir(b.id()));
}

#[test]
fn unknown_tenants_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 8);
    let err = s.tenant(&tid("d999")).err().expect("must fail");
    assert!(err.to_string().contains("unknown tenant \"d999\""), "{err}");
    assert!(!dir.path().join("tenants/d999").exists());
}

#[test]
fn uncommitted_import_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 8);
    let a = s.tenant(&tid("d001")).expect("a");
    {
        let mut tx = a.begin_import(1).expect("begin");
        tx.put_customer(&customer("K1", "Weiß")).expect("put");
        assert!(
            a.customer("K1").expect("read").is_none(),
            "nothing visible before commit"
        );
        // dropped without commit
    }
    assert!(a.customer("K1").expect("read").is_none());
    let tx = a.begin_import(2).expect("begin again after a dropped txn");
    tx.abort().expect("abort");
    assert_eq!(a.stats().expect("stats").customers, 0);
    assert!(!s.tenant_dir(a.id()).join("import.staging").exists());
}

/// Simulates kills: while staging (this version's staging file is simply
/// removed), and an earlier version's import interrupted after its commit
/// point (its marker and its staging file, which has no magic): completed.
#[test]
fn a_kill_while_staging_leaves_nothing_and_an_earlier_versions_pending_import_is_completed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let staging = dir.path().join("tenants/d001/import.staging");
    {
        let s = stores(dir.path(), 8);
        let a = s.tenant(&tid("d001")).expect("a");
        let mut tx = a.begin_import(1).expect("begin");
        tx.put_customer(&customer("K1", "Schröder")).expect("put");
        tx.crash();
        assert!(staging.exists());
        drop(a);
        s.close_all().expect("close");
    }
    {
        let s = stores(dir.path(), 8);
        let a = s.tenant(&tid("d001")).expect("reopen");
        assert!(a.customer("K1").expect("read").is_none(), "discarded");
        assert!(!staging.exists());

        let mut tx = a.begin_import(2).expect("begin");
        tx.put_customer(&customer("K2", "Öztürk")).expect("put");
        tx.put_vehicle(&vehicle("WNW12345678901234", "K2"))
            .expect("put");
        tx.crash();
        // As an earlier version left it: no magic, and its marker.
        let bytes = std::fs::read(&staging).expect("staging");
        std::fs::write(&staging, &bytes[8..]).expect("legacy staging");
        let template =
            touchpoint_common::codec::encode_record(&report(a.id(), 2, "h2")).expect("enc");
        a.records().plant_pending_import(template);
        a.flush().expect("flush");
        drop(a);
        s.close_all().expect("close");
    }
    let s = stores(dir.path(), 8);
    let a = s.tenant(&tid("d001")).expect("reopen");
    assert!(
        a.customer("K2").expect("read").is_some(),
        "completed by recovery"
    );
    assert!(a.take_completed_import(), "due for its identity pass");
    assert!(!a.take_completed_import());
    assert_eq!(a.vehicles_of("K2").expect("read").len(), 1);
    let st = a.stats().expect("stats");
    assert_eq!((st.customers, st.vehicles, st.imports), (1, 1, 1));
    assert_eq!(a.import_by_hash("h2").expect("hash"), Some(2));
    assert!(!a.records().pending_import());
    assert!(!staging.exists());
    assert!(!dir.path().join("tenants/d001/import.undo").exists());
}

/// Every key and value of a tree, in order.
type TreeDump = Vec<(Vec<u8>, Vec<u8>)>;

/// What a tenant holds, to compare before and after a failed import.
fn snapshot(a: &TenantStore) -> Vec<(String, TreeDump)> {
    let trees = a.records().import_trees();
    let mut out: Vec<(String, TreeDump)> = trees
        .iter()
        .map(|(name, t)| {
            (
                name.to_string(),
                t.iter()
                    .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).expect("read"))
                    .collect(),
            )
        })
        .collect();
    out.push((
        "counters".into(),
        vec![(
            b"counters".to_vec(),
            a.records()
                .counters_bytes()
                .map(|v| v.to_vec())
                .unwrap_or_default(),
        )],
    ));
    out
}

/// A large import whose undo journal runs out of space part-way: batches
/// were already written by then. The import fails, says so, and leaves the
/// tenant exactly as it was (updated records, a vehicle that changed hands,
/// consents); its staging file and journal are gone; the next import works.
#[test]
fn an_import_that_runs_out_of_space_while_applying_is_rolled_back_entirely() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 8);
    let a = s.tenant(&tid("d001")).expect("a");
    let mut k1 = customer("K1", "Müller");
    k1.email = Some("m@example.de".into());
    import_one(&a, k1, Some(vehicle("WNW12345678901234", "K1")), "h1");
    let before = snapshot(&a);
    let figures_before = s.central().figures(&tid("d001")).expect("figures");

    let n = 3 * records::import::batch_size() + 17;
    let mut tx = a.begin_import(2).expect("begin");
    tx.put_customer(&customer("K1", "Müller-Lüdenscheidt"))
        .expect("update");
    tx.put_vehicle(&vehicle("WNW12345678901234", "K2"))
        .expect("moves to K2");
    for i in 0..n {
        put_opted_in(&mut tx, &format!("K{:06}", i + 2));
    }
    let undo = dir.path().join("tenants/d001/import.undo");
    // Enough for a few batches of every group, not for all of them.
    let fault = fail_writes_under(&undo, 3 * 64 * 1024);
    let err = tx
        .commit(&report(a.id(), 2, "h2"))
        .expect_err("the journal ran out of space");
    drop(fault);
    let text = err.to_string();
    assert!(
        text.starts_with("import #2 into tenant d001 failed and nothing of it was stored: ")
            && text.contains("No space left on device"),
        "{text}"
    );
    assert!(matches!(
        err,
        StoreError::ImportFailed {
            rolled_back: true,
            ..
        }
    ));
    assert!(a.trouble().is_none(), "the store still takes writes");
    assert_eq!(snapshot(&a), before, "everything as before the import");
    assert_eq!(
        s.central().figures(&tid("d001")).expect("figures"),
        figures_before
    );
    assert!(!undo.exists());
    assert!(!dir.path().join("tenants/d001/import.staging").exists());

    // The same import with space: committed whole.
    let mut tx = a.begin_import(3).expect("begin");
    for i in 0..n {
        tx.put_customer(&customer(&format!("K{:06}", i + 2), "Neu"))
            .expect("put");
    }
    let r = tx.commit(&report(a.id(), 3, "h3")).expect("commit");
    assert_eq!(r.customers.inserted, n as u64);
    assert_eq!(a.stats().expect("stats").customers, n as u64 + 1);
    assert!(!dir.path().join("tenants/d001/import.undo.done").exists());
}

/// An import whose staging file cannot be written leaves no staging file
/// behind: it could be as large as the export.
#[test]
fn a_failed_staging_write_removes_the_staging_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 8);
    let a = s.tenant(&tid("d001")).expect("a");
    let staging = dir.path().join("tenants/d001/import.staging");
    let _fault = fail_writes_under(&staging, 0);
    let mut tx = a.begin_import(1).expect("begin");
    let mut failed = None;
    for i in 0..100_000 {
        if let Err(e) = tx.put_customer(&customer(&format!("K{i:06}"), "Voll")) {
            failed = Some(e);
            break;
        }
    }
    let e = failed.expect("staging ran out of space");
    assert!(e.to_string().contains("No space left on device"), "{e}");
    assert!(staging.exists());
    drop(tx);
    assert!(!staging.exists(), "removed with the failed import");
    assert_eq!(a.stats().expect("stats").customers, 0);
}

#[test]
fn reimport_counts_unchanged_and_vehicle_moves_holder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 8);
    let a = s.tenant(&tid("d001")).expect("a");
    import_one(
        &a,
        customer("K1", "Müller"),
        Some(vehicle("WNW12345678901234", "K1")),
        "h1",
    );
    let mut tx = a.begin_import(2).expect("begin");
    tx.put_customer(&customer("K1", "Müller")).expect("put");
    tx.put_customer(&customer("K2", "Meier")).expect("put");
    tx.put_vehicle(&vehicle("WNW12345678901234", "K1"))
        .expect("put");
    tx.put_vehicle(&vehicle("WNW12345678901234", "K2"))
        .expect("put");
    let r = tx.commit(&report(a.id(), 2, "h2")).expect("commit");
    assert_eq!(
        (
            r.customers.inserted,
            r.customers.updated,
            r.customers.unchanged
        ),
        (1, 0, 1)
    );
    assert_eq!(
        (
            r.vehicles.inserted,
            r.vehicles.updated,
            r.vehicles.unchanged
        ),
        (0, 1, 1)
    );
    assert!(a.vehicles_of("K1").expect("read").is_empty());
    assert_eq!(a.vehicles_of("K2").expect("read").len(), 1);
    let st = a.stats().expect("stats");
    assert_eq!((st.customers, st.vehicles, st.imports), (2, 1, 2));
    assert_eq!(a.import_by_hash("h2").expect("hash"), Some(2));
}

#[test]
fn absent_columns_keep_stored_fields() {
    use touchpoint_common::domain::{FieldSet, ImportField};
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 8);
    let a = s.tenant(&tid("d001")).expect("a");
    let mut full = customer("K1", "Müller");
    full.email = Some("m@example.de".into());
    import_one(&a, full, None, "h1");
    let present: FieldSet = [ImportField::CustomerNo, ImportField::LastName]
        .into_iter()
        .collect();
    let mut tx = a
        .begin_import_with(2, present, Timestamp(5))
        .expect("begin");
    tx.put_customer(&customer("K1", "Müller-Lüdenscheidt"))
        .expect("put");
    tx.commit(&report(a.id(), 2, "h2")).expect("commit");
    let c = a.customer("K1").expect("read").expect("some");
    assert_eq!(c.last_name, "Müller-Lüdenscheidt");
    assert_eq!(
        c.email.as_deref(),
        Some("m@example.de"),
        "no email column: stored email kept"
    );
}

#[test]
fn latest_consent_statement_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 8);
    let a = s.tenant(&tid("d001")).expect("a");
    let c = |granted, at| Consent {
        customer_no: "K1".into(),
        channel: touchpoint_common::domain::Channel::Email,
        granted,
        source: "test".into(),
        at: Timestamp(at),
    };
    let mut tx = a.begin_import(1).expect("begin");
    tx.put_consent(&c(true, 100)).expect("put");
    tx.put_consent(&c(false, 50)).expect("older");
    tx.put_consent(&c(false, 200)).expect("newer");
    let r = tx.commit(&report(a.id(), 1, "h")).expect("commit");
    assert_eq!(
        (
            r.consents.inserted,
            r.consents.updated,
            r.consents.unchanged
        ),
        (1, 1, 1)
    );
    let got = a
        .consent("K1", touchpoint_common::domain::Channel::Email)
        .expect("read")
        .expect("some");
    assert!(!got.granted);
    assert_eq!(a.stats().expect("stats").consents, 1);
}

/// Opt-in counts read consent per person, as the planner and dispatch do:
/// a withdrawal under a merged number outweighs the survivor's older grant,
/// and a later grant under a merged number counts for the survivor.
#[test]
fn opt_ins_count_a_person_by_the_statement_that_stands_across_merged_numbers() {
    use touchpoint_common::domain::{Channel, MergeRecord};
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 8);
    let a = s.tenant(&tid("d001")).expect("a");
    let said = |no: &str, channel, granted, at| Consent {
        customer_no: no.into(),
        channel,
        granted,
        source: "test".into(),
        at: Timestamp(at),
    };
    let mut tx = a.begin_import(1).expect("begin");
    for no in ["K1", "K2", "K3", "K4"] {
        tx.put_customer(&customer(no, "Berg")).expect("customer");
    }
    // K1 and K2 are one person: K1 granted email, K2 withdrew it later.
    tx.put_consent(&said("K1", Channel::Email, true, 100))
        .expect("put");
    tx.put_consent(&said("K2", Channel::Email, false, 200))
        .expect("put");
    // K3 and K4 are one person: K3 withdrew phone, K4 granted it later.
    tx.put_consent(&said("K3", Channel::Phone, false, 100))
        .expect("put");
    tx.put_consent(&said("K4", Channel::Phone, true, 300))
        .expect("put");
    tx.commit(&report(a.id(), 1, "h")).expect("commit");
    let merge = |id, survivor: &str, merged: &str| MergeRecord {
        merge_id: id,
        survivor: survivor.into(),
        merged: merged.into(),
        reasons: Vec::new(),
        at: Timestamp(400),
        import_id: None,
        undone_at: None,
        undone_by: None,
    };
    a.record_merges(&[merge(1, "K1", "K2"), merge(2, "K3", "K4")])
        .expect("merges");
    let o = a.opt_ins().expect("opt-ins");
    assert_eq!((o.email, o.phone), (0, 1), "{o:?}");
}

#[test]
fn open_databases_are_bounded_and_idle_ones_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 2);
    let a = s.tenant(&tid("d001")).expect("a");
    drop(a);
    s.tenant(&tid("d002")).expect("b");
    s.tenant(&tid("d003")).expect("c");
    assert_eq!(s.open_count(), 2);
    // A handle still held elsewhere is reused, never opened twice.
    let held = s.tenant(&tid("d004")).expect("d");
    s.tenant(&tid("d001")).expect("a again");
    s.tenant(&tid("d002")).expect("b again");
    let again = s.tenant(&tid("d004")).expect("d again");
    assert!(Arc::ptr_eq(&held, &again));
    drop((held, again));
    let open = s.open_count();
    assert_eq!(s.close_idle(Duration::ZERO), open);
    assert_eq!(s.open_count(), 0);
}

/// Polls `cond` until it holds or a minute passes.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// sled lets go of a database's file lock only when every part of it is
/// gone, and its I/O threads may hold a part a while after the last handle
/// is dropped. A tree handle stands in for them here: a request for the
/// tenant while its closed instance still holds the lock waits for the
/// lock to go and then opens it; it never fails with the lock
/// ("WouldBlock") of our own process.
#[test]
fn a_request_for_a_store_whose_closed_instance_still_holds_its_lock_waits_for_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 8);
    let d001 = tid("d001");
    let a = s.tenant(&d001).expect("a");
    import_one(&a, customer("K1", "Müller"), None, "h1");
    let lingering = a.records().import_trees()[0].1.clone();
    drop(a);
    std::thread::scope(|scope| {
        let closer = scope.spawn(|| s.close_idle(Duration::ZERO));
        assert!(eventually(|| s.closing(&d001)), "never closing");
        let opener = scope.spawn(|| {
            s.tenant(&d001)
                .and_then(|a| a.customer("K1"))
                .map(|c| c.map(|c| c.last_name))
        });
        assert!(
            eventually(|| s.waiting_for(&d001) == 1),
            "the request does not wait for the closing store"
        );
        drop(lingering);
        assert_eq!(closer.join().expect("closer"), 1);
        assert_eq!(
            opener.join().expect("opener").expect("opened once let go"),
            Some("Müller".to_string())
        );
    });
    assert_eq!(s.open_count(), 1);
}

/// Many requests for more tenants than may be open, with the idle closer
/// running all the time: every request gets its store.
#[test]
fn requests_racing_with_eviction_and_the_idle_closer_all_get_their_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 2);
    let ids = ["d001", "d002", "d003", "d004"].map(tid);
    for id in &ids {
        let t = s.tenant(id).expect("open");
        import_one(&t, customer("K1", id.as_str()), None, "h1");
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let closer = scope.spawn(|| {
            let mut closed = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                closed += s.close_idle(Duration::ZERO);
            }
            closed
        });
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let (s, ids) = (&s, &ids);
                scope.spawn(move || -> Result<()> {
                    for i in 0..150 {
                        let id = &ids[(i * 7 + w) % ids.len()];
                        let t = s.tenant(id)?;
                        let c = t.customer("K1")?.map(|c| c.last_name);
                        assert_eq!(c.as_deref(), Some(id.as_str()));
                        if i % 10 == 0 {
                            t.update_import(&report(id, 1, "h1"))?;
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join()
                .expect("worker")
                .expect("every request got its store");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(closer.join().expect("closer") > 0);
    });
    assert!(s.open_count() <= 2, "{}", s.open_count());
}

/// The figures the tenants listing shows come from the central store:
/// current after an import, and read with no tenant store open.
#[test]
fn the_listing_figures_follow_the_writes_and_need_no_open_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 8);
    let d001 = tid("d001");
    let a = s.tenant(&d001).expect("a");
    import_one(
        &a,
        customer("K1", "Müller"),
        Some(vehicle("WNW12345678901234", "K1")),
        "h1",
    );
    drop(a);
    s.close_all().expect("close");
    assert_eq!(s.open_count(), 0);
    let listed = s.summary(&d001, "Autohaus Müller".into());
    assert_eq!(s.open_count(), 0, "listing opened a store");
    assert_eq!(listed.error, None);
    assert_eq!(
        (
            listed.stats.customers,
            listed.stats.vehicles,
            listed.stats.imports
        ),
        (1, 1, 1)
    );
    assert!(listed.stats.disk_bytes > 0, "read from the file system");
    let last = listed.last_import.expect("last import");
    assert_eq!((last.import_id, last.file_name.as_str()), (1, "kunden.csv"));
    // A tenant never opened: nothing yet, and no store created.
    let empty = s.summary(&tid("d002"), "x".into());
    assert_eq!(empty.stats, Default::default());
    assert!(!dir.path().join("tenants/d002/store").exists());
}

/// A tenant whose store cannot be opened is listed with the reason, and
/// the next request tries again.
#[test]
fn a_store_that_cannot_be_opened_is_reported_and_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 8);
    let d002 = tid("d002");
    let store_dir = dir.path().join("tenants/d002/store");
    std::fs::create_dir_all(store_dir.parent().expect("parent")).expect("mkdir");
    std::fs::write(&store_dir, b"not a database").expect("block the store");
    let e = s.tenant(&d002).err().expect("cannot open");
    let listed = s.summary(&d002, "Autohaus Weiß".into());
    assert_eq!(listed.error.as_deref(), Some(e.to_string().as_str()));
    assert!(s.summary(&tid("d001"), "x".into()).error.is_none());
    std::fs::remove_file(&store_dir).expect("unblock");
    s.tenant(&d002).expect("opened on the next request");
    assert_eq!(s.summary(&d002, "Autohaus Weiß".into()).error, None);
}

/// A snapshot sled could not finish (the disk filled up while it wrote it)
/// must not make the database unopenable: sled 0.34 would read it as the
/// newest snapshot at every open and call the database corrupt.
#[test]
fn an_unfinished_snapshot_left_by_a_full_disk_does_not_make_a_store_unopenable() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let s = stores(dir.path(), 8);
        let a = s.tenant(&tid("d001")).expect("a");
        import_one(&a, customer("K1", "Müller"), None, "h1");
        drop(a);
        s.close_all().expect("close");
    }
    for db in ["tenants/d001/store", "central"] {
        std::fs::write(
            dir.path().join(db).join("snap.7FFFFFFFFFFFFFFF.generating"),
            b"cut short by ENOSPC",
        )
        .expect("unfinished snapshot");
    }
    let s = stores(dir.path(), 8);
    let a = s.tenant(&tid("d001")).expect("opens");
    assert!(a.customer("K1").expect("read").is_some());
    assert!(!dir
        .path()
        .join("tenants/d001/store/snap.7FFFFFFFFFFFFFFF.generating")
        .exists());
}

/// After an I/O error a handle takes no more writes (sled's memory may be
/// ahead of its disk), the listing says why until the database opens
/// again, and the next request gets it opened afresh, with what is on disk.
#[test]
fn a_store_broken_by_an_io_error_refuses_writes_and_is_reopened_on_the_next_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 8);
    let d001 = tid("d001");
    let a = s.tenant(&d001).expect("a");
    import_one(&a, customer("K1", "Müller"), None, "h1");
    a.mark_broken("IO error: No space left on device");
    let e = a
        .update_import(&report(&d001, 1, "h1"))
        .expect_err("no writes through a broken handle");
    assert!(e.to_string().contains("No space left on device"), "{e}");
    assert!(s
        .trouble(&d001)
        .is_some_and(|t| t.contains("No space left on device")));
    drop(a);
    // Closed as soon as nobody uses it, and still listed in trouble until
    // it opens again.
    assert_eq!(s.close_idle(Duration::from_secs(3600)), 1);
    assert_eq!(s.open_count(), 0);
    assert!(s
        .trouble(&d001)
        .is_some_and(|t| t.contains("No space left on device")));
    let b = s.tenant(&d001).expect("reopened");
    assert!(b.trouble().is_none());
    assert_eq!(s.trouble(&d001), None);
    assert!(b.customer("K1").expect("read").is_some());
    b.update_import(&report(&d001, 1, "h1"))
        .expect("writes again");
}

/// The central store after an I/O error: once there is room again, its
/// next use opens the database afresh (the instance in service is dropped
/// first), with everything it held, and writes work again.
#[test]
fn the_central_store_is_reopened_after_an_io_error() {
    use touchpoint_common::protocol::{AuditEntry, AuditOutcome};
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 8);
    let c = s.central();
    let before = c.db().expect("db");
    let old = Arc::downgrade(&before);
    drop(before);
    let e = c.fail()(sled::Error::Io(std::io::Error::from_raw_os_error(28)));
    assert!(e.to_string().contains("No space left on device"), "{e}");
    let entry = AuditEntry {
        seq: 0,
        at: Timestamp(1),
        uid: 0,
        user: "root".into(),
        role: None,
        action: "test".into(),
        tenant: None,
        detail: String::new(),
        outcome: AuditOutcome::Ok,
    };
    c.audit(entry).expect("written once reopened");
    assert!(old.upgrade().is_none(), "the broken instance was dropped");
    assert_eq!(c.tenants().expect("registry").len(), 4);
    assert_eq!(c.audit_log(None, 10).expect("audit").len(), 1);
}

#[test]
fn audit_log_is_newest_first_and_filterable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 2);
    for (i, t) in ["d001", "d002", "d001"].iter().enumerate() {
        s.central()
            .audit(touchpoint_common::protocol::AuditEntry {
                seq: 0,
                at: Timestamp(i as i64),
                uid: 0,
                user: "root".into(),
                role: None,
                action: format!("a{i}"),
                tenant: Some(tid(t)),
                detail: String::new(),
                outcome: touchpoint_common::protocol::AuditOutcome::Ok,
            })
            .expect("audit");
    }
    let all = s.central().audit_log(None, 10).expect("log");
    assert_eq!(
        all.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["a2", "a1", "a0"]
    );
    let d1 = s.central().audit_log(Some(&tid("d001")), 10).expect("log");
    assert_eq!(d1.len(), 2);
}

fn planned(id: u64, recipient: &str, on: touchpoint_common::Date, cost: i64) -> Message {
    use touchpoint_common::outbox::Occasion;
    use touchpoint_common::policy::OccasionKind;
    Message {
        id,
        message_id: format!("<tp.d001.{id}@test>"),
        recipient: recipient.into(),
        channel: touchpoint_common::domain::Channel::Post,
        service: "service_due".into(),
        template: "service_due".into(),
        occasions: vec![Occasion {
            key: format!("service_due:V{id}:2025-01-01"),
            service: "service_due".into(),
            kind: OccasionKind::ServiceDue,
            vin: Some(format!("V{id}")),
            due: on,
            reason: "due".into(),
            value: 3800,
        }],
        send_on: on,
        send_at: 540,
        cost,
        value: 3800,
        status: MessageStatus::Planned,
        why: Vec::new(),
        planned_at: Timestamp(0),
        policy: 1,
        history: Vec::new(),
        dispatch: Default::default(),
    }
}

#[test]
fn a_run_of_many_chunks_is_written_whole_and_the_ledger_follows_its_messages() {
    use touchpoint_common::outbox::month_of;
    use touchpoint_common::Date;
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 8);
    let t = s.tenant(&tid("d001")).expect("tenant");
    let (nov, dec) = (
        Date::from_ymd(2026, 11, 30).expect("day"),
        Date::from_ymd(2026, 12, 1).expect("day"),
    );
    // Several chunks' worth, over two months and many recipients.
    let new: Vec<Message> = (1..=700)
        .map(|id| {
            planned(
                id,
                &format!("K{}", id % 50),
                if id % 3 == 0 { nov } else { dec },
                95,
            )
        })
        .collect();
    t.commit_plan(&PlanWrite {
        new: &new,
        revised: &[],
        stamp: 7,
    })
    .expect("commit");
    assert_eq!(t.message_count(), 700);
    assert_eq!(t.plan_stamp().expect("stamp"), Some(7));
    let in_month = |d: Date| new.iter().filter(|m| m.send_on == d).count() as i64 * 95;
    for d in [nov, dec] {
        let e = t.ledger_entry(month_of(d), "service_due").expect("ledger");
        assert_eq!(e.reserved, in_month(d));
    }
    assert_eq!(
        t.planned_occasion("service_due:V700:2025-01-01")
            .expect("occ"),
        Some(700)
    );
    assert_eq!(t.contacts_of("K7").expect("contacts").len(), 14);
    assert_eq!(t.day_load(nov).expect("load").values().sum::<u32>(), 700);

    // Cancelling releases the budget, frees the occasions and the contacts.
    let cancelled: Vec<Message> = new[..300]
        .iter()
        .map(|m| Message {
            status: MessageStatus::Cancelled,
            ..m.clone()
        })
        .collect();
    t.commit_plan(&PlanWrite {
        new: &[],
        revised: &cancelled,
        stamp: 8,
    })
    .expect("cancel");
    assert_eq!(t.plan_stamp().expect("stamp"), Some(8));
    for d in [nov, dec] {
        let left = new[300..].iter().filter(|m| m.send_on == d).count() as i64 * 95;
        let e = t.ledger_entry(month_of(d), "service_due").expect("ledger");
        assert_eq!(e.reserved, left);
    }
    assert_eq!(
        t.planned_occasion("service_due:V1:2025-01-01")
            .expect("occ"),
        None
    );
    assert_eq!(t.day_load(nov).expect("load").values().sum::<u32>(), 400);
    assert_eq!(
        t.message(1).expect("read").map(|m| m.status),
        Some(MessageStatus::Cancelled)
    );
}

/// A store still held when the stores close at shutdown (work that outlived
/// the drain) is left to its holder, stays `Closing` so that no late request
/// opens it again against its own lock, and the stop is not recorded as
/// clean: the next start knows to refresh the figures.
#[test]
fn a_store_still_held_at_shutdown_is_not_closed_under_its_holder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 8);
    let held = s.tenant(&tid("d001")).expect("d001");
    let _other = s.tenant(&tid("d002")).expect("d002");
    drop(_other);
    s.close_all().expect("close all");
    assert!(s.closing(&tid("d001")), "the held store's slot was freed");
    assert!(!s.closing(&tid("d002")));
    drop(held);
    drop(s);
    let again = stores(dir.path(), 8);
    assert!(
        again.unclean_start(),
        "a stop with a store in use counted as clean"
    );
}

/// An import report stored by the version before (its tally without the
/// unrecognised visit types) still reads, its tally kept.
#[test]
fn an_import_report_of_the_version_before_still_reads() {
    use touchpoint_common::codec::encode_record;
    use touchpoint_common::domain::{ImportReportV2, ResponseTally, ResponseTallyV1};
    let r = report(&TenantId::new("d001").expect("tenant id"), 7, "abc");
    let old = ImportReportV2 {
        import_id: r.import_id,
        tenant: r.tenant.clone(),
        file_name: r.file_name.clone(),
        content_hash: r.content_hash.clone(),
        bytes: r.bytes,
        started_at: r.started_at,
        finished_at: r.finished_at,
        status: r.status.clone(),
        format: r.format.clone(),
        rows_total: 3,
        rows_ok: 3,
        rows_rejected: 0,
        customers: r.customers,
        vehicles: r.vehicles,
        consents: r.consents,
        visits: r.visits,
        unmapped_columns: Vec::new(),
        errors: Vec::new(),
        errors_truncated: 0,
        merges: 0,
        responses: r.responses,
        credited: Some(ResponseTallyV1 {
            to_messages: 2,
            to_control: 0,
            organic: 1,
        }),
    };
    let bytes = encode_record(&old).expect("encode");
    let back = db::decode_import_report("imports", &bytes).expect("decode");
    assert_eq!(back.rows_total, 3);
    assert_eq!(
        back.corrections,
        touchpoint_common::domain::Corrections::default()
    );
    assert_eq!(
        back.credited,
        Some(ResponseTally {
            to_messages: 2,
            to_control: 0,
            organic: 1,
            ..ResponseTally::default()
        })
    );
    // And this version's reads as itself.
    let mut now = back.clone();
    now.credited
        .as_mut()
        .expect("a tally")
        .set_unrecognised([("WA", 2)]);
    let bytes = encode_record(&now).expect("encode");
    assert_eq!(
        db::decode_import_report("imports", &bytes).expect("decode"),
        now
    );
}

/// An import report stored by the version before (without warnings, parked
/// vehicles, stale records) still reads, with none of them; so do the
/// tenant figures that carry one.
#[test]
fn an_import_report_without_warnings_still_reads() {
    use touchpoint_common::codec::encode_record;
    use touchpoint_common::domain::{ImportReportV3, RowError, Stale};
    let r = report(&TenantId::new("d001").expect("tenant id"), 9, "def");
    let old = ImportReportV3 {
        import_id: r.import_id,
        tenant: r.tenant.clone(),
        file_name: r.file_name.clone(),
        content_hash: r.content_hash.clone(),
        bytes: r.bytes,
        started_at: r.started_at,
        finished_at: r.finished_at,
        status: r.status.clone(),
        format: r.format.clone(),
        rows_total: 4,
        rows_ok: 3,
        rows_rejected: 1,
        customers: r.customers,
        vehicles: r.vehicles,
        consents: r.consents,
        visits: r.visits,
        unmapped_columns: vec!["Fax".into()],
        errors: vec![RowError {
            file: "k.csv".into(),
            line: 3,
            field: "vin".into(),
            reason: "bad".into(),
        }],
        errors_truncated: 0,
        merges: 2,
        responses: r.responses,
        credited: None,
        corrections: r.corrections,
    };
    let bytes = encode_record(&old).expect("encode");
    let back = db::decode_import_report("imports", &bytes).expect("decode");
    assert_eq!(
        (
            back.rows_ok,
            back.rows_rejected,
            back.merges,
            back.errors.len()
        ),
        (3, 1, 2, 1)
    );
    assert_eq!(
        (
            back.rows_warned,
            back.warnings.len(),
            back.parked,
            back.stale
        ),
        (0, 0, 0, Stale::default())
    );
    assert_eq!(back.previous_at, None);
    // And this version's, warnings and all, reads as itself.
    let mut now = back.clone();
    now.rows_warned = 1;
    now.warnings = now.errors.clone();
    now.stale.rows = 5;
    let bytes = encode_record(&now).expect("encode");
    assert_eq!(
        db::decode_import_report("imports", &bytes).expect("decode"),
        now
    );
}

/// A stream of overlapping users (dispatch's tasks) never lets a store's
/// handle count fall to one: a copy or a rewrite waiting to close it makes
/// new users wait, so that the ones holding it finish and it closes.
#[test]
fn new_users_wait_while_a_store_is_drained_for_a_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Arc::new(stores(dir.path(), 8));
    let id = tid("d001");
    let held = s.tenant(&id).expect("open");
    import_one(&held, customer("K1", "Müller"), None, "h1");

    let copier = {
        let (s, id, to) = (s.clone(), id.clone(), dir.path().join("copy"));
        std::thread::spawn(move || s.snapshot_tenant(&id, &to))
    };
    let wait = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while s.waiting_for(&id) < n {
            assert!(Instant::now() < deadline, "{n} waiting never seen");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    wait(1);
    // A new user comes while the copier waits for `held`: it waits too,
    // instead of prolonging the wait.
    let user = {
        let (s, id) = (s.clone(), id.clone());
        std::thread::spawn(move || s.tenant(&id).map(|t| t.customer("K1").map(|c| c.is_some())))
    };
    wait(2);
    drop(held);

    let counts = copier
        .join()
        .expect("copier")
        .expect("copied")
        .expect("a store");
    assert_eq!(counts.get("customers"), Some(&1));
    assert!(user.join().expect("user").expect("opened").expect("read"));
}

/// Values replaced in the central store (a person's number in audit lines)
/// stay in sled's files until the database is rewritten; after
/// `rewrite_central` they are gone, the live records stay, and the store
/// keeps serving. A leftover copy of an interrupted rewrite is removed at
/// the next open.
#[test]
fn a_rewritten_central_store_keeps_its_records_and_loses_replaced_values_from_disk() {
    use touchpoint_common::protocol::{AuditEntry, AuditOutcome};
    fn files_holding(dir: &std::path::Path, needle: &[u8]) -> usize {
        let mut found = 0;
        for e in std::fs::read_dir(dir).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                found += files_holding(&p, needle);
            } else if std::fs::read(&p)
                .expect("read")
                .windows(needle.len())
                .any(|w| w == needle)
            {
                found += 1;
            }
        }
        found
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let central_dir = dir.path().join("central");
    let needle = b"K-Quellenbruennerich-77001";
    // Each start moves sled's id generator on: the lines before the
    // rewrite have high sequence numbers, as in a daemon run for a while.
    for _ in 0..3 {
        stores(dir.path(), 2).close_all().expect("closed");
    }
    {
        let s = stores(dir.path(), 2);
        let c = s.central();
        c.audit(AuditEntry {
            seq: 0,
            at: Timestamp(1),
            uid: 0,
            user: "root".into(),
            role: None,
            action: "undo-merge".into(),
            tenant: Some(tid("d001")),
            detail: "K-Quellenbruennerich-77001 from K-2".into(),
            outcome: AuditOutcome::Ok,
        })
        .expect("audit");
        let n = c
            .rewrite_audit(|mut e| {
                e.detail = e.detail.replace("K-Quellenbruennerich-77001", "erased-1");
                Some(e)
            })
            .expect("replaced");
        assert_eq!(n, 1);
        assert!(
            files_holding(&central_dir, needle) > 0,
            "the old value is still in the files"
        );

        s.rewrite_central().expect("rewrite");

        assert_eq!(files_holding(&central_dir, needle), 0);
        let log = c.audit_log(None, 10).expect("audit");
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].detail, "erased-1 from K-2");
        assert_eq!(c.tenants().expect("registry").len(), 4);
        // Still writable, and a line written after the rewrite comes after
        // the others (a copy starts sled's id generator anew): newest first,
        // none overwritten.
        let seq = c
            .audit(AuditEntry {
                detail: "after".into(),
                ..log[0].clone()
            })
            .expect("audit after the rewrite");
        assert!(seq > log[0].seq, "{seq} after {}", log[0].seq);
        let log = c.audit_log(None, 10).expect("audit");
        assert_eq!(
            log.iter().map(|e| e.detail.as_str()).collect::<Vec<_>>(),
            ["after", "erased-1 from K-2"]
        );
        s.close_all().expect("closed");
    }
    // A leftover copy beside it (a kill during a rewrite) goes at open.
    let leftover = dir.path().join("central.rewrite");
    std::fs::create_dir_all(&leftover).expect("mkdir");
    std::fs::write(leftover.join("db"), b"half a copy").expect("write");
    let s = stores(dir.path(), 2);
    assert!(!leftover.exists());
    assert_eq!(s.central().audit_log(None, 10).expect("audit").len(), 2);
}

/// A planning standing for the tests: its bytes, kept while the outbox
/// count is the one it was made at.
struct Kept(Vec<u8>, u64);

impl Park for Kept {
    fn park(&self, outbox_writes: u64) -> Option<Vec<u8>> {
        (outbox_writes == self.1).then(|| self.0.clone())
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

/// Written down when the store closes, read back when it opens again, but
/// not once the data, the outbox or the derived journeys changed while it
/// was closed (here written behind the store's back, as an earlier build
/// that knows nothing of the standing would).
#[test]
fn a_standing_kept_across_a_close_is_read_back_only_while_what_it_stands_on_is_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 8);
    let id = tid("d001");
    let keep = |s: &Stores| {
        let a = s.tenant(&id).expect("open");
        let version = a.data_version().expect("version");
        a.plan_keep(
            version,
            Box::new(Kept(b"basis".to_vec(), a.outbox_writes())),
        );
    };
    let read_back = |s: &Stores| -> Option<(Vec<String>, Vec<u8>)> {
        match s.tenant(&id).expect("open").plan_take().expect("take") {
            Some((
                touched,
                Standing::Parked {
                    bytes,
                    outbox_writes,
                },
            )) => {
                assert_eq!(outbox_writes, 0);
                Some((touched.into_iter().collect(), bytes))
            }
            _ => None,
        }
    };
    let basis = Some((Vec::new(), b"basis".to_vec()));
    let behind_its_back = |s: &Stores, tree: &str| write_behind_its_back(s, &id, tree);
    {
        let a = s.tenant(&id).expect("open");
        import_one(&a, customer("K1", "Ahrens"), None, "h1");
    }
    keep(&s);
    assert_eq!(s.close_idle(Duration::ZERO), 1);
    assert_eq!(read_back(&s), basis);
    // Read back once: taken out by the run that read it.
    assert_eq!(s.close_idle(Duration::ZERO), 1);
    assert_eq!(read_back(&s), None);
    // Kept again at the next close when not taken since the open.
    keep(&s);
    assert_eq!(s.close_idle(Duration::ZERO), 1);
    drop(s.tenant(&id).expect("open"));
    assert_eq!(s.close_idle(Duration::ZERO), 1);
    assert_eq!(read_back(&s), basis);
    // A data write after the open is tracked as with the store open.
    keep(&s);
    assert_eq!(s.close_idle(Duration::ZERO), 1);
    import_one(
        &s.tenant(&id).expect("open"),
        customer("K2", "Bauer"),
        None,
        "h2",
    );
    assert_eq!(
        read_back(&s),
        Some((vec!["K2".to_string()], b"basis".to_vec()))
    );
    // Anything written while closed, in any tree: not read back.
    for tree in ["outbox", "journeys", "customers", "meta"] {
        keep(&s);
        assert_eq!(s.close_idle(Duration::ZERO), 1);
        behind_its_back(&s, tree);
        assert_eq!(read_back(&s), None, "{tree} written while closed");
    }
    // Without its seal (lost, or never written: a crash before it), or
    // with one planted as a link to a seal elsewhere: not read back.
    let seal = s.tenant_dir(&id).join(seal::SEAL_FILE);
    keep(&s);
    assert_eq!(s.close_idle(Duration::ZERO), 1);
    std::fs::remove_file(&seal).expect("seal written at the close");
    assert_eq!(read_back(&s), None, "no seal");
    keep(&s);
    assert_eq!(s.close_idle(Duration::ZERO), 1);
    let elsewhere = dir.path().join("elsewhere.seal");
    std::fs::rename(&seal, &elsewhere).expect("moved");
    std::os::unix::fs::symlink(&elsewhere, &seal).expect("link");
    assert_eq!(read_back(&s), None, "a link is not followed");
    assert!(
        std::fs::symlink_metadata(&seal).is_err(),
        "the link is gone"
    );
    // And kept once more when nothing happened in between.
    keep(&s);
    assert_eq!(s.close_idle(Duration::ZERO), 1);
    assert_eq!(read_back(&s), basis);
    // A backup reads the closed database (sled's open changes its files):
    // sealed again after it, whether the store was open or closed.
    for (n, open) in [(1, true), (2, false)] {
        keep(&s);
        if !open {
            assert_eq!(s.close_idle(Duration::ZERO), 1);
        }
        let to = dir.path().join(format!("backup-{n}"));
        s.snapshot_tenant(&id, &to)
            .expect("backup")
            .expect("copied");
        assert_eq!(read_back(&s), basis, "after a backup (open: {open})");
    }
}

/// The opt-in counts of the tenants listing are kept across a close with
/// the standing: a reopened store counts no consents to publish its
/// figures, and the counts follow a later import as before.
#[test]
fn a_reopened_store_publishes_its_opt_ins_without_counting_the_consents_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 8);
    let id = tid("d001");
    let import = |n: std::ops::Range<u32>, hash: &str| {
        let a = s.tenant(&id).expect("open");
        let import_id = a.next_import_id().expect("id");
        let mut tx = a.begin_import(import_id).expect("begin");
        for i in n {
            put_opted_in(&mut tx, &format!("K{i:04}"));
        }
        tx.commit(&report(a.id(), import_id, hash)).expect("commit");
    };
    // The email opt-ins the store publishes, and the records it read.
    let email_opt_ins = || {
        let a = s.tenant(&id).expect("open");
        (
            a.figures().expect("figures").opt_ins.email,
            a.records_read(),
        )
    };
    import(0..40, "h1");
    assert_eq!(email_opt_ins().0, 40);
    assert_eq!(s.close_idle(Duration::ZERO), 1);
    assert_eq!(email_opt_ins(), (40, 0), "no consent read to count them");
    import(40..45, "h2");
    assert_eq!(email_opt_ins().0, 45);
    // Written behind its back while closed: counted again.
    assert_eq!(s.close_idle(Duration::ZERO), 1);
    write_behind_its_back(&s, &id, "meta");
    let (n, read) = email_opt_ins();
    assert_eq!(n, 45);
    assert!(read >= 45, "counted again");
}

/// Writes a record into `tree` of a closed tenant store with sled itself,
/// as a tool or an earlier build would.
fn write_behind_its_back(s: &Stores, id: &TenantId, tree: &str) {
    let path = s.tenant_dir(id).join("store");
    let db = sled::Config::new()
        .path(&path)
        .segment_size(db::TENANT_SEGMENT_BYTES)
        .open()
        .expect("raw open");
    db.open_tree(tree)
        .expect("tree")
        .insert(b"\xffwritten elsewhere", b"x".to_vec())
        .expect("insert");
    db.flush().expect("flush");
    drop(db);
    wait_released(&path.join("db"), RELEASE_WAIT).expect("released");
}

#[test]
fn an_outbox_summary_is_kept_while_the_outbox_is_not_written() {
    use touchpoint_common::outbox::month_of;
    use touchpoint_common::report::{MonthResponses, ResponseMonths};
    use touchpoint_common::Date;
    let dir = tempfile::tempdir().expect("tempdir");
    let s = stores(dir.path(), 8);
    let id = tid("d001");
    // The day the summary is kept for at a close.
    let day = Date::today();
    let t = s.tenant(&id).expect("tenant");
    t.commit_plan(&PlanWrite {
        new: &[
            planned(1, "K1", day, 95),
            planned(2, "K2", day.add_days(1), 95),
            planned(3, "K3", day.add_days(-2), 95),
        ],
        revised: &[],
        stamp: 1,
    })
    .expect("plan");
    drop(t);
    let first = s.outbox_summary(&id, day).expect("summary");
    let stats = first.digest.stats(day, None, 0, |_| false);
    assert_eq!(stats.late, 1, "the one of two days ago");
    let planned_on: Vec<(Date, u64)> = stats.days.iter().map(|(d, c)| (*d, c.planned)).collect();
    assert_eq!(planned_on, [(day, 1), (day.add_days(1), 1)]);
    let reserved: i64 = first.ledger.iter().map(|(_, _, e)| e.reserved).sum();
    assert_eq!(reserved, 3 * 95, "{:?}", first.ledger);
    assert_eq!(first.queued_on(Channel::Post), 0);

    // Closed and not written since: the same summary, the store unopened.
    s.close_idle(Duration::ZERO);
    assert_eq!(s.open_count(), 0);
    let again = s.outbox_summary(&id, day).expect("summary");
    assert!(Arc::ptr_eq(&first, &again));
    assert_eq!(s.open_count(), 0);
    // Another day is read again (its sent emails are that day's).
    s.outbox_summary(&id, day.add_days(1)).expect("summary");
    assert_eq!(s.open_count(), 1);

    // A write of the outbox: read again, with what was written.
    let t = s.tenant(&id).expect("tenant");
    let before = t.message(1).expect("read").expect("message 1");
    let mut after = before.clone();
    after.status = MessageStatus::Held;
    t.apply(&[Change::new(before, after)]).expect("hold");
    drop(t);
    let held = s.outbox_summary(&id, day).expect("summary");
    assert_eq!(
        held.digest.stats(day, None, 0, |_| false).days[&day].held,
        1
    );
    // A store that closes keeps the summary of today current: the next
    // look after a write while it was open opens nothing.
    let t = s.tenant(&id).expect("tenant");
    let before = t.message(2).expect("read").expect("message 2");
    let mut after = before.clone();
    after.status = MessageStatus::Held;
    t.apply(&[Change::new(before, after)]).expect("hold");
    drop(t);
    s.close_idle(Duration::ZERO);
    assert_eq!(s.open_count(), 0);
    let closed = s.outbox_summary(&id, day).expect("summary");
    let next = day.add_days(1);
    assert_eq!(
        closed.digest.stats(next, None, 0, |_| false).days[&next].held,
        1
    );
    assert_eq!(s.open_count(), 0);

    // The response months an attribution pass writes count as a write.
    let mut months = ResponseMonths::new();
    let count = MonthResponses {
        to_messages: 4,
        to_control: 1,
        organic: 9,
    };
    months.insert(month_of(day), count);
    s.tenant(&id)
        .expect("tenant")
        .set_response_months(&months)
        .expect("responses");
    s.close_idle(Duration::ZERO);
    let counted = s.outbox_summary(&id, day).expect("summary");
    assert_eq!(counted.responses.get(&month_of(day)), Some(&count));

    // A store closed in trouble (its memory may have been ahead of its
    // disk): nothing kept of it is used; the next look reads its disk.
    let t = s.tenant(&id).expect("tenant");
    t.mark_broken("IO error: No space left on device");
    drop(t);
    assert_eq!(s.close_idle(Duration::from_secs(3600)), 1);
    // Opened again by someone else first: no trouble left to see.
    drop(s.tenant(&id).expect("reopened"));
    assert_eq!(s.trouble(&id), None);
    let after = s.outbox_summary(&id, day).expect("summary");
    assert!(!Arc::ptr_eq(&counted, &after));
    assert_eq!(*after, *counted, "the same figures, read again");
}
