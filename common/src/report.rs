//! What the results reports are computed from: one [`ResultRow`] per
//! message that went out and per control-group member, with the response
//! credited to it (if any). The daemon's store produces these rows
//! (`TenantStore::result_rows`); the daemon's reports aggregate them.
//! Plain data, no I/O.

use serde::{Deserialize, Serialize};

use crate::domain::{Channel, Timestamp};
use crate::money::Money;
use crate::Date;

/// One recipient's exposure to one occasion: a message that was sent, or a
/// control-group member who was deliberately sent nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultRow {
    /// The brand service (policy `[[services]]` name).
    pub service: String,
    /// `None` for a control-group member.
    pub channel: Option<Channel>,
    /// The occasion's due date (the same for control members).
    pub due: Date,
    /// When the message was handed to its transport; for a control member,
    /// when it would have been sent.
    pub sent_at: Timestamp,
    /// Days between `sent_at` and `due` (positive: before the due date).
    pub lead_days: i32,
    /// Cost booked for the message (zero for control members).
    pub cost: Money,
    /// The transport accepted it and no hard bounce came back.
    pub delivered: bool,
    pub bounced: bool,
    /// The recipient withdrew email consent because of this message.
    pub unsubscribed: bool,
    /// The response credited to this row, if any.
    pub response: Option<Credited>,
    /// Clicks on its tracked links (brand `[tracking] clicks`); no response.
    pub clicks: u32,
    /// Whether `sent_at` holds the real time of day: false for a message
    /// imported from a send history (the day only), which no send-slot
    /// learning may count.
    pub time_known: bool,
    /// Made due at once by an operator (`send-now`): its lead and send
    /// time are nobody's choice, and learning counts it in no arm.
    #[serde(default)]
    pub sent_now: bool,
    /// The message's id in its dealer's store (0: none). Only the daemon
    /// itself uses it (learning joins a row with what answered it); never
    /// on the wire.
    #[serde(skip)]
    pub id: u64,
    /// The moment the planner chose for it (its send day and minute; for
    /// a control member, `sent_at`). Only the daemon itself uses it: a
    /// send slot is learned as the slot chosen, whatever hour dispatch
    /// released it at that day (`daemon::learning`); never on the wire.
    #[serde(skip)]
    pub planned_at: Option<Timestamp>,
    /// The day the planner planned it (found its occasion and drew it, or
    /// drew the control member). Only the daemon itself uses it: a lead the
    /// planner had no choice of (a message planned the day it went out) is
    /// no lead arm's (`daemon::learning`); never on the wire.
    #[serde(skip)]
    pub planned_on: Option<Date>,
    /// The lead time the planner chose for it (a learning service's
    /// message: `Message::planned_lead`), whatever day it then went out.
    /// Only the daemon itself uses it (a message sent more than half a
    /// grid step off it counts in no lead arm: `daemon::learning`); never
    /// on the wire.
    #[serde(skip)]
    pub planned_lead: Option<u32>,
}

impl ResultRow {
    pub fn is_control(&self) -> bool {
        self.channel.is_none()
    }
}

/// A response credited to a message or a control record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credited {
    pub kind: ResponseKind,
    pub date: Date,
    /// Order or offer value, when the source carries one.
    pub value: Option<Money>,
    /// Where it came from: `werkstatt.csv:214`, `calls.csv:12`.
    pub source: String,
}

/// What a recipient did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseKind {
    /// A service (maintenance) visit from the dealer's workshop history:
    /// Inspektion, Wartung, Ölwechsel, …, or a visit file without types.
    ServiceVisit,
    /// A statutory inspection (HU) visit.
    InspectionVisit,
    /// An appointment booked (response file or call-centre outcome).
    Appointment,
    /// An offer accepted (response file).
    OfferAccepted,
    /// Any other workshop visit: tyres, repairs, warranty work, accident,
    /// body or glass work, and types the daemon does not know.
    WorkshopVisit,
}

impl ResponseKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::ServiceVisit => "service visit",
            Self::InspectionVisit => "inspection visit",
            Self::Appointment => "appointment",
            Self::OfferAccepted => "offer accepted",
            Self::WorkshopVisit => "workshop visit",
        }
    }
}

// The children import this module; this module imports none of them (the
// layering test reads `report::…` paths as arrows): use their full paths.
pub mod answer;
pub mod pool;
pub mod stats;

/// A response a dealer reported in a response file: an appointment booked
/// or an offer accepted. Stored in the dealer's data room; attribution
/// credits it like a workshop visit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedResponse {
    /// The customer as the file names them; empty when it names a VIN only.
    pub customer_no: String,
    /// The vehicle as the file names it; may be empty.
    pub vin: String,
    pub date: Date,
    /// [`ResponseKind::Appointment`] or [`ResponseKind::OfferAccepted`].
    pub kind: ResponseKind,
    /// Order or offer value in cents, when the file carries one.
    #[serde(with = "crate::money::cents::option")]
    pub value: Option<i64>,
    /// The dealer's remark, bounded by the import.
    pub note: String,
    /// `antworten.csv:12`.
    pub source: String,
}

/// One month's responses by where attribution credits them: the
/// Overview's "responses this month". Kept per tenant by each attribution
/// pass (by the month of the response), so reading it reads no visit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthResponses {
    pub to_messages: u64,
    pub to_control: u64,
    pub organic: u64,
}

impl MonthResponses {
    pub fn total(&self) -> u64 {
        self.to_messages + self.to_control + self.organic
    }

    pub fn add(&mut self, o: &MonthResponses) {
        self.to_messages += o.to_messages;
        self.to_control += o.to_control;
        self.organic += o.organic;
    }
}

/// A tenant's responses by month (`yyyymm`, as `outbox::month_of`).
pub type ResponseMonths = std::collections::BTreeMap<u32, MonthResponses>;

/// One response of a dealer and what attribution makes of it: the answer
/// to "why was this visit not credited?" (`touchpoint responses`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseLine {
    /// The customer after identity merges; empty when neither the customer
    /// nor the vehicle is known.
    pub recipient: String,
    /// The vehicle, when the source names one.
    pub vin: String,
    pub kind: ResponseKind,
    pub date: Date,
    pub value: Option<Money>,
    /// `werkstatt.csv:214`.
    pub source: String,
    pub verdict: ResponseVerdict,
}

/// Where one response is credited, as the attribution pass over what is
/// stored now decides it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseVerdict {
    /// To the message `id`, sent on `sent`.
    Message { id: u64, sent: Date },
    /// To the control record `id`, whose message would have gone out on `sent`.
    Control { id: u64, sent: Date },
    /// To nothing: it counts for the baseline, for the reason given.
    Organic { why: String },
}

/// The answer to a responses request: the newest lines first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseList {
    pub lines: Vec<ResponseLine>,
    /// Lines that matched the request, `lines` included.
    pub matched: u64,
    /// Of `matched`: credited to messages, to control records, organic.
    pub to_messages: u64,
    pub to_control: u64,
    pub organic: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_frame, decode_record, encode_frame, encode_record};

    /// Rows go over the socket and credits into a store, both in bincode,
    /// which cannot read the forms `Money` accepts from a policy file.
    #[test]
    fn a_row_and_a_credit_survive_the_codec() {
        let credited = Credited {
            kind: ResponseKind::ServiceVisit,
            date: Date::from_ymd(2027, 1, 8).expect("day"),
            value: Some(Money(41_200)),
            source: "werkstatt.csv:214".into(),
        };
        let back: Credited =
            decode_record(&encode_record(&credited).expect("encode")).expect("decode");
        assert_eq!(back, credited);
        let row = ResultRow {
            service: "service_due".into(),
            channel: Some(Channel::Email),
            due: credited.date,
            sent_at: Timestamp(1),
            lead_days: 21,
            cost: Money(2),
            delivered: true,
            bounced: false,
            unsubscribed: false,
            response: Some(credited),
            clicks: 3,
            time_known: true,
            sent_now: false,
            id: 0,
            planned_at: None,
            planned_on: None,
            planned_lead: None,
        };
        let back: ResultRow = decode_frame(&encode_frame(&row).expect("encode")).expect("decode");
        assert_eq!(back, row);
    }
}
