//! The console's overview for the caller's scope: one day's messages per
//! tenant (the day asked, else the next day anything goes out), the
//! upcoming days' counts, spending against budgets this month, dispatch's throughput,
//! throttles and pauses, the policy in force, and what needs attention.
//!
//! Per tenant, everything comes from its outbox's summary
//! (`Stores::outbox_summary`, kept while the outbox is not written, so an
//! unchanged tenant's store is not opened): message figures from its
//! index's digest (no message is read), money from the ledger as
//! `ledger::cost_rows` makes its rows (the one definition of reserved,
//! booked and remaining, `touchpoint_common::budget`), this month's
//! responses from what the last attribution pass counted (no visit is
//! read). The rest comes from a dispatch snapshot and the
//! policy handle's status. "Today" is the daemon's local day, as dispatch
//! uses it. A read model: it reads [`Snapshot`], never the live
//! `Dispatcher`.
//!
//! One tenant's trouble is that tenant's row: a store that cannot be read
//! gives its row an error and a critical alert, never a row of zeros and
//! never a failed overview for the others. Everything is counted for the
//! caller's scope only; what is only known over every tenant (throughput,
//! the relay, global and per-domain throttles) is left out for a narrower
//! scope, and the answer says so (`Overview::daemon_wide`).

use chrono::TimeZone;
use touchpoint_common::domain::Timestamp;
use touchpoint_common::outbox::month_of;
use touchpoint_common::policy::TenantPolicy;
use touchpoint_common::protocol::{
    Alert, AlertLevel, CostRow, DayCounts, Overview, Pause, PolicyStatus, Scope, TenantDay,
    UpcomingDay, UPCOMING_DAYS,
};
use touchpoint_common::report::MonthResponses;
use touchpoint_common::{Date, TenantId};

use crate::dispatch::Snapshot;
use crate::ledger::{cost_rows, money};
use crate::policy::{Policies, PolicyHandle};
use crate::store::index::OutboxStats;
use crate::store::{StoreError, Stores};

/// Email due this long ago and still queued is a warning...
pub const STUCK_WARNING_MIN: u32 = 15;
/// ...and this long ago, critical.
pub const STUCK_CRITICAL_MIN: u32 = 60;
/// A service's budget used (reserved and booked) from this share on is a
/// warning (100 %: critical).
pub const BUDGET_WARNING_PERCENT: i64 = 90;

/// What the overview is computed from besides the stores.
pub struct Sources<'a> {
    pub policies: &'a PolicyHandle,
    /// Dispatch's state, taken for the scope the overview is for
    /// ([`crate::dispatch::Dispatcher::snapshot`]); `None`: dispatch does
    /// not run.
    pub dispatch: Option<Snapshot>,
    pub material: Option<&'a crate::approvals::Material>,
}

/// One tenant's figures, as the alerts look at them.
#[derive(Clone, Debug)]
pub struct TenantFigures {
    pub tenant: TenantId,
    pub stats: OutboxStats,
    /// This month's cost rows, per service.
    pub budgets: Vec<CostRow>,
    /// This month's responses, as the last attribution pass counted them.
    pub responses: MonthResponses,
}

/// Everything the alerts are decided from.
pub struct AlertInputs<'a> {
    pub now: Timestamp,
    pub policy: &'a PolicyStatus,
    pub dispatch_enabled: bool,
    pub relay_down_until: Option<Timestamp>,
    pub dispatch_error: &'a str,
    pub paused: &'a [Pause],
    pub bounce_alert_percent: u32,
    pub tenants: &'a [TenantFigures],
    /// Tenants whose store cannot be read, with why.
    pub unreadable: &'a [(TenantId, String)],
}

/// "tenant d001" → "Tenant d001".
fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn clock(t: Timestamp, now: Timestamp) -> String {
    let (Some(at), Some(today)) = (
        chrono::Local.timestamp_millis_opt(t.0).single(),
        chrono::Local.timestamp_millis_opt(now.0).single(),
    ) else {
        return t.to_string();
    };
    if at.date_naive() == today.date_naive() {
        at.format("%H:%M").to_string()
    } else {
        at.format("%Y-%m-%d %H:%M").to_string()
    }
}

/// The alerts: the pauses in force first (a console that shows only the
/// first few must never hide a pause behind budget warnings), then the
/// rest, most severe first.
pub fn alerts(i: &AlertInputs) -> Vec<Alert> {
    let mut out = Vec::new();
    let mut add = |level, tenant: Option<&TenantId>, text: String| {
        out.push(Alert {
            level,
            tenant: tenant.cloned(),
            text,
        })
    };
    if !i.policy.errors.is_empty() {
        let since = i
            .policy
            .failed_at
            .map(|t| format!(" since {}", clock(t, i.now)))
            .unwrap_or_default();
        let more = match i.policy.errors.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        add(
            AlertLevel::Critical,
            None,
            format!(
                "policy files invalid{since}: {}{more}; the set loaded at {} stays in force",
                i.policy.errors[0],
                clock(i.policy.loaded_at, i.now)
            ),
        );
    }
    if let Some(until) = i.relay_down_until.filter(|u| *u > i.now) {
        let why = if i.dispatch_error.is_empty() {
            String::new()
        } else {
            format!(" ({})", i.dispatch_error)
        };
        add(
            AlertLevel::Critical,
            None,
            format!(
                "mail relay unreachable{why}; email waits until {}",
                clock(until, i.now)
            ),
        );
    }
    for (t, why) in i.unreadable {
        add(
            AlertLevel::Critical,
            Some(t),
            format!("store unreadable, its figures are left out: {why}"),
        );
    }
    let now_min = (i.now.0 / 60_000) as u32;
    for t in i.tenants {
        if i.dispatch_enabled && t.stats.stuck > 0 {
            if let Some(since) = t.stats.stuck_since_min {
                let late = now_min.saturating_sub(since);
                let level = if late > STUCK_CRITICAL_MIN {
                    AlertLevel::Critical
                } else {
                    AlertLevel::Warning
                };
                let n = t.stats.stuck;
                add(
                    level,
                    Some(&t.tenant),
                    format!(
                        "{n} email{} due since {} {} still queued ({late} minutes)",
                        if n == 1 { "" } else { "s" },
                        clock(Timestamp(i64::from(since) * 60_000), i.now),
                        if n == 1 { "is" } else { "are" },
                    ),
                );
            }
        }
        for row in &t.budgets {
            let (Some(pct), Some(budget)) = (row.used_percent(), row.budget) else {
                continue;
            };
            let level = if pct >= 100 {
                AlertLevel::Critical
            } else if pct >= BUDGET_WARNING_PERCENT {
                AlertLevel::Warning
            } else {
                continue;
            };
            add(
                level,
                Some(&t.tenant),
                format!(
                    "{} budget {}-{:02} {pct}% used: {} reserved + {} booked of {}, {} remaining",
                    row.service,
                    row.month / 100,
                    row.month % 100,
                    money(row.reserved),
                    money(row.booked),
                    money(budget),
                    money(budget - row.reserved - row.booked),
                ),
            );
        }
        let (out_week, bounced) = (t.stats.emails_out_week, t.stats.bounced_week);
        if out_week > 0 && bounced * 100 > u64::from(i.bounce_alert_percent) * out_week {
            add(
                AlertLevel::Warning,
                Some(&t.tenant),
                format!(
                    "bounce rate {:.1}% over the last 7 days: {bounced} of {out_week} emails bounced (alert above {}%)",
                    bounced as f64 * 100.0 / out_week as f64,
                    i.bounce_alert_percent
                ),
            );
        }
    }
    out.sort_by_key(|a| std::cmp::Reverse(a.level));
    let pauses = i.paused.iter().map(|p| Alert {
        level: AlertLevel::Warning,
        tenant: p.scope.tenant.clone(),
        text: format!(
            "{} paused by {} since {}",
            capitalised(&p.scope.to_string()),
            p.by,
            clock(p.at, i.now)
        ),
    });
    out.splice(0..0, pauses);
    out
}

/// The tenants of the scope, in id order.
pub fn tenants_in_scope(p: &Policies, scope: &Scope) -> Vec<TenantId> {
    p.tenants
        .keys()
        .filter(|t| scope.allows(t))
        .cloned()
        .collect()
}

/// One tenant's figures for the overview: its outbox's figures from
/// `today` on (and of `also`), and its cost rows of `month`.
fn tenant_figures(
    stores: &Stores,
    snapshot: Option<&Snapshot>,
    t: &TenantId,
    policy: Option<&TenantPolicy>,
    (today, also, month, stuck_before): (Date, Option<Date>, u32, u32),
) -> Result<TenantFigures, StoreError> {
    // Kept while its outbox is not written: a thousand tenants do not
    // cost a thousand store opens at every look.
    let summary = stores.outbox_summary(t, today)?;
    let paused = |service: &str| snapshot.is_some_and(|d| d.is_paused(t, service));
    let stats = summary.digest.stats(today, also, stuck_before, paused);
    let ledger = summary.ledger.iter().cloned();
    let budgets = cost_rows(ledger, policy, t, Some(month));
    let responses = summary.responses.get(&month).copied().unwrap_or_default();
    Ok(TenantFigures {
        tenant: t.clone(),
        stats,
        budgets,
        responses,
    })
}

/// The next day anything goes out over these tenants' figures: today when
/// anything is late or due today, else the first send day with planned or
/// queued messages.
pub fn next_out(figures: &[TenantFigures], today: Date) -> Option<Date> {
    if figures.iter().any(|f| f.stats.late > 0) {
        return Some(today);
    }
    figures
        .iter()
        .filter_map(|f| {
            f.stats
                .days
                .iter()
                .find(|(_, c)| c.planned + c.queued > 0)
                .map(|(d, _)| *d)
        })
        .min()
}

/// The overview of `scope`. Never fails as a whole: a tenant whose store
/// cannot be read is a row with its error (and a critical alert), and
/// proposals that cannot be read are an alert.
pub fn overview(stores: &Stores, src: &Sources, scope: &Scope, asked: Option<Date>) -> Overview {
    let p = src.policies.current();
    let now = Timestamp::now();
    let today = Date::today();
    let month = month_of(today);
    let tenants = tenants_in_scope(&p, scope);
    let snapshot = src.dispatch.as_ref();
    let dispatch_enabled = snapshot.is_some_and(|s| s.enabled());
    let daemon_wide = matches!(scope, Scope::All);
    let stuck_before = ((now.0 / 60_000) as u32).saturating_sub(STUCK_WARNING_MIN);
    let mut budgets = Vec::new();
    let mut figures = Vec::new();
    let mut unreadable = Vec::new();
    let mut responses = MonthResponses::default();
    // Each tenant read once: its figures hold every day from today on,
    // so the day shown is chosen after.
    let mut read = Vec::new();
    for t in &tenants {
        let policy = p.tenant(t);
        let name = policy.map(|x| x.tenant.name.clone()).unwrap_or_default();
        let at = (today, asked, month, stuck_before);
        match tenant_figures(stores, snapshot, t, policy, at) {
            Ok(f) => {
                responses.add(&f.responses);
                budgets.extend(f.budgets.iter().cloned());
                read.push((t.clone(), name, Ok(figures.len())));
                figures.push(f);
            }
            Err(e) => {
                let why = e.to_string();
                read.push((t.clone(), name, Err(why.clone())));
                unreadable.push((t.clone(), why));
            }
        }
    }
    let next_out = next_out(&figures, today);
    let day = asked.or(next_out).unwrap_or(today);
    let counts_on = |f: &TenantFigures, d: Date| f.stats.days.get(&d).copied().unwrap_or_default();
    let mut total = DayCounts::default();
    let days: Vec<TenantDay> = read
        .into_iter()
        .map(|(tenant, name, r)| match r {
            Ok(i) => {
                let counts = counts_on(&figures[i], day);
                total.add(&counts);
                TenantDay {
                    tenant,
                    name,
                    counts,
                    error: None,
                }
            }
            Err(why) => TenantDay {
                tenant,
                name,
                counts: DayCounts::default(),
                error: Some(why),
            },
        })
        .collect();
    let upcoming = (0..UPCOMING_DAYS as i32)
        .map(|n| {
            let d = today.add_days(n);
            let mut counts = DayCounts::default();
            for f in &figures {
                counts.add(&counts_on(f, d));
            }
            UpcomingDay { day: d, counts }
        })
        .collect();
    let policy = src.policies.status_for(scope);
    // The snapshot is scoped already: pauses and throttles of other
    // tenants, and what only a scope over all is shown, are not in it.
    let paused: Vec<Pause> = snapshot.map(|s| s.paused().to_vec()).unwrap_or_default();
    let throttles = snapshot.map(|s| s.throttles().to_vec()).unwrap_or_default();
    let relay_down_until = snapshot.and_then(|s| s.relay_down_until());
    let dispatch_error = snapshot
        .map(|s| s.last_error().to_string())
        .unwrap_or_default();
    let mut alerts = alerts(&AlertInputs {
        now,
        policy: &policy,
        dispatch_enabled,
        relay_down_until,
        dispatch_error: &dispatch_error,
        paused: &paused,
        bounce_alert_percent: p.brand.email.bounce_alert_percent,
        tenants: &figures,
        unreadable: &unreadable,
    });
    // Counted as `Proposals` lists them: other dealers' slots left out.
    let pending_approvals = match src.material.map(|m| m.proposals(false)) {
        Some(Ok(list)) => list
            .iter()
            .filter(|x| crate::access::material_in_scope(scope, &x.template, false).is_ok())
            .count() as u64,
        Some(Err(e)) => {
            alerts.push(Alert {
                level: AlertLevel::Warning,
                tenant: None,
                text: format!("pending approvals could not be read: {e}"),
            });
            0
        }
        None => 0,
    };
    let throughput = match snapshot.and_then(|s| s.throughput()) {
        Some(t) if dispatch_enabled => t.to_vec(),
        _ if daemon_wide => vec![0; 60],
        _ => Vec::new(),
    };
    Overview {
        today,
        day,
        next_out,
        upcoming,
        tenants: days,
        total,
        budgets,
        responses,
        throughput,
        throttles: if dispatch_enabled {
            throttles
        } else {
            Vec::new()
        },
        dispatch_enabled,
        transport: if dispatch_enabled {
            snapshot
                .map(|s| s.transport().to_string())
                .unwrap_or_default()
        } else {
            String::new()
        },
        paused: if dispatch_enabled { paused } else { Vec::new() },
        relay_down_until: relay_down_until.filter(|_| dispatch_enabled),
        dispatch_error: if dispatch_enabled {
            dispatch_error
        } else {
            String::new()
        },
        policy,
        pending_approvals,
        alerts,
        daemon_wide,
        clock: touchpoint_common::clock::start(),
    }
}

#[cfg(test)]
mod tests;
