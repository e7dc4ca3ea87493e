//! Live throttles: a global rate, a per-tenant daily limit and, per
//! destination domain, a concurrency and a rate. Limits come from the brand
//! policy in force and may change at any moment; counts live here, so a new
//! limit applies to the next message without losing what is in flight.

use std::collections::{HashMap, VecDeque};

use touchpoint_common::policy::Throttle;
use touchpoint_common::protocol::ThrottleStatus;
use touchpoint_common::TenantId;

/// Sends within the last minute, as timestamps (ms), oldest first.
#[derive(Default)]
struct Window(VecDeque<i64>);

impl Window {
    fn trim(&mut self, now: i64) {
        while self.0.front().is_some_and(|t| *t <= now - 60_000) {
            self.0.pop_front();
        }
    }

    fn count(&mut self, now: i64) -> u64 {
        self.trim(now);
        self.0.len() as u64
    }

    fn push(&mut self, now: i64) {
        self.0.push_back(now);
    }
}

#[derive(Default)]
struct Domain {
    in_flight: u32,
    window: Window,
}

/// Why a message may not go now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// The global rate is used up: nothing else goes this round.
    Global,
    /// The tenant's daily limit is reached: nothing else of this tenant today.
    TenantDay,
    /// This domain is busy: try other domains.
    Domain,
}

#[derive(Default)]
pub struct Throttles {
    limits: Throttle,
    global: Window,
    global_in_flight: u32,
    domains: HashMap<String, Domain>,
    /// Emails sent today per tenant, plus those in flight (counted when taken).
    tenant_day: HashMap<TenantId, u64>,
}

impl Throttles {
    /// Limits of the policy in force; called on every policy change.
    pub fn set_limits(&mut self, limits: &Throttle) {
        if &self.limits != limits {
            self.limits = limits.clone();
        }
    }

    /// A new day: the daily counts restart from what the store says.
    pub fn reset_days(&mut self) {
        self.tenant_day.clear();
    }

    /// Seeds a tenant's count for today (sent so far, from the store).
    pub fn seed_tenant(&mut self, tenant: &TenantId, sent_today: u64) {
        self.tenant_day.entry(tenant.clone()).or_insert(sent_today);
    }

    /// Whether an email to `domain` would wait for the domain's limits
    /// now (what [`Throttles::take`] would say of the domain alone; takes
    /// nothing): a claim skips such a message before checking the rest.
    pub fn domain_waits(&mut self, domain: &str, now: i64) -> bool {
        let limit = self.limits.domain(domain);
        let key = self.domain_key(domain);
        self.domains.get_mut(&key).is_some_and(|d| {
            d.in_flight >= limit.concurrency
                || (limit.per_minute > 0 && d.window.count(now) >= u64::from(limit.per_minute))
        })
    }

    /// Takes a slot for one email to `domain` of `tenant`, or says why not.
    pub fn take(&mut self, tenant: &TenantId, domain: &str, now: i64) -> Result<(), Wait> {
        let l = &self.limits;
        if l.global_per_minute > 0 && self.global.count(now) >= u64::from(l.global_per_minute) {
            return Err(Wait::Global);
        }
        let sent = self.tenant_day.get(tenant).copied().unwrap_or(0);
        if l.tenant_per_day > 0 && sent >= u64::from(l.tenant_per_day) {
            return Err(Wait::TenantDay);
        }
        let limit = l.domain(domain);
        let key = self.domain_key(domain);
        let d = self.domains.entry(key).or_default();
        if d.in_flight >= limit.concurrency
            || (limit.per_minute > 0 && d.window.count(now) >= u64::from(limit.per_minute))
        {
            return Err(Wait::Domain);
        }
        d.in_flight += 1;
        d.window.push(now);
        self.global.push(now);
        self.global_in_flight += 1;
        *self.tenant_day.entry(tenant.clone()).or_insert(0) += 1;
        Ok(())
    }

    /// Gives a slot back: the email was sent, or `sent` is false and it
    /// does not count towards the tenant's day (deferred, failed, unreachable).
    pub fn done(&mut self, tenant: &TenantId, domain: &str, sent: bool) {
        let key = self.domain_key(domain);
        if let Some(d) = self.domains.get_mut(&key) {
            d.in_flight = d.in_flight.saturating_sub(1);
        }
        self.global_in_flight = self.global_in_flight.saturating_sub(1);
        if !sent {
            if let Some(n) = self.tenant_day.get_mut(tenant) {
                *n = n.saturating_sub(1);
            }
        }
    }

    /// Domains without limits of their own share the "default" bucket's
    /// limits but are counted each on their own.
    fn domain_key(&self, domain: &str) -> String {
        domain.to_ascii_lowercase()
    }

    pub fn in_flight(&self) -> u32 {
        self.global_in_flight
    }

    pub fn sent_last_minute(&mut self, now: i64) -> u64 {
        self.global.count(now)
    }

    /// Every throttle with its fill: global, each configured domain and every
    /// domain with traffic in the last minute, each tenant with a daily limit.
    pub fn status(&mut self, now: i64) -> Vec<ThrottleStatus> {
        // No limit: never saturated.
        fn pct(used: u64, limit: u64) -> u32 {
            used.saturating_mul(100)
                .checked_div(limit)
                .unwrap_or(0)
                .min(100) as u32
        }
        let l = self.limits.clone();
        let mut out = Vec::new();
        let used = self.global.count(now);
        out.push(ThrottleStatus {
            name: "global".into(),
            in_flight: self.global_in_flight,
            concurrency: 0,
            used,
            limit: u64::from(l.global_per_minute),
            per: "minute".into(),
            saturation: pct(used, u64::from(l.global_per_minute)),
        });
        // Domains without traffic are forgotten (one per company customer
        // adds up); configured ones are always shown.
        self.domains
            .retain(|_, s| s.in_flight > 0 || s.window.count(now) > 0);
        let mut names: std::collections::BTreeSet<String> = l
            .domains
            .keys()
            .filter(|d| *d != "default")
            .cloned()
            .collect();
        names.extend(self.domains.keys().cloned());
        for d in names {
            let limit = l.domain(&d);
            let s = self.domains.entry(d.clone()).or_default();
            let used = s.window.count(now);
            out.push(ThrottleStatus {
                name: format!("domain {d}"),
                in_flight: s.in_flight,
                concurrency: limit.concurrency,
                used,
                limit: u64::from(limit.per_minute),
                per: "minute".into(),
                saturation: pct(used, u64::from(limit.per_minute))
                    .max(pct(u64::from(s.in_flight), u64::from(limit.concurrency))),
            });
        }
        if l.tenant_per_day > 0 {
            let mut tenants: Vec<_> = self.tenant_day.iter().collect();
            tenants.sort();
            for (t, n) in tenants {
                out.push(ThrottleStatus {
                    name: format!("tenant {t}"),
                    in_flight: 0,
                    concurrency: 0,
                    used: *n,
                    limit: u64::from(l.tenant_per_day),
                    per: "day".into(),
                    saturation: pct(*n, u64::from(l.tenant_per_day)),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
