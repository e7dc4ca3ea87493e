//! Attribution (M9): which message, if any, a response is credited to.
//!
//! A response (a workshop visit from the dealer's exports) is credited to
//! at most one message: the latest one *sent* to the same recipient (after
//! identity merges: a merged customer is one recipient) whose occasions
//! the response answers, sent at least a day before the response and no
//! more than its service's `attribution_days` before it. A response answers
//! an occasion when its kind does ([`answers`], the one table: a service
//! reminder wants a service visit, not a tyre change) and, when both name
//! a vehicle, for the same vehicle: a service of the customer's other car
//! does not answer this car's reminder. An occasion of the person (a
//! birthday, a send-history row without a VIN) and a response without a
//! VIN (a response file's appointment by customer number) match on the
//! recipient. What a visit is comes from its type ([`visit_kind`]); a type
//! it does not know counts as a workshop visit ([`UNRECOGNISED_VISIT`]) and
//! the import's tally names it. A control record stands in for the message its recipient was
//! not sent, so a control member's response is credited to it the same
//! way, on the day the message would have gone out. A message holds at most
//! one response: the first; a later response whose latest matching message
//! already holds one is not credited (the earlier message is not
//! consulted: the newer one superseded it). A response credited to nothing
//! is organic and counts for the baseline; [`Verdict::Organic`] says why.
//!
//! Responses come from the dealer's workshop visits and from response files
//! (appointments booked, offers accepted: `TenantStore::responses`); both
//! are credited by this one pass. A visit or response whose customer and
//! vehicle are unknown (a walk-in, a VIN never imported) is organic too.
//!
//! An appointment booked on a call (the call centre's outcome file) is
//! credited by dispatch to the call task itself when the outcome is
//! reported; this pass leaves those credits and their tasks alone.
//!
//! The credits are recomputed from what is stored, whole, after every
//! import of visits, and only the difference is written (`credits` tree and
//! a *why* and history line on each message whose credit changed), so a
//! re-import changes nothing and a visit that is corrected away (see
//! `store/records/import/apply.rs`: a re-exported file is the truth for the
//! days it covers) loses its credit, with a line that says so.

use std::collections::{BTreeMap, HashMap};

use touchpoint_common::domain::{Channel, ResponseTally, ServiceVisit, Timestamp};
use touchpoint_common::money::Money;
use touchpoint_common::outbox::month_of;
use touchpoint_common::outbox::{Message, MessageStatus, Step, Why};
use touchpoint_common::policy::{OccasionKind, DEFAULT_ATTRIBUTION_DAYS};
use touchpoint_common::report::{Credited, ReportedResponse, ResponseKind, ResponseMonths};
use touchpoint_common::Date;

use crate::store::{self, Change, StoreError, TenantStore};

/// Whether a response of `kind` answers a message for an occasion of
/// `occasion`: the one place this table is kept.
///
/// | occasion        | answered by |
/// |-----------------|-------------|
/// | service due     | service visit, appointment |
/// | inspection due  | inspection (HU) visit, service visit, any other workshop visit, appointment |
/// | warranty end    | offer accepted |
/// | campaign        | any workshop visit (service, HU or other), appointment, offer accepted |
/// | after visit (quality call) | appointment |
/// | birthday        | nothing (a greeting asks for nothing) |
///
/// A campaign's policy says nothing of the visit it asks for (a winter
/// check and a tyre campaign are both `occasion = "campaign"`), so any
/// visit answers it. The vehicle must match too: see [`credit`].
pub fn answers(occasion: OccasionKind, kind: ResponseKind) -> bool {
    use OccasionKind as O;
    use ResponseKind as R;
    match occasion {
        O::ServiceDue => matches!(kind, R::ServiceVisit | R::Appointment),
        O::InspectionDue => matches!(
            kind,
            R::InspectionVisit | R::ServiceVisit | R::WorkshopVisit | R::Appointment
        ),
        O::WarrantyEnd => kind == R::OfferAccepted,
        O::Campaign | O::Journey => true,
        O::AfterVisit => kind == R::Appointment,
        O::Birthday => false,
    }
}

/// Words (or parts of German compounds) that make a visit a service:
/// the periodic maintenance a service reminder asks for.
const SERVICE_WORDS: &[&str] = &[
    "inspektion",
    "wartung",
    "kundendienst",
    "durchsicht",
    "ölwechsel",
    "oelwechsel",
    "service",
    "servicing",
    "maintenance",
    "inspection",
];

/// Words (or parts of German compounds) of workshop visits that are no
/// service: tyres, repairs, warranty, accident, body, glass, … In one
/// compound they win over a service word (`Reifenservice`,
/// `Klimaservice`, `Garantiewartung` are no periodic service).
const WORKSHOP_WORDS: &[&str] = &[
    "reifen",
    "räder",
    "radwechsel",
    "felge",
    "reparatur",
    "instandsetz",
    "garantie",
    "gewährleistung",
    "kulanz",
    "unfall",
    "karosserie",
    "lack",
    "glas",
    "scheibe",
    "steinschlag",
    "schaden",
    "hagel",
    "rückruf",
    "diagnose",
    "fehlersuche",
    "bremse",
    "auspuff",
    "kupplung",
    "zahnriemen",
    "batterie",
    "klima",
    "zubehör",
    "nachrüst",
    "tyre",
    "tire",
    "wheel",
    "repair",
    "warranty",
    "goodwill",
    "accident",
    "body",
    "paint",
    "glass",
    "windscreen",
    "windshield",
    "recall",
    "damage",
    "brake",
    "clutch",
    "exhaust",
    "battery",
    "diagnos",
    "accessor",
];

/// Words of the statutory inspection (HU) and its emissions test (AU).
const INSPECTION_WORDS: &[&str] = &[
    "hu",
    "au",
    "tüv",
    "tuev",
    "hauptuntersuchung",
    "abgasuntersuchung",
];

/// What a workshop visit is, from the type (`Auftragsart`) the dealer's
/// system gives it. The type is read word by word (anything but a letter
/// or digit separates words, case does not matter):
///
/// - a service visit when a word names a service (`Inspektion`,
///   `Wartung`, `Service`, `Kundendienst`, `Durchsicht`, `Ölwechsel`,
///   `maintenance`, `inspection`, `oil change`, …: [`SERVICE_WORDS`])
///   and no workshop word is part of that same word;
/// - else an inspection (HU) visit when a word names it (`HU`, `HU/AU`,
///   `TÜV`, `Hauptuntersuchung`, `§29`);
/// - else a workshop visit when a word names other workshop work (tyres,
///   repairs, warranty, accident, body, glass, …: [`WORKSHOP_WORDS`]);
/// - an empty type is a service visit: a visit file without a type column
///   is a service-visit export (the import stores `service` for it);
/// - `None` for a type none of these names (a DMS's own codes such as
///   `WA` or `01`). Attribution counts it as a workshop visit
///   ([`UNRECOGNISED_VISIT`]) and the import's tally names it.
///
/// So `Inspektion + Reifenwechsel` is a service visit, `Reifenservice` a
/// workshop visit, `HU-Vorbereitung` an inspection visit.
pub fn visit_kind(kind: &str) -> Option<ResponseKind> {
    let k = kind.to_lowercase();
    if k.trim().is_empty() {
        return Some(ResponseKind::ServiceVisit);
    }
    let (mut service, mut inspection, mut workshop) = (false, false, false);
    for word in k
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let other = WORKSHOP_WORDS.iter().any(|w| word.contains(w));
        service |= !other && (SERVICE_WORDS.iter().any(|w| word.contains(w)) || word == "oil");
        inspection |= INSPECTION_WORDS.contains(&word);
        workshop |= other;
    }
    inspection |= k.contains("§29") || k.contains("§ 29");
    if service {
        Some(ResponseKind::ServiceVisit)
    } else if inspection {
        Some(ResponseKind::InspectionVisit)
    } else if workshop {
        Some(ResponseKind::WorkshopVisit)
    } else {
        None
    }
}

/// What attribution counts a visit of a type [`visit_kind`] does not know
/// as: a workshop visit. Not a service visit: counting every unknown type
/// as a service would credit service reminders with repairs and tyre
/// changes again, the very error that made them look better than they
/// are. The import's tally says how many visits of which types it was
/// (`ResponseTally::unrecognised_types`), so a dealer whose system uses
/// its own codes sees why its service reminders are credited with none.
pub const UNRECOGNISED_VISIT: ResponseKind = ResponseKind::WorkshopVisit;

/// One response, as attribution sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Customer number after identity merges.
    pub recipient: String,
    /// The vehicle it names: a visit's always, a response file's row's
    /// when it gives one.
    pub vin: Option<String>,
    pub kind: ResponseKind,
    pub date: Date,
    /// Cents.
    pub value: Option<i64>,
    /// `werkstatt.csv:214`.
    pub source: String,
}

impl Response {
    fn credited(&self) -> Credited {
        Credited {
            kind: self.kind,
            date: self.date,
            value: self.value.map(Money),
            source: self.source.clone(),
        }
    }
}

/// One message that went out, or one control record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exposure {
    pub id: u64,
    /// Customer number after identity merges.
    pub recipient: String,
    pub service: String,
    /// Its occasions, each with the vehicle it concerns (`None`: an
    /// occasion of the person).
    pub occasions: Vec<(OccasionKind, Option<String>)>,
    /// The day it was sent (a control record: would have been).
    pub sent: Date,
    pub control: bool,
    /// A response it holds from elsewhere (an appointment booked on the
    /// call): it takes no other, and a later response is not passed on
    /// to an older message.
    pub held: Option<String>,
}

/// What became of one response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Credited to this message or control record.
    Credited(u64),
    /// Credited to nothing, and why.
    Organic(String),
    /// Credited to nothing because the message it answers, this call task,
    /// holds the appointment booked on the call: the same act, counted
    /// once (with the task); organic in the import's tally, and why.
    Held(u64, String),
}

/// Whether `r` answers one of `e`'s occasions: its kind answers the
/// occasion's ([`answers`]), and when both name a vehicle it is the same
/// one. An occasion of the person, or a response that names no vehicle,
/// matches on the recipient alone.
fn answered_by(e: &Exposure, r: &Response) -> bool {
    e.occasions.iter().any(|(kind, vin)| {
        answers(*kind, r.kind)
            && match (vin, &r.vin) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    })
}

/// Credits `responses` to `exposures`; `window` gives a service's
/// attribution days. Returns a verdict per response (in `responses`
/// order). Pure: the hand-computed cases in the tests drive it.
pub fn credit(
    responses: &[Response],
    exposures: &[Exposure],
    window: &dyn Fn(&str) -> u32,
) -> Vec<Verdict> {
    let mut by_recipient: HashMap<&str, Vec<&Exposure>> = HashMap::new();
    for e in exposures {
        by_recipient.entry(&e.recipient).or_default().push(e);
    }
    for list in by_recipient.values_mut() {
        // Latest first; the higher id wins a tie (planned later).
        list.sort_by_key(|e| std::cmp::Reverse((e.sent, e.id)));
    }
    let mut order: Vec<usize> = (0..responses.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&responses[a], &responses[b]);
        (x.date, &x.source).cmp(&(y.date, &y.source))
    });
    let mut taken: HashMap<u64, usize> = HashMap::new();
    let mut verdicts = vec![Verdict::Organic(String::new()); responses.len()];
    for i in order {
        let r = &responses[i];
        let what = format!("{} {}", r.kind.name(), r.date);
        let Some(list) = by_recipient.get(r.recipient.as_str()) else {
            verdicts[i] = Verdict::Organic(format!(
                "{what}: nothing was sent to {} and they are in no control group",
                r.recipient
            ));
            continue;
        };
        let matching: Vec<&&Exposure> = list.iter().filter(|e| answered_by(e, r)).collect();
        let Some(latest) = matching.iter().find(|e| e.sent < r.date) else {
            verdicts[i] = Verdict::Organic(match matching.last() {
                None => format!(
                    "{what}: no message to {} is for an occasion it answers{}",
                    r.recipient,
                    r.vin
                        .as_deref()
                        .map(|v| format!(" (it concerns {v})"))
                        .unwrap_or_default()
                ),
                Some(first) => format!(
                    "{what}: the first message for it (#{}) went out on {}, not before",
                    first.id, first.sent
                ),
            });
            continue;
        };
        let days = r.date.days() - latest.sent.days();
        let limit = window(&latest.service);
        if days > limit as i32 {
            verdicts[i] = Verdict::Organic(format!(
                "{what}: the latest message for it (#{}, {}) went out {days} days before, outside the {limit} days of {}",
                latest.id, latest.sent, latest.service
            ));
            continue;
        }
        if let Some(held) = &latest.held {
            verdicts[i] = Verdict::Held(
                latest.id,
                format!(
                    "{what}: the latest message for it (#{}) is already credited with {held}",
                    latest.id
                ),
            );
            continue;
        }
        if let Some(&earlier) = taken.get(&latest.id) {
            let e = &responses[earlier];
            verdicts[i] = Verdict::Organic(format!(
                "{what}: the latest message for it (#{}) is already credited with the {} {} ({})",
                latest.id,
                e.kind.name(),
                e.date,
                e.source
            ));
            continue;
        }
        taken.insert(latest.id, i);
        verdicts[i] = Verdict::Credited(latest.id);
    }
    verdicts
}

/// The *why* line of a credited response:
/// `service visit 2027-01-08 (werkstatt.csv:214), 19 days after sending, value 412.00 €`.
pub fn why_line(c: &Credited, sent: Date, control: bool) -> String {
    let days = c.date.days() - sent.days();
    let after = if control {
        format!("{days} days after the message would have gone out (control group)")
    } else {
        format!("{days} days after sending")
    };
    let value = c
        .value
        .map(|v| format!(", value {v} €"))
        .unwrap_or_default();
    format!(
        "{} {} ({}), {after}{value}",
        c.kind.name(),
        c.date,
        c.source
    )
}

/// What one attribution pass found and changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub responses: u64,
    pub credited: u64,
    /// Of `credited`, to control records.
    pub to_control: u64,
    /// Including responses of unknown customers and vehicles.
    pub organic: u64,
    /// Messages whose credit this pass set, changed or took back.
    pub changed: u64,
    /// How the responses the caller asked about (by source, see
    /// [`attribute`]) were credited.
    pub brought: ResponseTally,
}

/// The note a response file gave a response, as a *why* line shows it.
const SHOWN_NOTE_CHARS: usize = 120;

/// Follows identity merges to the customer number a person is written to.
fn canonical<'a>(merges: &'a HashMap<String, String>, mut no: &'a str) -> &'a str {
    // Merges never form a cycle; the bound only guards a damaged store.
    for _ in 0..16 {
        match merges.get(no) {
            Some(s) if s != no => no = s,
            _ => break,
        }
    }
    no
}

/// Whom a response is about, after identity merges: the customer it
/// names, else the holder of the vehicle it names; `None` when neither is
/// known.
fn recipient_of(
    store: &TenantStore,
    merges: &HashMap<String, String>,
    customer_no: &str,
    vin: &str,
) -> store::Result<Option<String>> {
    let holder = if customer_no.is_empty() {
        match store.vehicle(vin)? {
            Some(vehicle) => vehicle.customer_no,
            None => return Ok(None),
        }
    } else {
        customer_no.to_string()
    };
    Ok(Some(canonical(merges, &holder).to_string()))
}

/// A stored visit as a response, or `None` when no holder is known for it.
fn response_of(
    store: &TenantStore,
    merges: &HashMap<String, String>,
    v: &ServiceVisit,
) -> store::Result<Option<Response>> {
    let Some(recipient) = recipient_of(store, merges, &v.customer_no, &v.vin)? else {
        return Ok(None);
    };
    Ok(Some(Response {
        recipient,
        vin: Some(v.vin.clone()),
        kind: visit_kind(&v.kind).unwrap_or(UNRECOGNISED_VISIT),
        date: v.date,
        value: v.value,
        source: if v.source.is_empty() {
            format!("visit of {}", v.vin)
        } else {
            v.source.clone()
        },
    }))
}

/// A reported response (response file) as a response, or `None` when
/// neither its customer nor its vehicle is known (any more).
fn reported_of(
    store: &TenantStore,
    merges: &HashMap<String, String>,
    r: &ReportedResponse,
) -> store::Result<Option<Response>> {
    let Some(recipient) = recipient_of(store, merges, &r.customer_no, &r.vin)? else {
        return Ok(None);
    };
    Ok(Some(Response {
        recipient,
        vin: (!r.vin.is_empty()).then(|| r.vin.clone()),
        kind: r.kind,
        date: r.date,
        value: r.value,
        source: r.source.clone(),
    }))
}

/// `: "Inspektion und Reifen"`, bounded, or nothing for no note.
fn note_suffix(note: &str) -> String {
    if note.is_empty() {
        return String::new();
    }
    let mut chars = note.chars().filter(|c| !c.is_control());
    let head: String = chars.by_ref().take(SHOWN_NOTE_CHARS).collect();
    let more = if chars.next().is_some() { "…" } else { "" };
    format!(": \"{head}{more}\"")
}

fn exposure_of(merges: &HashMap<String, String>, m: &Message) -> Option<Exposure> {
    let (sent, control) = match m.status {
        MessageStatus::Control => (m.send_on, true),
        MessageStatus::Sent => (store::local_day(store::sent_at(m)?)?, false),
        _ => return None,
    };
    Some(Exposure {
        id: m.id,
        recipient: canonical(merges, &m.recipient).to_string(),
        service: m.service.clone(),
        occasions: m
            .occasions
            .iter()
            .map(|o| (o.kind, o.vin.clone()))
            .collect(),
        sent,
        control,
        held: None,
    })
}

/// Attribution windows by service, days.
pub type Windows = HashMap<String, u32>;

/// Each service's attribution window from the brand policy.
pub fn windows_of(brand: &touchpoint_common::policy::BrandPolicy) -> Windows {
    brand
        .services
        .iter()
        .map(|(id, s)| (id.clone(), s.attribution_days))
        .collect()
}

/// A service's attribution window: the policy's, or the default.
fn window_of(windows: &Windows, service: &str) -> u32 {
    windows
        .get(service)
        .copied()
        .unwrap_or(DEFAULT_ATTRIBUTION_DAYS)
}

/// What one attribution pass reads from a tenant's store.
struct Gathered {
    /// Identity merges: merged customer number → the one it is written to.
    merges: HashMap<String, String>,
    /// Every response whose customer or vehicle is known.
    responses: Vec<Response>,
    /// Notes of reported responses, by their index in `responses`.
    notes: HashMap<usize, String>,
    /// Responses whose customer and vehicle are unknown (recipient empty):
    /// organic whatever was sent.
    unknown: Vec<Response>,
    /// Visits of types [`visit_kind`] does not know: (type, source).
    unrecognised: Vec<(String, String)>,
    /// The credits stored now, by message.
    stored: BTreeMap<u64, Credited>,
    /// Call tasks holding the appointment booked on the call, with the
    /// words that say so: dispatch's credits, not this pass's to move; and
    /// anonymous messages (erased, or past retention) with a credit, kept.
    booked: BTreeMap<u64, String>,
    /// Every message sent and every control record.
    exposures: Vec<Exposure>,
}

fn gather(store: &TenantStore) -> Result<Gathered, StoreError> {
    let merges = store.merge_map()?;
    let mut responses = Vec::new();
    let mut notes: HashMap<usize, String> = HashMap::new();
    let mut unknown = Vec::new();
    let mut unrecognised = Vec::new();
    for v in store.visits() {
        let v = v?;
        if visit_kind(&v.kind).is_none() {
            unrecognised.push((v.kind.clone(), v.source.clone()));
        }
        match response_of(store, &merges, &v)? {
            Some(r) => responses.push(r),
            None => unknown.push(Response {
                recipient: String::new(),
                vin: Some(v.vin),
                kind: visit_kind(&v.kind).unwrap_or(UNRECOGNISED_VISIT),
                date: v.date,
                value: v.value,
                source: v.source,
            }),
        }
    }
    let mut reported_sources = std::collections::HashSet::new();
    for r in store.responses() {
        let r = r?;
        reported_sources.insert(r.source.clone());
        match reported_of(store, &merges, &r)? {
            Some(response) => {
                if !r.note.is_empty() {
                    notes.insert(responses.len(), r.note);
                }
                responses.push(response);
            }
            None => unknown.push(Response {
                recipient: String::new(),
                vin: (!r.vin.is_empty()).then_some(r.vin),
                kind: r.kind,
                date: r.date,
                value: r.value,
                source: r.source,
            }),
        }
    }
    let stored = store.credits()?;
    // Appointments booked on a call are credited to the call task by
    // dispatch when the call centre reports them: not this pass's to
    // move, and the task holds its one response already (a visit after
    // it is the same act, not a response to an older message). An
    // appointment from a response file (its source one of theirs) is this
    // pass's.
    let booked_on_call = |m: &Message| {
        m.channel == Channel::Phone
            && stored.get(&m.id).is_some_and(|c| {
                c.kind == ResponseKind::Appointment && !reported_sources.contains(c.source.as_str())
            })
    };
    let mut booked: BTreeMap<u64, String> = BTreeMap::new();
    let mut exposures = Vec::new();
    for m in store.messages() {
        let m = m?;
        // A message made anonymous (its person erased, or past the brand's
        // retention) answers nobody any more; the credit it has is what
        // results and the ledger keep of it, never taken back.
        if m.recipient.starts_with(crate::erasure::PSEUDONYM_PREFIX) {
            if stored.contains_key(&m.id) {
                booked.insert(m.id, "anonymous".into());
            }
            continue;
        }
        let held = booked_on_call(&m).then(|| {
            let source = stored.get(&m.id).map(|c| c.source.as_str()).unwrap_or("");
            format!("the appointment booked on the call ({source})")
        });
        if let Some(h) = &held {
            booked.insert(m.id, h.clone());
        }
        if let Some(mut e) = exposure_of(&merges, &m) {
            e.held = held;
            exposures.push(e);
        }
    }
    Ok(Gathered {
        merges,
        responses,
        notes,
        unknown,
        unrecognised,
        stored,
        booked,
        exposures,
    })
}

/// A control record with the days of every response that answers it,
/// whatever its window: learning evaluates the window each lead time would
/// have given the member against these (`crate::learning`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlResponses {
    pub service: String,
    pub due: Date,
    /// The day the member was drawn (its record planned): a lead whose
    /// send day lies before it cannot be judged on the member, because
    /// whoever came in between was never drawn.
    pub drawn: Date,
    /// Days of the responses that answer its occasions, ascending.
    pub days: Vec<Date>,
    /// The first day on or after `drawn` the work was done as the planner
    /// sees it ([`closes`]): from then on no reminder of the occasion is
    /// sent (`crate::planner::occasions::answered`), so a lead whose send
    /// day comes later cannot be judged on the member.
    pub done: Option<Date>,
}

/// Whether `r` does the work of an occasion of `kind` on `vin`, as the
/// planner sees it: the service visit of a service due, the inspection
/// visit of an inspection, of that vehicle (`crate::planner::recipients::
/// Done`). Other kinds are never closed by a visit.
fn closes(kind: OccasionKind, vin: &Option<String>, r: &Response) -> bool {
    let work = match kind {
        OccasionKind::ServiceDue => r.kind == ResponseKind::ServiceVisit,
        OccasionKind::InspectionDue => r.kind == ResponseKind::InspectionVisit,
        _ => false,
    };
    work && vin.is_some() && *vin == r.vin
}

/// What answered each of a tenant's messages and control records, for
/// learning (`crate::learning`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answers {
    /// Every control record with the days of the responses that answer it.
    pub controls: Vec<ControlResponses>,
    /// Per message that went out (by id), the days of the responses that
    /// answer it ([`answered_by`]), ascending, whichever message or record
    /// the attribution pass credits them to. Learning judges a message by
    /// these, as it judges a control member: a response the pass gives to
    /// a later message (an inspection reminder sent after a service
    /// reminder of the same vehicle: a service visit answers both) still
    /// says the customer came within the first one's window, which is what
    /// the control baseline counts for the member. Judged by the credit
    /// alone, a message sent earlier (a longer lead) lost more of its
    /// responses to later messages than a short lead did, and short leads
    /// looked better than they are.
    pub messages: HashMap<u64, Vec<Date>>,
}

/// Every control record and every message that went out of a tenant,
/// with the days of the responses that answer it ([`answered_by`], the
/// table and the vehicle as for a credit).
pub fn answers_of(store: &TenantStore) -> Result<Answers, StoreError> {
    let g = gather(store)?;
    let mut by_recipient: HashMap<&str, Vec<&Response>> = HashMap::new();
    for r in &g.responses {
        by_recipient.entry(&r.recipient).or_default().push(r);
    }
    let dues: HashMap<u64, (Date, Option<Date>)> = store
        .messages()
        .filter_map(|m| m.ok())
        .filter(|m| m.status == MessageStatus::Control)
        .map(|m| (m.id, (store::lead_due(&m), store::local_day(m.planned_at))))
        .collect();
    let mut out = Answers::default();
    for e in &g.exposures {
        let mut days: Vec<Date> = by_recipient
            .get(e.recipient.as_str())
            .into_iter()
            .flatten()
            .filter(|r| answered_by(e, r))
            .map(|r| r.date)
            .collect();
        days.sort();
        if !e.control {
            out.messages.insert(e.id, days);
            continue;
        }
        let (due, drawn) = dues.get(&e.id).copied().unwrap_or((e.sent, None));
        let drawn = drawn.unwrap_or(e.sent).min(e.sent);
        let done = by_recipient
            .get(e.recipient.as_str())
            .into_iter()
            .flatten()
            .filter(|r| r.date >= drawn)
            .filter(|r| e.occasions.iter().any(|(k, vin)| closes(*k, vin, r)))
            .map(|r| r.date)
            .min();
        out.controls.push(ControlResponses {
            service: e.service.clone(),
            due,
            drawn,
            days,
            done,
        });
    }
    Ok(out)
}

/// What [`explain`] lists.
#[derive(Clone, Debug, Default)]
pub struct Listing<'a> {
    /// Only this customer's responses (after identity merges).
    pub customer: Option<&'a str>,
    /// Only those credited to nothing.
    pub organic_only: bool,
    /// At most this many lines, newest first.
    pub limit: usize,
}

/// The tenant's responses and where the attribution pass over what is
/// stored now credits each, or why it credits it to nothing: the same
/// pass [`attribute`] runs, written nowhere. Blocking.
pub fn explain(
    store: &TenantStore,
    windows: &Windows,
    listing: &Listing<'_>,
) -> Result<touchpoint_common::report::ResponseList, StoreError> {
    use touchpoint_common::report::{ResponseLine, ResponseList, ResponseVerdict};
    let g = gather(store)?;
    let verdicts = credit(&g.responses, &g.exposures, &|s| window_of(windows, s));
    let sent: HashMap<u64, (bool, Date)> = g
        .exposures
        .iter()
        .map(|e| (e.id, (e.control, e.sent)))
        .collect();
    let wanted = listing
        .customer
        .map(|c| canonical(&g.merges, c).to_string());
    let walk_in =
        "neither its customer nor its vehicle is known (a walk-in, or a VIN never imported)";
    let lines = g
        .responses
        .iter()
        .zip(verdicts)
        .map(|(r, v)| {
            let verdict = match v {
                Verdict::Credited(id) => match sent.get(&id) {
                    Some(&(true, sent)) => ResponseVerdict::Control { id, sent },
                    Some(&(false, sent)) => ResponseVerdict::Message { id, sent },
                    None => ResponseVerdict::Organic {
                        why: format!("message #{id} is gone"),
                    },
                },
                Verdict::Organic(why) | Verdict::Held(_, why) => ResponseVerdict::Organic { why },
            };
            (r, verdict)
        })
        .chain(g.unknown.iter().map(|r| {
            (
                r,
                ResponseVerdict::Organic {
                    why: format!("{} {}: {walk_in}", r.kind.name(), r.date),
                },
            )
        }))
        .filter(|(r, _)| wanted.as_deref().is_none_or(|w| r.recipient == w))
        .filter(|(_, v)| !listing.organic_only || matches!(v, ResponseVerdict::Organic { .. }));
    let mut list = ResponseList {
        lines: Vec::new(),
        matched: 0,
        to_messages: 0,
        to_control: 0,
        organic: 0,
    };
    let mut all: Vec<ResponseLine> = Vec::new();
    for (r, verdict) in lines {
        list.matched += 1;
        match verdict {
            ResponseVerdict::Message { .. } => list.to_messages += 1,
            ResponseVerdict::Control { .. } => list.to_control += 1,
            ResponseVerdict::Organic { .. } => list.organic += 1,
        }
        all.push(ResponseLine {
            recipient: r.recipient.clone(),
            vin: r.vin.clone().unwrap_or_default(),
            kind: r.kind,
            date: r.date,
            value: r.value.map(Money),
            source: r.source.clone(),
            verdict,
        });
    }
    // Newest first; the source breaks ties the same way every time.
    all.sort_by(|a, b| (b.date, &b.source).cmp(&(a.date, &a.source)));
    all.truncate(listing.limit);
    list.lines = all;
    Ok(list)
}

/// Recomputes the tenant's credits from its visits, reported responses and
/// messages and writes what changed (see the module's comment). `brought`
/// picks, by source (`werkstatt.csv:214`), the responses whose credits
/// [`Summary::brought`] tallies: an import's own. Holds the outbox's
/// planning lock from reading to writing, so dispatch cannot move a message
/// in between. Blocking.
pub fn attribute(
    store: &TenantStore,
    windows: &Windows,
    brought: &dyn Fn(&str) -> bool,
) -> Result<Summary, StoreError> {
    let _moving = store.plan_lock();
    let Gathered {
        merges: _,
        responses,
        notes,
        unknown,
        unrecognised,
        stored,
        booked,
        exposures,
    } = gather(store)?;
    let unknown_brought = unknown.iter().filter(|r| brought(&r.source)).count() as u64;
    let unknown_dates: Vec<Date> = unknown.iter().map(|r| r.date).collect();
    // The import's own visits of types `visit_kind` does not know, by type.
    let mut unrecognised_brought: HashMap<&str, u64> = HashMap::new();
    for (kind, source) in &unrecognised {
        if brought(source) {
            *unrecognised_brought.entry(kind.as_str()).or_default() += 1;
        }
    }
    let unknown = ResponseTally {
        organic: unknown.len() as u64,
        ..ResponseTally::default()
    };
    let verdicts = credit(&responses, &exposures, &|s| window_of(windows, s));
    let mut summary = Summary {
        responses: responses.len() as u64 + unknown.organic,
        organic: unknown.organic,
        brought: ResponseTally {
            organic: unknown_brought,
            ..ResponseTally::default()
        },
        ..Summary::default()
    };
    summary
        .brought
        .set_unrecognised(unrecognised_brought.iter().map(|(k, &n)| (*k, n)));
    let control: HashMap<u64, (bool, Date)> = exposures
        .iter()
        .map(|e| (e.id, (e.control, e.sent)))
        .collect();
    let mut wanted: BTreeMap<u64, Credited> = BTreeMap::new();
    let mut wanted_notes: HashMap<u64, &str> = HashMap::new();
    for (i, (r, v)) in responses.iter().zip(&verdicts).enumerate() {
        let ours = brought(&r.source);
        match v {
            Verdict::Credited(id) => {
                summary.credited += 1;
                let to_control = control.get(id).is_some_and(|c| c.0);
                if to_control {
                    summary.to_control += 1;
                }
                if ours && to_control {
                    summary.brought.to_control += 1;
                } else if ours {
                    summary.brought.to_messages += 1;
                }
                wanted.insert(*id, r.credited());
                if let Some(note) = notes.get(&i) {
                    wanted_notes.insert(*id, note);
                }
            }
            Verdict::Organic(why) | Verdict::Held(_, why) => {
                summary.organic += 1;
                if ours {
                    summary.brought.organic += 1;
                }
                tracing::debug!(tenant = %store.id(), source = %r.source, "organic response: {why}");
            }
        }
    }
    // Every response by its month and where it went: the appointments
    // booked on calls with their call tasks, the unknown ones organic.
    let mut months = ResponseMonths::new();
    for (r, v) in responses.iter().zip(&verdicts) {
        let m = months.entry(month_of(r.date)).or_default();
        match v {
            Verdict::Credited(id) if control.get(id).is_some_and(|c| c.0) => m.to_control += 1,
            Verdict::Credited(_) => m.to_messages += 1,
            Verdict::Organic(_) => m.organic += 1,
            // The same act as the appointment booked on that call, which
            // is counted below with its call task: not twice.
            Verdict::Held(..) => {}
        }
    }
    for d in &unknown_dates {
        months.entry(month_of(*d)).or_default().organic += 1;
    }
    for c in booked.keys().filter_map(|id| stored.get(id)) {
        months.entry(month_of(c.date)).or_default().to_messages += 1;
    }
    let now = Timestamp::now();
    let mut changes = Vec::new();
    let ids: std::collections::BTreeSet<u64> =
        stored.keys().chain(wanted.keys()).copied().collect();
    for id in ids.into_iter().filter(|id| !booked.contains_key(id)) {
        let (old, new) = (stored.get(&id), wanted.get(&id));
        if old == new {
            continue;
        }
        let Some(m) = store.message(id)? else {
            continue;
        };
        let mut after = m.clone();
        let (is_control, sent) = control.get(&id).copied().unwrap_or((false, m.send_on));
        let line = match (old, new) {
            (_, Some(c)) => {
                why_line(c, sent, is_control)
                    + &note_suffix(wanted_notes.get(&id).copied().unwrap_or_default())
            }
            (Some(c), None) => format!(
                "taken back: the {} {} ({}) is no longer in the dealer's data or now belongs to a later message",
                c.kind.name(),
                c.date,
                c.source
            ),
            (None, None) => continue,
        };
        after.why.push(Why {
            step: Step::Response,
            text: line.clone(),
        });
        after
            .history
            .push((now, m.status, format!("response: {line}")));
        let mut change = Change::new(m, after);
        change.credit = Some(new.cloned());
        changes.push(change);
    }
    summary.changed = changes.len() as u64;
    store.apply(&changes)?;
    store.set_response_months(&months)?;
    Ok(summary)
}

#[cfg(test)]
mod tests;
