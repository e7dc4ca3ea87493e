//! The demo's past quarter: what the system Touchpoint replaces sent in the
//! three months before the export day (the yearly service reminders the
//! brand policy would have sent, with a control group held back) and the
//! workshop visits that followed, drawn from a response model in which a
//! reminder raises the chance of a visit. Deterministic: the same dealer,
//! options and day give the same quarter.
//!
//! The quarter shows in three files, which agree: the send history
//! ([`crate::write_history_export_as_of`]); the visits export, where a
//! customer of the quarter's draw has no service visit after their first
//! send but the responses the model drew (an "Inspektion" of the vehicle
//! reminded), while their tyre changes, repairs and HU visits go on as
//! drawn (organic: no service reminder is answered by them); and that
//! response as the vehicle's last service in the customer export.

use crate::gen::{add_months, rng, Person, Tri, Veh};

/// The brand service the quarter's reminders are for.
pub const SERVICE: &str = "service_due";
/// Days the quarter covers, ending the day before the export day.
pub const QUARTER_DAYS: i32 = 91;
/// Days before the due date a reminder went out (the brand's lead time).
pub const LEAD_DAYS: i32 = 21;
/// Months between services (the brand's interval).
pub const INTERVAL_MONTHS: u32 = 12;
/// Share of the vehicles due that is held back as the control group, percent.
pub const CONTROL_PERCENT: u32 = 10;
/// Days after a send within which a visit is drawn (the brand's
/// attribution window).
pub const RESPONSE_DAYS: i32 = 60;
/// Chance of a visit within [`RESPONSE_DAYS`] without a reminder.
pub const BASE_RATE: f64 = 0.18;
/// Chance of a visit within [`RESPONSE_DAYS`] after a reminder.
pub const REMINDED_RATE: f64 = 0.27;
/// What the previous system paid per letter and per email, cents.
pub const LETTER_CENTS: u32 = 85;
pub const EMAIL_CENTS: u32 = 5;

const SALT_PAST: u64 = 0x7061_7374;
const SALT_RESPONSE: u64 = 0x7265_7370;

/// One vehicle's reminder in the quarter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PastSend {
    /// Day the reminder went out (or would have, for a control member).
    pub sent: i32,
    /// Held back: a control-group member, sent nothing.
    pub control: bool,
    /// Day of the visit that followed, if one did before the export day.
    pub response: Option<i32>,
}

/// The response model alone: whether a recipient comes to the workshop
/// within [`RESPONSE_DAYS`] of a reminder (or of the day it would have gone
/// out), and how many days after it. `key` tells recipients apart.
pub fn response_after(seed: u64, key: u64, reminded: bool) -> Option<i32> {
    let mut r = rng(seed, key, SALT_RESPONSE);
    let p = if reminded { REMINDED_RATE } else { BASE_RATE };
    (r.f64() < p).then(|| r.i32(1..=RESPONSE_DAYS))
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
/// service before the quarter's.
pub(crate) fn past_send(seed: u64, v: &Veh, as_of: i32) -> Option<PastSend> {
    let last = v.last_service?;
    let sent = add_months(last, INTERVAL_MONTHS) - LEAD_DAYS;
    if sent < as_of - QUARTER_DAYS || sent >= as_of {
        return None;
    }
    let control = rng(seed, v.ordinal, SALT_PAST).u32(0..100) < CONTROL_PERCENT;
    // A visit drawn for a day not yet come has not happened.
    let response = response_after(seed, v.ordinal, !control)
        .map(|d| sent + d)
        .filter(|&d| d < as_of);
    Some(PastSend {
        sent,
        control,
        response,
    })
}
