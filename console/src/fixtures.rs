//! Fabricated daemon answers with fixed timestamps, for snapshot tests.

use std::collections::BTreeMap;

use touchpoint_common::domain::{
    Counts, ImportReport, ImportStatus, MatchReason, MergeRecord, RowError, TenantStats, Timestamp,
};
use touchpoint_common::outbox::Message;
use touchpoint_common::protocol::{
    AuditEntry, AuditOutcome, CostRow, CustomerDetail, DaemonStatus, Identity, PolicyStatus, Role,
    Scope, TenantDetail, TenantSummary, PROTOCOL_VERSION,
};
use touchpoint_common::report::answer::{Report, ReportQuery};
use touchpoint_common::report::pool::{fill, Dealers, PoolRule, ReportGroup, Suppression};
use touchpoint_common::report::stats::{By, Tally};
use touchpoint_common::{Date, TenantId};

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
            version: 0x5eed_f00d_cafe_0042,
            failed_at: Some(ts(-2)),
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
        daemon_wide: true,
        clock: None,
        retention: touchpoint_common::protocol::RetentionStatus {
            messages_months: Some(24),
            responses_months: Some(36),
            audit_months: None,
            last: Some(touchpoint_common::protocol::RetentionRun {
                at: ts(-70_000),
                by: "schedule".into(),
                messages: 312,
                spooled: 0,
                visits: 1_020,
                responses: 14,
                audit_lines: 0,
                files: 5,
                rewritten: 2,
                failed: Vec::new(),
            }),
        },
    }
}

/// [`status`] as a caller scoped to some tenants gets it: its tenants'
/// open stores and its own connections, no figures over every tenant.
pub fn status_scoped() -> DaemonStatus {
    let mut s = status();
    s.daemon_wide = false;
    s.tenants_open = 1;
    s.connections = 1;
    s.planning.last_planned = 0;
    s.planning.last_failed = 0;
    s.planning.last_millis = 0;
    s.retention.last = None;
    s
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
        responses: Default::default(),
        credited: None,
        corrections: Default::default(),
        rows_warned: 0,
        warnings: vec![],
        warnings_truncated: 0,
        parked: 0,
        stale: Default::default(),
        previous_at: None,
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
        opt_ins: touchpoint_common::protocol::OptIns {
            email: customers / 2,
            phone: customers / 5,
            post_refused: customers / 40,
        },
        last_import: last_import.map(Box::new),
        error: None,
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
        parked: 0,
        parked_list: vec![],
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

/// The overview of three tenants, with alerts and a busy hour.
pub fn overview() -> touchpoint_common::protocol::Overview {
    use touchpoint_common::protocol::{
        Alert, AlertLevel, CostRow, DayCounts, Overview, TenantDay, ThrottleStatus, UpcomingDay,
    };
    let day = |n: u64| DayCounts {
        planned: 120 * n,
        queued: 7 * n,
        sent: 340 * n,
        failed: n - 1,
        held: n % 2,
    };
    let tenants: Vec<TenantDay> = (1..=3)
        .map(|n| TenantDay {
            tenant: tid(&format!("d00{n}")),
            name: summary(n as usize).name,
            counts: day(n),
            error: None,
        })
        .collect();
    let mut total = DayCounts::default();
    for t in &tenants {
        total.add(&t.counts);
    }
    let today = touchpoint_common::Date::from_ymd(2025, 3, 14).expect("fixture day");
    Overview {
        today,
        day: today,
        next_out: Some(today),
        upcoming: (0..7)
            .map(|n| UpcomingDay {
                day: today.add_days(n),
                counts: if n == 0 {
                    total
                } else {
                    DayCounts {
                        planned: [0, 0, 5_825, 412, 0, 0, 96][n as usize],
                        held: u64::from(n == 3) * 2,
                        ..DayCounts::default()
                    }
                },
            })
            .collect(),
        tenants,
        total,
        responses: touchpoint_common::report::MonthResponses {
            to_messages: 214,
            to_control: 9,
            organic: 1377,
        },
        budgets: (1..=3)
            .flat_map(|n: i64| {
                let row = |service: &str, reserved: i64, booked: i64, budget| CostRow {
                    tenant: tid(&format!("d00{n}")),
                    month: 202503,
                    service: service.into(),
                    reserved,
                    booked,
                    brand: booked / 4,
                    dealer: booked - booked / 4,
                    budget,
                };
                let budget = |b: i64| (n != 3).then_some(b);
                [
                    row("inspection", 25_000 * n, 20_000 * n, budget(60_000)),
                    row("service_due", 15_000 * n, 10_000 * n, budget(40_000)),
                ]
            })
            .collect(),
        throughput: (0..60u64).map(|m| (m * 37) % 90).collect(),
        throttles: vec![
            ThrottleStatus {
                name: "global".into(),
                in_flight: 8,
                concurrency: 0,
                used: 430,
                limit: 600,
                per: "minute".into(),
                saturation: 72,
            },
            ThrottleStatus {
                name: "domain gmail.com".into(),
                in_flight: 4,
                concurrency: 4,
                used: 95,
                limit: 100,
                per: "minute".into(),
                saturation: 100,
            },
        ],
        dispatch_enabled: true,
        transport: "smtp relay mail.example:587 (starttls, 4 connections)".into(),
        paused: Vec::new(),
        relay_down_until: None,
        dispatch_error: String::new(),
        policy: status().policy,
        pending_approvals: 2,
        alerts: vec![
            Alert {
                level: AlertLevel::Critical,
                tenant: None,
                text: "the last policy reload was refused: 1 error".into(),
            },
            Alert {
                level: AlertLevel::Warning,
                tenant: Some(tid("d002")),
                text: "inspection budget 2025-03 92% used: 400.00 reserved + 152.00 booked of 600.00, 48.00 remaining".into(),
            },
        ],
        daemon_wide: true,
        clock: None,
    }
}

/// [`overview`] as a caller scoped to its tenants gets it while d002's
/// store cannot be read: d002's row says why, the figures over every
/// tenant (throughput, global and per-domain throttles) are not there.
pub fn overview_scoped() -> touchpoint_common::protocol::Overview {
    use touchpoint_common::protocol::{Alert, AlertLevel, DayCounts, ThrottleStatus};
    let mut o = overview();
    let why = "database /var/lib/touchpoint/tenants/d002/store: IO error: No space left on device (os error 28)";
    if let Some(t) = o.tenants.iter_mut().find(|t| t.tenant == tid("d002")) {
        t.counts = DayCounts::default();
        t.error = Some(why.into());
    }
    o.budgets.retain(|b| b.tenant != tid("d002"));
    o.total = DayCounts::default();
    for t in &o.tenants {
        o.total.add(&t.counts);
    }
    o.throughput = Vec::new();
    o.throttles = vec![ThrottleStatus {
        name: "tenant d001".into(),
        in_flight: 0,
        concurrency: 0,
        used: 1_980,
        limit: 2_000,
        per: "day".into(),
        saturation: 99,
    }];
    o.pending_approvals = 1;
    o.alerts.retain(|a| a.tenant != Some(tid("d002")));
    o.alerts.insert(
        0,
        Alert {
            level: AlertLevel::Critical,
            tenant: Some(tid("d002")),
            text: format!("store unreadable, its figures are left out: {why}"),
        },
    );
    o.daemon_wide = false;
    o
}

/// A window of a queue of 1,234 messages, starting at `offset`.
pub fn queue_page(offset: u64, rows: u64) -> touchpoint_common::protocol::QueuePage {
    use touchpoint_common::domain::Channel;
    use touchpoint_common::outbox::MessageStatus;
    use touchpoint_common::protocol::{QueuePage, QueueRow};
    let statuses = [
        MessageStatus::Queued,
        MessageStatus::Sent,
        MessageStatus::Held,
        MessageStatus::Failed,
        MessageStatus::Planned,
    ];
    QueuePage {
        filter: Default::default(),
        offset,
        total: 1_234,
        counts: vec![
            (MessageStatus::Planned, 900),
            (MessageStatus::Queued, 200),
            (MessageStatus::Sent, 120),
            (MessageStatus::Held, 10),
            (MessageStatus::Failed, 4),
        ],
        rows: (offset..(offset + rows).min(1_234))
            .map(|i| QueueRow {
                tenant: tid("d001"),
                id: 1_234 - i,
                status: statuses[(i % 5) as usize],
                channel: if i % 4 == 0 {
                    Channel::Post
                } else {
                    Channel::Email
                },
                service: "inspection".into(),
                template: "inspection".into(),
                send_on: touchpoint_common::Date::from_ymd(2025, 3, 14).expect("fixture day"),
                send_at: 9 * 60,
                recipient: format!("K-{}", 10_000 + i),
                name: "Jürgen Weiß".into(),
                address: "j.weiss@example.de".into(),
                cost: 85,
                attempts: u32::from(i % 5 == 3),
                last_error: if i % 5 == 3 {
                    "550 5.1.1 user unknown".into()
                } else {
                    String::new()
                },
                updated_at: ts(i as i64),
                town: "80807 München".into(),
            })
            .collect(),
    }
}

fn tally(sent: u64, responses: u64, control: u64, control_responses: u64) -> Tally {
    Tally {
        sent,
        delivered: sent,
        responses,
        control,
        control_responses,
        cost: sent as i64 * 95,
        value: responses as i64 * 18_000,
        bounces: 0,
        unsubscribes: 0,
        clicked: 0,
        clicks: 0,
        emails_delivered: 0,
    }
}

/// A group of one dealer's rows of these services, its figures computed
/// as the daemon computes them.
fn group(order: i64, label: &str, strata: &[(&str, Tally)]) -> ReportGroup {
    let strata: BTreeMap<String, Dealers> = strata
        .iter()
        .map(|(s, t)| (s.to_string(), Dealers::from([(0, *t)])))
        .collect();
    let mut g = ReportGroup {
        order,
        label: label.into(),
        tally: None,
        figures: None,
        lift_services: Vec::new(),
        suppressed: None,
    };
    fill(&mut g, &strata, &strata.keys().cloned().collect());
    g
}

/// A results report grouped `by`: two services (one with a control
/// group), or three groups of a breakdown; pooled ones with a suppressed
/// cell and its complementary one.
pub fn report(by: By, pooled: bool) -> Report {
    let strata = match by {
        By::Service => vec![
            (
                0,
                "service_due",
                vec![("service_due", tally(400, 72, 40, 3))],
            ),
            (0, "birthday", vec![("birthday", tally(120, 6, 0, 0))]),
        ],
        _ => vec![
            (0, "first", vec![("service_due", tally(200, 40, 20, 2))]),
            (1, "second", vec![("winter_check", tally(300, 30, 20, 1))]),
            (2, "third", vec![("birthday", tally(20, 8, 0, 0))]),
        ],
    };
    let groups: Vec<ReportGroup> = strata
        .iter()
        .map(|(order, label, s)| group(*order, label, s))
        .collect();
    let all: Vec<(&str, Tally)> = strata.iter().flat_map(|(_, _, s)| s.clone()).collect();
    let total = group(0, "total", &all);
    let mut r = Report {
        query: ReportQuery {
            by,
            pooled,
            ..ReportQuery::default()
        },
        from: Date::from_ymd(2024, 12, 15).expect("date"),
        to: Date::from_ymd(2025, 3, 14).expect("date"),
        groups,
        total,
        dealers: 3,
        rule: None,
        shared: Vec::new(),
        errors: Vec::new(),
        unreadable: 0,
    };
    if pooled {
        r.dealers = 7;
        r.rule = Some(PoolRule {
            min_dealers: 5,
            max_dealer_permille: 500,
        });
        if let Some(g) = r.groups.last_mut() {
            g.tally = None;
            g.figures = None;
            g.lift_services.clear();
            g.suppressed = Some(Suppression::TooFewDealers);
        }
        r.total.tally = None;
        r.total.figures = None;
        r.total.lift_services.clear();
        r.total.suppressed = Some(Suppression::Complementary);
    }
    r
}

pub fn cost_row(
    tenant: &str,
    month: u32,
    service: &str,
    cents: [i64; 4],
    budget: Option<i64>,
) -> CostRow {
    let [reserved, booked, brand, dealer] = cents;
    CostRow {
        tenant: tid(tenant),
        month,
        service: service.into(),
        reserved,
        booked,
        brand,
        dealer,
        budget,
    }
}

/// Two tenants, one with two services; an umlaut in a service name; one
/// service without budget; one over budget.
pub fn ledger() -> Vec<CostRow> {
    vec![
        cost_row("d002", 202612, "hu", [1_000, 2_500, 0, 2_500], Some(5_000)),
        cost_row(
            "d001",
            202612,
            "räderwechsel",
            [12_345, 67_890, 33_945, 33_945],
            Some(100_000),
        ),
        cost_row("d001", 202611, "birthday", [0, 450, 0, 450], None),
        cost_row(
            "d002",
            202612,
            "inspektion",
            [300, 900, 0, 900],
            Some(1_000),
        ),
    ]
}

/// A letter sent as the fallback of a bounced email, umlauts throughout.
pub fn message() -> Message {
    use touchpoint_common::domain::Channel;
    use touchpoint_common::outbox::{Dispatch, MessageStatus as S, Step, Why};
    let why = |step, text: &str| Why {
        step,
        text: text.into(),
    };
    Message {
        id: 42,
        message_id: "<tp.d001.42@autohaus-müller.de>".into(),
        recipient: "K-1001".into(),
        channel: Channel::Post,
        service: "inspektion".into(),
        template: "inspektion_brief".into(),
        occasions: vec![],
        send_on: touchpoint_common::Date::from_ymd(2025, 3, 17).expect("date"),
        send_at: 9 * 60 + 5,
        cost: 95,
        value: 18_000,
        status: S::Sent,
        why: vec![
            why(
                Step::Occasion,
                "Inspektion fällig am 2025-04-01 (12 Monate nach dem Service am 2024-04-01)",
            ),
            why(Step::Channel, "E-Mail bevorzugt, Einwilligung vom 2024-01-05"),
            why(
                Step::Dispatch,
                "E-Mail an jürgen.köhler@example.de abgewiesen (550 5.1.1 Empfänger unbekannt); Brief statt E-Mail",
            ),
        ],
        planned_at: ts(-60),
        policy: 7,
        history: vec![
            (ts(-60), S::Planned, "geplant".into()),
            (ts(0), S::Queued, "für den Lettershop".into()),
            (ts(90), S::Sent, String::new()),
        ],
        dispatch: Dispatch {
            template_version: 0x1f2e_3d4c_5b6a_7988,
            attempts: 0,
            first_attempt: None,
            retry_at: None,
            last_error: String::new(),
            held_from: None,
            fallback_of: Some(41),
            fallback_to: None,
            batch: "d001-2025-03-14-letters.pdf".into(),
            booked: 95,
            brand_share: 48,
            address: "Jürgen Köhler, Hauptstraße 5, 80331 München".into(),
        },
    }
}

/// One stored customer with a vehicle and its visit, a consent, a merge, a
/// response, a journey and a sent letter.
pub fn customer_detail() -> CustomerDetail {
    use touchpoint_common::domain::{
        Channel, Consent, Customer, JourneyRecord, JourneyStage, JourneyTransition, ServiceVisit,
        Vehicle,
    };
    use touchpoint_common::outbox::MessageStatus;
    use touchpoint_common::protocol::{CustomerMessage, CustomerVehicle};
    use touchpoint_common::report::{ReportedResponse, ResponseKind};

    let day = |d| Date::from_ymd(2025, 3, d).expect("date");
    let vehicle = Vehicle {
        vin: "WVWZZZ1KZAW000001".into(),
        customer_no: "K-1001".into(),
        make: "VW".into(),
        model: "Golf".into(),
        first_registration: Some(Date::from_ymd(2021, 4, 1).expect("date")),
        last_service_date: Some(Date::from_ymd(2024, 4, 1).expect("date")),
        last_service_km: Some(41_000),
        next_inspection: Some(Date::from_ymd(2026, 4, 30).expect("date")),
        warranty_end: None,
    };
    CustomerDetail {
        tenant: tid("d001"),
        customer: Customer {
            customer_no: "K-1001".into(),
            first_name: "Jürgen".into(),
            last_name: "Köhler".into(),
            birth_date: Some(Date::from_ymd(1970, 2, 28).expect("date")),
            ..Customer::default()
        },
        asked_for: None,
        merges: vec![merge(3, "K-1001", "K-1001a", false)],
        merges_more: 0,
        vehicles: vec![CustomerVehicle {
            vehicle,
            stage: None,
            visits: vec![ServiceVisit {
                vin: "WVWZZZ1KZAW000001".into(),
                customer_no: "K-1001".into(),
                date: Date::from_ymd(2024, 4, 1).expect("date"),
                km: Some(41_000),
                kind: "Inspektion".into(),
                value: Some(24_990),
                source: "werkstatt.csv:214".into(),
            }],
            visits_more: 0,
        }],
        vehicles_more: 0,
        consents: vec![Consent {
            customer_no: "K-1001".into(),
            channel: Channel::Email,
            granted: true,
            source: "dms-import:kunden.csv".into(),
            at: ts(-600),
        }],
        consents_more: 0,
        responses: vec![ReportedResponse {
            customer_no: "K-1001".into(),
            vin: String::new(),
            date: day(20),
            kind: ResponseKind::Appointment,
            value: None,
            note: String::new(),
            source: "antworten.csv:12".into(),
        }],
        responses_more: 0,
        journey: Some(JourneyRecord {
            stage: JourneyStage::Active,
            changed_on: day(14),
            vehicles: Vec::new(),
            transitions: vec![JourneyTransition::Customer {
                day: day(14),
                from: None,
                to: JourneyStage::Active,
            }],
        }),
        messages: vec![CustomerMessage {
            id: 42,
            service: "inspektion".into(),
            channel: Channel::Post,
            status: MessageStatus::Sent,
            send_on: day(17),
        }],
        messages_more: 0,
        objection: None,
    }
}
