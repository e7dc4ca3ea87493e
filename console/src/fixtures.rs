//! Fabricated daemon answers with fixed timestamps, for snapshot tests.

use touchpoint_common::domain::{
    Counts, ImportReport, ImportStatus, MatchReason, MergeRecord, RowError, TenantStats, Timestamp,
};
use touchpoint_common::protocol::{
    AuditEntry, AuditOutcome, DaemonStatus, Identity, PolicyStatus, Role, Scope, TenantDetail,
    TenantSummary, PROTOCOL_VERSION,
};
use touchpoint_common::TenantId;

/// 2025-03-14 09:30:00 UTC.
pub const T0: i64 = 1_741_944_600_000;

pub fn ts(minutes_after_t0: i64) -> Timestamp {
    Timestamp(T0 + minutes_after_t0 * 60_000)
}

pub fn tid(s: &str) -> TenantId {
    TenantId::new(s).expect("valid fixture tenant id")
}

pub fn identity() -> Identity {
    Identity {
        uid: 1000,
        gid: 1000,
        user: "anna".into(),
        role: Role::Operator,
        scope: Scope::Tenants(vec![tid("d001"), tid("d002"), tid("d003")]),
    }
}

pub fn status() -> DaemonStatus {
    DaemonStatus {
        daemon_version: "touchpointd 0.1.0".into(),
        protocol_version: PROTOCOL_VERSION,
        started_at: ts(-120),
        state_dir: "/var/lib/touchpoint".into(),
        socket: "/run/touchpoint/touchpoint.sock".into(),
        policy: PolicyStatus {
            dir: "/etc/touchpoint/policies".into(),
            loaded_at: ts(-5),
            files: vec![
                "brand.toml".into(),
                "dealers/d001.toml".into(),
                "dealers/d002.toml".into(),
            ],
            errors: vec![
                "dealers/d003.toml:7: import.columns.Kd-Nr: unknown value `kundennummer`".into(),
            ],
        },
        tenants: 3,
        tenants_open: 2,
        max_open_tenants: 128,
        connections: 2,
        identity: identity(),
        planning: touchpoint_common::protocol::PlanningStatus {
            schedule: "0 30 5 * * Mon-Sat".into(),
            next_run: Some(ts(3_600)),
            last_run: Some(ts(-80_000)),
            last_planned: 1_234,
            last_failed: 0,
            last_millis: 850,
        },
    }
}

fn counts(inserted: u64, updated: u64, unchanged: u64) -> Counts {
    Counts {
        inserted,
        updated,
        unchanged,
    }
}

pub fn import(
    id: u64,
    tenant: &str,
    file: &str,
    status: ImportStatus,
    minute: i64,
) -> ImportReport {
    let committed = matches!(status, ImportStatus::Committed);
    let (total, rejected) = if committed { (5_000, 41) } else { (0, 0) };
    ImportReport {
        import_id: id,
        tenant: tid(tenant),
        file_name: file.into(),
        content_hash: format!("{id:064x}"),
        bytes: 812_345,
        started_at: ts(minute),
        finished_at: ts(minute + 1),
        status,
        format: "windows-1252, ';', 22 columns".into(),
        rows_total: total,
        rows_ok: total - rejected,
        rows_rejected: rejected,
        customers: if committed {
            counts(4_700, 3, 0)
        } else {
            counts(0, 0, 0)
        },
        vehicles: if committed {
            counts(4_950, 0, 0)
        } else {
            counts(0, 0, 0)
        },
        consents: if committed {
            counts(9_400, 0, 0)
        } else {
            counts(0, 0, 0)
        },
        visits: counts(0, 0, 0),
        unmapped_columns: if committed {
            vec!["Bemerkung".into(), "Fax".into()]
        } else {
            vec![]
        },
        errors: if committed {
            vec![
                RowError {
                    file: file.into(),
                    line: 17,
                    field: "email".into(),
                    reason: "\"max@@example\" is not an address".into(),
                },
                RowError {
                    file: file.into(),
                    line: 230,
                    field: "vin".into(),
                    reason: "\"WVWZZZ1JZ3W38\" has 13 characters, a VIN has 17".into(),
                },
                RowError {
                    file: file.into(),
                    line: 1204,
                    field: "first_registration".into(),
                    reason: "\"31.02.2019\" is not a date".into(),
                },
            ]
        } else {
            vec![]
        },
        errors_truncated: if committed { 38 } else { 0 },
        merges: if committed { 212 } else { 0 },
    }
}

fn summary(n: usize) -> TenantSummary {
    const NAMES: [&str; 6] = [
        "Autohaus Müller GmbH",
        "Autozentrum Weiß & Söhne",
        "Schmidt Automobile",
        "Autohaus am Ring",
        "Fahrzeughaus Krüger KG",
        "Auto Becker",
    ];
    let id = format!("d{:03}", n + 1);
    let customers = 1_000 + (n as u64 * 7_919) % 9_000;
    let last_import = match n % 4 {
        3 => None,
        2 => Some(import(
            2,
            &id,
            "kunden.csv",
            ImportStatus::Failed {
                reason: "not a CSV file: line 1 has no delimiter".into(),
            },
            n as i64,
        )),
        _ => Some(import(
            1,
            &id,
            "kunden.csv",
            ImportStatus::Committed,
            n as i64,
        )),
    };
    TenantSummary {
        id: tid(&id),
        name: NAMES[n % NAMES.len()].into(),
        stats: TenantStats {
            customers,
            recipients: customers - customers / 25,
            vehicles: customers + customers / 20,
            consents: customers * 2,
            visits: customers * 3,
            merges_active: customers / 25,
            imports: if last_import.is_some() { 2 } else { 0 },
            disk_bytes: customers * 2_100,
        },
        last_import,
    }
}

/// 30 tenants: more than fit on an 80×24 screen.
pub fn tenants() -> Vec<TenantSummary> {
    (0..30).map(summary).collect()
}

pub fn merge(id: u64, survivor: &str, merged: &str, undone: bool) -> MergeRecord {
    MergeRecord {
        merge_id: id,
        survivor: survivor.into(),
        merged: merged.into(),
        reasons: if id % 2 == 0 {
            vec![MatchReason::SameEmail("j.weiss@example.de".into())]
        } else {
            vec![MatchReason::SimilarNameSameAddress {
                a: "juergen weiss".into(),
                b: "jurgen weiss".into(),
                distance: 1,
                address: "hauptstrasse 12a, 80331 münchen".into(),
            }]
        },
        at: ts(id as i64),
        import_id: Some(1),
        undone_at: undone.then(|| ts(60)),
        undone_by: undone.then(|| "anna".into()),
    }
}

pub fn detail() -> TenantDetail {
    TenantDetail {
        summary: summary(0),
        imports: vec![
            import(1, "d001", "kunden.csv", ImportStatus::Committed, 0),
            import(
                2,
                "d001",
                "kunden.csv",
                ImportStatus::AlreadyImported { previous: 1 },
                10,
            ),
            import(
                3,
                "d001",
                "werkstatt.csv",
                ImportStatus::Failed {
                    reason: "not a CSV file: line 1 has no delimiter".into(),
                },
                20,
            ),
        ],
        merges: (1..=12)
            .map(|i| {
                merge(
                    i,
                    &format!("K-{}", 1000 + i),
                    &format!("K-{}", 5000 + i),
                    i == 3,
                )
            })
            .collect(),
    }
}

pub fn audit() -> Vec<AuditEntry> {
    vec![
        AuditEntry {
            seq: 41,
            at: ts(1),
            uid: 1000,
            user: "anna".into(),
            role: Some(Role::Operator),
            action: "import".into(),
            tenant: Some(tid("d001")),
            detail: "kunden.csv, 812345 bytes".into(),
            outcome: AuditOutcome::Ok,
        },
        AuditEntry {
            seq: 42,
            at: ts(60),
            uid: 1001,
            user: "bert".into(),
            role: None,
            action: "undo-merge".into(),
            tenant: Some(tid("d002")),
            detail: "merge 3".into(),
            outcome: AuditOutcome::Refused("no access rule matches uid 1001".into()),
        },
    ]
}
