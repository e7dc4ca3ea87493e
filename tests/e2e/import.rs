//! Import over the control socket (M2, M3, M1): exact counts and row errors,
//! idempotence, updates from a newer export, files that are not CSV, tenant
//! isolation, duplicate merges and their undo, and the audit trail.

use touchpoint::client::{Client, ClientError};
use touchpoint_common::domain::{Counts, ImportReport, ImportStatus, MatchReason, TenantStats};
use touchpoint_common::protocol::{AuditOutcome, ErrorKind, Role};
use touchpoint_tests::{tid, TestDaemon};

use crate::common::{import_fixture, me, my_name, JUNE, MAY};

fn counts(inserted: u64, updated: u64, unchanged: u64) -> Counts {
    Counts {
        inserted,
        updated,
        unchanged,
    }
}

/// Row errors of the May export, as `file:line: field: reason`.
pub fn may_errors() -> Vec<String> {
    crate::common::MAY_ERRORS
        .iter()
        .map(|e| e.to_string())
        .collect()
}

fn shown_errors(r: &ImportReport) -> Vec<String> {
    r.errors.iter().map(ToString::to_string).collect()
}

async fn upload(c: &mut Client, tenant: &str, name: &str) -> ImportReport {
    c.upload(&tid(tenant), import_fixture(name))
        .await
        .unwrap_or_else(|e| panic!("upload {name} to {tenant}: {e}"))
}

async fn stats(c: &mut Client, tenant: &str) -> TenantStats {
    c.tenant(&tid(tenant)).await.expect("tenant").summary.stats
}

/// What d001 holds after the May export.
fn after_may(disk_bytes: u64) -> TenantStats {
    TenantStats {
        customers: 8,
        recipients: 7,
        vehicles: 7,
        consents: 16,
        visits: 0,
        merges_active: 1,
        imports: 1,
        disk_bytes,
    }
}

fn assert_may_report(r: &ImportReport) {
    assert_eq!(r.status, ImportStatus::Committed, "{r:#?}");
    assert_eq!(r.tenant, tid("d001"));
    assert_eq!(r.file_name, MAY);
    assert_eq!(
        r.bytes,
        std::fs::metadata(import_fixture(MAY))
            .expect("fixture")
            .len()
    );
    assert_eq!(r.format, "windows-1252, ';', 22 columns");
    // A bad email and an impossible first registration cost only those
    // fields: their rows are imported, with warnings.
    assert_eq!(
        (r.rows_total, r.rows_ok, r.rows_warned, r.rows_rejected),
        (11, 7, 2, 2),
        "{r:#?}"
    );
    assert_eq!(shown_errors(r), may_errors());
    assert_eq!(r.errors_truncated, 0);
    let warnings: Vec<String> = r.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings, crate::common::MAY_WARNINGS);
    // K-10004 holds two vehicles: its second row leaves the customer unchanged.
    assert_eq!(r.customers, counts(8, 0, 1), "customers");
    assert_eq!(r.vehicles, counts(7, 0, 0), "vehicles");
    assert_eq!(r.consents, counts(16, 0, 2), "consents");
    assert_eq!(r.visits, counts(0, 0, 0), "visits");
    assert_eq!(r.unmapped_columns, ["Bemerkung"]);
    assert_eq!(r.merges, 1, "K-10006 is K-10001 again");
}

#[tokio::test]
async fn an_export_with_bad_rows_keeps_the_good_ones_with_exact_counts_and_errors() {
    let d = TestDaemon::start();
    let mut c = d.client().await;
    let report = upload(&mut c, "d001", MAY).await;
    assert_eq!(report.import_id, 1);
    assert_may_report(&report);

    // Every tenant through the socket: d001 has the data, the others nothing.
    let tenants = c.tenants().await.expect("tenants");
    let ids: Vec<&str> = tenants.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["d001", "d002", "d003"]);
    let d001 = &tenants[0];
    assert_eq!(d001.name, "Autohaus Müller GmbH");
    assert_eq!(d001.stats, after_may(d001.stats.disk_bytes));
    // The listing's figures live in the central store, which holds no
    // dealer data: the last import without its row errors (they quote the
    // file), counted instead.
    let listed_report = ImportReport {
        errors: Vec::new(),
        errors_truncated: report.errors.len() as u64,
        warnings: Vec::new(),
        warnings_truncated: report.warnings.len() as u64,
        ..report.clone()
    };
    assert_eq!(d001.last_import.as_deref(), Some(&listed_report));
    for t in &tenants[1..] {
        assert_eq!(
            t.stats,
            TenantStats {
                disk_bytes: t.stats.disk_bytes,
                ..TenantStats::default()
            },
            "{}",
            t.id
        );
        assert_eq!(t.last_import, None, "{}", t.id);
    }

    // The history holds exactly the report the upload returned.
    let detail = c.tenant(&tid("d001")).await.expect("d001");
    assert_eq!(detail.imports, std::slice::from_ref(&report));
    assert_eq!(
        c.imports(&tid("d001"), 10).await.expect("imports"),
        [report]
    );
}

#[tokio::test]
async fn the_same_file_again_is_already_imported_and_changes_nothing() {
    let d = TestDaemon::start();
    let mut c = d.client().await;
    let first = upload(&mut c, "d001", MAY).await;
    let before = stats(&mut c, "d001").await;
    let again = upload(&mut c, "d001", MAY).await;
    assert_eq!(
        again.status,
        ImportStatus::AlreadyImported {
            previous: first.import_id
        }
    );
    assert_eq!(again.import_id, 2);
    assert_eq!(again.content_hash, first.content_hash);
    assert_eq!(
        (again.customers, again.vehicles, again.consents),
        (Counts::default(), Counts::default(), Counts::default())
    );
    assert!(again.errors.is_empty());

    // The same bytes under another name are the same file.
    let dir = tempfile::tempdir().expect("tempdir");
    let renamed = dir.path().join("export_neu.csv");
    std::fs::copy(import_fixture(MAY), &renamed).expect("copy");
    let third = c.upload(&tid("d001"), &renamed).await.expect("upload");
    assert_eq!(
        third.status,
        ImportStatus::AlreadyImported {
            previous: first.import_id
        }
    );
    assert_eq!(third.file_name, "export_neu.csv");

    let after = stats(&mut c, "d001").await;
    assert_eq!(
        after,
        TenantStats {
            imports: before.imports + 2,
            disk_bytes: after.disk_bytes,
            ..before
        }
    );
    let history: Vec<(u64, ImportStatus)> = c
        .imports(&tid("d001"), 10)
        .await
        .expect("imports")
        .into_iter()
        .map(|r| (r.import_id, r.status))
        .collect();
    assert_eq!(
        history,
        [
            (3, ImportStatus::AlreadyImported { previous: 1 }),
            (2, ImportStatus::AlreadyImported { previous: 1 }),
            (1, ImportStatus::Committed),
        ],
        "newest first"
    );
    // The audit log says which file it was the same as, and when that was.
    let audit = c.audit(Some(&tid("d001")), 10, "").await.expect("audit");
    let want = format!(
        "import #2 {MAY}: same file as #1 (imported {}); nothing applied",
        first.finished_at
    );
    assert!(
        audit
            .iter()
            .any(|e| e.action == "import" && e.detail == want),
        "{want:?} not in {:#?}",
        audit.iter().map(|e| &e.detail).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn the_same_file_for_another_tenant_is_imported_there_independently() {
    let d = TestDaemon::start();
    let mut c = d.client().await;
    upload(&mut c, "d001", MAY).await;
    let other = upload(&mut c, "d002", MAY).await;
    assert_eq!(
        other.status,
        ImportStatus::Committed,
        "d001's history is not d002's"
    );
    assert_eq!((other.import_id, other.tenant.as_str()), (1, "d002"));
    assert_eq!(other.customers, counts(8, 0, 1));
    let s1 = stats(&mut c, "d001").await;
    let s2 = stats(&mut c, "d002").await;
    assert_eq!(
        s2,
        TenantStats {
            disk_bytes: s2.disk_bytes,
            ..s1
        }
    );
    // Undoing d002's merge leaves d001's alone.
    let m2 = c.merges(&tid("d002"), false).await.expect("merges");
    c.undo_merge(&tid("d002"), m2[0].merge_id)
        .await
        .expect("undo");
    assert_eq!(stats(&mut c, "d001").await.merges_active, 1);
    assert_eq!(stats(&mut c, "d002").await.merges_active, 0);
}

#[tokio::test]
async fn a_newer_export_updates_inserts_and_moves_a_vehicle_exactly() {
    let mut d = TestDaemon::start();
    let mut c = d.client().await;
    upload(&mut c, "d001", MAY).await;
    let june = upload(&mut c, "d001", JUNE).await;
    assert_eq!(june.status, ImportStatus::Committed, "{june:#?}");
    assert_eq!(june.import_id, 2);
    assert_eq!(june.format, "utf-8 (BOM), ';', 22 columns");
    assert_eq!(
        (june.rows_total, june.rows_ok, june.rows_rejected),
        (8, 8, 0),
        "{june:#?}"
    );
    assert!(june.errors.is_empty(), "{:?}", shown_errors(&june));
    // K-10002 moved; K-10010 is new; the other six rows are as before.
    assert_eq!(june.customers, counts(1, 1, 6), "customers");
    // The Fjord WNWZZZ3CZNB000103 changed hands from K-10003 to K-10010.
    assert_eq!(june.vehicles, counts(0, 1, 5), "vehicles");
    assert_eq!(june.consents, counts(2, 0, 14), "consents");
    assert_eq!(june.merges, 0);

    let detail = c.tenant(&tid("d001")).await.expect("d001");
    assert_eq!(detail.imports.first(), Some(&june), "newest first");
    assert_eq!(detail.imports.len(), 2);
    let s = detail.summary.stats;
    assert_eq!(
        (
            s.customers,
            s.recipients,
            s.vehicles,
            s.consents,
            s.merges_active,
            s.imports
        ),
        (9, 8, 7, 18, 1, 2)
    );
    drop(c);

    // The records themselves, read from the stopped daemon's store.
    d.stop_in_place();
    let stores =
        touchpointd::store::Stores::open(&d.state_dir, &Default::default()).expect("stores");
    let store = stores.tenant(&tid("d001")).expect("d001");
    let anna = store.customer("K-10002").expect("read").expect("K-10002");
    assert_eq!(
        (
            anna.address.street.as_str(),
            anna.address.house_no.as_str(),
            anna.address.postcode.as_str()
        ),
        ("Leopoldstraße", "88", "80802")
    );
    assert_eq!(anna.last_name, "Schröder");
    let vins = |no: &str| -> Vec<String> {
        store
            .vehicles_of(no)
            .expect("vehicles_of")
            .into_iter()
            .map(|v| v.vin)
            .collect()
    };
    assert_eq!(vins("K-10010"), ["WNWZZZ3CZNB000103"]);
    assert!(vins("K-10003").is_empty(), "{:?}", vins("K-10003"));
    assert_eq!(vins("K-10004"), ["WNWZZZ3CZNB000104", "WNWZZZ3CZNB000105"]);
    let fjord = store
        .vehicle("WNWZZZ3CZNB000103")
        .expect("read")
        .expect("vehicle");
    assert_eq!(fjord.customer_no, "K-10010");
    // Nothing of another tenant.
    assert!(stores
        .tenant(&tid("d002"))
        .expect("d002")
        .customer("K-10002")
        .expect("read")
        .is_none());
}

fn failed_reason(r: &ImportReport) -> &str {
    match &r.status {
        ImportStatus::Failed { reason } => reason,
        other => panic!("expected a failed import, got {other:?}"),
    }
}

#[tokio::test]
async fn a_file_that_is_not_csv_fails_clearly_stores_nothing_and_is_in_the_history() {
    let d = TestDaemon::start();
    let mut c = d.client().await;
    let png = upload(&mut c, "d001", "kunden.png").await;
    assert_eq!(
        failed_reason(&png),
        "not a CSV file: looks like a PNG image"
    );
    assert_eq!(
        (png.rows_total, png.rows_ok, png.customers),
        (0, 0, Counts::default())
    );
    let s = stats(&mut c, "d001").await;
    assert_eq!(
        (s.customers, s.vehicles, s.consents, s.imports),
        (0, 0, 0, 1)
    );
    assert_eq!(
        c.imports(&tid("d001"), 10).await.expect("imports"),
        std::slice::from_ref(&png)
    );

    // An empty file.
    let empty = upload(&mut c, "d001", "leer.csv").await;
    assert_eq!(
        failed_reason(&empty),
        "the file is empty: no header line and no rows"
    );
    assert_eq!(empty.bytes, 0);

    // A failed file is not "already imported": the dealer may send it again once fixed.
    let png_again = upload(&mut c, "d001", "kunden.png").await;
    assert!(
        matches!(png_again.status, ImportStatus::Failed { .. }),
        "{:?}",
        png_again.status
    );

    // A bad file after a good one leaves the good data alone.
    upload(&mut c, "d001", MAY).await;
    let before = stats(&mut c, "d001").await;
    upload(&mut c, "d001", "kunden.png").await;
    let after = stats(&mut c, "d001").await;
    assert_eq!(
        after,
        TenantStats {
            imports: before.imports + 1,
            disk_bytes: after.disk_bytes,
            ..before
        }
    );
    assert_eq!(after.customers, 8);
}

#[tokio::test]
async fn an_upload_to_an_unknown_tenant_is_an_error_naming_the_tenant() {
    let d = TestDaemon::start();
    let mut c = d.client().await;
    let err = c
        .upload(&tid("d999"), import_fixture(MAY))
        .await
        .expect_err("unknown tenant");
    match err {
        ClientError::Daemon(e) => {
            assert_eq!(e.kind, ErrorKind::NotFound);
            assert_eq!(
                e.message,
                "unknown tenant \"d999\": no dealer policy registers it"
            );
        }
        other => panic!("expected a daemon error, got {other:?}"),
    }
    assert!(
        !d.state_dir.join("tenants/d999").exists(),
        "no store is created for it"
    );
    c.ping().await.expect("the connection stays usable");
    let err = c.tenant(&tid("d999")).await.expect_err("unknown tenant");
    assert!(err.to_string().contains("\"d999\""), "{err}");
}

#[tokio::test]
async fn duplicates_are_merged_listed_and_undone_with_an_audit_trail() {
    let d = TestDaemon::start();
    let mut c = d.client().await;
    let d001 = tid("d001");
    let report = upload(&mut c, "d001", MAY).await;
    assert_eq!(report.merges, 1);

    let merges = c.merges(&d001, false).await.expect("merges");
    assert_eq!(merges.len(), 1, "{merges:#?}");
    let m = &merges[0];
    // K-10001 has an e-mail address, K-10006 does not: the more complete record survives.
    assert_eq!(
        (m.survivor.as_str(), m.merged.as_str()),
        ("K-10001", "K-10006")
    );
    assert_eq!(m.import_id, Some(report.import_id));
    assert_eq!((m.undone_at, m.undone_by.as_deref()), (None, None));
    assert_eq!(
        m.reasons,
        [
            MatchReason::SamePhone("49891234567".into()),
            MatchReason::SameNameAndAddress {
                name: "juergen weiss".into(),
                address: "80331 hauptstr 12".into()
            },
        ]
    );
    let before = stats(&mut c, "d001").await;
    assert_eq!(
        (before.customers, before.recipients, before.merges_active),
        (8, 7, 1)
    );

    let undone = c.undo_merge(&d001, m.merge_id).await.expect("undo");
    assert_eq!(undone.merge_id, m.merge_id);
    assert!(undone.undone_at.is_some());
    assert_eq!(undone.undone_by.as_deref(), Some(my_name().as_str()));
    assert!(c.merges(&d001, false).await.expect("merges").is_empty());
    let all = c.merges(&d001, true).await.expect("merges");
    assert_eq!(all, std::slice::from_ref(&undone));
    let after = stats(&mut c, "d001").await;
    assert_eq!(
        (after.customers, after.recipients, after.merges_active),
        (8, 8, 0)
    );

    // Twice is refused; an unknown merge is not found.
    match c.undo_merge(&d001, m.merge_id).await {
        Err(ClientError::Daemon(e)) => {
            assert_eq!(e.kind, ErrorKind::Invalid);
            assert_eq!(
                e.message,
                format!("merge #{} was already undone", m.merge_id)
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    match c.undo_merge(&d001, 99).await {
        Err(ClientError::Daemon(e)) => {
            assert_eq!(e.kind, ErrorKind::NotFound);
            assert_eq!(e.message, "no merge #99 in tenant d001");
        }
        other => panic!("expected not found, got {other:?}"),
    }

    // The pair an operator separated stays separate after the next import.
    let june = upload(&mut c, "d001", JUNE).await;
    assert_eq!(june.merges, 0, "{:?}", c.merges(&d001, true).await);
    assert_eq!(stats(&mut c, "d001").await.merges_active, 0);

    // The audit trail: who did what to which tenant.
    let audit = c.audit(Some(&d001), 100, "").await.expect("audit");
    let entries: Vec<(&str, &str, &AuditOutcome)> = audit
        .iter()
        .map(|e| (e.action.as_str(), e.detail.as_str(), &e.outcome))
        .collect();
    let undo_detail = format!("merge #{} (K-10006 into K-10001)", m.merge_id);
    let june_detail = format!("import #{} {JUNE}: 8 rows ok, 0 rejected", june.import_id);
    let may_detail = format!("import #1 {MAY}: 7 rows ok, 2 with warnings, 2 rejected");
    // The identity pass's merge, by the daemon itself.
    let merge_detail = format!(
        "1 duplicate customer merged by the identity pass after import #1 {MAY} (touchpoint merges --tenant d001 lists them)"
    );
    let nope = AuditOutcome::Failed(format!("merge #{} was already undone", m.merge_id));
    let unknown = AuditOutcome::Failed("no merge #99 in tenant d001".into());
    // The May file kept its good rows and rejected two: done in part.
    let partly = AuditOutcome::Partial("2 rows rejected".into());
    assert_eq!(
        entries,
        [
            ("import", june_detail.as_str(), &AuditOutcome::Ok),
            ("undo-merge", "", &unknown),
            ("undo-merge", "", &nope),
            ("undo-merge", undo_detail.as_str(), &AuditOutcome::Ok),
            ("import", may_detail.as_str(), &partly),
            ("merge", merge_detail.as_str(), &AuditOutcome::Ok),
        ],
        "newest first"
    );
    let (merge, by_me) = audit.split_last().expect("entries");
    for e in by_me {
        assert_eq!(
            (e.uid, e.user.as_str(), e.role),
            (me(), my_name().as_str(), Some(Role::Admin))
        );
        assert_eq!(e.tenant.as_ref(), Some(&d001));
    }
    assert_eq!(
        (merge.user.as_str(), merge.role, merge.tenant.as_ref()),
        ("touchpointd", None, Some(&d001))
    );
    // Reads are not audited.
    assert!(audit
        .iter()
        .all(|e| e.action != "tenant" && e.action != "merges"));
}

/// Two consoles importing at once: into two tenants both commit; the same
/// file twice into one tenant changes the data once.
#[tokio::test]
async fn concurrent_uploads_are_isolated_and_idempotent() {
    let d = TestDaemon::start();
    let (mut a, mut b) = (d.client().await, d.client().await);
    let path = import_fixture(MAY);
    let (d001, d002) = (tid("d001"), tid("d002"));
    let (ra, rb) = tokio::join!(a.upload(&d001, &path), b.upload(&d002, &path));
    assert_eq!(ra.expect("d001").customers, counts(8, 0, 1));
    assert_eq!(rb.expect("d002").customers, counts(8, 0, 1));

    let d003 = tid("d003");
    let (ra, rb) = tokio::join!(a.upload(&d003, &path), b.upload(&d003, &path));
    let (ra, rb) = (ra.expect("first"), rb.expect("second"));
    let inserted: Vec<u64> = [&ra, &rb].iter().map(|r| r.customers.inserted).collect();
    assert!(
        inserted.contains(&8) && inserted.contains(&0),
        "one of them inserts, the other finds it all there: {inserted:?}"
    );
    for r in [&ra, &rb] {
        assert!(
            !matches!(r.status, ImportStatus::Failed { .. }),
            "{:?}",
            r.status
        );
    }
    let s = stats(&mut a, "d003").await;
    assert_eq!(
        (
            s.customers,
            s.recipients,
            s.vehicles,
            s.consents,
            s.merges_active
        ),
        (8, 7, 7, 16, 1)
    );
}

/// An export with an unclosed quote on its first data row, a row written
/// with ',' instead of ';', a 900 KB first name and a repeated header: the
/// report counts every row and names each bad one; no swallowed row is
/// counted as good.
#[tokio::test]
async fn broken_quoting_and_delimiters_cost_only_their_own_rows() {
    let d = TestDaemon::start();
    let mut c = d.client().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = String::from("Kundennr;Vorname;Nachname;Ort;Nachname\n");
    text.push_str("K-1;Hans;\"Meier;Ulm;\n");
    for i in 2..=48 {
        text.push_str(&format!("K-{i};Eva;Weiss{i};Ulm;\n"));
    }
    text.push_str("K-49,Eva,Weiss,Ulm,\n");
    text.push_str(&format!("K-50;{};Lang;Ulm;\n", "A".repeat(900_000)));
    text.push_str("K-51;Eva;;Ulm;Zweitname\n");
    let path = dir.path().join("kaputt.csv");
    std::fs::write(&path, &text).expect("write");

    let r = c.upload(&tid("d001"), &path).await.expect("upload");
    assert_eq!(r.status, ImportStatus::Committed, "{r:#?}");
    assert_eq!(
        (r.rows_total, r.rows_ok, r.rows_rejected),
        (51, 48, 3),
        "{:#?}",
        shown_errors(&r)
    );
    assert_eq!(
        shown_errors(&r),
        [
            "kaputt.csv:2: last_name: unclosed quote (\"): the quoted value starting on this line runs on over 50 more lines; this line is rejected and the lines after it are read as rows",
            "kaputt.csv:50: row: has 1 value but the header has 5 columns (separated by ',' instead of ';'?)",
            "kaputt.csv:51: first_name: is 900000 bytes long; at most 512 are accepted",
        ]
    );
    assert_eq!(
        r.format,
        "utf-8, ';', 5 columns; column 5 \"Nachname\" repeats column 3 (a row's first non-empty value of them is used)"
    );
    assert_eq!(stats(&mut c, "d001").await.customers, 48);
}
