use super::*;
use touchpoint_common::domain::{Consent, Customer, ImportReport, Timestamp, Vehicle};
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

/// Simulates kills: before the commit point (staging written, no marker) and
/// after it (marker written, nothing applied).
#[test]
fn crash_before_commit_point_is_discarded_after_it_is_completed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let staging = dir.path().join("tenants/d001/import.staging");
    {
        let s = stores(dir.path(), 8);
        let a = s.tenant(&tid("d001")).expect("a");
        let mut tx = a.begin_import(1).expect("begin");
        tx.put_customer(&customer("K1", "Schröder")).expect("put");
        drop(tx);
        assert!(staging.exists());
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
        // Flush the staging file as commit() would, then stop after the commit point.
        drop(tx);
        let template =
            touchpoint_common::codec::encode_record(&report(a.id(), 2, "h2")).expect("enc");
        a.meta
            .insert(tenant::META_PENDING, template)
            .expect("marker");
        a.flush().expect("flush");
        s.close_all().expect("close");
    }
    let s = stores(dir.path(), 8);
    let a = s.tenant(&tid("d001")).expect("reopen");
    assert!(
        a.customer("K2").expect("read").is_some(),
        "completed by recovery"
    );
    assert_eq!(a.vehicles_of("K2").expect("read").len(), 1);
    let st = a.stats().expect("stats");
    assert_eq!((st.customers, st.vehicles, st.imports), (1, 1, 1));
    assert_eq!(a.import_by_hash("h2").expect("hash"), Some(2));
    assert!(a.meta.get(tenant::META_PENDING).expect("meta").is_none());
    assert!(!staging.exists());
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
