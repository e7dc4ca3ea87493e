//! Results reports (M9): responses, control groups, lift and costs per
//! group, for a list of tenants or pooled over every dealer under the
//! brand's disclosure rule. Reads each tenant's rows through
//! [`TenantStore::result_rows`](crate::store::TenantStore::result_rows);
//! the arithmetic and the suppression are `common::report`'s, shared with
//! the console.

use std::collections::{BTreeMap, BTreeSet};

use chrono::TimeZone;
use touchpoint_common::report::answer::{Report, ReportQuery, SharedFigures};
use touchpoint_common::report::pool::{
    figures, fill, merge, pool, tally, Cell, Dealers, ReportGroup,
};
use touchpoint_common::report::stats::{By, Tally};
use touchpoint_common::{Date, TenantId};

use crate::policy::Policies;
use crate::store::Stores;

/// Days a report covers when the query names no start.
pub const DEFAULT_DAYS: i32 = 90;
/// The longest period one report may cover: every row of it is read.
pub const MAX_DAYS: i32 = 3 * 366;

/// The one calendar month a pooled report covers: the month of `--from`
/// (or of `--to`, or this month), and the period must be that whole month
/// if given. Pooled reports over periods that overlap could be subtracted
/// from each other to show a suppressed cell (two periods a day apart
/// differ by one day, which may be one dealer's); reports over single
/// months never overlap.
fn pooled_month(query: &ReportQuery, today: Date) -> Result<(Date, Date), ResultsError> {
    let anchor = query.from.or(query.to).unwrap_or(today);
    let first = Date::from_ymd(anchor.year(), anchor.month(), 1)
        .ok_or_else(|| ResultsError::Invalid(format!("no month around {anchor}")))?;
    let last = first.add_months(1).add_days(-1);
    let whole = query.from.is_none_or(|f| f == first) && query.to.is_none_or(|t| t == last);
    if !whole {
        return Err(ResultsError::Invalid(format!(
            "a pooled report covers one whole calendar month (e.g. --from {first} --to {last}), \
             so that no two pooled reports overlap"
        )));
    }
    Ok((first, last))
}

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("{0}")]
    Invalid(String),
}

/// The report for `tenants` (already cut to the caller's scope); pooled
/// queries ignore `tenants` and pool every dealer with a policy.
pub fn report(
    stores: &Stores,
    p: &Policies,
    tenants: &[TenantId],
    query: ReportQuery,
    today: Date,
) -> Result<Report, ResultsError> {
    // Dates come from the wire: keep them near today before any
    // arithmetic on them.
    for d in [query.from, query.to].into_iter().flatten() {
        if (i64::from(d.days()) - i64::from(today.days())).abs() > 100 * 366 {
            return Err(ResultsError::Invalid(format!(
                "{d} is more than a hundred years from today"
            )));
        }
    }
    if query.pooled && query.tenant.is_some() {
        return Err(ResultsError::Invalid(
            "a pooled report pools every dealer; it takes no tenant".into(),
        ));
    }
    let (from, to) = if query.pooled {
        pooled_month(&query, today)?
    } else {
        let to = query.to.unwrap_or(today);
        (query.from.unwrap_or(to.add_days(1 - DEFAULT_DAYS)), to)
    };
    if from > to {
        return Err(ResultsError::Invalid(format!(
            "--from {from} is after --to {to}"
        )));
    }
    if i64::from(to.days()) - i64::from(from.days()) >= i64::from(MAX_DAYS) {
        return Err(ResultsError::Invalid(format!(
            "{from} to {to} is more than {MAX_DAYS} days; report a shorter period"
        )));
    }
    if query.pooled && query.service.is_some() {
        return Err(ResultsError::Invalid(
            "a pooled report takes no --service (two pooled reports that differ by one service \
             would show that service's suppressed cells by subtraction); use --by service"
                .into(),
        ));
    }
    if let Some(s) = &query.service {
        if !p.brand.services.contains_key(s) {
            return Err(ResultsError::Invalid(format!(
                "no service {s:?} in the brand policy"
            )));
        }
    }
    if query.pooled && query.by == By::Tenant {
        return Err(ResultsError::Invalid(
            "a pooled report cannot be grouped by tenant: every cell would be one dealer".into(),
        ));
    }
    let all: Vec<TenantId>;
    let tenants = if query.pooled {
        all = p.tenants.keys().cloned().collect();
        &all[..]
    } else {
        tenants
    };

    // Per group, per service (the strata of its lift), per dealer (by
    // position in `tenants`): the tally.
    let mut cells: BTreeMap<(i64, String), BTreeMap<String, Dealers>> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut dealers = 0u32;
    for (i, t) in (0u32..).zip(tenants) {
        let name = p.tenant(t).map(|tp| tp.tenant.name.as_str()).unwrap_or("");
        let rows = match stores.tenant(t).and_then(|s| s.result_rows(from, to)) {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(tenant = %t, error = %e, "results: tenant left out");
                errors.push((t.to_string(), e.to_string()));
                continue;
            }
        };
        dealers += 1;
        let label = format!("{t} {name}");
        for row in rows {
            if query.service.as_ref().is_some_and(|s| *s != row.service) {
                continue;
            }
            let local = chrono::Local
                .timestamp_millis_opt(row.sent_at.millis())
                .single()
                .map(|t| t.naive_local())
                .unwrap_or_default();
            let key = query.by.group(label.trim(), &row, local);
            cells
                .entry(key)
                .or_default()
                .entry(row.service.clone())
                .or_default()
                .entry(i)
                .or_default()
                .add_row(&row);
        }
    }

    let mut report = Report {
        query: query.clone(),
        from,
        to,
        groups: Vec::new(),
        total: ReportGroup {
            order: i64::MAX,
            label: "total".into(),
            tally: Some(Tally::default()),
            figures: Some(Tally::default().figures()),
            lift_services: Vec::new(),
            suppressed: None,
        },
        dealers,
        rule: None,
        shared: Vec::new(),
        errors: Vec::new(),
        unreadable: 0,
    };
    if query.pooled {
        let rule = p.brand.privacy.rule();
        let sharing: BTreeSet<u32> = (0u32..)
            .zip(tenants)
            .filter(|(_, t)| p.tenant(t).is_some_and(|tp| !tp.share.fields.is_empty()))
            .map(|(i, _)| i)
            .collect();
        let cells: Vec<Cell> = cells
            .into_iter()
            .map(|((order, label), strata)| Cell {
                order,
                label,
                strata,
            })
            .collect();
        report.shared = shared(p, tenants, &cells);
        let (groups, total) = pool(&rule, &sharing, cells);
        report.groups = groups;
        report.total = total;
        report.rule = Some(rule);
        // A pooled report names no dealer, not even one that failed.
        report.unreadable = errors.len() as u32;
    } else {
        // Every service of the caller's own tenants with a control group
        // is in its groups' lifts.
        let total = merge(cells.values());
        for ((order, label), strata) in cells {
            let mut g = ReportGroup {
                order,
                label,
                tally: None,
                figures: None,
                lift_services: Vec::new(),
                suppressed: None,
            };
            fill(&mut g, &strata, &strata.keys().cloned().collect());
            report.groups.push(g);
        }
        fill(&mut report.total, &total, &total.keys().cloned().collect());
        report.unreadable = errors.len() as u32;
        report.errors = errors;
    }
    Ok(report)
}

/// The figures dealers granted the brand, each over the whole query.
fn shared(p: &Policies, tenants: &[TenantId], cells: &[Cell]) -> Vec<SharedFigures> {
    let mut out = Vec::new();
    for (i, t) in (0u32..).zip(tenants) {
        let Some(tp) = p.tenant(t) else { continue };
        if tp.share.fields.is_empty() {
            continue;
        }
        // The dealer's own strata: its lift is stratified like any cell's.
        let own: BTreeMap<String, Dealers> = merge(cells.iter().map(|c| &c.strata))
            .into_iter()
            .filter_map(|(s, d)| d.get(&i).map(|t| (s, Dealers::from([(i, *t)]))))
            .collect();
        let (t_own, f_own) = (tally(&own), figures(&own, &own.keys().cloned().collect()));
        out.push(SharedFigures {
            tenant: t.clone(),
            name: tp.tenant.name.clone(),
            fields: tp
                .share
                .fields
                .iter()
                .map(|f| (*f, f.show(&t_own, &f_own)))
                .collect(),
        });
    }
    out
}
