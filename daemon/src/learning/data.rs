//! One dealer's counts per cell: what its outbox and attribution credits
//! say about each lead time and send slot of a learning service, and what
//! its control group says about the window each lead time gives.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, TimeZone, Timelike};
use touchpoint_common::domain::Channel;
use touchpoint_common::learning::{Arm, ANY_HOUR, ANY_WEEKDAY};
use touchpoint_common::report::ResultRow;
use touchpoint_common::Date;

use super::model::Counts;
use crate::attribution::ControlResponses;

/// What learning needs to know of one service.
#[derive(Clone, Debug)]
pub struct Grid {
    /// The lead times, ascending.
    pub leads: Vec<u32>,
    pub step: u32,
    /// Days after a send within which a response counts
    /// (`Service::learn_window`: the attribution window or less).
    pub window_days: u32,
    /// Data from sends before this day is not used (a reset).
    pub since: Option<Date>,
    /// The weekdays (Monday = 0) and, for email, the hours that are slot
    /// arms (the service's window, no quiet day).
    pub days: Vec<u8>,
    pub hours: Vec<u8>,
}

/// The cell of the rows the weekday arms have no arm for (a letter of a
/// Saturday batch): pooled with the weekday arms, so that the lead arms'
/// total less the weekday arms' can never single out a group below the
/// privacy rule (complementary suppression treats it as one more cell).
/// Never an arm, never shown.
pub const REST_OF_DAYS: Arm = Arm::Slot(ANY_WEEKDAY, ANY_HOUR);
/// The same for the hour arms: an email past the window's last hour, or
/// one of a send history (its hour made up).
pub const REST_OF_HOURS: Arm = Arm::Slot(ANY_WEEKDAY + 1, ANY_HOUR);

impl Grid {
    /// The grid's lead time nearest to `days`, if it is within half a step
    /// of the grid (a tie goes to the shorter lead).
    pub fn snap(&self, days: i32) -> Option<u32> {
        let nearest = *self
            .leads
            .iter()
            .min_by_key(|&&l| ((i64::from(l) - i64::from(days)).abs(), l))?;
        let off = (i64::from(nearest) - i64::from(days)).abs();
        (2 * off <= i64::from(self.step)).then_some(nearest)
    }
}

/// A dealer's cells: per (service, channel, arm) for its messages; per
/// (service, lead arm) for its control group.
#[derive(Clone, Debug, Default)]
pub struct DealerData {
    pub cells: BTreeMap<(String, Channel, Arm), Counts>,
    pub baseline: BTreeMap<(String, u32), Counts>,
    /// The slot cells (rest cells included) by lead arm: how many of a
    /// slot's messages went at each lead (`learning::pool_slots` weighs a
    /// slot's responses against what its leads' rates would give).
    pub slot_leads: BTreeMap<(String, Channel, Arm, u32), u64>,
}

/// Counts one dealer's rows. Only rows whose learning window has closed
/// before `today` count: a message still inside its window may yet be
/// answered, and counting it now would lower its arm's rate. A message is
/// answered when a response that answers it (`answered`, by message id:
/// `attribution::Answers::messages`) or its credit falls after its send
/// day and within the learning window, as a control member is (below):
/// the same test on both sides of the lift, whichever message the
/// attribution pass credited a response to. A response after the learning
/// window (within the attribution window) is no response here, as a
/// control member's after that window is none.
pub fn collect(
    rows: &[ResultRow],
    answered: &HashMap<u64, Vec<Date>>,
    controls: &[ControlResponses],
    grids: &BTreeMap<String, Grid>,
    today: Date,
) -> DealerData {
    let mut out = DealerData::default();
    for r in rows {
        let (Some(channel), Some(grid)) = (r.channel, grids.get(&r.service)) else {
            continue;
        };
        // An operator's send-now: neither its lead nor its slot was chosen.
        if r.sent_now {
            continue;
        }
        let Some(local) = chrono::Local
            .timestamp_millis_opt(r.sent_at.millis())
            .single()
        else {
            continue;
        };
        let day = Date::from(local.date_naive());
        let end = day.add_days(grid.window_days as i32);
        if end >= today || grid.since.is_some_and(|s| day < s) {
            continue;
        }
        let inside = |d: &Date| *d > day && *d <= end;
        let answer = r.response.as_ref().is_some_and(|c| inside(&c.date))
            || answered
                .get(&r.id)
                .is_some_and(|days| days.iter().any(inside));
        let hit = Counts {
            sent: 1,
            responses: u64::from(answer),
            ..Counts::default()
        };
        // Every partition (lead, weekday, hour) counts the same rows: a
        // row in no lead arm is in no slot arm either, and a row a slot
        // partition has no arm for goes to that partition's rest cell.
        let Some(lead) = grid.snap(r.lead_days) else {
            continue;
        };
        // A message that went out more than half a grid step off the lead
        // the planner chose for it (a holiday moved its send day, a
        // contact rule deferred it) is no draw of the arm it landed in:
        // planned at 21 days and sent at 17, it would count for 14 days
        // (EVALUATION.md, session 20: half of the 14-day arm's messages
        // not found late were such, and flattered it). Nor of its planned
        // lead's arm, whose window it did not have. (A planned lead off
        // today's grid, from before a policy change, counts by its grid
        // lead as the actual one does.)
        if r.planned_lead
            .is_some_and(|p| grid.snap(i32::try_from(p).unwrap_or(i32::MAX)) != Some(lead))
        {
            continue;
        }
        // A lead the planner had no choice of: while a service learns, its
        // occasions are found by the grid's longest lead, so a message
        // planned on the day it went out at a shorter lead was found too
        // late for the lead it was meant to have (the first plan's
        // backlog, a customer imported late, an occasion the frequency cap
        // let through only then) and went at what was left that day. It is
        // no draw of its lead's arm (nor of its weekday's or hour's), and
        // its cohort is not the one that lead's control baseline stands for
        // (EVALUATION.md, session 20: such messages made up two thirds of
        // the 7- and 14-day arms and flattered them). A send history's
        // message (planned when it was imported) is not one.
        if r.time_known && r.planned_on == Some(day) && Some(&lead) != grid.leads.last() {
            continue;
        }
        let weekday = local.weekday().num_days_from_monday() as u8;
        // The hour chosen: the planned moment's, when the message went out
        // that day (dispatch may release a planned email later the same
        // day: a backlog, or a rehearsal whose clock starts after the
        // window); else the hour it went out.
        let planned = r
            .planned_at
            .and_then(|p| chrono::Local.timestamp_millis_opt(p.millis()).single())
            .filter(|p| p.date_naive() == local.date_naive());
        let hour = planned.unwrap_or(local).hour() as u8;
        let mut arms = vec![
            Arm::Lead(lead),
            if grid.days.contains(&weekday) {
                Arm::Slot(weekday, ANY_HOUR)
            } else {
                REST_OF_DAYS
            },
        ];
        // An email's hour too (a letter or a call goes with its day's
        // batch or call list, at no hour the planner picks); a send
        // history gives the day only.
        if channel == Channel::Email {
            arms.push(if r.time_known && grid.hours.contains(&hour) {
                Arm::Slot(ANY_WEEKDAY, hour)
            } else {
                REST_OF_HOURS
            });
        }
        for arm in arms {
            if arm != Arm::Lead(lead) {
                *out.slot_leads
                    .entry((r.service.clone(), channel, arm, lead))
                    .or_default() += 1;
            }
            out.cells
                .entry((r.service.clone(), channel, arm))
                .or_default()
                .add(&hit);
        }
    }
    for c in controls {
        let Some(grid) = grids.get(&c.service) else {
            continue;
        };
        for &lead in &grid.leads {
            // The window this lead would have given the member: a
            // response after the send day, at most window_days after.
            let start = c.due.add_days(-(lead as i32));
            let end = start.add_days(grid.window_days as i32);
            // Judged as a message of that lead would be: one is sent only
            // while the work is not done (the planner cancels a reminder
            // whose vehicle was serviced or inspected since), so a member
            // whose work was done before the lead's send day is no member
            // of that lead's baseline; nor is a lead whose send day came
            // before the member was drawn (whoever came in between was
            // never drawn). Earlier visits (the cycle before) do not count.
            // A member drawn on that lead's send day stands for a message
            // planned the day it went out: no lead arm counts one (above)
            // but the grid's longest.
            if end >= today
                || grid.since.is_some_and(|s| start < s)
                || start < c.drawn
                || (start == c.drawn && Some(&lead) != grid.leads.last())
                || c.done.is_some_and(|d| d < start)
            {
                continue;
            }
            let answered = c.days.iter().any(|d| *d > start && *d <= end);
            out.baseline
                .entry((c.service.clone(), lead))
                .or_default()
                .add(&Counts {
                    control: 1,
                    control_responses: u64::from(answered),
                    ..Counts::default()
                });
        }
    }
    out
}
