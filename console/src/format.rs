//! Human-readable text for the daemon's answers: the subcommands print it,
//! the TUI borrows the small helpers. Times are shown in UTC, like the daemon
//! logs them.

use std::fmt::Write as _;

mod customer;
mod learning;
mod report;
mod responses;
mod visible;
pub use customer::customer;
pub use learning::{learned_line, learning};
pub use report::{report, report_csv, report_json};
pub use responses::{responses, responses_csv};
pub use visible::visible;

use touchpoint_common::budget::{tenant_month, BudgetSum};
use touchpoint_common::domain::{
    Counts, ImportReport, ImportStatus, MergeRecord, ResponseTally, Timestamp,
};
use touchpoint_common::outbox::month_of;
use touchpoint_common::outbox::Message;
use touchpoint_common::protocol::{
    ActionResult, AuditEntry, AuditOutcome, BatchSummary, CostRow, DaemonStatus, DispatchStatus,
    Identity, MessageAction, MessageContent, OutcomeReport, Overview, Pause, Preview, Proposal,
    ProposalDetail, ProposalStatus, Scope, TemplateHistory, TenantDetail, TenantSummary,
    UpcomingDay,
};
use touchpoint_common::Date;

/// Row errors listed per import in `touchpoint tenant`.
const DETAIL_ERRORS_PER_IMPORT: usize = 5;

/// In place of a figure the daemon counts only over every tenant, for a
/// caller whose scope is narrower: not shown, which is not 0.
pub const NOT_SHOWN: &str = "— (counted over every tenant: not shown to your scope)";

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

/// A fingerprint (of the policy set, of a template version) as shown
/// everywhere: its first 12 hex digits, enough to tell versions apart.
pub fn fingerprint(v: u64) -> String {
    touchpoint_common::policy::short_fingerprint(v)
}

/// `1,377`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// How an import's responses were credited:
/// `3 responses: 1 credited to messages, 1 to control records, 1 organic`.
pub fn credited(t: &ResponseTally) -> String {
    let n = t.total();
    format!(
        "{} response{}: {} credited to messages, {} to control records, {} organic",
        thousands(n),
        if n == 1 { "" } else { "s" },
        thousands(t.to_messages),
        thousands(t.to_control),
        thousands(t.organic)
    )
}

pub fn counts(c: &Counts) -> String {
    format!(
        "{} inserted, {} updated, {} unchanged",
        c.inserted, c.updated, c.unchanged
    )
}

pub fn audit_outcome(o: &AuditOutcome) -> String {
    o.describe()
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

    /// Like [`TextTable::render`], with the last column's cells shortened so
    /// that lines fit `width` characters; the last column keeps at least
    /// [`MIN_LAST_COLUMN`] characters however narrow `width` is. Without a
    /// width (not a terminal: a file, a pipe) nothing is cut; a line break
    /// within the last column's cells becomes a space.
    /// The table with every row's cell in column `last` passed through `f`.
    fn with_last_column(&self, last: usize, f: impl Fn(&str) -> String) -> TextTable {
        TextTable {
            headers: self.headers.clone(),
            rows: self
                .rows
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    if let Some(cell) = r.get_mut(last) {
                        *cell = f(cell);
                    }
                    r
                })
                .collect(),
        }
    }

    fn render_fitted(&self, width: Option<usize>) -> String {
        let Some(last) = self.headers.len().checked_sub(1) else {
            return self.render();
        };
        let Some(width) = width else {
            return self
                .with_last_column(last, |cell| {
                    cell.split_whitespace().collect::<Vec<_>>().join(" ")
                })
                .render();
        };
        let mut used = 2 * last;
        for (i, (h, _)) in self.headers.iter().enumerate().take(last) {
            used += self
                .rows
                .iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .fold(h.chars().count(), usize::max);
        }
        let room = width.saturating_sub(used).max(MIN_LAST_COLUMN);
        self.with_last_column(last, |cell| shorten(cell, room))
            .render()
    }
}

/// The narrowest a shortened last column gets.
const MIN_LAST_COLUMN: usize = 12;

/// The first line of `s` in at most `max` characters; `…` marks a cut.
pub fn shorten(s: &str, max: usize) -> String {
    let s = s.trim();
    let first = s.lines().next().unwrap_or("");
    let cut = first.len() < s.len();
    if !cut && first.chars().count() <= max {
        return first.to_string();
    }
    let mut out: String = first.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

use Align::{Left as L, Right as R};

/// What a retention run did (`touchpoint retention run`).
pub fn retention(r: &touchpoint_common::protocol::RetentionRun) -> String {
    format!("retention run at {}: {}\n", r.at, r.summary())
}

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
    // A rehearsal daemon must never pass for the real one: first of all.
    if let Some(c) = s.clock {
        let _ = writeln!(
            out,
            "REHEARSAL: {}; this daemon plans and sends by that clock\n",
            c.describe()
        );
    }
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
        &if s.daemon_wide {
            format!(
                "{} in scope, {} open / {} max",
                s.tenants, s.tenants_open, s.max_open_tenants
            )
        } else {
            format!("{} in scope, {} of them open", s.tenants, s.tenants_open)
        },
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
        let figures = if s.daemon_wide {
            format!(
                "{} messages planned, {} tenants failed, {} ms",
                pl.last_planned, pl.last_failed, pl.last_millis
            )
        } else {
            NOT_SHOWN.to_string()
        };
        kv(&mut out, "last plan", &format!("{last}: {figures}"));
    }
    let r = &s.retention;
    let months = |m: Option<u32>| m.map_or("kept".to_string(), |m| format!("{m} months"));
    kv(
        &mut out,
        "retention",
        &format!(
            "messages {}, responses {}, audit {}",
            months(r.messages_months),
            months(r.responses_months),
            months(r.audit_months)
        ),
    );
    match &r.last {
        Some(run) => kv(
            &mut out,
            "last prune",
            &format!("{} by {}: {}", run.at, run.by, run.summary()),
        ),
        None if s.daemon_wide => kv(&mut out, "last prune", "never"),
        None => kv(&mut out, "last prune", NOT_SHOWN),
    }
    let connections = if s.daemon_wide {
        s.connections.to_string()
    } else {
        format!(
            "{} of yours (others': not shown to your scope)",
            s.connections
        )
    };
    kv(&mut out, "connections", &connections);
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
    let mut out = t.render();
    // The figures of a tenant in trouble are those it last had.
    for s in list {
        if let Some(e) = &s.error {
            let _ = writeln!(out, "{}: store unreadable: {e}", s.id);
        }
    }
    out
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
            let corrections = i.corrections.describe();
            if !corrections.is_empty() {
                let _ = writeln!(out, "\nimport #{} ({}):", i.import_id, i.file_name);
                for line in corrections {
                    let _ = writeln!(out, "  re-export: {line}");
                }
            }
            if let Some(line) = i.stale.describe(&i.file_name) {
                let _ = writeln!(out, "\nimport #{}: {line}", i.import_id);
            }
            if !i.warnings.is_empty() {
                let _ = writeln!(
                    out,
                    "\nimport #{} ({}): {} rows with warnings",
                    i.import_id, i.file_name, i.rows_warned
                );
                for w in i.warnings.iter().take(DETAIL_ERRORS_PER_IMPORT) {
                    let _ = writeln!(out, "  {w}");
                }
                let more = (i.warnings.len().saturating_sub(DETAIL_ERRORS_PER_IMPORT)) as u64
                    + i.warnings_truncated;
                if more > 0 {
                    let _ = writeln!(out, "  … and {more} more");
                }
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
    if d.parked > 0 {
        let _ = writeln!(
            out,
            "\nparked vehicles: {} (holder not a known customer; attached when the customer is imported)",
            d.parked
        );
        for p in &d.parked_list {
            let _ = writeln!(out, "  {}  customer_no {}", p.vin, p.customer_no);
        }
        let more = d.parked.saturating_sub(d.parked_list.len() as u64);
        if more > 0 {
            let _ = writeln!(out, "  … and {more} more");
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
        ImportStatus::AlreadyImported { .. } => {
            let _ = writeln!(out, "{label}: {}", r.outcome_summary());
            // Rows of people erased since the file was imported.
            for e in &r.errors {
                let _ = writeln!(out, "{e}");
            }
            if r.errors_truncated > 0 {
                let _ = writeln!(out, "… and {} more", r.errors_truncated);
            }
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
            "  rows       {} total, {}",
            r.rows_total,
            r.rows_summary()
        );
    }
    if r.parked > 0 {
        let _ = writeln!(
            out,
            "  parked     {} vehicles whose holder is not a known customer (attached when the customer is imported)",
            r.parked
        );
    }
    if let Some(line) = r.stale.describe(&r.file_name) {
        let _ = writeln!(out, "  stale      {line}");
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
        // Only a response file has response rows: other files' reports
        // keep their shape.
        if r.responses != Counts::default() {
            let _ = writeln!(out, "  responses  {}", counts(&r.responses));
        }
        let _ = writeln!(out, "  merges     {}", r.merges);
        if let Some(t) = &r.credited {
            let _ = writeln!(out, "  credited   {}", credited(t));
            if let Some(line) = t.unrecognised_line() {
                let _ = writeln!(out, "  types      {line}");
            }
        }
        for line in r.corrections.describe() {
            let _ = writeln!(out, "  re-export  {line}");
        }
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
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    if r.warnings_truncated > 0 {
        let _ = writeln!(out, "… and {} more warnings", r.warnings_truncated);
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

/// What an erasure, objection, reinstatement or a dealer's erasure did.
pub fn rights(r: &touchpoint_common::protocol::RightsDone) -> String {
    let who = r
        .pseudonym
        .as_deref()
        .map(|p| format!(" ({p})"))
        .unwrap_or_default();
    let mut out = format!("tenant {}{who}:\n", r.tenant);
    for (what, n) in &r.done {
        out.push_str(&format!("  {what}: {n}\n"));
    }
    visible(&out).into_owned()
}

/// `touchpoint backup`: the backup written (or verified) in counts.
pub fn backup(b: &touchpoint_common::protocol::BackupDone, verified: bool) -> String {
    let mut out = if verified {
        format!(
            "backup {} (written {}) verifies: every file matches its hash, every store opens with its records\n",
            b.path, b.created_at
        )
    } else {
        format!("backup written: {}\n", b.path)
    };
    out.push_str(&format!(
        "  {} stores, {} records, {} files, {}\n",
        b.stores,
        b.records,
        b.files,
        human_bytes(b.bytes)
    ));
    if !verified {
        out.push_str(&format!("  took {:.1} s\n", b.took_ms as f64 / 1000.0));
    }
    for t in &b.skipped {
        out.push_str(&format!(
            "  tenant {t}: erased while the backup ran; not in it\n"
        ));
    }
    for r in &b.removed {
        out.push_str(&format!("  removed {r}\n"));
    }
    visible(&out).into_owned()
}

pub fn merge_undone(m: &MergeRecord) -> String {
    format!(
        "merge #{} undone: customer {} is separate from {} again\n",
        m.merge_id, m.merged, m.survivor
    )
}

/// `touchpoint queue`: the page's rows, then where it is in the whole.
pub fn queue(p: &touchpoint_common::protocol::QueuePage) -> String {
    let mut out = String::new();
    if p.rows.is_empty() {
        out.push_str("no message matches\n");
    } else {
        let mut t = TextTable::new(&[
            ("TENANT", L),
            ("ID", R),
            ("STATUS", L),
            ("CHANNEL", L),
            ("SERVICE", L),
            ("SEND", L),
            ("CUSTOMER", L),
            ("NAME", L),
            ("COST", R),
            ("ADDRESS / LAST ANSWER", L),
        ]);
        for r in &p.rows {
            t.row(vec![
                r.tenant.to_string(),
                r.id.to_string(),
                r.status.to_string(),
                r.channel.to_string(),
                r.service.clone(),
                format!("{} {:02}:{:02}", r.send_on, r.send_at / 60, r.send_at % 60),
                r.recipient.clone(),
                r.name.clone(),
                money(r.cost),
                if r.last_error.is_empty() {
                    r.address.clone()
                } else {
                    r.last_error.clone()
                },
            ]);
        }
        out.push_str(&t.render());
    }
    let counts: Vec<String> = p.counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
    let shown = if p.rows.is_empty() {
        String::new()
    } else {
        format!(
            "rows {}-{} of ",
            p.offset + 1,
            p.offset + p.rows.len() as u64
        )
    };
    let _ = writeln!(
        out,
        "{shown}{} matching{}{}",
        p.total,
        if p.filter.is_empty() {
            String::new()
        } else {
            format!(" `{}`", p.filter)
        },
        if counts.is_empty() {
            String::new()
        } else {
            format!(" ({})", counts.join(", "))
        }
    );
    out
}

/// The overview's line of this month's responses, e.g. `responses this
/// month: 214 to messages · 9 to control · 1,377 organic`.
pub fn month_responses(r: &touchpoint_common::report::MonthResponses) -> String {
    if r.total() == 0 {
        return "responses this month: none yet (they come with the dealers' exports)".into();
    }
    format!(
        "responses this month: {} to messages · {} to control · {} organic",
        thousands(r.to_messages),
        thousands(r.to_control),
        thousands(r.organic)
    )
}

/// `touchpoint overview`: the day's messages (the day asked, else the next
/// day anything goes out), the coming days, alerts, and per tenant the
/// day's messages and this month's budget figures
/// (`touchpoint_common::budget`).
pub fn overview(o: &Overview) -> String {
    let mut out = String::new();
    if let Some(c) = o.clock {
        let _ = writeln!(out, "REHEARSAL: {}", c.describe());
    }
    let c = &o.total;
    let unreadable: Vec<String> = o
        .tenants
        .iter()
        .filter(|t| t.error.is_some())
        .map(|t| t.tenant.to_string())
        .collect();
    let _ = writeln!(
        out,
        "{}: planned {}, queued {}, sent {}, failed {}, held {}{}",
        overview_day(o),
        thousands(c.planned),
        thousands(c.queued),
        thousands(c.sent),
        thousands(c.failed),
        thousands(c.held),
        if unreadable.is_empty() {
            String::new()
        } else {
            format!(" (not counted: {}, unreadable)", unreadable.join(", "))
        }
    );
    let _ = writeln!(out, "{}", month_responses(&o.responses));
    if !o.upcoming.is_empty() {
        out.push('\n');
        let mut t = TextTable::new(&[
            ("DAY", L),
            ("PLANNED", R),
            ("QUEUED", R),
            ("HELD", R),
            ("FAILED", R),
        ]);
        for u in &o.upcoming {
            let c = &u.counts;
            t.row(vec![
                weekday_date(u.day),
                thousands(c.planned),
                thousands(c.queued),
                thousands(c.held),
                thousands(c.failed),
            ]);
        }
        out.push_str(&t.render());
    }
    out.push('\n');
    if o.alerts.is_empty() {
        out.push_str("no alerts\n");
    }
    for a in &o.alerts {
        let level = match a.level {
            touchpoint_common::protocol::AlertLevel::Critical => "CRITICAL",
            touchpoint_common::protocol::AlertLevel::Warning => "warning",
        };
        let tenant = a
            .tenant
            .as_ref()
            .map(|t| format!("{t}: "))
            .unwrap_or_default();
        let _ = writeln!(out, "{level}: {tenant}{}", a.text);
    }
    out.push('\n');
    let month_shown = month_of(o.today);
    let mut t = TextTable::new(&[
        ("TENANT", L),
        ("PLANNED", R),
        ("QUEUED", R),
        ("SENT", R),
        ("FAILED", R),
        ("HELD", R),
        ("MONTH", L),
        ("RESERVED", R),
        ("BOOKED", R),
        ("BUDGET", R),
        ("REMAINING", R),
        ("USED", R),
    ]);
    for d in &o.tenants {
        if d.error.is_some() {
            let mut cells = vec![d.tenant.to_string()];
            cells.extend(std::iter::repeat_n("-".to_string(), 11));
            t.row(cells);
            continue;
        }
        let b = tenant_month(&o.budgets, &d.tenant, month_shown);
        let c = &d.counts;
        t.row(vec![
            d.tenant.to_string(),
            thousands(c.planned),
            thousands(c.queued),
            thousands(c.sent),
            thousands(c.failed),
            thousands(c.held),
            month(month_shown),
            money(b.reserved),
            money(b.booked),
            b.budget.map(money).unwrap_or_else(|| "-".into()),
            b.remaining().map(money).unwrap_or_else(|| "-".into()),
            b.used_percent()
                .map(|p| format!("{p}%"))
                .unwrap_or_default(),
        ]);
    }
    out.push_str(&t.render());
    unreadable_lines(
        &mut out,
        o.tenants
            .iter()
            .filter_map(|t| Some((t.tenant.as_str(), t.error.as_deref()?))),
    );
    if o.daemon_wide {
        let hour: u64 = o.throughput.iter().sum();
        let peak = o.throughput.iter().copied().max().unwrap_or(0);
        let _ = writeln!(
            out,
            "\nsent in the last hour: {} (peak {} per minute)",
            thousands(hour),
            thousands(peak)
        );
    } else {
        let _ = writeln!(out, "\nsent in the last hour: {NOT_SHOWN}");
    }
    if o.dispatch_enabled {
        let _ = writeln!(out, "dispatch: {}", o.transport);
        for th in &o.throttles {
            let _ = writeln!(out, "  {:<24} {}", th.name, saturation_bar(th.saturation));
        }
    } else {
        out.push_str("dispatch: off\n");
    }
    let p = &o.policy;
    let _ = writeln!(
        out,
        "policy {} loaded {}{}; {} pending approval(s)",
        fingerprint(p.version),
        p.loaded_at,
        if p.errors.is_empty() {
            String::new()
        } else {
            format!(", last reload refused ({} errors)", p.errors.len())
        },
        o.pending_approvals
    );
    out
}

/// `d001: store unreadable: why`, one line per tenant whose figures the
/// daemon could not read (as `touchpoint tenants` says it).
fn unreadable_lines<'a>(out: &mut String, list: impl Iterator<Item = (&'a str, &'a str)>) {
    for (tenant, why) in list {
        let _ = writeln!(out, "{tenant}: store unreadable: {why}");
    }
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
            if a.uid == touchpoint_common::protocol::NO_UID {
                a.user.clone()
            } else {
                format!("{} ({})", a.user, a.uid)
            },
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

pub fn money(cents: i64) -> String {
    touchpoint_common::money::Money(cents).to_string()
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
            e.control += s.control;
        }
        for d in &r.dropped {
            *steps.entry(d.step.to_string()).or_default() += 1;
        }
    }
    out.push_str(&t.render());
    if !services.is_empty() {
        out.push('\n');
        // Control records get a column only when a service has any, so a
        // plan without control groups reads as it always did.
        let control = services.values().any(|s| s.control > 0);
        let mut columns = vec![
            ("SERVICE", L),
            ("MESSAGES", R),
            ("EMAIL", R),
            ("POST", R),
            ("PHONE", R),
            ("COST", R),
            ("DROPPED", R),
        ];
        if control {
            columns.push(("CONTROL", R));
        }
        let mut t = TextTable::new(&columns);
        let row = |name: String, s: &touchpoint_common::outbox::ServiceTotals| {
            let mut cells = vec![
                name,
                s.messages.to_string(),
                s.email.to_string(),
                s.post.to_string(),
                s.phone.to_string(),
                money(s.cost),
                s.dropped.to_string(),
            ];
            if control {
                cells.push(s.control.to_string());
            }
            cells
        };
        let mut total = touchpoint_common::outbox::ServiceTotals::default();
        for (name, s) in &services {
            t.row(row(name.clone(), s));
            total.messages += s.messages;
            total.email += s.email;
            total.post += s.post;
            total.phone += s.phone;
            total.cost += s.cost;
            total.dropped += s.dropped;
            total.control += s.control;
        }
        t.row(row("total".into(), &total));
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

/// `[#####.....] 50%`: a throttle's saturation as a ten-step bar. Above
/// 100 % the bar stays full and the number tells.
pub fn saturation_bar(percent: u32) -> String {
    let filled = ((percent.min(100) + 5) / 10) as usize;
    format!(
        "[{}{}] {percent}%",
        "#".repeat(filled),
        ".".repeat(10 - filled)
    )
}

/// `202612` → `2026-12`.
pub fn month(yyyymm: u32) -> String {
    format!("{:04}-{:02}", yyyymm / 100, yyyymm % 100)
}

/// `Mon 2026-12-07`.
pub fn weekday_date(d: Date) -> String {
    format!("{} {d}", d.naive().format("%a"))
}

/// The day an overview counts, said against today: `Mon 2026-12-07
/// (tomorrow, the next day anything goes out)`.
pub fn overview_day(o: &Overview) -> String {
    day_said(o, true)
}

/// [`overview_day`] short, for a screen: `Mon 2026-12-07 (tomorrow)`.
pub fn overview_day_short(o: &Overview) -> String {
    day_said(o, false)
}

fn day_said(o: &Overview, long: bool) -> String {
    let mut notes = Vec::new();
    match o.day.days() - o.today.days() {
        0 => notes.push("today"),
        1 => notes.push("tomorrow"),
        -1 => notes.push("yesterday"),
        _ => {}
    }
    if long && o.next_out == Some(o.day) {
        notes.push("the next day anything goes out");
    } else if long && o.next_out.is_none() && o.day >= o.today {
        notes.push("nothing waits to go out");
    }
    if notes.is_empty() {
        weekday_date(o.day)
    } else {
        format!("{} ({})", weekday_date(o.day), notes.join(", "))
    }
}

/// One upcoming day, short: `Mon 07 5,825 (3 held, 1 failed)`: what waits
/// to go out (planned and queued), then held and failed when there are any.
pub fn upcoming_day(u: &UpcomingDay) -> String {
    let c = &u.counts;
    let mut out = format!(
        "{} {}",
        u.day.naive().format("%a %d"),
        thousands(c.planned + c.queued)
    );
    let more: Vec<String> = [(c.held, "held"), (c.failed, "failed")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{} {what}", thousands(n)))
        .collect();
    if !more.is_empty() {
        let _ = write!(out, " ({})", more.join(", "));
    }
    out
}

/// `touchpoint dispatch`.
pub fn dispatch(d: &DispatchStatus) -> String {
    let mut out = String::new();
    let kv = |out: &mut String, k: &str, v: &str| {
        let _ = writeln!(out, "{k:<13}{v}");
    };
    kv(
        &mut out,
        "dispatch",
        if d.enabled {
            "enabled"
        } else {
            "DISABLED (nothing goes out)"
        },
    );
    kv(&mut out, "transport", &d.transport);
    if let Some(until) = d.relay_down_until {
        kv(
            &mut out,
            "relay",
            &format!("DOWN: email waits until {until}"),
        );
    }
    if !d.last_error.is_empty() {
        kv(&mut out, "last error", &d.last_error);
    }
    kv(
        &mut out,
        "paused",
        &match d.paused.len() {
            0 => "nothing".to_string(),
            n => format!("{n} pause{} (below)", plural(n)),
        },
    );
    if d.daemon_wide {
        kv(
            &mut out,
            "throughput",
            &format!("{} emails in the last minute", d.sent_last_minute),
        );
        kv(
            &mut out,
            "totals",
            &format!(
                "sent {}  deferred {}  failed {}  fallbacks {}  resent after crash {}  after a cut {}",
                d.sent_total,
                d.deferred_total,
                d.failed_total,
                d.fallbacks_total,
                d.resent_after_crash,
                d.resent_after_cut,
            ),
        );
        kv(
            &mut out,
            "bounce mail",
            &format!(
                "bounces {}  unsubscribes {}  auto-replies {}  ignored {}",
                d.bounces_processed,
                d.unsubscribes_processed,
                d.autoreplies_processed,
                d.mails_ignored
            ),
        );
    } else {
        for k in ["throughput", "totals", "bounce mail"] {
            kv(&mut out, k, NOT_SHOWN);
        }
    }
    if !d.paused.is_empty() {
        out.push('\n');
        out.push_str(&pause_table(&d.paused));
    }
    out.push('\n');
    if d.queues.is_empty() {
        out.push_str("no queues: no tenant in your scope has messages waiting\n");
    } else {
        let mut t = TextTable::new(&[
            ("TENANT", L),
            ("EMAIL", R),
            ("POST", R),
            ("PHONE", R),
            ("IN FLIGHT", R),
            ("SENT TODAY", R),
        ]);
        let mut total = [0u64; 5];
        for q in &d.queues {
            if q.error.is_some() {
                let mut cells = vec![q.tenant.to_string()];
                cells.extend(std::iter::repeat_n("-".to_string(), 5));
                t.row(cells);
                continue;
            }
            let n = [q.email, q.post, q.phone, q.in_flight, q.sent_today];
            for (t, v) in total.iter_mut().zip(n) {
                *t += v;
            }
            let mut cells = vec![q.tenant.to_string()];
            cells.extend(n.iter().map(u64::to_string));
            t.row(cells);
        }
        if d.queues.len() > 1 {
            let label = if d.queues.iter().any(|q| q.error.is_some()) {
                "total (without unreadable)"
            } else {
                "total"
            };
            let mut cells = vec![label.to_string()];
            cells.extend(total.iter().map(u64::to_string));
            t.row(cells);
        }
        out.push_str(&t.render());
        unreadable_lines(
            &mut out,
            d.queues
                .iter()
                .filter_map(|q| Some((q.tenant.as_str(), q.error.as_deref()?))),
        );
    }
    if !d.throttles.is_empty() {
        out.push('\n');
        let mut t = TextTable::new(&[
            ("THROTTLE", L),
            ("IN FLIGHT", R),
            ("USED", R),
            ("PER", L),
            ("SATURATION", L),
        ]);
        for th in &d.throttles {
            let of = |n: u64| {
                if n == 0 {
                    "-".to_string()
                } else {
                    n.to_string()
                }
            };
            t.row(vec![
                th.name.clone(),
                format!("{}/{}", th.in_flight, of(u64::from(th.concurrency))),
                format!("{}/{}", th.used, of(th.limit)),
                th.per.clone(),
                saturation_bar(th.saturation),
            ]);
        }
        out.push_str(&t.render());
    }
    out
}

fn pause_table(pauses: &[Pause]) -> String {
    let mut t = TextTable::new(&[("PAUSED", L), ("BY", L), ("SINCE", L)]);
    for p in pauses {
        t.row(vec![p.scope.to_string(), p.by.clone(), p.at.to_string()]);
    }
    t.render()
}

/// The pauses in force, as `touchpoint pause` and `resume` print them.
pub fn pauses(pauses: &[Pause]) -> String {
    if pauses.is_empty() {
        return "no pauses: dispatch runs for every tenant and service\n".into();
    }
    pause_table(pauses)
}

/// `touchpoint batches`: the letter batches and call lists just closed.
pub fn batches(list: &[BatchSummary]) -> String {
    if list.is_empty() {
        return "no letter batches or call lists to close\n".into();
    }
    let mut t = TextTable::new(&[
        ("TENANT", L),
        ("KIND", L),
        ("MESSAGES", R),
        ("COST EUR", R),
        ("FILES", L),
    ]);
    for b in list {
        t.row(vec![
            b.tenant.to_string(),
            b.kind.clone(),
            b.messages.to_string(),
            money(b.cost),
            if b.files.is_empty() {
                "-".into()
            } else {
                b.files.join(", ")
            },
        ]);
    }
    t.render()
}

/// A sum's cells: reserved, booked, brand, dealer, budget, remaining.
fn sum_cells(s: &BudgetSum) -> [String; 6] {
    [
        money(s.reserved),
        money(s.booked),
        money(s.brand),
        money(s.dealer),
        s.budget.map(money).unwrap_or_else(|| "-".into()),
        s.remaining().map(money).unwrap_or_else(|| "-".into()),
    ]
}

/// Ledger rows grouped by tenant, then month and service.
fn sorted_costs(rows: &[CostRow]) -> Vec<&CostRow> {
    let mut v: Vec<&CostRow> = rows.iter().collect();
    v.sort_by(|a, b| (&a.tenant, a.month, &a.service).cmp(&(&b.tenant, b.month, &b.service)));
    v
}

/// `touchpoint costs`: the ledger with a total per tenant and month (when
/// there are several tenants or months) and one total per month, in euro.
/// Budgets of different months are never added.
pub fn costs(rows: &[CostRow]) -> String {
    if rows.is_empty() {
        return "no costs in the ledger for this selection\n".into();
    }
    let mut t = TextTable::new(&[
        ("TENANT", L),
        ("MONTH", L),
        ("SERVICE", L),
        ("RESERVED", R),
        ("BOOKED", R),
        ("BRAND", R),
        ("DEALER", R),
        ("BUDGET", R),
        ("REMAINING", R),
    ]);
    let rows = sorted_costs(rows);
    let several_groups = rows
        .windows(2)
        .any(|w| (&w[0].tenant, w[0].month) != (&w[1].tenant, w[1].month));
    let mut months: std::collections::BTreeMap<u32, BudgetSum> = Default::default();
    let mut i = 0;
    while let Some(first) = rows.get(i) {
        let group: Vec<&CostRow> = rows[i..]
            .iter()
            .take_while(|r| r.tenant == first.tenant && r.month == first.month)
            .copied()
            .collect();
        i += group.len();
        for r in &group {
            months.entry(r.month).or_default().add(r);
            let mut cells = vec![r.tenant.to_string(), month(r.month), r.service.clone()];
            cells.extend(sum_cells(&BudgetSum::of([*r])));
            t.row(cells);
        }
        if several_groups && group.len() > 1 {
            let mut cells = vec![first.tenant.to_string(), month(first.month), "total".into()];
            cells.extend(sum_cells(&BudgetSum::of(group.iter().copied())));
            t.row(cells);
        }
    }
    for (m, sum) in &months {
        let mut cells = vec!["total".to_string(), month(*m), String::new()];
        cells.extend(sum_cells(sum));
        t.row(cells);
    }
    let mut out = t.render();
    out.push_str(
        "\namounts in euro; reserved = planned or queued, not yet sent; booked = sent;\n\
         remaining = budget − reserved − booked; totals are per month and count\n\
         budget and remaining only over services with a budget\n",
    );
    out
}

/// `touchpoint costs --csv`: one row per tenant, month and service, amounts
/// as decimal euro, empty cells where there is no budget, no total rows.
pub fn costs_csv(rows: &[CostRow]) -> Result<String, csv::Error> {
    use touchpoint_common::csv_out::{Cell, CsvOut};
    // Through the one CSV writer: every text cell made harmless for a
    // spreadsheet, as in the daemon's manifests and call lists.
    let mut w = CsvOut::new(
        &[
            "tenant",
            "month",
            "service",
            "reserved",
            "booked",
            "brand_share",
            "dealer_share",
            "budget",
            "remaining",
        ],
        64 * (rows.len() + 1),
    )?;
    for r in sorted_costs(rows) {
        let cells = [
            r.tenant.to_string(),
            month(r.month),
            r.service.clone(),
            money(r.reserved),
            money(r.booked),
            money(r.brand),
            money(r.dealer),
            r.budget.map(money).unwrap_or_default(),
            r.remaining().map(money).unwrap_or_default(),
        ];
        let cells: Vec<Cell> = cells.iter().map(Cell::from).collect();
        w.row(&cells)?;
    }
    String::from_utf8(w.finish()?)
        .map_err(|e| csv::Error::from(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// A message's content, whole (`touchpoint message --content`): how it was
/// obtained, the subject, and the text (or, with `html`, the HTML part).
pub fn content(c: &MessageContent, html: bool) -> String {
    let mut out = String::from("\ncontent\n");
    let _ = writeln!(out, "  {}", visible(&c.note));
    if !c.subject.is_empty() {
        let _ = writeln!(out, "subject      {}", visible(&c.subject));
    }
    let body = if html { &c.html } else { &c.text };
    if body.is_empty() {
        let _ = writeln!(out, "  (no {} part)", if html { "HTML" } else { "text" });
    } else {
        out.push('\n');
        // Dealers' data is in it: nothing in it may act on the terminal.
        out.push_str(&visible(body));
        if !body.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// `touchpoint message`: the header, then the why, then the history.
pub fn message(m: &Message) -> String {
    let mut out = String::new();
    let kv = |out: &mut String, k: &str, v: &str| {
        let _ = writeln!(out, "{k:<13}{v}");
    };
    let d = &m.dispatch;
    kv(&mut out, "message", &m.id.to_string());
    kv(&mut out, "message-id", &m.message_id);
    kv(&mut out, "recipient", &m.recipient);
    kv(&mut out, "channel", m.channel.as_str());
    kv(&mut out, "service", &m.service);
    kv(
        &mut out,
        "template",
        &if d.template_version == 0 {
            format!("{} (not rendered yet)", m.template)
        } else {
            format!("{} version {}", m.template, fingerprint(d.template_version))
        },
    );
    kv(&mut out, "status", m.status.as_str());
    kv(
        &mut out,
        "send",
        &format!("{} {:02}:{:02}", m.send_on, m.send_at / 60, m.send_at % 60),
    );
    kv(
        &mut out,
        "money",
        &format!(
            "cost {}  value {}  booked {}  brand share {} (euro)",
            money(m.cost),
            money(m.value),
            money(d.booked),
            money(d.brand_share)
        ),
    );
    let mut attempts = d.attempts.to_string();
    if let Some(first) = d.first_attempt {
        let _ = write!(attempts, ", first {first}");
    }
    if let Some(retry) = d.retry_at {
        let _ = write!(attempts, ", next {retry}");
    }
    kv(&mut out, "attempts", &attempts);
    kv(
        &mut out,
        "last error",
        if d.last_error.is_empty() {
            "-"
        } else {
            &d.last_error
        },
    );
    if let Some(from) = d.held_from {
        kv(&mut out, "held from", from.as_str());
    }
    let mut links = Vec::new();
    if let Some(of) = d.fallback_of {
        links.push(format!("replaces message {of}"));
    }
    if let Some(to) = d.fallback_to {
        links.push(format!("replaced by message {to}"));
    }
    kv(
        &mut out,
        "fallback",
        &if links.is_empty() {
            "-".to_string()
        } else {
            links.join(", ")
        },
    );
    kv(
        &mut out,
        "batch",
        if d.batch.is_empty() { "-" } else { &d.batch },
    );
    kv(
        &mut out,
        "address",
        if d.address.is_empty() {
            "-"
        } else {
            &d.address
        },
    );
    out.push_str("\nwhy:\n");
    if m.why.is_empty() {
        out.push_str("  -\n");
    }
    for w in &m.why {
        let _ = writeln!(out, "  {w}");
    }
    out.push_str("\nhistory:\n");
    if m.history.is_empty() {
        out.push_str("  -\n");
    } else {
        let mut t = TextTable::new(&[("  TIME", L), ("STATUS", L), ("REASON", L)]);
        for (at, status, why) in &m.history {
            t.row(vec![
                format!("  {at}"),
                status.as_str().into(),
                if why.is_empty() {
                    "-".into()
                } else {
                    why.clone()
                },
            ]);
        }
        out.push_str(&t.render());
    }
    out
}

/// `touchpoint hold|release|cancel|retry`: per id the new status or why not.
pub fn actions(action: MessageAction, results: &[ActionResult]) -> String {
    let mut out = String::new();
    for r in results {
        let _ = match &r.outcome {
            // Its status says nothing new: it stays what it was.
            Ok(status) if action == MessageAction::SendNow => {
                writeln!(out, "message {}: made due now ({status})", r.id)
            }
            Ok(status) => writeln!(out, "message {}: {status}", r.id),
            Err(why) => writeln!(out, "message {}: not {}: {why}", r.id, action_done(action)),
        };
    }
    out
}

/// What an action did, in words ("held"), for the CLI and the console.
pub(crate) fn action_done(action: MessageAction) -> &'static str {
    match action {
        MessageAction::Hold => "held",
        MessageAction::Release => "released",
        MessageAction::Cancel => "cancelled",
        MessageAction::Retry => "retried",
        MessageAction::SendNow => "made due now",
    }
}

/// `touchpoint calls import`: counts, then each rejected row on its own line.
pub fn outcomes(r: &OutcomeReport) -> String {
    let mut out = format!(
        "applied {}, unchanged {}, errors {}\n",
        r.applied,
        r.unchanged,
        r.errors.len()
    );
    for e in &r.errors {
        let _ = writeln!(out, "{e}");
    }
    out
}

const BOLD: &str = "\x1b[1m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const CYAN: &str = "\x1b[36m";
const RESET: &str = "\x1b[0m";

/// Where [`diff`] is in a unified diff.
enum DiffState {
    /// Between hunks: `---`/`+++` are file headers.
    Outside,
    /// In a hunk, with the old and new lines it still has.
    Hunk { old: u64, new: u64 },
    /// In a hunk whose `@@` line gave no counts: every line is a hunk line
    /// until the next `@@`.
    Uncounted,
}

/// `@@ -3,7 +3,8 @@ …` → `(7, 8)`; a missing count is 1.
fn hunk_counts(line: &str) -> Option<(u64, u64)> {
    let mut parts = line.strip_prefix("@@ ")?.split(' ');
    let count = |part: Option<&str>, sign: char| -> Option<u64> {
        let range = part?.strip_prefix(sign)?;
        match range.split_once(',') {
            Some((_, n)) => n.parse().ok(),
            None => range.parse::<u64>().ok().map(|_| 1),
        }
    };
    let old = count(parts.next(), '-')?;
    let new = count(parts.next(), '+')?;
    Some((old, new))
}

/// A unified diff for people: with `colour`, removed lines red, added lines
/// green, hunk headers cyan and file headers bold. Control characters in the
/// diff are written out either way (see [`visible`]).
pub fn diff(text: &str, colour: bool) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut state = DiffState::Outside;
    for raw in text.split_inclusive('\n') {
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        let first = line.chars().next();
        let style = if line.starts_with("@@") {
            state = match hunk_counts(line) {
                Some((old, new)) => DiffState::Hunk { old, new },
                None => DiffState::Uncounted,
            };
            Some(CYAN)
        } else {
            match &mut state {
                DiffState::Outside => {
                    let header = ["--- ", "+++ ", "diff ", "index "]
                        .iter()
                        .any(|p| line.starts_with(p));
                    header.then_some(BOLD)
                }
                DiffState::Hunk { old, new } => {
                    let style = match first {
                        Some('-') => {
                            *old = old.saturating_sub(1);
                            Some(RED)
                        }
                        Some('+') => {
                            *new = new.saturating_sub(1);
                            Some(GREEN)
                        }
                        // "\ No newline at end of file" belongs to no side.
                        Some('\\') => None,
                        _ => {
                            *old = old.saturating_sub(1);
                            *new = new.saturating_sub(1);
                            None
                        }
                    };
                    if *old == 0 && *new == 0 {
                        state = DiffState::Outside;
                    }
                    style
                }
                DiffState::Uncounted => match first {
                    Some('-') => Some(RED),
                    Some('+') => Some(GREEN),
                    _ => None,
                },
            }
        };
        let shown = visible(line);
        match style {
            Some(code) if colour => {
                let _ = write!(out, "{code}{shown}{RESET}");
            }
            _ => out.push_str(&shown),
        }
        if raw.ends_with('\n') {
            out.push('\n');
        }
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Where a proposal stands, short enough for a table.
pub fn proposal_status(s: &ProposalStatus) -> String {
    match s {
        ProposalStatus::Pending => "pending".into(),
        ProposalStatus::Approved { by, version, .. } => format!("approved as v{version} by {by}"),
        ProposalStatus::Rejected { by, .. } => format!("rejected by {by}"),
    }
}

/// The version a proposal starts from: `v3`, `new`, or for a rollback from
/// version 3 to the text of version 1 `v3 → v1`.
fn proposal_base(p: &Proposal) -> String {
    let base = match p.base_version {
        0 => "new".to_string(),
        v => format!("v{v}"),
    };
    match p.rollback_to {
        Some(to) => format!("{base} → v{to}"),
        None => base,
    }
}

/// `touchpoint approvals`: one row per proposal, the comment shortened so
/// that lines fit `width` (a terminal's; `None`: nothing cut).
pub fn approvals(list: &[Proposal], all: bool, width: Option<usize>) -> String {
    if list.is_empty() {
        return if all {
            "no proposals\n".into()
        } else {
            "no pending proposals\n".into()
        };
    }
    let mut t = TextTable::new(&[
        ("ID", R),
        ("TEMPLATE", L),
        ("AUTHOR", L),
        ("CREATED", L),
        ("BASE", L),
        ("STATUS", L),
        ("COMMENT", L),
    ]);
    for p in list {
        t.row(vec![
            p.id.to_string(),
            visible(&p.template).into_owned(),
            visible(&p.author).into_owned(),
            time_short(p.created_at),
            proposal_base(p),
            visible(&proposal_status(&p.status)).into_owned(),
            visible(&p.comment).into_owned(),
        ]);
    }
    t.render_fitted(width)
}

/// Lines of `text`, each indented by two spaces (empty lines stay empty).
fn indented(out: &mut String, text: &str) {
    if text.is_empty() {
        out.push_str("  -\n");
    }
    for l in text.lines() {
        if l.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "  {}", visible(l));
        }
    }
}

/// The diff of a proposal, or a line saying there is none.
fn proposal_diff(out: &mut String, d: &ProposalDetail, colour: bool) {
    if d.diff.trim().is_empty() {
        let _ = writeln!(
            out,
            "no changes against version {} in force",
            d.current_version
        );
    } else {
        out.push_str(&diff(&d.diff, colour));
    }
}

/// `touchpoint approval ID`: the header, the comment, then the diff against
/// the version in force.
pub fn approval(d: &ProposalDetail, colour: bool) -> String {
    let p = &d.proposal;
    let mut out = String::new();
    let kv = |out: &mut String, k: &str, v: &str| {
        let _ = writeln!(out, "{k:<10}{}", visible(v));
    };
    kv(&mut out, "proposal", &p.id.to_string());
    kv(&mut out, "template", &p.template);
    kv(
        &mut out,
        "author",
        &format!("{} (uid {})", p.author, p.author_uid),
    );
    kv(&mut out, "created", &p.created_at.to_string());
    let base = match (p.base_version, d.current_version) {
        (0, 0) => "none: a new template".to_string(),
        (0, now) => format!("none: a new template (version {now} is in force now)"),
        (b, now) if b == now => format!("version {b}, in force"),
        (b, now) => format!("version {b} (version {now} is in force now; the diff is against it)"),
    };
    kv(&mut out, "base", &base);
    if let Some(to) = p.rollback_to {
        kv(
            &mut out,
            "rollback",
            &format!("to the text of version {to}"),
        );
    }
    match &p.status {
        ProposalStatus::Pending => kv(&mut out, "status", "pending"),
        ProposalStatus::Approved {
            by,
            at,
            comment,
            version,
        } => {
            kv(
                &mut out,
                "status",
                &format!("approved as version {version} by {by} at {at}"),
            );
            if !comment.is_empty() {
                kv(&mut out, "review", comment);
            }
        }
        ProposalStatus::Rejected { by, at, comment } => {
            kv(&mut out, "status", &format!("rejected by {by} at {at}"));
            if !comment.is_empty() {
                kv(&mut out, "review", comment);
            }
        }
    }
    out.push_str("\ncomment:\n");
    indented(&mut out, &p.comment);
    out.push('\n');
    proposal_diff(&mut out, d, colour);
    out
}

/// `touchpoint propose` and `rollback`: the new proposal and its diff.
pub fn proposed(d: &ProposalDetail, colour: bool) -> String {
    let p = &d.proposal;
    let mut out = format!("proposal {}: {}", p.id, visible(&p.template));
    let _ = match (p.rollback_to, p.base_version) {
        (Some(to), base) => writeln!(out, ", back to version {to} from version {base}"),
        (None, 0) => writeln!(out, ", a new template"),
        (None, base) => writeln!(out, ", based on version {base}"),
    };
    out.push('\n');
    proposal_diff(&mut out, d, colour);
    let _ = writeln!(
        out,
        "\na reviewer decides with `touchpoint approve {id}` or `touchpoint reject {id} --comment …`",
        id = p.id
    );
    out
}

/// `touchpoint approve` and `reject`: what the decision did.
pub fn decision(d: &ProposalDetail) -> String {
    let p = &d.proposal;
    let name = visible(&p.template);
    match &p.status {
        ProposalStatus::Approved { version, .. } => format!(
            "proposal {} approved: {name} version {version} is in force for every tenant\n",
            p.id
        ),
        ProposalStatus::Rejected { .. } => match d.current_version {
            0 => format!(
                "proposal {} rejected: {name} has no version in force\n",
                p.id
            ),
            v => format!("proposal {} rejected: {name} stays at version {v}\n", p.id),
        },
        ProposalStatus::Pending => format!("proposal {} is still pending\n", p.id),
    }
}

/// `touchpoint preview`: the subject, the email's plain text and the letter's text.
pub fn preview(p: &Preview) -> String {
    let mut out = format!(
        "proposal {} for tenant {}, customer {}\n\nsubject: {}\n\nemail (plain text):\n",
        p.proposal,
        p.tenant,
        visible(&p.customer),
        visible(&p.subject)
    );
    indented(&mut out, &p.text);
    out.push_str("\nletter:\n");
    indented(&mut out, &p.letter);
    out
}

/// `touchpoint templates`: per template the version in force and its
/// history, newest first, the version in force marked `*`; comments
/// shortened so that lines fit `width` (a terminal's; `None`: nothing cut).
pub fn templates(list: &[TemplateHistory], width: Option<usize>) -> String {
    if list.is_empty() {
        return "no templates\n".into();
    }
    let mut out = String::new();
    for (i, h) in list.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let name = visible(&h.name);
        let _ = match h.in_force {
            0 => writeln!(out, "{name}: no version in force"),
            v => writeln!(out, "{name}: version {v} in force (*)"),
        };
        if h.versions.is_empty() {
            out.push_str("  no versions\n");
            continue;
        }
        let mut versions: Vec<_> = h.versions.iter().collect();
        versions.sort_by_key(|v| std::cmp::Reverse(v.version));
        let mut t = TextTable::new(&[
            ("", L),
            ("VERSION", L),
            ("WHEN", L),
            ("AUTHOR", L),
            ("APPROVED BY", L),
            ("FINGERPRINT", L),
            ("COMMENT", L),
        ]);
        for v in versions {
            t.row(vec![
                if v.version == h.in_force { "  *" } else { "" }.into(),
                v.version.to_string(),
                time_short(v.at),
                visible(&v.author).into_owned(),
                visible(&v.approved_by).into_owned(),
                fingerprint(v.fingerprint),
                visible(&v.comment).into_owned(),
            ]);
        }
        out.push_str(&t.render_fitted(width));
    }
    out
}

/// A day as subcommands take it and print it: `YYYY-MM-DD`.
/// `touchpoint overview --day`: a date, or `next` (`None` inside).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverviewDay(pub Option<Date>);

pub(crate) fn parse_overview_day(s: &str) -> Result<OverviewDay, String> {
    if s == "next" {
        return Ok(OverviewDay(None));
    }
    parse_day(s)
        .map(|d| OverviewDay(Some(d)))
        .map_err(|_| format!("{s:?} is neither a date (YYYY-MM-DD) nor `next`"))
}

pub(crate) fn parse_day(s: &str) -> Result<touchpoint_common::Date, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(touchpoint_common::Date::from)
        .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn queue_and_overview_text() {
        insta::assert_snapshot!(queue(&fixtures::queue_page(0, 5)));
        insta::assert_snapshot!(overview(&fixtures::overview()));
    }

    /// What a caller scoped to some tenants is shown: its own figures, and
    /// "not shown" where the daemon counts only over every tenant (never a
    /// 0 that looks like a count); the snapshots also hold a tenant whose
    /// store cannot be read.
    #[test]
    fn scoped_texts_say_what_is_not_shown_and_which_tenant_is_unreadable() {
        use touchpoint_common::protocol::TenantQueue;
        let st = status(&fixtures::status_scoped());
        assert!(
            st.contains("\ntenants      3 in scope, 1 of them open\n"),
            "{st}"
        );
        assert!(st.contains("\nconnections  1 of yours "), "{st}");
        assert!(!st.contains("messages planned"), "{st}");
        assert!(
            st.lines()
                .any(|l| l.starts_with("last plan ") && l.ends_with(&format!(": {NOT_SHOWN}"))),
            "{st}"
        );
        insta::assert_snapshot!(st);

        let o = overview(&fixtures::overview_scoped());
        assert!(
            o.contains(&format!("sent in the last hour: {NOT_SHOWN}\n")),
            "{o}"
        );
        insta::assert_snapshot!(o);

        let queue = |t: &str, n: [u64; 5], error: Option<&str>| TenantQueue {
            tenant: fixtures::tid(t),
            email: n[0],
            post: n[1],
            phone: n[2],
            in_flight: n[3],
            sent_today: n[4],
            error: error.map(String::from),
        };
        let d = DispatchStatus {
            enabled: true,
            transport: "smtp relay mail.example:587 (starttls, 8 connections)".into(),
            queues: vec![
                queue("d001", [120, 15, 3, 4, 880], None),
                queue(
                    "d002",
                    [0; 5],
                    Some("No space left on device (os error 28)"),
                ),
            ],
            daemon_wide: false,
            ..DispatchStatus::default()
        };
        let text = dispatch(&d);
        for k in ["throughput   ", "totals       ", "bounce mail  "] {
            assert!(text.contains(&format!("\n{k}{NOT_SHOWN}\n")), "{k}: {text}");
        }
        insta::assert_snapshot!(text);
    }

    /// A tenant whose store the daemon could not read is named with why,
    /// its row not counted as an empty one, in the overview and dispatch.
    #[test]
    fn an_unreadable_tenant_is_named_not_counted_as_empty() {
        use touchpoint_common::protocol::TenantQueue;
        let o = overview(&fixtures::overview_scoped());
        assert!(
            o.lines()
                .any(|l| l.starts_with("d002: store unreadable: database ")),
            "{o}"
        );
        assert!(o.contains(" (not counted: d002, unreadable)\n"), "{o}");
        assert!(
            o.lines()
                .any(|l| l.starts_with("d002 ") && l.split_whitespace().skip(1).all(|c| c == "-")),
            "{o}"
        );
        let queue = |t: &str, n: [u64; 5], error: Option<&str>| TenantQueue {
            tenant: fixtures::tid(t),
            email: n[0],
            post: n[1],
            phone: n[2],
            in_flight: n[3],
            sent_today: n[4],
            error: error.map(String::from),
        };
        let d = DispatchStatus {
            enabled: true,
            queues: vec![
                queue("d001", [120, 15, 3, 4, 880], None),
                queue(
                    "d002",
                    [0; 5],
                    Some("No space left on device (os error 28)"),
                ),
            ],
            ..DispatchStatus::default()
        };
        let text = dispatch(&d);
        assert!(
            text.contains("\nd002: store unreadable: No space left on device (os error 28)\n"),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("d002 ") && l.split_whitespace().skip(1).all(|c| c == "-")),
            "{text}"
        );
        assert!(text.contains("total (without unreadable)"), "{text}");
    }

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
    fn a_tenant_in_trouble_is_listed_with_its_error() {
        let mut list = fixtures::tenants();
        list.truncate(2);
        list[1].error = Some("IO error: No space left on device".into());
        let text = tenants(&list);
        let last = text.lines().last().unwrap_or_default();
        assert_eq!(
            last,
            format!(
                "{}: store unreadable: IO error: No space left on device",
                list[1].id
            )
        );
        assert_eq!(text.lines().count(), 4, "{text}");
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
        assert_eq!(dup, "kunden.csv: same file as #1; nothing applied\n");
        let mut dup = d.imports[1].clone();
        dup.previous_at = Some(d.imports[0].finished_at);
        assert_eq!(
            import_report("kunden.csv", &dup),
            format!(
                "kunden.csv: same file as #1 (imported {}); nothing applied\n",
                d.imports[0].finished_at
            )
        );
    }

    #[test]
    fn tenant_text_lists_warnings_and_parked_vehicles() {
        use touchpoint_common::protocol::ParkedVehicle;
        let mut d = fixtures::detail();
        d.imports[0].rows_warned = 1;
        d.imports[0].warnings = vec![touchpoint_common::domain::RowError {
            file: "kunden.csv".into(),
            line: 11,
            field: "birth_date".into(),
            reason: "\"31.02.1990\" does not exist: February 1990 has 28 days (field not imported)"
                .into(),
        }];
        d.parked = 3;
        d.parked_list = vec![ParkedVehicle {
            vin: "WVWZZZ1KZ6W000001".into(),
            customer_no: "99999".into(),
        }];
        let text = tenant(&d);
        assert!(
            text.contains("\nimport #1 (kunden.csv): 1 rows with warnings\n  kunden.csv:11: birth_date: \"31.02.1990\" does not exist: February 1990 has 28 days (field not imported)\n"),
            "{text}"
        );
        assert!(
            text.contains("\nparked vehicles: 3 (holder not a known customer; attached when the customer is imported)\n  WVWZZZ1KZ6W000001  customer_no 99999\n  … and 2 more\n"),
            "{text}"
        );
        let report = import_report("kunden.csv", &d.imports[0]);
        assert!(
            report.contains("\n  rows       5000 total, 4959 ok, 1 with warnings, 41 rejected\n"),
            "{report}"
        );
        assert!(
            report.ends_with("\nwarning: kunden.csv:11: birth_date: \"31.02.1990\" does not exist: February 1990 has 28 days (field not imported)\n"),
            "{report}"
        );
    }

    #[test]
    fn a_response_file_report_says_how_its_responses_were_credited() {
        let mut r = fixtures::detail().imports[0].clone();
        r.responses = Counts {
            inserted: 1_600,
            updated: 0,
            unchanged: 0,
        };
        r.credited = Some(ResponseTally {
            to_messages: 214,
            to_control: 9,
            organic: 1_377,
            ..ResponseTally::default()
        });
        let text = import_report("antworten.csv", &r);
        assert!(!text.contains("types"), "{text}");
        assert!(
            text.contains("\n  responses  1600 inserted, 0 updated, 0 unchanged\n"),
            "{text}"
        );
        assert!(
            text.contains("\n  credited   1,600 responses: 214 credited to messages, 9 to control records, 1,377 organic\n"),
            "{text}"
        );
    }

    /// A visit file whose types the daemon does not know says which, how
    /// often, quoted and escaped, the list bounded.
    #[test]
    fn a_visit_report_names_the_types_it_did_not_recognise() {
        let mut r = fixtures::detail().imports[0].clone();
        let mut t = ResponseTally {
            organic: 14,
            ..ResponseTally::default()
        };
        let odd = "Z\"\u{1b}[31m".to_string() + &"x".repeat(300);
        let mut types = vec![("WA", 5), ("01", 3), (odd.as_str(), 2)];
        let many: Vec<String> = (0..10).map(|i| format!("T{i}")).collect();
        types.extend(many.iter().map(|m| (m.as_str(), 1)));
        t.set_unrecognised(types);
        r.credited = Some(t);
        let text = import_report("werkstatt.csv", &r);
        let line = text
            .lines()
            .find(|l| l.starts_with("  types"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            line.starts_with("  types      20 visits of types not recognised, counted as workshop visits (no service reminder is credited with them): \"WA\" 5, \"01\" 3, \"Z"),
            "{line}"
        );
        assert!(line.ends_with(", 5 of other types"), "{line}");
        assert!(!line.contains('\u{1b}'), "{line}");
        assert!(
            line.contains(&format!("\"Z\\\"[31m{}\" 2", "x".repeat(34))),
            "{line}"
        );
        assert!(line.contains("\"T4\" 1") && !line.contains("T5"), "{line}");
        assert!(line.len() < 400, "{line}");
    }

    #[test]
    fn a_re_export_report_says_what_it_removed_and_kept() {
        use touchpoint_common::domain::{Corrected, Corrections};
        let mut r = fixtures::detail().imports[0].clone();
        r.corrections = Corrections {
            visits: Corrected {
                span: Some((
                    touchpoint_common::Date::from_ymd(2026, 10, 1).expect("date"),
                    touchpoint_common::Date::from_ymd(2026, 11, 30).expect("date"),
                )),
                removed: 3,
                kept: 2,
            },
            ..Corrections::default()
        };
        let text = import_report("werkstatt.csv", &r);
        assert!(
            text.contains("\n  re-export  removed 3 visits no longer in the export (vehicles it names, 2026-10-01…2026-11-30)\n  re-export  kept 2 visits no longer in the export: a rejected row may carry them (correct the file and import it again)\n"),
            "{text}"
        );
        let mut d = fixtures::detail();
        d.imports = vec![r];
        let text = tenant(&d);
        assert!(
            text.contains("  re-export: removed 3 visits no longer in the export"),
            "{text}"
        );
    }

    #[test]
    fn merges_and_audit_text() {
        insta::assert_snapshot!(merges(&fixtures::detail().merges));
        insta::assert_snapshot!(audit(&fixtures::audit()));
    }

    #[test]
    fn costs_table_groups_tenants_with_totals_in_euro() {
        let text = costs(&fixtures::ledger());
        let table: Vec<&str> = text.lines().take_while(|l| !l.is_empty()).collect();
        // Right-aligned last column: every line of the table is as wide, umlaut or not.
        let width = table[0].chars().count();
        for l in &table {
            assert_eq!(l.chars().count(), width, "{l:?}\n{text}");
        }
        let first_col: Vec<&str> = table
            .iter()
            .map(|l| l.split_whitespace().next().unwrap_or(""))
            .collect();
        assert_eq!(
            first_col,
            ["TENANT", "d001", "d001", "d002", "d002", "d002", "total", "total"]
        );
        // d001: november before december, each month its own.
        assert!(table[1].contains("2026-11") && table[1].contains("birthday"));
        let cells = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(
            cells(table[1])[3..],
            ["0.00", "4.50", "0.00", "4.50", "-", "-"]
        );
        assert_eq!(
            cells(table[2])[3..],
            ["123.45", "678.90", "339.45", "339.45", "1000.00", "197.65"]
        );
        // Over budget shows as a negative remainder.
        assert_eq!(cells(table[4])[8], "-2.00");
        assert_eq!(
            cells(table[5])[1..],
            ["2026-12", "total", "13.00", "34.00", "0.00", "34.00", "60.00", "13.00"]
        );
        // One total per month: budgets of november and december never added.
        assert_eq!(
            cells(table[6])[1..],
            ["2026-11", "0.00", "4.50", "0.00", "4.50", "-", "-"]
        );
        assert_eq!(
            cells(table[7])[1..],
            ["2026-12", "136.45", "712.90", "339.45", "373.45", "1060.00", "210.65"]
        );
        insta::assert_snapshot!(text);
    }

    #[test]
    fn costs_of_one_tenant_have_one_total_per_month() {
        let rows: Vec<CostRow> = fixtures::ledger()
            .into_iter()
            .filter(|r| r.tenant.as_str() == "d001")
            .collect();
        let text = costs(&rows);
        let totals: Vec<&str> = text.lines().filter(|l| l.starts_with("total ")).collect();
        assert_eq!(totals.len(), 2, "{text}");
        assert!(
            totals[0].contains("2026-11") && totals[1].contains("2026-12"),
            "{text}"
        );
        assert!(
            !text.contains("d001    total"),
            "one row per month: no subtotal\n{text}"
        );
        assert_eq!(costs(&[]), "no costs in the ledger for this selection\n");
    }

    #[test]
    fn costs_csv_cells_are_text_no_spreadsheet_runs() {
        let mut rows = fixtures::ledger();
        rows[0].service = "=HYPERLINK(\"http://x.example\",\"klick\")".into();
        let text = costs_csv(&rows).expect("csv");
        assert!(text.contains("'=HYPERLINK"), "{text}");
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let services: Vec<String> = r
            .records()
            .map(|rec| rec.expect("row")[2].to_string())
            .collect();
        assert!(services.iter().all(|s| !s.starts_with('=')), "{services:?}");
    }

    #[test]
    fn costs_csv_reads_back_as_decimal_euro() {
        let text = costs_csv(&fixtures::ledger()).expect("csv");
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = r
            .headers()
            .expect("header")
            .iter()
            .map(String::from)
            .collect();
        assert_eq!(
            header,
            [
                "tenant",
                "month",
                "service",
                "reserved",
                "booked",
                "brand_share",
                "dealer_share",
                "budget",
                "remaining"
            ]
        );
        let rows: Vec<Vec<String>> = r
            .records()
            .map(|rec| rec.expect("record").iter().map(String::from).collect())
            .collect();
        assert_eq!(rows.len(), 4, "no total rows: {text}");
        assert_eq!(
            rows[0],
            ["d001", "2026-11", "birthday", "0.00", "4.50", "0.00", "4.50", "", ""]
        );
        assert_eq!(
            rows[1],
            [
                "d001",
                "2026-12",
                "räderwechsel",
                "123.45",
                "678.90",
                "339.45",
                "339.45",
                "1000.00",
                "197.65"
            ]
        );
        assert_eq!(rows[3][8], "-2.00");
        assert_eq!(
            costs_csv(&[]).expect("csv"),
            "tenant,month,service,reserved,booked,brand_share,dealer_share,budget,remaining\n"
        );
    }

    #[test]
    fn message_view_with_umlauts() {
        let text = message(&fixtures::message());
        let (header, rest) = text.split_once("\n\nwhy:\n").expect("why section");
        // Values start in one column, whatever the key.
        for l in header.lines() {
            let value: String = l.chars().skip(13).collect();
            assert!(!value.starts_with(' ') && !value.is_empty(), "{l:?}");
        }
        assert!(header.contains("\nmessage-id   <tp.d001.42@autohaus-müller.de>\n"));
        assert!(header.contains("\ntemplate     inspektion_brief version 1f2e3d4c5b6a\n"));
        assert!(header.contains("\nsend         2025-03-17 09:05\n"));
        assert!(header.contains(
            "\nmoney        cost 0.95  value 180.00  booked 0.95  brand share 0.48 (euro)\n"
        ));
        assert!(header.contains("\nfallback     replaces message 41\n"));
        assert!(header.ends_with("\naddress      Jürgen Köhler, Hauptstraße 5, 80331 München"));
        let (why, history) = rest.split_once("\n\nhistory:\n").expect("history section");
        assert_eq!(
            why.lines().collect::<Vec<_>>(),
            [
                "  occasion: Inspektion fällig am 2025-04-01 (12 Monate nach dem Service am 2024-04-01)",
                "  channel: E-Mail bevorzugt, Einwilligung vom 2024-01-05",
                "  dispatch: E-Mail an jürgen.köhler@example.de abgewiesen (550 5.1.1 Empfänger unbekannt); Brief statt E-Mail",
            ]
        );
        let history: Vec<&str> = history.lines().collect();
        assert_eq!(history.len(), 4, "{text}");
        assert!(history[1].ends_with("planned  geplant"), "{:?}", history[1]);
        assert!(
            history[2].ends_with("queued   für den Lettershop"),
            "{:?}",
            history[2]
        );
        assert!(history[3].ends_with("sent     -"), "{:?}", history[3]);
        insta::assert_snapshot!(text);
    }

    #[test]
    fn message_view_of_an_unsent_email() {
        let mut m = fixtures::message();
        m.channel = touchpoint_common::domain::Channel::Email;
        m.status = touchpoint_common::outbox::MessageStatus::Deferred;
        m.why.clear();
        m.history.clear();
        m.dispatch = touchpoint_common::outbox::Dispatch {
            attempts: 2,
            first_attempt: Some(fixtures::ts(0)),
            retry_at: Some(fixtures::ts(30)),
            last_error: "451 4.7.1 Greylisting, später erneut".into(),
            fallback_to: Some(43),
            ..Default::default()
        };
        let text = message(&m);
        assert!(
            text.contains("\ntemplate     inspektion_brief (not rendered yet)\n"),
            "{text}"
        );
        assert!(text.contains(
            "\nattempts     2, first 2025-03-14 09:30:00 UTC, next 2025-03-14 10:00:00 UTC\n"
        ));
        assert!(text.contains("\nlast error   451 4.7.1 Greylisting, später erneut\n"));
        assert!(text.contains("\nfallback     replaced by message 43\n"));
        assert!(text.contains("\nbatch        -\n"));
        assert!(text.ends_with("\nwhy:\n  -\n\nhistory:\n  -\n"), "{text}");
    }

    #[test]
    fn saturation_bars() {
        assert_eq!(saturation_bar(0), "[..........] 0%");
        assert_eq!(saturation_bar(4), "[..........] 4%");
        assert_eq!(saturation_bar(5), "[#.........] 5%");
        assert_eq!(saturation_bar(50), "[#####.....] 50%");
        assert_eq!(saturation_bar(100), "[##########] 100%");
        assert_eq!(saturation_bar(250), "[##########] 250%");
    }

    #[test]
    fn dispatch_text() {
        use touchpoint_common::protocol::{PauseScope, TenantQueue, ThrottleStatus};
        let queue = |t: &str, n: [u64; 5]| TenantQueue {
            tenant: fixtures::tid(t),
            email: n[0],
            post: n[1],
            phone: n[2],
            in_flight: n[3],
            sent_today: n[4],
            error: None,
        };
        let throttle = |name: &str, in_flight, concurrency, used, limit, per: &str, saturation| {
            ThrottleStatus {
                name: name.into(),
                in_flight,
                concurrency,
                used,
                limit,
                per: per.into(),
                saturation,
            }
        };
        let d = DispatchStatus {
            enabled: true,
            transport: "smtp relay mail.example:587 (starttls, 8 connections)".into(),
            paused: vec![Pause {
                scope: PauseScope {
                    tenant: Some(fixtures::tid("d002")),
                    service: Some("hu".into()),
                },
                by: "anna".into(),
                at: fixtures::ts(-15),
            }],
            throttles: vec![
                throttle("global", 4, 8, 300, 600, "minute", 50),
                throttle("tenant d001", 0, 0, 1_980, 2_000, "day", 99),
                throttle("domain gmail.com", 2, 2, 10, 0, "minute", 100),
            ],
            queues: vec![
                queue("d001", [120, 15, 3, 4, 880]),
                queue("d002", [0, 2, 0, 0, 35]),
            ],
            sent_last_minute: 300,
            sent_total: 12_345,
            deferred_total: 17,
            failed_total: 3,
            fallbacks_total: 2,
            resent_after_crash: 1,
            resent_after_cut: 0,
            bounces_processed: 9,
            relay_down_until: Some(fixtures::ts(5)),
            last_error: "connection refused (mail.example:587)".into(),
            unsubscribes_processed: 4,
            autoreplies_processed: 12,
            mails_ignored: 2,
            daemon_wide: true,
        };
        let text = dispatch(&d);
        assert!(text.contains("[#####.....] 50%"), "{text}");
        assert!(text.contains(
            "sent 12345  deferred 17  failed 3  fallbacks 2  resent after crash 1  after a cut 0\n"
        ));
        assert!(
            text.contains("\nbounce mail  bounces 9  unsubscribes 4  auto-replies 12  ignored 2\n")
        );
        assert!(text.contains("\nrelay        DOWN: email waits until 2025-03-14 09:35:00 UTC\n"));
        assert!(text.contains("service hu of tenant d002"), "{text}");
        insta::assert_snapshot!(text);
        let idle = dispatch(&DispatchStatus::default());
        assert!(idle.starts_with("dispatch     DISABLED"), "{idle}");
        assert!(
            !idle.contains("relay") && !idle.contains("last error"),
            "{idle}"
        );
    }

    #[test]
    fn pauses_batches_actions_outcomes() {
        use touchpoint_common::outbox::MessageStatus;
        assert_eq!(
            pauses(&[]),
            "no pauses: dispatch runs for every tenant and service\n"
        );
        let b = batches(&[BatchSummary {
            tenant: fixtures::tid("d001"),
            kind: "letters".into(),
            files: vec!["d001-letters.pdf".into(), "d001-manifest.csv".into()],
            messages: 120,
            cost: 10_560,
        }]);
        assert_eq!(
            b,
            "TENANT  KIND     MESSAGES  COST EUR  FILES\n\
             d001    letters       120    105.60  d001-letters.pdf, d001-manifest.csv\n"
        );
        let a = actions(
            MessageAction::Hold,
            &[
                ActionResult {
                    id: 12,
                    outcome: Ok(MessageStatus::Held),
                },
                ActionResult {
                    id: 13,
                    outcome: Err("already sent".into()),
                },
            ],
        );
        assert_eq!(a, "message 12: held\nmessage 13: not held: already sent\n");
        let o = outcomes(&OutcomeReport {
            applied: 7,
            unchanged: 2,
            errors: vec![
                "calls.csv:4: outcome: \"vielleicht\" is not an outcome".into(),
                "calls.csv:9: task: no task 88".into(),
            ],
        });
        assert_eq!(
            o,
            "applied 7, unchanged 2, errors 2\n\
             calls.csv:4: outcome: \"vielleicht\" is not an outcome\n\
             calls.csv:9: task: no task 88\n"
        );
    }

    const DIFF: &str = "\
--- winter_check v3
+++ winter_check (proposal 7)
@@ -1,4 +1,4 @@
 [email]
-subject = \"Winter-Check für {{ customer.name }}\"
+subject = \"Ihr Winter-Check, {{ customer.name }}\"
--- eine Zeile, die mit drei Strichen beginnt
 text = \"\"\"
@@ -9,2 +9,3 @@
 Autohaus
+++ drei Plus als Inhalt
\\ No newline at end of file
";

    #[test]
    fn diff_plain_is_the_diff_unchanged() {
        assert_eq!(diff(DIFF, false), DIFF);
        assert_eq!(diff("", false), "");
        assert_eq!(diff("@@ -1 +1 @@\n-a\n+b", false), "@@ -1 +1 @@\n-a\n+b\n");
    }

    #[test]
    fn diff_colours_by_line_kind_and_knows_headers_from_content() {
        let coloured = diff(DIFF, true);
        let lines: Vec<&str> = coloured.lines().collect();
        assert_eq!(
            lines,
            [
                "\x1b[1m--- winter_check v3\x1b[0m",
                "\x1b[1m+++ winter_check (proposal 7)\x1b[0m",
                "\x1b[36m@@ -1,4 +1,4 @@\x1b[0m",
                " [email]",
                "\x1b[31m-subject = \"Winter-Check für {{ customer.name }}\"\x1b[0m",
                "\x1b[32m+subject = \"Ihr Winter-Check, {{ customer.name }}\"\x1b[0m",
                // Inside a hunk, "--- " is a removed line, not a header.
                "\x1b[31m--- eine Zeile, die mit drei Strichen beginnt\x1b[0m",
                " text = \"\"\"",
                "\x1b[36m@@ -9,2 +9,3 @@\x1b[0m",
                " Autohaus",
                "\x1b[32m+++ drei Plus als Inhalt\x1b[0m",
                "\\ No newline at end of file",
            ]
        );
        // Removing the colour codes gives the plain diff back.
        let stripped = [BOLD, RED, GREEN, CYAN, RESET]
            .iter()
            .fold(coloured.clone(), |t, code| t.replace(code, ""));
        assert_eq!(stripped, diff(DIFF, false));
        // After a hunk is complete, a new file header is a header again.
        let two = "@@ -1 +1 @@\n-a\n+b\n--- b.toml\n+++ b.toml\n@@ -1 +0,0 @@\n-x\n";
        let lines: Vec<String> = diff(two, true).lines().map(String::from).collect();
        assert_eq!(lines[3], "\x1b[1m--- b.toml\x1b[0m");
        assert_eq!(lines[4], "\x1b[1m+++ b.toml\x1b[0m");
        assert_eq!(lines[6], "\x1b[31m-x\x1b[0m");
        // Hunk headers without counts: every -/+ line until the next @@ is content.
        let loose = "@@ changed @@\n--- a\n+++ b\n";
        assert_eq!(
            diff(loose, true),
            "\x1b[36m@@ changed @@\x1b[0m\n\x1b[31m--- a\x1b[0m\n\x1b[32m+++ b\x1b[0m\n"
        );
    }

    #[test]
    fn control_characters_in_a_diff_are_shown_not_obeyed() {
        // A line that would erase the line above it and hide a change.
        let sneaky = "@@ -1 +1,2 @@\n \"impressum\"\n+\x1b[1A\x1b[2Kfake\u{202e}txt\r\n";
        let shown = diff(sneaky, false);
        assert_eq!(
            shown,
            "@@ -1 +1,2 @@\n \"impressum\"\n+\\u{1b}[1A\\u{1b}[2Kfake\\u{202e}txt\\u{d}\n"
        );
        assert!(!diff(sneaky, true).contains("\x1b[1A"));
        assert_eq!(visible("Grüße\tan alle"), "Grüße\tan alle");
        assert!(matches!(visible("plain"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn shortening_keeps_the_first_line() {
        assert_eq!(shorten("kurz", 10), "kurz");
        assert_eq!(shorten("genau zehn", 10), "genau zehn");
        assert_eq!(shorten("Grüße aus Köln", 10), "Grüße aus…");
        assert_eq!(shorten("eins\nzwei", 10), "eins…");
        assert_eq!(shorten("  eins  \n", 10), "eins");
        assert_eq!(shorten("", 10), "");
    }

    fn proposal_fixture(
        id: u64,
        template: &str,
        author: &str,
        comment: &str,
        status: ProposalStatus,
    ) -> Proposal {
        Proposal {
            id,
            template: template.into(),
            text: String::new(),
            base_version: 3,
            rollback_to: None,
            author: author.into(),
            author_uid: 1001,
            comment: comment.into(),
            created_at: fixtures::ts(id as i64 * 10),
            status,
        }
    }

    fn proposals_fixture() -> Vec<Proposal> {
        let mut new = proposal_fixture(
            13,
            "geburtstag_grüße",
            "Jürgen Köhler",
            "Neue Vorlage für Geburtstagsgrüße",
            ProposalStatus::Pending,
        );
        new.base_version = 0;
        let mut rollback = proposal_fixture(
            14,
            "winter_check",
            "anna",
            "Zurück zur Fassung vom Oktober, die Rabattaktion ist beendet\nZweite Zeile",
            ProposalStatus::Rejected {
                by: "Björn Weiß".into(),
                at: fixtures::ts(200),
                comment: "Die Aktion läuft bis Ende März".into(),
            },
        );
        rollback.rollback_to = Some(1);
        vec![
            proposal_fixture(
                12,
                "winter_check",
                "Jürgen Köhler",
                "Winterreifen-Aktion: Räderwechsel mit Einlagerung für 49 € – gültig bis 31. März, nur bei teilnehmenden Autohäusern",
                ProposalStatus::Pending,
            ),
            new,
            rollback,
            proposal_fixture(
                15,
                "hu_reminder",
                "anna",
                "Öffnungszeiten-Slot",
                ProposalStatus::Approved {
                    by: "Björn Weiß".into(),
                    at: fixtures::ts(300),
                    comment: String::new(),
                    version: 4,
                },
            ),
        ]
    }

    #[test]
    fn approvals_table_with_umlauts_fits_the_width() {
        let list = proposals_fixture();
        let text = approvals(&list, true, Some(120));
        for l in text.lines() {
            assert!(l.chars().count() <= 120, "{} chars: {l}", l.chars().count());
        }
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        // Columns line up by characters, not bytes.
        let status_at = lines[0].find("STATUS").expect("STATUS");
        let status_col = lines[0][..status_at].chars().count();
        for (l, status) in lines[1..].iter().zip([
            "pending",
            "pending",
            "rejected by Björn Weiß",
            "approved as v4 by Björn Weiß",
        ]) {
            let cell: String = l.chars().skip(status_col).collect();
            assert!(cell.starts_with(status), "{l}");
        }
        assert!(lines[1].ends_with('…'), "{}", lines[1]);
        assert!(
            lines[3].ends_with("Zurück zur Fassung vom Ok…"),
            "{}",
            lines[3]
        );
        assert!(lines[3].contains("  v3 → v1  "), "{}", lines[3]);
        assert!(lines[2].contains("  new  "), "{}", lines[2]);
        insta::assert_snapshot!(text);

        // However narrow, the comment keeps a few characters.
        let narrow = approvals(&list, true, Some(40));
        assert!(
            narrow
                .lines()
                .nth(1)
                .expect("row")
                .ends_with("Winterreife…"),
            "{narrow}"
        );
        // Wide enough, nothing is cut.
        let wide = approvals(&list, true, Some(400));
        assert!(
            wide.contains("nur bei teilnehmenden Autohäusern\n"),
            "{wide}"
        );
        assert_eq!(approvals(&[], false, None), "no pending proposals\n");
        assert_eq!(approvals(&[], true, None), "no proposals\n");
    }

    fn detail_fixture() -> ProposalDetail {
        let mut p = proposals_fixture().swap_remove(0);
        p.comment = "Winterreifen-Aktion für März.\n\nMit Einlagerung.".into();
        ProposalDetail {
            proposal: p,
            diff: DIFF.into(),
            current_version: 4,
        }
    }

    #[test]
    fn approval_view_with_umlauts() {
        let d = detail_fixture();
        let text = approval(&d, false);
        assert!(
            text.contains("\nauthor    Jürgen Köhler (uid 1001)\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "\nbase      version 3 (version 4 is in force now; the diff is against it)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("\ncomment:\n  Winterreifen-Aktion für März.\n\n  Mit Einlagerung.\n\n--- winter_check v3\n"),
            "{text}"
        );
        assert!(text.ends_with(DIFF), "{text}");
        assert!(!text.contains('\x1b'));
        insta::assert_snapshot!(text);
        let coloured = approval(&d, true);
        assert!(coloured.contains("\n\x1b[1m--- winter_check v3\x1b[0m\n"));

        let mut decided = d.clone();
        decided.proposal.status = ProposalStatus::Rejected {
            by: "Björn Weiß".into(),
            at: fixtures::ts(200),
            comment: "Impressum fehlt".into(),
        };
        decided.diff = String::new();
        let text = approval(&decided, false);
        assert!(
            text.contains("\nstatus    rejected by Björn Weiß at 2025-03-14 12:50:00 UTC\nreview    Impressum fehlt\n"),
            "{text}"
        );
        assert!(
            text.ends_with("\nno changes against version 4 in force\n"),
            "{text}"
        );
    }

    #[test]
    fn proposed_and_decided() {
        let mut d = detail_fixture();
        let text = proposed(&d, false);
        assert!(
            text.starts_with(
                "proposal 12: winter_check, based on version 3\n\n--- winter_check v3\n"
            ),
            "{text}"
        );
        assert!(text.ends_with(
            "\na reviewer decides with `touchpoint approve 12` or `touchpoint reject 12 --comment …`\n"
        ));
        d.proposal.rollback_to = Some(1);
        assert!(proposed(&d, false)
            .starts_with("proposal 12: winter_check, back to version 1 from version 3\n"));
        d.proposal.rollback_to = None;
        d.proposal.base_version = 0;
        assert!(proposed(&d, false).starts_with("proposal 12: winter_check, a new template\n"));

        d.proposal.status = ProposalStatus::Approved {
            by: "Björn Weiß".into(),
            at: fixtures::ts(300),
            comment: String::new(),
            version: 5,
        };
        assert_eq!(
            decision(&d),
            "proposal 12 approved: winter_check version 5 is in force for every tenant\n"
        );
        d.proposal.status = ProposalStatus::Rejected {
            by: "Björn Weiß".into(),
            at: fixtures::ts(300),
            comment: "nein".into(),
        };
        assert_eq!(
            decision(&d),
            "proposal 12 rejected: winter_check stays at version 4\n"
        );
        d.current_version = 0;
        assert_eq!(
            decision(&d),
            "proposal 12 rejected: winter_check has no version in force\n"
        );
    }

    #[test]
    fn preview_text_with_umlauts_and_empty_parts() {
        let p = Preview {
            proposal: 12,
            tenant: fixtures::tid("d001"),
            customer: "K-1001".into(),
            subject: "Ihr Winter-Check, Herr Müller".into(),
            text: "Guten Tag Herr Müller,\n\nIhr Autohaus Schäfer lädt Sie ein.\n".into(),
            html: "<p>Guten Tag</p>".into(),
            letter: String::new(),
            pdf: b"%PDF-1.7".to_vec(),
        };
        let text = preview(&p);
        assert_eq!(
            text,
            "proposal 12 for tenant d001, customer K-1001\n\n\
             subject: Ihr Winter-Check, Herr Müller\n\n\
             email (plain text):\n  Guten Tag Herr Müller,\n\n  Ihr Autohaus Schäfer lädt Sie ein.\n\n\
             letter:\n  -\n"
        );
    }

    fn version(
        version: u32,
        minutes: i64,
        author: &str,
        approved_by: &str,
        comment: &str,
    ) -> touchpoint_common::protocol::TemplateVersion {
        touchpoint_common::protocol::TemplateVersion {
            version,
            fingerprint: 0x00ab_cdef_0123_4567 ^ u64::from(version),
            text: String::new(),
            author: author.into(),
            approved_by: approved_by.into(),
            at: fixtures::ts(minutes),
            comment: comment.into(),
            proposal: (version > 1).then_some(u64::from(version) + 10),
        }
    }

    #[test]
    fn templates_with_history_and_the_version_in_force() {
        let list = vec![
            TemplateHistory {
                name: "winter_check".into(),
                in_force: 2,
                versions: vec![
                    version(1, -90_000, "policies/templates/winter_check.toml", "-", "Ausgangsfassung"),
                    version(3, 0, "Jürgen Köhler", "Björn Weiß", "Rückgängig: Fassung vom Oktober, weil die Rabattaktion für Winterräder beendet ist"),
                    version(2, -40_000, "Jürgen Köhler", "Björn Weiß", "Räderwechsel mit Einlagerung"),
                ],
            },
            TemplateHistory {
                name: "geburtstag".into(),
                in_force: 0,
                versions: vec![],
            },
        ];
        let text = templates(&list, Some(120));
        for l in text.lines() {
            assert!(l.chars().count() <= 120, "{l}");
        }
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "winter_check: version 2 in force (*)");
        // Newest first; only the version in force marked.
        assert!(
            lines[1].starts_with("     VERSION  WHEN  "),
            "{:?}",
            lines[1]
        );
        assert!(
            lines[2].starts_with("     3        2025-03-14 09:30  "),
            "{:?}",
            lines[2]
        );
        assert!(
            lines[3].starts_with("  *  2        2025-02-14 "),
            "{:?}",
            lines[3]
        );
        assert!(
            lines[4].starts_with("     1        2025-01-10 21:30  "),
            "{:?}",
            lines[4]
        );
        assert!(lines[3].contains("  00abcdef0123  "), "{:?}", lines[3]);
        assert!(lines[2].ends_with('…'), "{:?}", lines[2]);
        assert_eq!(
            &lines[6..],
            ["geburtstag: no version in force", "  no versions"]
        );
        insta::assert_snapshot!(text);
        assert_eq!(templates(&[], None), "no templates\n");
    }
}
