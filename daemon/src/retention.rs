//! Retention (brand `[retention]`): what is older than the brand keeps is
//! pruned or made anonymous, by a daily run and on demand (`touchpoint
//! retention run`, an administrator's, audited). Per kind:
//! - messages that ended (sent, failed, cancelled, control records) with a
//!   send day more than `messages_months` before today (domain time), and
//!   whose occasions the planner can no longer find again ([`settled`]),
//!   are pseudonymised by erasure's code ([`Erasure::expire`]): money, status,
//!   service, days and their credited response stay for the ledger, results
//!   and learning; every personal field goes;
//! - workshop visits and reported responses of a day more than
//!   `responses_months` before today are removed (the credits they gave
//!   stay with their messages; learning, which also reads raw responses,
//!   learns from the retention window from then on);
//! - audit lines written (wall time) more than `audit_months` before now
//!   are removed from the audit log;
//! - the tenant's files last changed more than the shorter of
//!   `messages_months` and `responses_months` ago (wall time) are removed:
//!   letter batches, call lists and the dealers' exports in the inbox's
//!   archive (`done/`, `failed/`), which hold messages and visits.
//!
//! A tenant store from which anything went is rewritten
//! (`Stores::rewrite_tenant`), so it is gone from disk. The last run is
//! kept in the central store and shown by `touchpoint status`. Must not
//! import planner, control or import.

use std::sync::Arc;

use chrono::Months;
use tokio_util::sync::CancellationToken;
use touchpoint_common::domain::Timestamp;
use touchpoint_common::outbox::Message;
use touchpoint_common::policy::{BrandPolicy, OccasionKind, Retention as Policy};
use touchpoint_common::protocol::{RetentionRun, RetentionStatus};
use touchpoint_common::Date;

use crate::erasure::Erasure;
use crate::policy::PolicyHandle;

/// When the daily run starts (local domain time): 03:15, after the night's
/// imports and before the morning's plan.
pub const SCHEDULE: &str = "0 15 3 * * *";

/// The day `months` calendar months before `day` (the first day kept).
fn months_before(day: Date, months: u32) -> Date {
    day.naive()
        .checked_sub_months(Months::new(months))
        .map_or(Date::from_days(0), Date::from)
}

/// How far past its day the planner may still find an occasion (an
/// overdue service or inspection is reminded up to 90 days late, a call
/// after a visit 14, a journey stage's entry 30): checked against the
/// planner's constants by a test in `tests.rs`.
pub const PLAN_REACH_DAYS: i32 = 90;

/// Whether the planner can no longer find any of the message's occasions
/// again, so that freeing their keys (which pseudonymising does: the keys
/// name the person or vehicle) cannot plan one twice: every occasion's day
/// more than [`PLAN_REACH_DAYS`] ago, and a campaign's run over (its
/// occasion's key is the campaign's start, its day the day it was
/// planned). A message whose occasions are still within reach is kept as
/// it is until they are not.
pub fn settled(m: &Message, brand: &BrandPolicy, today: Date) -> bool {
    m.occasions.iter().all(|o| {
        let gone = o.due < today.add_days(-PLAN_REACH_DAYS);
        let campaign_over = match o.kind {
            OccasionKind::Campaign => brand
                .services
                .get(&o.service)
                .and_then(|s| s.to)
                .is_none_or(|to| to.0 < today.add_days(-PLAN_REACH_DAYS)),
            _ => true,
        };
        gone && campaign_over
    })
}

/// The moment `months` calendar months before `now` (wall time).
fn months_before_wall(now: Timestamp, months: u32) -> Timestamp {
    chrono::DateTime::from_timestamp_millis(now.millis())
        .and_then(|t| t.checked_sub_months(Months::new(months)))
        .map_or(Timestamp(0), |t| Timestamp(t.timestamp_millis()))
}

/// Retention over every tenant (see the module docs).
pub struct Retention {
    erasure: Arc<Erasure>,
    policies: Arc<PolicyHandle>,
}

impl Retention {
    pub fn new(erasure: Arc<Erasure>, policies: Arc<PolicyHandle>) -> Self {
        Self { erasure, policies }
    }

    /// The brand's months and the last run.
    pub fn status(&self) -> RetentionStatus {
        let p = self.policies.current().brand.retention.clone();
        let last = match self.erasure.stores().central().retention_run() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the last retention run");
                None
            }
        };
        RetentionStatus {
            messages_months: p.messages_months,
            responses_months: p.responses_months,
            audit_months: p.audit_months,
            last,
        }
    }

    /// One run over every registered tenant and the audit log; `by` is
    /// `schedule` or the user. A tenant that fails is named in the run's
    /// `failed` and the rest go on. Blocking.
    pub fn run(&self, by: &str) -> RetentionRun {
        let policy: Policy = self.policies.current().brand.retention.clone();
        let today = Date::today();
        let mut run = RetentionRun {
            by: by.to_string(),
            ..RetentionRun::default()
        };
        let messages_before = policy.messages_months.map(|m| months_before(today, m));
        let responses_before = policy.responses_months.map(|m| months_before(today, m));
        let central = self.erasure.stores().central();
        if messages_before.is_some() || responses_before.is_some() {
            let tenants = match central.tenants() {
                Ok(t) => t,
                Err(e) => {
                    run.failed.push(format!("tenant registry: {e}"));
                    Vec::new()
                }
            };
            let brand = self.policies.current().brand.clone();
            let settled = |m: &Message| settled(m, &brand, today);
            // Files (letter batches, call lists, the dealers' exports as
            // they came) hold messages and visits: the shorter months.
            let files_months = [policy.messages_months, policy.responses_months]
                .into_iter()
                .flatten()
                .min();
            let files_before = files_months.map(|m| {
                let cut = months_before_wall(Timestamp::wall(), m).millis().max(0);
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(cut as u64)
            });
            for t in tenants {
                if let Some(before) = files_before {
                    match self.erasure.expire_files(&t.id, before) {
                        Ok(n) => run.files += n,
                        Err(e) => run.failed.push(format!("{}: {e}", t.id)),
                    }
                }
                match self
                    .erasure
                    .expire(&t.id, messages_before, responses_before, &settled)
                {
                    Ok(x) => {
                        run.messages += x.messages;
                        run.spooled += x.spooled;
                        run.visits += x.visits;
                        run.responses += x.responses;
                        run.rewritten += u64::from(x.rewritten);
                    }
                    Err(e) => run.failed.push(format!("{}: {e}", t.id)),
                }
            }
        }
        if let Some(m) = policy.audit_months {
            let cut = months_before_wall(Timestamp::wall(), m);
            match central.prune_audit(cut) {
                Ok(n) => run.audit_lines = n,
                Err(e) => run.failed.push(format!("audit log: {e}")),
            }
            // Removed lines go from the central store's files too.
            if run.audit_lines > 0 {
                if let Err(e) = self.erasure.stores().rewrite_central() {
                    run.failed.push(format!("central store rewrite: {e}"));
                }
            }
        }
        run.at = Timestamp::wall();
        if let Err(e) = central.set_retention_run(&run) {
            tracing::error!(error = %e, "cannot store the retention run");
        }
        tracing::info!(by, "retention run: {}", run.summary());
        run
    }

    /// Runs [`Retention::run`] every day at [`SCHEDULE`] until shutdown,
    /// when the brand sets any retention.
    pub async fn run_daily(self: Arc<Self>, shutdown: CancellationToken) {
        let schedule: cron::Schedule = match SCHEDULE.parse() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "the retention schedule does not parse");
                return;
            }
        };
        loop {
            let now = touchpoint_common::clock::now_local();
            let Some(next) = schedule.after(&now).next() else {
                return;
            };
            // The clock runs at normal speed, so its distance is the sleep's.
            let wait = (next - now).to_std().unwrap_or_default();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            if !self.policies.current().brand.retention.is_set() {
                continue;
            }
            let me = self.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || me.run("schedule")).await {
                tracing::error!(error = %e, "retention run panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_before_is_calendar_months_clamped_to_the_month_end() {
        let d = |y, m, day| Date::from_ymd(y, m, day).expect("day");
        assert_eq!(months_before(d(2026, 12, 7), 24), d(2024, 12, 7));
        assert_eq!(months_before(d(2026, 3, 31), 1), d(2026, 2, 28));
    }
}
