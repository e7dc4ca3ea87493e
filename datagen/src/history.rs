//! The demo's past quarter: what the system Touchpoint replaces sent in the
//! three months before the export day (the yearly service reminders the
//! brand policy would have sent, with a control group held back) and the
//! workshop visits that followed, drawn from the demo network's hidden
//! response model ([`crate::truth`], seed [`TRUTH_SEED`]): customers come
//! organically around their due date, and a reminder adds a chance that
//! depends on its lead time. The previous system varied its lead time over
//! the brand's grid (7 to 56 days, step 7), so the quarter shows which
//! lead works. Deterministic: the same dealer, options and day give the
//! same quarter.
//!
//! The quarter shows in three files, which agree: the send history
//! ([`crate::write_history_export_as_of`]); the visits export, where a
//! customer of the quarter's draw has no service visit after their first
//! send but the responses the model drew (an "Inspektion" of the vehicle
//! reminded), while their tyre changes, repairs and HU visits go on as
//! drawn (organic: no service reminder is answered by them); and that
//! response as the vehicle's last service in the customer export.

use std::sync::OnceLock;

use touchpoint_common::domain::Channel;
use touchpoint_common::Date;

use crate::gen::{add_months, mix, rng, Person, Tri, Veh};
use crate::truth::{demo_services, Send, Truth};

/// The brand service the quarter's reminders are for.
pub const SERVICE: &str = "service_due";
/// Days the quarter covers, ending the day before the export day.
pub const QUARTER_DAYS: i32 = 91;
/// Months between services (the brand's interval).
pub const INTERVAL_MONTHS: u32 = 12;
/// Share of the vehicles due that is held back as the control group, percent.
pub const CONTROL_PERCENT: u32 = 10;
/// What the previous system paid per letter and per email, cents.
pub const LETTER_CENTS: u32 = 85;
pub const EMAIL_CENTS: u32 = 5;
/// Seed of the demo network's hidden response model ([`truth`]).
pub const TRUTH_SEED: u64 = 2026;
/// Reminders of the quarter went out at this time (the send history
/// carries days only, and its import puts them at noon).
pub const SEND_MINUTE: u16 = 12 * 60;

const SALT_PAST: u64 = 0x7061_7374;

/// The demo network's hidden response model: [`TRUTH_SEED`] over the demo
/// brand's services.
pub fn truth() -> &'static Truth {
    static TRUTH: OnceLock<Truth> = OnceLock::new();
    TRUTH.get_or_init(|| Truth::new(TRUTH_SEED, &demo_services()))
}

/// One vehicle's reminder in the quarter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PastSend {
    /// Day the reminder went out (or would have, for a control member).
    pub sent: i32,
    /// Days before the service's due date it went out: drawn over the
    /// brand's lead grid, so that the quarter has something to learn from.
    pub lead: u32,
    /// Held back: a control-group member, sent nothing.
    pub control: bool,
    /// Day of the visit that followed, if one did before the export day.
    pub response: Option<i32>,
}

/// How the previous system reached a person, and what it paid: by email
/// with email consent, else by letter unless refused; `None`: not at all
/// (such a person was in no draw, control group included).
pub(crate) fn channel(p: &Person) -> Option<(&'static str, u32)> {
    if p.consent_email == Tri::Yes && !p.email.is_empty() {
        Some(("E-Mail", EMAIL_CENTS))
    } else if p.consent_post != Tri::No {
        Some(("Brief", LETTER_CENTS))
    } else {
        None
    }
}

/// The quarter's reminder for a vehicle whose yearly service fell due so
/// that its reminder went out in the quarter. `v.last_service` is the
/// service before the quarter's; `dealer` names the dealer to the model.
pub(crate) fn past_send(
    seed: u64,
    dealer: &str,
    p: &Person,
    v: &Veh,
    as_of: i32,
) -> Option<PastSend> {
    let (name, _) = channel(p)?;
    let last = v.last_service?;
    let due = add_months(last, INTERVAL_MONTHS);
    let truth = truth();
    let mut r = rng(seed, v.ordinal, SALT_PAST);
    let control = r.u32(0..100) < CONTROL_PERCENT;
    let lead = truth.any_lead(SERVICE, &mut r)?;
    let sent = due - lead as i32;
    if sent < as_of - QUARTER_DAYS || sent >= as_of {
        return None;
    }
    let m = Send {
        service: SERVICE,
        channel: if name == "E-Mail" {
            Channel::Email
        } else {
            Channel::Post
        },
        due: Date::from_days(due),
        send_on: Date::from_days(sent),
        send_at: SEND_MINUTE,
        dealer,
        key: mix(seed ^ v.ordinal),
    };
    // A control member comes only organically; a visit drawn for a day not
    // yet come has not happened.
    let visit = if control {
        truth
            .organic_visit(SERVICE, m.key, m.due)
            .filter(|&d| d > m.send_on)
    } else {
        truth.visit_after(&m)
    };
    let response = visit.map(Date::days).filter(|&d| d < as_of);
    Some(PastSend {
        sent,
        lead,
        control,
        response,
    })
}
