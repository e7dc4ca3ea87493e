//! Human-readable text for the daemon's answers: the subcommands print it,
//! the TUI borrows the small helpers. Times are shown in UTC, like the daemon
//! logs them.

use std::fmt::Write as _;

use touchpoint_common::domain::{Counts, ImportReport, ImportStatus, MergeRecord, Timestamp};
use touchpoint_common::protocol::{
    AuditEntry, AuditOutcome, DaemonStatus, Identity, Scope, TenantDetail, TenantSummary,
};

/// Row errors listed per import in `touchpoint tenant`.
const DETAIL_ERRORS_PER_IMPORT: usize = 5;

/// `1536` → `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `2024-05-01 14:03` (UTC).
pub fn time_short(t: Timestamp) -> String {
    match chrono::DateTime::from_timestamp_millis(t.millis()) {
        Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        None => format!("@{}ms", t.millis()),
    }
}

pub fn import_status(s: &ImportStatus) -> String {
    match s {
        ImportStatus::Committed => "committed".into(),
        ImportStatus::AlreadyImported { previous } => format!("already imported as #{previous}"),
        ImportStatus::Failed { reason } => format!("failed: {reason}"),
    }
}

/// A status word that fits a table column.
pub fn import_status_short(s: &ImportStatus) -> String {
    match s {
        ImportStatus::Committed => "committed".into(),
        ImportStatus::AlreadyImported { previous } => format!("dup of #{previous}"),
        ImportStatus::Failed { .. } => "FAILED".into(),
    }
}

pub fn scope(s: &Scope) -> String {
    match s {
        Scope::All => "all tenants".into(),
        Scope::Tenants(list) if list.is_empty() => "no tenants".into(),
        Scope::Tenants(list) => list
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

pub fn identity(i: &Identity) -> String {
    format!(
        "{} (uid {}), {}, scope: {}",
        i.user,
        i.uid,
        i.role,
        scope(&i.scope)
    )
}

pub fn counts(c: &Counts) -> String {
    format!(
        "{} inserted, {} updated, {} unchanged",
        c.inserted, c.updated, c.unchanged
    )
}

pub fn audit_outcome(o: &AuditOutcome) -> String {
    match o {
        AuditOutcome::Ok => "ok".into(),
        AuditOutcome::Refused(r) => format!("refused: {r}"),
        AuditOutcome::Failed(r) => format!("failed: {r}"),
    }
}

/// Why a merge was made, all reasons on one line.
pub fn merge_reasons(m: &MergeRecord) -> String {
    m.reasons
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// A plain-text table with columns as wide as their widest cell.
struct TextTable {
    headers: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl TextTable {
    fn new(headers: &[(&'static str, Align)]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self) -> String {
        let mut widths: Vec<usize> = self
            .headers
            .iter()
            .map(|(h, _)| h.chars().count())
            .collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|(h, _)| h.to_string()).collect();
        for row in std::iter::once(&header).chain(self.rows.iter()) {
            let mut line = String::new();
            for (i, (_, align)) in self.headers.iter().enumerate() {
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                let pad = widths[i].saturating_sub(cell.chars().count());
                if i > 0 {
                    line.push_str("  ");
                }
                match align {
                    Align::Left => {
                        line.push_str(cell);
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                    Align::Right => {
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(cell);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

use Align::{Left as L, Right as R};

pub fn status(s: &DaemonStatus) -> String {
    let p = &s.policy;
    let mut rows: Vec<(&str, String)> = vec![
        (
            "daemon",
            format!("{} (protocol {})", s.daemon_version, s.protocol_version),
        ),
        ("started", s.started_at.to_string()),
        ("state dir", s.state_dir.clone()),
        ("socket", s.socket.clone()),
        ("policy dir", format!("{} ({} files)", p.dir, p.files.len())),
        ("policy load", p.loaded_at.to_string()),
    ];
    rows.push(match p.errors.len() {
        0 => ("policy", "valid".into()),
        n => (
            "policy",
            format!(
                "INVALID: {n} error{} (listed above), the previous policy stays in force",
                plural(n)
            ),
        ),
    });
    let mut out = String::new();
    // A refused policy change is what an operator must not overlook: first.
    if !p.errors.is_empty() {
        let n = p.errors.len();
        let _ = writeln!(
            out,
            "POLICY ERRORS: the last change to the policy files was refused ({n} error{}); \
             the policy loaded {} stays in force until they are fixed:",
            plural(n),
            p.loaded_at
        );
        for e in &p.errors {
            let _ = writeln!(out, "  {e}");
        }
        out.push('\n');
    }
    let kv = |out: &mut String, k: &str, v: &str| {
        let _ = writeln!(out, "{k:<13}{v}");
    };
    for (k, v) in &rows {
        kv(&mut out, k, v);
    }
    kv(
        &mut out,
        "tenants",
        &format!(
            "{} in scope, {} open / {} max",
            s.tenants, s.tenants_open, s.max_open_tenants
        ),
    );
    let pl = &s.planning;
    let next = pl
        .next_run
        .map(|t| format!(", next {t}"))
        .unwrap_or_default();
    kv(
        &mut out,
        "planning",
        &format!("schedule \"{}\"{next}", pl.schedule),
    );
    if let Some(last) = pl.last_run {
        kv(
            &mut out,
            "last plan",
            &format!(
                "{last}: {} messages planned, {} tenants failed, {} ms",
                pl.last_planned, pl.last_failed, pl.last_millis
            ),
        );
    }
    kv(&mut out, "connections", &s.connections.to_string());
    kv(&mut out, "you", &identity(&s.identity));
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

pub fn tenants(list: &[TenantSummary]) -> String {
    if list.is_empty() {
        return "no tenants in your scope\n".into();
    }
    let mut t = TextTable::new(&[
        ("ID", L),
        ("NAME", L),
        ("CUSTOMERS", R),
        ("RECIPIENTS", R),
        ("VEHICLES", R),
        ("CONSENTS", R),
        ("VISITS", R),
        ("MERGES", R),
        ("IMPORTS", R),
        ("LAST IMPORT", L),
        ("FILE", L),
        ("STATUS", L),
        ("OK", R),
        ("REJECTED", R),
        ("DISK", R),
    ]);
    for s in list {
        let st = &s.stats;
        let mut cells = vec![
            s.id.to_string(),
            s.name.clone(),
            st.customers.to_string(),
            st.recipients.to_string(),
            st.vehicles.to_string(),
            st.consents.to_string(),
            st.visits.to_string(),
            st.merges_active.to_string(),
            st.imports.to_string(),
        ];
        match &s.last_import {
            Some(i) => cells.extend([
                time_short(i.finished_at),
                i.file_name.clone(),
                import_status_short(&i.status),
                i.rows_ok.to_string(),
                i.rows_rejected.to_string(),
            ]),
            None => cells.extend(["-", "-", "-", "-", "-"].map(String::from)),
        }
        cells.push(human_bytes(st.disk_bytes));
        t.row(cells);
    }
    t.render()
}

/// The tenants table without the import columns, for summaries.
pub fn tenants_compact(list: &[TenantSummary]) -> String {
    let mut t = TextTable::new(&[
        ("ID", L),
        ("NAME", L),
        ("CUSTOMERS", R),
        ("RECIPIENTS", R),
        ("VEHICLES", R),
        ("VISITS", R),
        ("MERGES", R),
        ("DISK", R),
    ]);
    for s in list {
        let st = &s.stats;
        t.row(vec![
            s.id.to_string(),
            s.name.clone(),
            st.customers.to_string(),
            st.recipients.to_string(),
            st.vehicles.to_string(),
            st.visits.to_string(),
            st.merges_active.to_string(),
            human_bytes(st.disk_bytes),
        ]);
    }
    t.render()
}

pub fn tenant(d: &TenantDetail) -> String {
    let s = &d.summary;
    let st = &s.stats;
    let mut out = String::new();
    let _ = writeln!(out, "{} — {}", s.id, s.name);
    let _ = writeln!(
        out,
        "customers {}  recipients {}  vehicles {}  consents {}  visits {}",
        st.customers, st.recipients, st.vehicles, st.consents, st.visits
    );
    let _ = writeln!(
        out,
        "merges {}  imports {}  disk {}",
        st.merges_active,
        st.imports,
        human_bytes(st.disk_bytes)
    );
    out.push('\n');
    if d.imports.is_empty() {
        out.push_str("no imports yet\n");
    } else {
        out.push_str("imports:\n");
        let mut t = TextTable::new(&[
            ("#", R),
            ("FINISHED", L),
            ("FILE", L),
            ("STATUS", L),
            ("ROWS", R),
            ("OK", R),
            ("REJECTED", R),
            ("CUST +/~", R),
            ("VEH +/~", R),
            ("MERGES", R),
        ]);
        for i in &d.imports {
            t.row(vec![
                i.import_id.to_string(),
                time_short(i.finished_at),
                i.file_name.clone(),
                import_status_short(&i.status),
                i.rows_total.to_string(),
                i.rows_ok.to_string(),
                i.rows_rejected.to_string(),
                format!("{}/{}", i.customers.inserted, i.customers.updated),
                format!("{}/{}", i.vehicles.inserted, i.vehicles.updated),
                i.merges.to_string(),
            ]);
        }
        out.push_str(&t.render());
        for i in &d.imports {
            if let ImportStatus::Failed { reason } = &i.status {
                let _ = writeln!(out, "\nimport #{} failed: {reason}", i.import_id);
            }
            if i.errors.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "\nimport #{} ({}): {} rejected rows",
                i.import_id, i.file_name, i.rows_rejected
            );
            for e in i.errors.iter().take(DETAIL_ERRORS_PER_IMPORT) {
                let _ = writeln!(out, "  {e}");
            }
            let more = (i.errors.len().saturating_sub(DETAIL_ERRORS_PER_IMPORT)) as u64
                + i.errors_truncated;
            if more > 0 {
                let _ = writeln!(out, "  … and {more} more");
            }
        }
    }
    out.push('\n');
    if d.merges.is_empty() {
        out.push_str("no merges\n");
    } else {
        out.push_str("merges:\n");
        out.push_str(&merges(&d.merges));
    }
    out
}

/// The outcome of importing one file, as `touchpoint import` prints it.
/// `label` is the file as the user named it.
pub fn import_report(label: &str, r: &ImportReport) -> String {
    let mut out = String::new();
    match &r.status {
        ImportStatus::Committed => {
            let _ = writeln!(out, "{label}: committed as import #{}", r.import_id);
        }
        ImportStatus::AlreadyImported { previous } => {
            let _ = writeln!(
                out,
                "{label}: already imported as #{previous}, nothing changed"
            );
            return out;
        }
        ImportStatus::Failed { reason } => {
            let _ = writeln!(out, "{label}: failed: {reason}");
        }
    }
    if !r.format.is_empty() {
        let _ = writeln!(out, "  format     {}", r.format);
    }
    if r.rows_total > 0 || r.is_committed() {
        let _ = writeln!(
            out,
            "  rows       {} total, {} ok, {} rejected",
            r.rows_total, r.rows_ok, r.rows_rejected
        );
    }
    if r.is_committed() {
        for (kind, c) in [
            ("customers", &r.customers),
            ("vehicles", &r.vehicles),
            ("consents", &r.consents),
            ("visits", &r.visits),
        ] {
            let _ = writeln!(out, "  {kind:<10} {}", counts(c));
        }
        let _ = writeln!(out, "  merges     {}", r.merges);
    }
    if !r.unmapped_columns.is_empty() {
        let _ = writeln!(out, "  unmapped   {}", r.unmapped_columns.join(", "));
    }
    for e in &r.errors {
        let _ = writeln!(out, "{e}");
    }
    if r.errors_truncated > 0 {
        let _ = writeln!(out, "… and {} more", r.errors_truncated);
    }
    out
}

pub fn merges(list: &[MergeRecord]) -> String {
    if list.is_empty() {
        return "no merges\n".into();
    }
    let mut t = TextTable::new(&[
        ("ID", R),
        ("AT", L),
        ("SURVIVOR", L),
        ("MERGED", L),
        ("IMPORT", R),
        ("UNDONE", L),
        ("WHY", L),
    ]);
    for m in list {
        t.row(vec![
            m.merge_id.to_string(),
            time_short(m.at),
            m.survivor.clone(),
            m.merged.clone(),
            m.import_id
                .map(|i| format!("#{i}"))
                .unwrap_or_else(|| "-".into()),
            match (&m.undone_at, &m.undone_by) {
                (Some(at), Some(by)) => format!("{} by {by}", time_short(*at)),
                (Some(at), None) => time_short(*at),
                _ => "-".into(),
            },
            merge_reasons(m),
        ]);
    }
    t.render()
}

pub fn merge_undone(m: &MergeRecord) -> String {
    format!(
        "merge #{} undone: customer {} is separate from {} again\n",
        m.merge_id, m.merged, m.survivor
    )
}

pub fn audit(list: &[AuditEntry]) -> String {
    if list.is_empty() {
        return "no audit entries\n".into();
    }
    let mut t = TextTable::new(&[
        ("SEQ", R),
        ("AT", L),
        ("USER", L),
        ("ROLE", L),
        ("ACTION", L),
        ("TENANT", L),
        ("OUTCOME", L),
        ("DETAIL", L),
    ]);
    for a in list {
        t.row(vec![
            a.seq.to_string(),
            a.at.to_string(),
            format!("{} ({})", a.user, a.uid),
            a.role.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
            a.action.clone(),
            a.tenant
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_else(|| "-".into()),
            audit_outcome(&a.outcome),
            a.detail.clone(),
        ]);
    }
    t.render()
}

fn money(cents: i64) -> String {
    touchpoint_common::policy::Money(cents).to_string()
}

fn message_line(tenant: &str, m: &touchpoint_common::outbox::Message) -> String {
    let services: Vec<&str> = {
        let mut v: Vec<&str> = Vec::new();
        for o in &m.occasions {
            if !v.contains(&o.service.as_str()) {
                v.push(&o.service);
            }
        }
        v
    };
    format!(
        "{tenant} {} {:02}:{:02} {:<5} {} {} ({} occasion{}) {}",
        m.send_on,
        m.send_at / 60,
        m.send_at % 60,
        m.channel.as_str(),
        m.recipient,
        services.join("+"),
        m.occasions.len(),
        plural(m.occasions.len()),
        money(m.cost),
    )
}

/// `touchpoint plan`: per tenant, per service, drops by step, and with
/// `--show` the messages with their why.
pub fn plan(p: &touchpoint_common::protocol::PlanResult, with_candidate: bool) -> String {
    use touchpoint_common::outbox::PlanChange;
    let mut out = String::new();
    let dry = p.reports.first().is_some_and(|r| r.dry_run);
    if let Some(day) = p.reports.first().and_then(|r| r.day) {
        let _ = writeln!(
            out,
            "plan for {day}{}",
            if dry {
                " (dry run: nothing written)"
            } else {
                ""
            }
        );
    }
    let mut t = TextTable::new(&[
        ("TENANT", L),
        ("RECIPIENTS", R),
        ("OCCASIONS", R),
        ("EARLIER", R),
        ("PLANNED", R),
        ("DROPPED", R),
        ("CANCELLED", R),
        ("COST", R),
        ("MS", R),
    ]);
    let mut services: std::collections::BTreeMap<String, touchpoint_common::outbox::ServiceTotals> =
        Default::default();
    let mut steps: std::collections::BTreeMap<String, u64> = Default::default();
    for r in &p.reports {
        let cost: i64 = r.totals.iter().map(|t| t.cost).sum();
        if r.unchanged {
            t.row(vec![
                r.tenant.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "0".into(),
                "-".into(),
                "0".into(),
                "unchanged".into(),
                r.millis.to_string(),
            ]);
            continue;
        }
        t.row(vec![
            r.tenant.clone(),
            r.recipients.to_string(),
            r.occasions_found.to_string(),
            r.already_planned.to_string(),
            r.planned_count.to_string(),
            r.dropped_count.to_string(),
            r.cancelled_count.to_string(),
            money(cost),
            r.millis.to_string(),
        ]);
        for s in &r.totals {
            let e = services.entry(s.service.clone()).or_default();
            e.messages += s.messages;
            e.email += s.email;
            e.post += s.post;
            e.phone += s.phone;
            e.cost += s.cost;
            e.dropped += s.dropped;
        }
        for d in &r.dropped {
            *steps.entry(d.step.to_string()).or_default() += 1;
        }
    }
    out.push_str(&t.render());
    if !services.is_empty() {
        out.push('\n');
        let mut t = TextTable::new(&[
            ("SERVICE", L),
            ("MESSAGES", R),
            ("EMAIL", R),
            ("POST", R),
            ("PHONE", R),
            ("COST", R),
            ("DROPPED", R),
        ]);
        let mut total = touchpoint_common::outbox::ServiceTotals::default();
        for (name, s) in &services {
            t.row(vec![
                name.clone(),
                s.messages.to_string(),
                s.email.to_string(),
                s.post.to_string(),
                s.phone.to_string(),
                money(s.cost),
                s.dropped.to_string(),
            ]);
            total.messages += s.messages;
            total.email += s.email;
            total.post += s.post;
            total.phone += s.phone;
            total.cost += s.cost;
            total.dropped += s.dropped;
        }
        t.row(vec![
            "total".into(),
            total.messages.to_string(),
            total.email.to_string(),
            total.post.to_string(),
            total.phone.to_string(),
            money(total.cost),
            total.dropped.to_string(),
        ]);
        out.push_str(&t.render());
    }
    for r in &p.reports {
        for m in &r.cancelled {
            let _ = writeln!(out, "\ncancelled: {}", message_line(&r.tenant, m));
            if let Some(w) = m.why.last() {
                let _ = writeln!(out, "  {w}");
            }
        }
        for m in &r.planned {
            let _ = writeln!(out, "\n{}", message_line(&r.tenant, m));
            for w in &m.why {
                let _ = writeln!(out, "  {w}");
            }
        }
        for d in &r.dropped {
            let _ = writeln!(
                out,
                "\ndropped: {} {} {} due {}: {}: {}",
                r.tenant, d.recipient, d.occasion.service, d.occasion.due, d.step, d.reason
            );
        }
    }
    if with_candidate {
        let _ = writeln!(out, "\ndifference under the candidate policies:");
        let mut t = TextTable::new(&[
            ("TENANT", L),
            ("ADDED", R),
            ("REMOVED", R),
            ("CHANGED", R),
            ("COST NOW", R),
            ("COST THEN", R),
        ]);
        for c in &p.changes {
            t.row(vec![
                c.tenant.clone(),
                c.added.to_string(),
                c.removed.to_string(),
                c.changed.to_string(),
                money(c.cost_current),
                money(c.cost_candidate),
            ]);
        }
        out.push_str(&t.render());
        for c in &p.changes {
            for ch in &c.changes {
                let line = match ch {
                    PlanChange::Added(m) => format!("+ {}", message_line(&c.tenant, m)),
                    PlanChange::Removed(m) => format!("- {}", message_line(&c.tenant, m)),
                    PlanChange::Changed { current, candidate } => format!(
                        "~ {}\n  → {}",
                        message_line(&c.tenant, current),
                        message_line(&c.tenant, candidate)
                    ),
                };
                let _ = writeln!(out, "{line}");
            }
        }
    }
    for (tenant, e) in &p.failed {
        let _ = writeln!(out, "{tenant}: failed: {e}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn bytes_in_human_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(300 * 1024 * 1024), "300 MiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn status_text() {
        insta::assert_snapshot!(status(&fixtures::status()));
    }

    #[test]
    fn tenants_text() {
        insta::assert_snapshot!(tenants(&fixtures::tenants()));
    }

    #[test]
    fn tenant_text() {
        insta::assert_snapshot!(tenant(&fixtures::detail()));
    }

    #[test]
    fn import_text_lists_errors_as_displayed() {
        let d = fixtures::detail();
        let text = import_report("exports/d001/kunden.csv", &d.imports[0]);
        assert!(
            text.contains("\nkunden.csv:17: email: \"max@@example\" is not an address\n"),
            "{text}"
        );
        assert!(text.contains("\n… and 38 more\n"), "{text}");
        insta::assert_snapshot!(text);
        let dup = import_report("kunden.csv", &d.imports[1]);
        assert_eq!(dup, "kunden.csv: already imported as #1, nothing changed\n");
    }

    #[test]
    fn merges_and_audit_text() {
        insta::assert_snapshot!(merges(&fixtures::detail().merges));
        insta::assert_snapshot!(audit(&fixtures::audit()));
    }
}
