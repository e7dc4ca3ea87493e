//! Learning (M5, M9): the lead time and the send slot of each service with
//! `learn = true`, per channel, from the pooled experience of every dealer.
//!
//! **Data.** Per dealer, from its outbox and attribution credits
//! (`TenantStore::result_rows`): per (service, channel, lead arm) and per
//! (service, channel, slot) the messages sent and those answered by a
//! response (one that answers its occasion, as a credit does, whichever
//! message the attribution pass credits it to: `attribution::Answers`)
//! after its send day and within the service's learning window (`learn_window_days`,
//! by default the attribution window: `Service::learn_window`), counting
//! only messages whose learning window has closed; a message an operator
//! sent now (`send-now`) counts in no arm, its day and time being nobody's
//! plan, nor does a message planned on the day it went out at a lead
//! shorter than the grid's longest (its occasion was found too late for
//! the lead meant for it: the first plan's backlog; `data::collect`), nor
//! a control member drawn on a lead's send day for that lead. A message's lead arm is its lead (occasion due − send day)
//! snapped to the policy's grid (`Service::lead_grid`). The baseline is
//! the service's control group, **per arm**: the learning window starts
//! on the send day, so each lead gives a control member a
//! different window; every control member is evaluated for the window each
//! lead would have given it, against the days of the responses that answer
//! its occasion (`attribution::answers_of`, the same table and
//! vehicle match as a credit).
//!
//! **Pooling.** A cell (service, channel, arm) is pooled across dealers
//! only if it passes the brand's `[privacy]` rule unchanged
//! (`common::report::pool::primary`: at least `min_dealers` dealers, none
//! above `max_dealer_share`); a cell that fails adds nothing, so **no
//! learned value is derived from fewer than `min_dealers` dealers**.
//! The lead arms count the same messages as the slot arms (a slot
//! partition pools every service learning on the channel whose own
//! messages pass the rule together: [`pool_slots`]), so a partition's
//! total is the others' (summed over those services): within each, the
//! failing cells together must pass the rule too, else the smallest
//! passing ones are held back with them (complementary suppression,
//! `common::report::pool::complement`, as the pooled report does). Two
//! leads' baselines differ by the control members of a band of due days:
//! that band must pass as well ([`model::pool_baselines`]). Totals shown
//! (`sent`, the dealers) count only cells in use; no count of dealers
//! below the minimum is shown. An arm whose control baseline is not in use
//! is left out of the choice while other leads have one.
//!
//! **Method.** Each arm's response rate has a Beta–Binomial posterior
//! (conjugate; Gelman et al., *Bayesian Data Analysis*, ch. 2) whose prior
//! is centred on the pooled rate of the policy's own arm
//! ([`model::PRIOR_STRENGTH`] pseudo-messages), so an arm must beat the
//! policy with its own data. The value in force maximises incremental
//! response per cost, (posterior mean − baseline) × value − cost (the
//! value of a response is the service's policy `value`, the cost the
//! channel's). For the lead, the arms lend each other strength: the
//! incremental responses are smoothed over the lead grid
//! ([`model::smooth`]: a Whittaker–Henderson smoother, i.e. a Gaussian
//! second-order random-walk prior over the grid, Eilers 2003; Rue & Held
//! 2005), counting only arms whose cells pass the rule. The lead in force
//! stays until another's smoothed incremental response beats it by
//! [`model::EVIDENCE_Z`] standard deviations of the difference (smoothed
//! posterior and control baseline): the best of many thin arms is the
//! luckiest, so a thin arm does not replace the lead on a good week, and a
//! learned lead does not flap between two about as good (hysteresis: its
//! version changes only then). While no arm passes the rule, or the
//! policy's own arm has none to compare with, the policy's value stays
//! (the fallback). Exploration is Thompson sampling (Thompson 1933; Chapelle &
//! Li 2011, "An Empirical Evaluation of Thompson Sampling"; Russo et al.
//! 2018, "A Tutorial on Thompson Sampling"), less the value in force:
//! `explore_percent` of the occasions take the best of one draw from the
//! posterior over the arms **other than the one in force**, which has
//! every message that does not explore (in the spirit of top-two Thompson
//! sampling, the value in force as the leader; Russo 2020, "Simple Bayesian
//! algorithms for best-arm identification"): exploration goes to the
//! challengers the next decision needs data on. A lead's draw is one of the whole smoothed curve
//! ([`model::explore_lead`]), so a lead the neighbours already rule out is
//! hardly drawn, however thin its own cell; a weekday's or an hour's is
//! one from each arm's Beta posterior ([`model::explore_slot`]).
//! Whether an occasion explores, and whether its lead or its slot (never
//! both: the other keeps the value in force, so a challenger differs from
//! the messages in force in the one thing it tries; the lead alone while
//! no slot is in force, the window's spread giving every slot arm data),
//! is a draw from a
//! stream seeded by its occasion key alone; what it explores is drawn from
//! a stream seeded by the key and its service's own version
//! ([`model::Stream`]), so a dry run and a commit agree, a re-plan is
//! idempotent and another service's change draws nothing anew.
//! Control-group members are never explored on. A slot is learned as the best weekday (arms with the hour
//! [`ANY_HOUR`], every message of that weekday) and, for email, the best
//! hour (arms with the weekday [`ANY_WEEKDAY`], every email of that hour):
//! a main-effects model, because a weekday × hour cell would hold a
//! fiftieth of the messages. The slot arms pool the messages of every
//! service that learns on the channel, each cell's responses
//! standardised to the service's own rate and its messages' leads
//! ([`pool_slots`]): a slot's effect is the channel's audience's, one
//! service's cells are too thin for it to show, and a slot must not look
//! good for the leads its messages went at. A letter's or a call's slot is its weekday
//! only (it goes with its day's batch or call list, at no hour the planner
//! picks). Each is learned from at least two arms that pass, the best
//! beating their pooled rate by [`SLOT_MARGIN`] and the rest of its
//! partition by the evidence for the arms compared, once that comparison's
//! standard deviation is at most [`SLOT_MARGIN`]; a weekday or an hour in
//! force stays until the best beats it by [`model::EVIDENCE_Z`] standard
//! deviations of the difference (hysteresis, as for the lead). An
//! email's hour is the hour planned for it when it went out that day (the
//! arm chosen; dispatch may release it later that day). An occasion that
//! explores its slot draws a weekday and an hour. A value in force that
//! is off the service's current grid (the policy changed) gives way to the
//! policy's value.
//!
//! **When.** [`Learning::refresh`] runs before the scheduled run and a
//! plan request that commits today; a dry run, a plan for another day and
//! a read of what is learned use what is in force. It is skipped when nothing it reads has
//! changed: the signature of every tenant's data version (imports of
//! visits and responses, which change credits), the policy and the day
//! (a day on, more windows have closed).
//!
//! **Versions.** The state lives in the central store. A change of a
//! value in force raises the version and is written to the audit log,
//! like a policy change; `freeze` keeps the values in force and stops
//! updating, `reset` goes back to the policy and learns again from the
//! data sent after the reset (both admin requests, audited by the socket).

mod data;
mod model;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};

use touchpoint_common::domain::{Channel, Timestamp};
use touchpoint_common::learning::{
    percent, Arm, ArmFigures, Choice, LearnedService, LearnedState, Source, ANY_HOUR, ANY_WEEKDAY,
};
use touchpoint_common::policy::{BrandPolicy, PolicySet, Service, Weekday};
use touchpoint_common::protocol::{AuditEntry, AuditOutcome, NO_UID};
use touchpoint_common::Date;

pub use data::{collect, DealerData, Grid};
pub use model::Counts;
use model::{best, pool_baselines, pool_partition, prior, Stream};

use crate::store::{StoreError, Stores};

/// The least incremental response (per message) at the policy's lead
/// that a value factor is taken over: half a percentage point.
pub const MIN_POLICY_INCREMENTAL: f64 = 0.005;

/// The bounds of a value factor: learning may weigh an offer at a quarter
/// of the policy's value up to four times it, no further.
pub const VALUE_FACTOR_BOUNDS: (f64, f64) = (0.25, 4.0);

/// How far back learning reads a dealer's messages.
pub const HISTORY_DAYS: i32 = 2 * 366;

#[derive(Debug, thiserror::Error)]
pub enum LearningError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
}

/// The grids of the learning services.
pub fn grids(brand: &BrandPolicy, reset_on: &BTreeMap<String, Date>) -> BTreeMap<String, Grid> {
    brand
        .services
        .iter()
        .filter(|(_, s)| s.learn)
        .map(|(id, s)| {
            (id.clone(), {
                let [days, hours] = slots(brand, s, Channel::Email);
                Grid {
                    leads: s.lead_grid(),
                    step: s.lead_bounds().2,
                    window_days: s.learn_window(),
                    since: reset_on.get(id).copied(),
                    days: days.into_iter().map(|(wd, _)| wd).collect(),
                    hours: hours.into_iter().map(|(_, h)| h).collect(),
                }
            })
        })
        .collect()
}

/// The slot arms of a service's window on `channel`, as two partitions
/// of the same messages: each weekday it sends on that is no quiet day
/// (the hour [`ANY_HOUR`]), and for email each hour the window touches
/// (the weekday [`ANY_WEEKDAY`]; a letter's or a call's hour is nobody's
/// choice).
fn slots(brand: &BrandPolicy, s: &Service, channel: Channel) -> [Vec<(u8, u8)>; 2] {
    let w = &s.send_window;
    let days = Weekday::ALL
        .into_iter()
        .filter(|wd| w.weekdays.contains(wd) && !brand.calendar.quiet_weekdays.contains(wd))
        .map(|wd| (wd as u8, ANY_HOUR))
        .collect();
    let hours = if channel == Channel::Email {
        let (from, to) = (w.from.minutes() / 60, w.to.minutes().saturating_sub(1) / 60);
        (from..=to).map(|h| (ANY_WEEKDAY, h as u8)).collect()
    } else {
        Vec::new()
    };
    [days, hours]
}

/// Whether a service learns on `channel`: it learns and may send on it.
fn learns_on(s: &Service, channel: Channel) -> bool {
    s.learn
        && s.channels.contains(&channel)
        && !s.forbidden_channels.contains(&channel)
        && s.mandatory_channel.is_none_or(|m| m == channel)
}

/// The slot arms of service `id` on `channel` for its partition `part`
/// (0: weekdays, 1: hours; `keys` are the service's own arms), **pooled
/// over every service that learns on the channel**: a weekday's or an
/// hour's effect is taken to be the channel's audience's (when its
/// customers read their email, when a letter lands), not one reminder's,
/// and one service's cell holds too few messages for an effect of a
/// point or two to show (EVALUATION.md, session 21).
///
/// The pooled partition is the same for every service of the channel:
/// the union of their arms, and one rest cell with every message in none
/// of them, each cell summed over the services per dealer and then put to
/// the privacy rule as a partition (complement check included), so every
/// service's view shows the same cells held back. A service's arms are
/// the pooled cells of its own keys.
///
/// Services answer at different rates (their organic visits, their
/// value to the customer), and a window may hold an hour only one of them
/// sends in: the raw pooled rate of such an hour would be that service's
/// level, not the hour's. Nor do a slot's messages have the same leads
/// in every slot (those that do not explore go at the lead in force and
/// fill the window from its start), and a lead's window holds more or
/// fewer organic visits. So each cell is **indirectly standardised**:
/// its responses against those expected at each message's service and
/// lead rate (the lead arm's pooled rate where it passes the rule, else
/// the service's over the passing cells; observed / expected, the
/// standardised ratio of epidemiology; Breslow & Day 1987, ch. 2), times
/// the rate of service `id` (the pooled one's if `id` has no messages
/// pooled). The arm shows the pooled messages and those standardised
/// responses. With other services on the channel, a service whose own
/// messages of the partition do not pass the rule together is left out
/// of the pool (its total would be the difference of shown totals).
fn pool_slots(
    brand: &BrandPolicy,
    dealers: &[DealerData],
    id: &str,
    channel: Channel,
    part: usize,
    keys: &[(u8, u8)],
) -> Vec<Option<(Counts, u32)>> {
    let rule = brand.privacy.rule();
    let family: Vec<(&String, &Service)> = brand
        .services
        .iter()
        .filter(|(_, f)| learns_on(f, channel))
        .collect();
    let mut union: Vec<(u8, u8)> = family
        .iter()
        .flat_map(|(_, f)| slots(brand, f, channel)[part].clone())
        .chain(keys.iter().copied())
        .collect();
    union.sort_unstable();
    union.dedup();
    let rest = [data::REST_OF_DAYS, data::REST_OF_HOURS][part];
    // Per service of the family: its cells of the union's arms and its
    // rest cell, per dealer.
    let per: Vec<(&str, Vec<BTreeMap<u32, Counts>>)> = family
        .iter()
        .map(|(f, _)| {
            let cells = union
                .iter()
                .map(|&(wd, h)| Arm::Slot(wd, h))
                .chain([rest])
                .map(|arm| cell_of(dealers, &((*f).clone(), channel, arm)))
                .collect();
            (f.as_str(), cells)
        })
        .collect();
    // With other services on the channel, a service is pooled only if its
    // own messages of the partition pass the rule together: the pooled
    // partition's total less the other services' totals (each shown by its
    // lead arms) would be its total, and its own rate would be the ratio of
    // two services' views. (Alone, its total is its lead arms' anyway.)
    let per: Vec<(&str, Vec<BTreeMap<u32, Counts>>)> = if per.len() > 1 {
        per.into_iter()
            .filter(|(_, cells)| {
                let mut total: BTreeMap<u32, Counts> = BTreeMap::new();
                for cell in cells {
                    for (d, c) in cell {
                        total.entry(*d).or_default().add(c);
                    }
                }
                model::pool_cell(&rule, &total).is_some()
            })
            .collect()
    } else {
        per
    };
    let mut merged: Vec<BTreeMap<u32, Counts>> = vec![BTreeMap::new(); union.len() + 1];
    for (_, cells) in &per {
        for (m, cell) in merged.iter_mut().zip(cells) {
            for (d, c) in cell {
                m.entry(*d).or_default().add(c);
            }
        }
    }
    // The rest cell is pooled with the arms (the complement check), never
    // one of them.
    let mut pooled = pool_partition(&rule, &merged);
    pooled.pop();
    let total = |cell: &BTreeMap<u32, Counts>| {
        let mut t = Counts::default();
        for c in cell.values() {
            t.add(c);
        }
        t
    };
    // Each service's rate over the passing cells.
    let rates: Vec<(&str, Option<f64>)> = per
        .iter()
        .map(|(f, cells)| {
            let mut t = Counts::default();
            for (cell, p) in cells.iter().zip(&pooled) {
                if p.is_some() {
                    t.add(&total(cell));
                }
            }
            (*f, rate(&t))
        })
        .collect();
    let mut all = Counts::default();
    for (c, _) in pooled.iter().flatten() {
        all.add(c);
    }
    let target = rates
        .iter()
        .find(|(f, _)| *f == id)
        .and_then(|(_, r)| *r)
        .or_else(|| rate(&all));
    // Each service's rate per lead: its lead arm's pooled rate where that
    // arm passes the rule (it is shown), else its rate above. A message's
    // expected response is its lead's rate: the lead decides how many
    // organic visits its window holds and where it is on the response
    // curve, and the leads of a slot's messages are not the same in every
    // slot (the messages that do not explore go at the lead in force and
    // fill the window from its start; those that explore draw their lead
    // and their slot): a slot holding more messages of a good lead would
    // look good for it (EVALUATION.md, session 23).
    let lead_rates: Vec<BTreeMap<u32, f64>> = per
        .iter()
        .map(|(f, _)| {
            let Some(s) = brand.services.get(*f) else {
                return BTreeMap::new();
            };
            let grid = s.lead_grid();
            let cells: Vec<BTreeMap<u32, Counts>> = grid
                .iter()
                .map(|&l| cell_of(dealers, &((*f).to_string(), channel, Arm::Lead(l))))
                .collect();
            grid.iter()
                .zip(pool_partition(&rule, &cells))
                .filter_map(|(l, p)| Some((*l, rate(&p?.0)?)))
                .collect()
        })
        .collect();
    let cell_arms: Vec<Arm> = union
        .iter()
        .map(|&(wd, h)| Arm::Slot(wd, h))
        .chain([rest])
        .collect();
    // The responses a cell's messages of service `f` would get at their
    // leads' rates (those whose lead has no rate at `fallback`).
    let expected_of = |f: &str,
                       i: usize,
                       cell: &BTreeMap<u32, Counts>,
                       fallback: f64,
                       lr: &BTreeMap<u32, f64>| {
        let (lo, hi) = (
            (f.to_string(), channel, cell_arms[i], 0),
            (f.to_string(), channel, cell_arms[i], u32::MAX),
        );
        let mut counted = 0u64;
        let mut expected = 0.0;
        for d in dealers {
            for ((_, _, _, lead), n) in d.slot_leads.range(&lo..=&hi) {
                counted += n;
                expected += *n as f64 * lr.get(lead).copied().unwrap_or(fallback);
            }
        }
        expected + total(cell).sent.saturating_sub(counted) as f64 * fallback
    };
    keys.iter()
        .map(|k| {
            let i = union.iter().position(|u| u == k)?;
            let (c, n) = pooled[i]?;
            let expected: f64 = per
                .iter()
                .zip(&rates)
                .zip(&lead_rates)
                .map(|(((f, cells), (_, r)), lr)| {
                    expected_of(f, i, &cells[i], r.unwrap_or(0.0), lr)
                })
                .sum();
            let responses = match target {
                Some(t) if expected > 0.0 => (t * c.responses as f64 / expected * c.sent as f64)
                    .round()
                    .min(c.sent as f64) as u64,
                _ => c.responses,
            };
            Some((Counts { responses, ..c }, n))
        })
        .collect()
}

fn cell_of(dealers: &[DealerData], key: &(String, Channel, Arm)) -> BTreeMap<u32, Counts> {
    (0u32..)
        .zip(dealers)
        .filter_map(|(i, d)| d.cells.get(key).map(|c| (i, *c)))
        .collect()
}

fn rate(c: &Counts) -> Option<f64> {
    (c.sent > 0).then(|| c.responses as f64 / c.sent as f64)
}

/// Computes what is learned from every dealer's data. Pure: the
/// hand-computed cases in the tests drive it. `prev` gives the frozen
/// services (kept as they are) and the versions; the answer's version is
/// `prev`'s, raised by one when a value in force changed.
pub fn compute(brand: &BrandPolicy, dealers: &[DealerData], prev: &LearnedState) -> LearnedState {
    let rule = brand.privacy.rule();
    let next_version = prev.version + 1;
    let mut services = Vec::new();
    for (id, s) in brand.services.iter().filter(|(_, s)| s.learn) {
        for &channel in s.channels.iter().filter(|c| learns_on(s, **c)) {
            let old = prev.get(id, channel);
            if prev.frozen.contains(id) {
                let mut kept = old
                    .cloned()
                    .unwrap_or_else(|| thin(id, s, channel, rule.min_dealers, prev.version));
                kept.frozen = true;
                kept.lead.source = Source::Frozen;
                if kept.slot.value.is_some() {
                    kept.slot.source = Source::Frozen;
                }
                services.push(kept);
                continue;
            }
            let value = s.value.cents();
            let cost = brand.channels.get(channel).cost.cents();
            // Leads: one partition (each message in one lead arm at most).
            let grid = s.lead_grid();
            let lead_cells: Vec<BTreeMap<u32, Counts>> = grid
                .iter()
                .map(|&l| cell_of(dealers, &(id.clone(), channel, Arm::Lead(l))))
                .collect();
            let pooled = pool_partition(&rule, &lead_cells);
            let mut contributing: BTreeSet<u32> = BTreeSet::new();
            let mut passing: BTreeSet<u32> = BTreeSet::new();
            let mut sum = Counts::default();
            for (p, cell) in pooled.iter().zip(&lead_cells) {
                contributing.extend(cell.keys());
                if let Some((c, _)) = p {
                    sum.add(c);
                    passing.extend(cell.keys());
                }
            }
            let policy_rate = grid
                .iter()
                .zip(&pooled)
                .find(|(l, _)| **l == s.lead_days)
                .and_then(|(_, p)| p.as_ref())
                .and_then(|(c, _)| rate(c));
            let lead_prior = prior(policy_rate.or_else(|| rate(&sum)));
            // The control baselines per lead, pooled as a set of their own.
            let base_cells: Vec<BTreeMap<u32, Counts>> = grid
                .iter()
                .map(|l| {
                    (0u32..)
                        .zip(dealers)
                        .filter_map(|(i, d)| d.baseline.get(&(id.clone(), *l)).map(|c| (i, *c)))
                        .collect()
                })
                .collect();
            let base_pooled = pool_baselines(&rule, &base_cells);
            let base_of = |b: &Option<(Counts, u32)>| {
                b.map(|(c, _)| c.control_responses as f64 / c.control as f64)
            };
            // Each lead's prior is centred on the policy's lift over that
            // lead's own baseline: without data every lead is worth what
            // the policy's lead is, so nothing moves without evidence. (A
            // prior on the policy's raw rate would flatter a lead whose
            // window holds fewer organic visits: with a low baseline, its
            // unanswered messages would still look incremental.)
            let policy_lift = grid
                .iter()
                .zip(&base_pooled)
                .find(|(l, _)| **l == s.lead_days)
                .and_then(|(_, b)| base_of(b))
                .zip(policy_rate)
                .map(|(base, rate)| rate - base);
            let mut baselines = BTreeMap::new();
            let lead_arms: Vec<ArmFigures> = grid
                .iter()
                .zip(&pooled)
                .zip(&base_pooled)
                .map(|((l, p), b)| {
                    let base = base_of(b).unwrap_or(0.0);
                    baselines.insert(*l, base);
                    let arm_prior = match (policy_lift, b) {
                        (Some(lift), Some(_)) => prior(Some(base + lift)),
                        _ => lead_prior,
                    };
                    let mut a = model::arm(Arm::Lead(*l), *p, arm_prior, base, value, cost);
                    if let Some((c, _)) = b {
                        a.control = c.control;
                        a.control_responses = c.control_responses;
                    }
                    a
                })
                .collect();
            // An arm's incremental response needs its own baseline.
            let is_usable = model::usable_lead(&lead_arms);
            let usable: Vec<ArmFigures> =
                lead_arms.iter().filter(|a| is_usable(a)).cloned().collect();
            let any = !usable.is_empty();
            // Hysteresis: the value in force (if it is still learned and
            // on the grid) stays until another lead beats it by the
            // evidence margin.
            let in_force = match old {
                Some(o) if o.lead.source == Source::Learned => Arm::Lead(o.lead.value),
                _ => Arm::Lead(s.lead_days),
            };
            let chosen = match best(&lead_arms, &is_usable, in_force, Arm::Lead(s.lead_days)) {
                Arm::Lead(l) if any => l,
                _ => s.lead_days,
            };
            // Learned only where the policy's own arm was there to compare
            // with (`best` keeps the policy's value otherwise).
            let compared = usable.iter().any(|a| a.arm == Arm::Lead(s.lead_days));
            let lead_source = if any && compared {
                Source::Learned
            } else {
                Source::Policy
            };
            let incremental = any.then(|| {
                usable
                    .iter()
                    .find(|a| a.arm == Arm::Lead(chosen))
                    .map(|a| a.mean() - a.baseline)
                    .unwrap_or(0.0)
            });
            // Slots: an email's weekday and hour; a letter's or a call's
            // weekday only (it goes with its day's batch or call list, at
            // no hour the planner picks).
            let base = baselines.get(&chosen).copied().unwrap_or(0.0);
            let mut slot_arms: Vec<ArmFigures> = Vec::new();
            let mut winners = Vec::new();
            // The weekday and the hour learned before, each its
            // partition's arm.
            let held_slot = old
                .filter(|o| o.slot.source == Source::Learned)
                .and_then(|o| o.slot.value);
            let held = [
                held_slot
                    .filter(|(wd, _)| *wd != ANY_WEEKDAY)
                    .map(|(wd, _)| Arm::Slot(wd, ANY_HOUR)),
                held_slot
                    .filter(|(_, h)| *h != ANY_HOUR)
                    .map(|(_, h)| Arm::Slot(ANY_WEEKDAY, h)),
            ];
            for ((keys, part), in_force) in slots(brand, s, channel).into_iter().zip(0..).zip(held)
            {
                if keys.is_empty() {
                    winners.push(None);
                    continue;
                }
                let pooled = pool_slots(brand, dealers, id, channel, part, &keys);
                let mut sum = Counts::default();
                for (c, _) in pooled.iter().flatten() {
                    sum.add(c);
                }
                let slot_prior = prior(rate(&sum));
                let arms: Vec<ArmFigures> = keys
                    .iter()
                    .zip(&pooled)
                    .map(|((wd, h), p)| {
                        model::arm(Arm::Slot(*wd, *h), *p, slot_prior, base, value, cost)
                    })
                    .collect();
                winners.push(slot_winner(&arms, in_force));
                slot_arms.extend(arms);
            }
            // The best weekday and the best hour make the slot; either
            // alone is a slot too (a weekday only, an hour only).
            let day = winners.first().copied().flatten().map(|(wd, _)| wd);
            let hour = winners.get(1).copied().flatten().map(|(_, h)| h);
            let slot_value = match (day, hour) {
                (None, None) => None,
                (d, h) => Some((d.unwrap_or(ANY_WEEKDAY), h.unwrap_or(ANY_HOUR))),
            };
            let slot_source = if slot_value.is_some() {
                Source::Learned
            } else {
                Source::Policy
            };
            let lead_version = match old {
                Some(o) if o.lead.value == chosen && o.lead.source == lead_source => o.lead.version,
                _ => next_version,
            };
            let slot_version = match old {
                Some(o) if o.slot.value == slot_value && o.slot.source == slot_source => {
                    o.slot.version
                }
                _ => next_version,
            };
            services.push(LearnedService {
                service: id.clone(),
                channel,
                policy_lead: s.lead_days,
                lead: Choice {
                    value: chosen,
                    source: lead_source,
                    arms: lead_arms,
                    version: lead_version,
                },
                slot: Choice {
                    value: slot_value,
                    source: slot_source,
                    arms: slot_arms,
                    version: slot_version,
                },
                // No count of fewer dealers than the rule's minimum: a
                // lone dealer would read "1 dealer", itself.
                dealers: if any {
                    passing.len() as u32
                } else if contributing.len() as u32 >= rule.min_dealers {
                    contributing.len() as u32
                } else {
                    0
                },
                min_dealers: rule.min_dealers,
                sent: sum.sent,
                explore_percent: s.explore_percent,
                incremental,
                value_cents: value,
                frozen: false,
            });
        }
    }
    let changed = services
        .iter()
        .any(|s| s.lead.version == next_version || s.slot.version == next_version)
        || services.len() != prev.services.len();
    LearnedState {
        version: if changed { next_version } else { prev.version },
        services,
        frozen: prev.frozen.clone(),
        reset_on: prev.reset_on.clone(),
        signature: prev.signature,
        computed_at: Some(Timestamp::now()),
    }
}

/// How much better (posterior mean, response per message) the best slot
/// must be than its partition's messages on the whole (what the policy's
/// window, spreading them, gets) to be learned: one percentage point.
/// Slots share one baseline, so this is also the margin in incremental
/// response.
pub const SLOT_MARGIN: f64 = 0.01;

/// The slot learned, if any: among at least two slot arms that pass the
/// rule, the best by objective, when its posterior mean beats the pooled
/// rate of the passing arms by [`SLOT_MARGIN`] at least (and, the first
/// time, the rest of them by the evidence, on data that can tell
/// [`SLOT_MARGIN`] apart: below). (Against the
/// runner-up instead, a smooth hour curve would never give a winner: the
/// neighbouring hour is nearly as good, and either is better than the
/// window spread out.) Hysteresis: the arm `in_force` (the weekday or the
/// hour learned before) stays while it passes and the best does not beat
/// it by [`model::EVIDENCE_Z`] standard deviations of the difference of
/// their posteriors (nor by less than [`SLOT_MARGIN`]), as a lead in
/// force does: a point alone is within the noise of a slot's cell (an
/// hour holds a tenth of the emails), so two hours about as good took
/// turns, each turn a new version and new exploration draws
/// (EVALUATION.md, session 19: 2–10 changes per cell in a season).
fn slot_winner(arms: &[ArmFigures], in_force: Option<Arm>) -> Option<(u8, u8)> {
    let mut passing: Vec<&ArmFigures> = arms.iter().filter(|a| a.passes).collect();
    if passing.len() < 2 {
        return None;
    }
    let (sent, responses) = passing
        .iter()
        .fold((0u64, 0u64), |(n, r), a| (n + a.sent, r + a.responses));
    if sent == 0 {
        return None;
    }
    let pooled = responses as f64 / sent as f64;
    passing.sort_by(|a, b| b.objective.total_cmp(&a.objective));
    let top = passing[0];
    if let Some(h) = passing.iter().find(|a| Some(a.arm) == in_force) {
        if let (Arm::Slot(wd, hour), Arm::Slot(top_wd, top_hour)) = (h.arm, top.arm) {
            let sd = (model::posterior_variance(top) + model::posterior_variance(h)).sqrt();
            if top.mean() - h.mean() <= SLOT_MARGIN.max(model::EVIDENCE_Z * sd) {
                return Some((wd, hour));
            }
            // It beat the slot in force by the evidence margin: it takes
            // its place (were it then held to the first slot's test, the
            // slot in force would give way to the window, and come back).
            return Some((top_wd, top_hour));
        }
    }
    // The first slot (or one after the slot in force stopped passing):
    // the best must beat the rest of its partition by a point and by the
    // evidence for the family of arms compared, not a point alone: taken
    // on one lucky week's point, it got every message that did not explore
    // and a better slot had to beat it on exploration draws alone
    // (EVALUATION.md, session 20: no slot in force at week 26 was the
    // truth's).
    let Arm::Slot(wd, h) = top.arm else {
        return None;
    };
    let (rest_sent, rest_responses) = (sent - top.sent, responses - top.responses);
    if rest_sent == 0 {
        return None;
    }
    let rest = rest_responses as f64 / rest_sent as f64;
    let sd = (model::posterior_variance(top) + rest * (1.0 - rest) / rest_sent as f64).sqrt();
    // Nor before the comparison can tell a point apart: the test is run
    // again at every refresh while the arms are thin, and a slot once in
    // force gets every message that does not explore, so a lucky one is
    // hard to undo (EVALUATION.md, session 27: Wednesday learned in week 6
    // on fewer than 280 emails a weekday, about 2 standard deviations up,
    // the truth's second worst, and kept for the season).
    if sd > SLOT_MARGIN {
        return None;
    }
    let margin = SLOT_MARGIN.max(model::first_slot_z(passing.len()) * sd);
    (top.mean() - rest >= margin && top.mean() - pooled >= SLOT_MARGIN).then_some((wd, h))
}

/// A service and channel with nothing learned: the policy's values.
fn thin(id: &str, s: &Service, channel: Channel, min_dealers: u32, version: u64) -> LearnedService {
    LearnedService {
        service: id.to_string(),
        channel,
        policy_lead: s.lead_days,
        lead: Choice {
            value: s.lead_days,
            source: Source::Policy,
            arms: Vec::new(),
            version,
        },
        slot: Choice {
            value: None,
            source: Source::Policy,
            arms: Vec::new(),
            version,
        },
        dealers: 0,
        min_dealers,
        sent: 0,
        explore_percent: s.explore_percent,
        incremental: None,
        value_cents: s.value.cents(),
        frozen: false,
    }
}

/// The lines the audit log gets for what changed between two states.
fn changes(prev: &LearnedState, next: &LearnedState) -> Vec<String> {
    let mut out = Vec::new();
    for s in &next.services {
        let old = prev.get(&s.service, s.channel);
        let lead_changed =
            old.is_none_or(|o| o.lead.value != s.lead.value || o.lead.source != s.lead.source);
        let slot_changed =
            old.is_none_or(|o| o.slot.value != s.slot.value || o.slot.source != s.slot.source);
        if lead_changed || slot_changed {
            out.push(format!(
                "version {}: {} {}: {}; {}",
                next.version,
                s.service,
                s.channel,
                lead_text(s),
                slot_text(s)
            ));
        }
    }
    out
}

/// The *why* line of a service's lead time in force.
pub fn lead_text(s: &LearnedService) -> String {
    s.lead_text()
}

/// The words for a service's send slot in force.
pub fn slot_text(s: &LearnedService) -> String {
    s.slot_text()
}

/// An occasion that explores: what it explores and the stream it draws
/// from.
struct Exploring {
    turn: Turn,
    stream: Stream,
}

/// What an exploring occasion explores: its lead or its send slot, never
/// both; the other is the value in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Turn {
    Lead,
    Slot,
}

/// What the planner uses: the learned state in force, read-only.
#[derive(Clone, Debug, Default)]
pub struct Learned {
    state: LearnedState,
}

/// A lead time for one occasion and the *why* line that says where it
/// came from (none when the service does not learn).
#[derive(Clone, Debug, PartialEq)]
pub struct Pick<T> {
    pub value: T,
    pub why: Option<String>,
}

impl Learned {
    pub fn new(state: LearnedState) -> Self {
        Self { state }
    }

    pub fn state(&self) -> &LearnedState {
        &self.state
    }

    /// The version of `id`'s own values: the latest at which any of its
    /// leads or slots changed (another service's change leaves it be).
    fn service_version(&self, id: &str) -> u64 {
        self.state
            .services
            .iter()
            .filter(|l| l.service == id)
            .map(|l| l.lead.version.max(l.slot.version))
            .max()
            .unwrap_or(0)
    }

    /// Whether an occasion (by key) of a learning service explores on
    /// `channel`, and what: one draw per occasion from a stream seeded by
    /// its key alone decides, a deterministic share of `explore_percent`,
    /// never a control member nor a frozen service. The decision does not
    /// change with what is learned: an occasion that does not explore its
    /// lead waits for the lead in force ([`Learned::waits`]), and a new
    /// draw every time a value changed would give each waiting occasion
    /// another chance to explore, mostly at a lead already past.
    ///
    /// An exploring occasion explores its lead **or** its slot, half of
    /// them each (the next number of the same stream), and keeps the value
    /// in force of the other; its lead alone while no weekday or hour is in
    /// force (below). Exploration draws the challengers of a value in force, never
    /// it ([`model::explore_lead`]), so were both explored at once every
    /// challenger lead would go out on a challenger slot and the other way
    /// round: a challenger would be judged with the other's handicap, and
    /// the lead arms are not standardised for the slot (the slot arms are
    /// for the lead: `pool_slots`). One at a time, a challenger differs
    /// from the messages that do not explore in the one thing it tries.
    ///
    /// The draw itself is from a stream seeded by the key and the
    /// service's version.
    fn explores(
        &self,
        id: &str,
        key: &str,
        s: &Service,
        channel: Channel,
        control: bool,
    ) -> Option<Exploring> {
        let frozen = self.state.frozen.contains(id);
        if !s.learn || frozen || control || s.explore_percent == 0 {
            return None;
        }
        // No version is ever `u64::MAX`: this stream is the decision's own.
        let mut decision = Stream::new(key, u64::MAX);
        if decision.uniform() * 100.0 >= f64::from(s.explore_percent) {
            return None;
        }
        // A slot to challenge: a weekday or an hour in force. Before one
        // is, the messages that do not explore spread over the window's
        // days and hours by themselves (their due dates fall on every
        // weekday; their times are drawn over the window: `planner::steps`),
        // so every slot arm has their data and exploring the slot would
        // only take draws from the lead.
        let slot_in_force = self
            .state
            .get(id, channel)
            .is_some_and(|e| !e.slot.arms.is_empty() && e.slot.value.is_some());
        let turn = if slot_in_force && decision.uniform() < 0.5 {
            Turn::Slot
        } else {
            Turn::Lead
        };
        Some(Exploring {
            turn,
            stream: Stream::new(key, self.service_version(id)),
        })
    }

    /// Whether an occasion of a learning service waits to be planned: one
    /// that neither explores its lead nor is a control member is planned
    /// when the send day of the lead in force comes within the planning
    /// horizon, as a service that does not learn is, so that it goes out
    /// with the lead and slot in force *then* (found by the grid's longest
    /// lead and planned at once, it kept the values of five weeks before: a
    /// value learned reached the sends that much later; EVALUATION.md,
    /// session 20). One that explores its slot waits too: its lead is the
    /// one in force, as for those that do not explore. Control members are
    /// drawn when found, so that every lead's baseline has its members from
    /// the start (`data::collect`).
    #[allow(clippy::too_many_arguments)]
    pub fn waits(
        &self,
        id: &str,
        s: &Service,
        channel: Channel,
        key: &str,
        control: bool,
        send_day: Date,
        until: Date,
    ) -> bool {
        s.learn
            && !control
            && send_day > until
            && self
                .explores(id, key, s, channel, control)
                .is_none_or(|x| x.turn != Turn::Lead)
    }

    /// The lead time to find a service's occasions with: while it learns,
    /// the grid's longest, so that any lead of the grid can still be
    /// planned; otherwise the policy's (or the frozen value).
    pub fn find_lead(&self, id: &str, s: &Service) -> u32 {
        if !s.learn {
            return s.lead_days;
        }
        let frozen = self.state.frozen.contains(id);
        let grid = s.lead_grid();
        // A value off the current grid is not used (`lead`): the policy's.
        let in_force = self
            .state
            .services
            .iter()
            .filter(|l| l.service == id)
            .map(|l| {
                if grid.contains(&l.lead.value) {
                    l.lead.value
                } else {
                    s.lead_days
                }
            })
            .max()
            .unwrap_or(s.lead_days);
        if frozen {
            in_force
        } else {
            grid.into_iter().max().unwrap_or(s.lead_days).max(in_force)
        }
    }

    /// The lead time for one occasion on `channel`.
    pub fn lead(
        &self,
        id: &str,
        s: &Service,
        channel: Channel,
        key: &str,
        control: bool,
    ) -> Pick<u32> {
        if !s.learn {
            return Pick {
                value: s.lead_days,
                why: None,
            };
        }
        let entry = self.state.get(id, channel);
        if let Some(mut exploring) = self
            .explores(id, key, s, channel, control)
            .filter(|x| x.turn == Turn::Lead)
        {
            let grid = s.lead_grid();
            // The arms learned, while they are the policy's grid (after a
            // policy change, until the next refresh, the grid's leads
            // without data).
            let arms = match entry {
                Some(e)
                    if e.lead.arms.len() == grid.len()
                        && e.lead
                            .arms
                            .iter()
                            .zip(&grid)
                            .all(|(a, l)| a.arm == Arm::Lead(*l)) =>
                {
                    e.lead.arms.clone()
                }
                _ => grid
                    .iter()
                    .map(|&l| model::arm(Arm::Lead(l), None, prior(None), 0.0, 0, 0))
                    .collect(),
            };
            let value_cents = entry.map_or(s.value.cents(), |e| e.value_cents);
            // What a message that does not explore gets (below).
            let in_force = match entry {
                Some(e) if grid.contains(&e.lead.value) => e.lead.value,
                _ => s.lead_days,
            };
            let usable = model::usable_lead(&arms);
            if let Some(Arm::Lead(l)) = model::explore_lead(
                &arms,
                &usable,
                Arm::Lead(in_force),
                value_cents,
                0,
                &mut exploring.stream,
            ) {
                return Pick {
                    value: l,
                    why: Some(format!(
                        "lead time: {l} days (exploring: a Thompson draw over the {} lead times other than the {in_force} days in force, {} % of messages)",
                        model::challengers(&arms, Some(Arm::Lead(in_force))),
                        s.explore_percent
                    )),
                };
            }
        }
        match entry {
            // The policy changed since (its grid no longer has the value):
            // the policy's value until learning has data on the new grid.
            Some(e) if !s.lead_grid().contains(&e.lead.value) => Pick {
                value: s.lead_days,
                why: Some(format!(
                    "lead time: {} days (policy; the {} {} days is no lead time of the policy's grid any more)",
                    s.lead_days,
                    e.lead.source.as_str(),
                    e.lead.value
                )),
            },
            Some(e) => Pick {
                value: e.lead.value,
                why: Some(lead_text(e)),
            },
            None => Pick {
                value: s.lead_days,
                why: Some(format!(
                    "lead time: {} days (policy; nothing learned yet)",
                    s.lead_days
                )),
            },
        }
    }

    /// The send slot (weekday, hour) for one occasion on `channel`, with
    /// the words for its *why*; `None`: the policy's window as is.
    pub fn slot(
        &self,
        id: &str,
        s: &Service,
        channel: Channel,
        key: &str,
        control: bool,
    ) -> Option<Pick<(u8, u8)>> {
        if !s.learn {
            return None;
        }
        let entry = self.state.get(id, channel)?;
        if let Some(mut exploring) = self
            .explores(id, key, s, channel, control)
            .filter(|x| x.turn == Turn::Slot)
        {
            // One draw over the weekdays, one over the hours (email): the
            // slot explored is the pair, or what of it the channel has.
            let (days, hours): (Vec<ArmFigures>, Vec<ArmFigures>) = entry
                .slot
                .arms
                .iter()
                .cloned()
                .partition(|a| matches!(a.arm, Arm::Slot(wd, _) if wd < ANY_WEEKDAY));
            // Each from a stream of its own: the hour drawn does not depend
            // on how many numbers the weekdays' draw took.
            let (mut day_stream, mut hour_stream) =
                (exploring.stream.fork(), exploring.stream.fork());
            let value_cents = entry.value_cents;
            // The weekday and the hour in force are left out of the draw
            // (`model::explore_slot`): they have the messages that do not
            // explore.
            let held = entry.slot.value;
            let held_day = held
                .filter(|(wd, _)| *wd < ANY_WEEKDAY)
                .map(|(wd, _)| Arm::Slot(wd, ANY_HOUR));
            let held_hour = held
                .filter(|(_, h)| *h < ANY_HOUR)
                .map(|(_, h)| Arm::Slot(ANY_WEEKDAY, h));
            let day = match model::explore_slot(&days, held_day, value_cents, &mut day_stream) {
                Some(Arm::Slot(wd, _)) => Some(wd),
                _ => None,
            };
            let hour = match model::explore_slot(&hours, held_hour, value_cents, &mut hour_stream) {
                Some(Arm::Slot(_, h)) => Some(h),
                _ => None,
            };
            if day.is_some() || hour.is_some() {
                let value = (day.unwrap_or(ANY_WEEKDAY), hour.unwrap_or(ANY_HOUR));
                return Some(Pick {
                    value,
                    why: Some(format!(
                        "send time: {} (exploring: a Thompson draw over {} weekdays{}{}, {} % of messages)",
                        Arm::Slot(value.0, value.1),
                        model::challengers(&days, held_day),
                        if hours.is_empty() {
                            String::new()
                        } else {
                            format!(" and {} hours", model::challengers(&hours, held_hour))
                        },
                        if held_day.is_some() || held_hour.is_some() {
                            " other than those in force"
                        } else {
                            ""
                        },
                        s.explore_percent
                    )),
                });
            }
        }
        let value = entry.slot.value?;
        Some(Pick {
            value,
            why: Some(slot_text(entry)),
        })
    }

    /// How much a message of `service` on `channel` is worth against the
    /// policy's expectation: the learned incremental response at the lead
    /// in force over the pooled one at the policy's lead, with its
    /// evidence. The policy's `value` is the expected value of one message
    /// as the policy plans it, so this factor is what learning changes
    /// about it. Both arms must pass the privacy rule with their control
    /// baselines, and the policy's incremental response must be at least
    /// [`MIN_POLICY_INCREMENTAL`] (a ratio over next to nothing is noise);
    /// the factor is held within [`VALUE_FACTOR_BOUNDS`]. `None` (the
    /// policy's value as it is) otherwise.
    pub fn value_factor(&self, service: &str, channel: Channel) -> Option<(f64, String)> {
        let e = self.state.get(service, channel)?;
        e.incremental?;
        let incremental = |lead: u32| {
            e.lead
                .arms
                .iter()
                .find(|a| a.arm == Arm::Lead(lead) && a.passes && a.has_baseline())
                .map(|a| a.mean() - a.baseline)
        };
        let learned = incremental(e.lead.value)?;
        let policy = incremental(e.policy_lead).filter(|p| *p >= MIN_POLICY_INCREMENTAL)?;
        let (lo, hi) = VALUE_FACTOR_BOUNDS;
        let factor = (learned / policy).clamp(lo, hi);
        Some((
            factor,
            format!(
                "learned {:.2}× the policy's (incremental response {} at {} days vs {} at {} days, {} dealers)",
                factor,
                percent(learned),
                e.lead.value,
                percent(policy),
                e.policy_lead,
                e.dealers
            ),
        ))
    }

    /// The learned incremental response per message on `channel` (the
    /// posterior mean at the lead in force minus its control baseline) and
    /// a short evidence text; `None` while the data is thin.
    pub fn incremental_response(&self, service: &str, channel: Channel) -> Option<(f64, String)> {
        let e = self.state.get(service, channel)?;
        let v = e.incremental?;
        Some((
            v,
            format!(
                "{} incremental responses per message at {} days, from {} dealers",
                percent(v),
                e.lead.value,
                e.dealers
            ),
        ))
    }
}

/// The learned state in force and its upkeep.
#[derive(Default)]
pub struct Learning {
    current: RwLock<Arc<Learned>>,
    /// One computation (or freeze, or reset) at a time.
    busy: Mutex<()>,
}

fn signature(stores: &Stores, set: &PolicySet, today: Date, state: &LearnedState) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(&set.fingerprint.to_be_bytes());
    eat(&today.days().to_be_bytes());
    for t in set.tenants.keys() {
        eat(t.as_str().as_bytes());
        let v = stores
            .tenant(t)
            .and_then(|s| s.data_version())
            .unwrap_or(u64::MAX);
        eat(&v.to_be_bytes());
    }
    for f in &state.frozen {
        eat(f.as_bytes());
    }
    for (s, d) in &state.reset_on {
        eat(s.as_bytes());
        eat(&d.days().to_be_bytes());
    }
    h
}

impl Learning {
    /// The state the central store holds (empty when none or unreadable).
    pub fn load(stores: &Stores) -> Self {
        let state = match stores.central().learned() {
            Ok(s) => s.unwrap_or_default(),
            Err(e) => {
                tracing::error!(error = %e, "learned values unreadable: the policy's are in force until the next computation");
                LearnedState::default()
            }
        };
        Self {
            current: RwLock::new(Arc::new(Learned::new(state))),
            busy: Mutex::new(()),
        }
    }

    pub fn current(&self) -> Arc<Learned> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn install(&self, stores: &Stores, state: LearnedState) -> Result<Arc<Learned>, StoreError> {
        stores.central().set_learned(&state)?;
        let learned = Arc::new(Learned::new(state));
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = learned.clone();
        Ok(learned)
    }

    /// Recomputes what is learned, unless nothing it reads changed since
    /// the last computation; returns the state in force. A failure keeps
    /// the state in force (and is logged): planning goes on.
    pub fn refresh(&self, stores: &Stores, set: &PolicySet, today: Date) -> Arc<Learned> {
        let _busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let prev = self.current();
        let learning = set.brand.services.values().any(|s| s.learn);
        if !learning && prev.state.services.is_empty() {
            return prev;
        }
        let sig = signature(stores, set, today, &prev.state);
        if sig == prev.state.signature {
            return prev;
        }
        let grids = grids(&set.brand, &prev.state.reset_on);
        let mut dealers = Vec::new();
        for t in set.tenants.keys() {
            let read = stores.tenant(t).and_then(|s| {
                let rows = s.result_rows(today.add_days(-HISTORY_DAYS), today)?;
                let answers = crate::attribution::answers_of(&s)?;
                Ok(collect(
                    &rows,
                    &answers.messages,
                    &answers.controls,
                    &grids,
                    today,
                ))
            });
            match read {
                Ok(d) => dealers.push(d),
                Err(e) => {
                    // Left out: its cells have one dealer fewer, and the
                    // rule decides again whether they may be used.
                    tracing::warn!(tenant = %t, error = %e, "learning: tenant left out");
                }
            }
        }
        let mut next = compute(&set.brand, &dealers, &prev.state);
        next.signature = sig;
        // The audit lines go first: a crash between the two writes leaves
        // a change audited and computed again at the next refresh, never
        // a value in force that the audit log does not show.
        let lines = changes(&prev.state, &next);
        let changed = !lines.is_empty();
        for line in lines {
            audit(stores, "learned", line);
        }
        match self.install(stores, next) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "learned values not stored; the previous stay in force");
                if changed {
                    audit(
                        stores,
                        "learned",
                        format!("the change above was not stored ({e}); the previous values stay in force"),
                    );
                }
                prev
            }
        }
    }

    /// Keeps `service`'s values in force and stops updating them.
    pub fn freeze(
        &self,
        stores: &Stores,
        set: &PolicySet,
        service: &str,
    ) -> Result<LearnedState, LearningError> {
        self.change(stores, set, service, |state, _| {
            if !state.frozen.insert(service.to_string()) {
                return Err(LearningError::Invalid(format!(
                    "{service} is frozen already"
                )));
            }
            for s in state.services.iter_mut().filter(|s| s.service == service) {
                s.frozen = true;
                s.lead.source = Source::Frozen;
                if s.slot.value.is_some() {
                    s.slot.source = Source::Frozen;
                }
            }
            Ok(())
        })
    }

    /// Back to the policy's values for `service`; learning starts again
    /// from the data of messages sent from `today` on.
    pub fn reset(
        &self,
        stores: &Stores,
        set: &PolicySet,
        service: &str,
        today: Date,
    ) -> Result<LearnedState, LearningError> {
        self.change(stores, set, service, |state, version| {
            state.frozen.remove(service);
            state.reset_on.insert(service.to_string(), today);
            let brand_service = set.brand.services.get(service);
            for s in state.services.iter_mut().filter(|s| s.service == service) {
                if let Some(b) = brand_service {
                    *s = thin(
                        service,
                        b,
                        s.channel,
                        set.brand.privacy.rule().min_dealers,
                        version,
                    );
                }
            }
            Ok(())
        })
    }

    fn change(
        &self,
        stores: &Stores,
        set: &PolicySet,
        service: &str,
        f: impl FnOnce(&mut LearnedState, u64) -> Result<(), LearningError>,
    ) -> Result<LearnedState, LearningError> {
        match set.brand.services.get(service) {
            None => {
                return Err(LearningError::Invalid(format!(
                    "no service {service:?} in the brand policy"
                )))
            }
            Some(s) if !s.learn => {
                return Err(LearningError::Invalid(format!(
                    "{service} does not learn (learn = false in the brand policy)"
                )))
            }
            Some(_) => {}
        }
        let _busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let mut state = self.current().state.clone();
        state.version += 1;
        let version = state.version;
        f(&mut state, version)?;
        // Computed again on the next refresh.
        state.signature = 0;
        let installed = self.install(stores, state)?;
        Ok(installed.state.clone())
    }
}

fn audit(stores: &Stores, action: &str, detail: String) {
    let entry = AuditEntry {
        seq: 0,
        at: Timestamp::wall(),
        uid: NO_UID,
        user: "touchpointd".into(),
        role: None,
        action: action.into(),
        tenant: None,
        detail,
        outcome: AuditOutcome::Ok,
    };
    if let Err(e) = stores.central().audit(entry) {
        tracing::error!(error = %e, "cannot write a learned value's change to the audit log");
    }
}
