use std::path::Path;
use std::sync::Arc;

use touchpoint_common::domain::{
    Channel, Counts, ImportReport, ImportStatus, MatchReason, MergeRecord, ResponseTally, Timestamp,
};
use touchpoint_common::outbox::{Dispatch, Message, MessageStatus, Occasion, Step, Why};
use touchpoint_common::policy::OccasionKind;
use touchpoint_common::report::ResponseKind;
use touchpoint_common::Date;

use super::*;
use crate::import::{import_file, ImportOptions};
use crate::store::{PlanWrite, Stores, TenantStore};

fn d(y: i32, m: u32, day: u32) -> Date {
    Date::from_ymd(y, m, day).expect("valid test date")
}

fn visit(recipient: &str, kind: ResponseKind, date: Date, line: u32) -> Response {
    Response {
        recipient: recipient.into(),
        vin: None,
        kind,
        date,
        value: None,
        source: format!("werkstatt.csv:{line}"),
    }
}

fn sent(id: u64, recipient: &str, occasion: OccasionKind, on: Date) -> Exposure {
    Exposure {
        id,
        recipient: recipient.into(),
        service: "service_due".into(),
        occasions: vec![(occasion, None)],
        sent: on,
        control: false,
        held: None,
    }
}

fn sixty(_: &str) -> u32 {
    60
}

#[test]
fn of_two_messages_before_a_visit_the_later_one_is_credited() {
    let v = [visit("K1", ResponseKind::ServiceVisit, d(2027, 1, 20), 2)];
    let e = [
        sent(1, "K1", OccasionKind::ServiceDue, d(2027, 1, 1)),
        sent(2, "K1", OccasionKind::ServiceDue, d(2027, 1, 10)),
    ];
    assert_eq!(credit(&v, &e, &sixty), vec![Verdict::Credited(2)]);
}

#[test]
fn a_visit_before_any_message_is_organic_and_says_so() {
    let v = [visit("K1", ResponseKind::ServiceVisit, d(2027, 1, 20), 2)];
    let e = [sent(1, "K1", OccasionKind::ServiceDue, d(2027, 2, 1))];
    assert_eq!(
        credit(&v, &e, &sixty),
        vec![Verdict::Organic(
            "service visit 2027-01-20: the first message for it (#1) went out on 2027-02-01, not before".into()
        )]
    );
    // A visit on the day of sending was booked before the message came.
    let same_day = [visit("K1", ResponseKind::ServiceVisit, d(2027, 2, 1), 3)];
    assert!(matches!(
        credit(&same_day, &e, &sixty)[0],
        Verdict::Organic(_)
    ));
}

#[test]
fn a_visit_after_the_window_is_organic_the_last_day_is_inside() {
    let e = [sent(1, "K1", OccasionKind::ServiceDue, d(2027, 1, 1))];
    // 2027-01-01 + 60 days = 2027-03-02.
    let inside = [visit("K1", ResponseKind::ServiceVisit, d(2027, 3, 2), 2)];
    assert_eq!(credit(&inside, &e, &sixty), vec![Verdict::Credited(1)]);
    let after = [visit("K1", ResponseKind::ServiceVisit, d(2027, 3, 3), 2)];
    assert_eq!(
        credit(&after, &e, &sixty),
        vec![Verdict::Organic(
            "service visit 2027-03-03: the latest message for it (#1, 2027-01-01) went out 61 days before, outside the 60 days of service_due".into()
        )]
    );
    // The window is the service's own.
    assert_eq!(credit(&after, &e, &|_| 90), vec![Verdict::Credited(1)]);
}

#[test]
fn a_control_members_visit_is_credited_to_the_control_record() {
    let v = [visit("K7", ResponseKind::ServiceVisit, d(2027, 1, 20), 9)];
    let mut c = sent(5, "K7", OccasionKind::ServiceDue, d(2027, 1, 3));
    c.control = true;
    assert_eq!(credit(&v, &[c], &sixty), vec![Verdict::Credited(5)]);
}

#[test]
fn a_response_credits_only_messages_whose_occasion_it_answers() {
    let e = [
        sent(1, "K1", OccasionKind::WarrantyEnd, d(2027, 1, 10)),
        sent(2, "K1", OccasionKind::InspectionDue, d(2027, 1, 5)),
        sent(3, "K2", OccasionKind::Birthday, d(2027, 1, 5)),
    ];
    let v = [
        // The warranty offer is later, but a visit does not answer it.
        visit("K1", ResponseKind::ServiceVisit, d(2027, 1, 20), 2),
        visit("K2", ResponseKind::ServiceVisit, d(2027, 1, 20), 3),
    ];
    assert_eq!(
        credit(&v, &e, &sixty),
        vec![
            Verdict::Credited(2),
            Verdict::Organic(
                "service visit 2027-01-20: no message to K2 is for an occasion it answers".into()
            ),
        ]
    );
    assert!(answers(
        OccasionKind::InspectionDue,
        ResponseKind::InspectionVisit
    ));
    assert!(!answers(
        OccasionKind::ServiceDue,
        ResponseKind::InspectionVisit
    ));
    assert!(answers(
        OccasionKind::WarrantyEnd,
        ResponseKind::OfferAccepted
    ));
    assert!(answers(OccasionKind::Campaign, ResponseKind::ServiceVisit));
}

#[test]
fn a_message_holds_one_response_the_first() {
    let e = [sent(1, "K1", OccasionKind::ServiceDue, d(2027, 1, 1))];
    // Given out of order: the earlier visit is credited whatever the order.
    let v = [
        visit("K1", ResponseKind::ServiceVisit, d(2027, 1, 30), 3),
        visit("K1", ResponseKind::ServiceVisit, d(2027, 1, 20), 2),
    ];
    assert_eq!(
        credit(&v, &e, &sixty),
        vec![
            Verdict::Organic(
                "service visit 2027-01-30: the latest message for it (#1) is already credited with the service visit 2027-01-20 (werkstatt.csv:2)".into()
            ),
            Verdict::Credited(1),
        ]
    );
}

/// The reviewer's case: an email, then a call that booked an
/// appointment, then the visit. The visit is the booked appointment kept,
/// not a second response to the email.
#[test]
fn a_visit_after_an_appointment_booked_on_a_call_is_not_passed_to_an_older_message() {
    let email = sent(1, "K1", OccasionKind::ServiceDue, d(2027, 1, 1));
    let mut call = sent(2, "K1", OccasionKind::ServiceDue, d(2027, 1, 10));
    call.held = Some("the appointment booked on the call (calls.csv:3)".into());
    let v = [visit("K1", ResponseKind::ServiceVisit, d(2027, 1, 20), 7)];
    let verdicts = credit(&v, &[email, call], &sixty);
    assert!(
        matches!(&verdicts[0], Verdict::Held(2, why) if why.contains("#2") && why.contains("calls.csv:3")),
        "{verdicts:?}"
    );
}

#[test]
fn nobody_contacted_is_organic() {
    let v = [visit("K9", ResponseKind::ServiceVisit, d(2027, 1, 20), 2)];
    assert_eq!(
        credit(&v, &[], &sixty),
        vec![Verdict::Organic(
            "service visit 2027-01-20: nothing was sent to K9 and they are in no control group"
                .into()
        )]
    );
}

/// A visit's type says what it was. Before, every type that was not the
/// HU was a service visit, tyre changes and repairs included: that was the
/// bug these cases now pin.
#[test]
fn visit_kinds_mean_what_they_say() {
    for k in [
        "HU",
        "HU/AU",
        "hu au",
        "HU+AU",
        "AU",
        "TÜV",
        "Hauptuntersuchung",
        "§29 StVZO",
        "HU-Vorbereitung",
    ] {
        assert_eq!(visit_kind(k), Some(ResponseKind::InspectionVisit), "{k}");
    }
    for k in [
        "Inspektion",
        "Jahresinspektion",
        "Wartung",
        "Service",
        "service",
        "Kundendienst",
        "Durchsicht",
        "Ölwechsel",
        "Ölservice",
        "maintenance",
        "Inspection",
        "oil change",
        "Inspektion + Reifenwechsel",
        "Inspektion und HU",
        // An empty type: a visit file without the column is a service export.
        "",
        "  ",
    ] {
        assert_eq!(visit_kind(k), Some(ResponseKind::ServiceVisit), "{k:?}");
    }
    for k in [
        "Reifenwechsel",
        "Räderwechsel",
        "Reifenservice",
        "Klimaservice",
        "Garantie",
        "Garantiewartung",
        "Kulanz",
        "Unfall",
        "Unfallinstandsetzung",
        "Karosserie",
        "Lackierung",
        "Glas",
        "Windschutzscheibe",
        "Reparatur",
        "Reparatur Getriebe",
        "Rückruf",
        "tyre change",
        "repair",
        "warranty",
    ] {
        assert_eq!(visit_kind(k), Some(ResponseKind::WorkshopVisit), "{k}");
    }
    // A DMS's own codes, and a horn that is not an HU.
    for k in ["WA", "01", "Hupe defekt", "Sonstiges"] {
        assert_eq!(visit_kind(k), None, "{k}");
    }
    assert_eq!(UNRECOGNISED_VISIT, ResponseKind::WorkshopVisit);
}

/// A message about a vehicle, as [`sent`] makes them.
fn about(id: u64, occasion: OccasionKind, vin: &str, on: Date) -> Exposure {
    let mut e = sent(id, "K1", occasion, on);
    e.occasions = vec![(occasion, Some(vin.into()))];
    e
}

/// A visit of a vehicle of K1's, of the type the dealer's file gave it.
fn visit_of(vin: &str, kind: &str, date: Date, line: u32) -> Response {
    let mut r = visit(
        "K1",
        visit_kind(kind).unwrap_or(UNRECOGNISED_VISIT),
        date,
        line,
    );
    r.vin = Some(vin.into());
    r
}

#[test]
fn a_tyre_change_of_the_same_vehicle_does_not_answer_its_service_reminder() {
    let e = [about(1, OccasionKind::ServiceDue, "VA", d(2027, 1, 1))];
    let tyres = [visit_of("VA", "Reifenwechsel", d(2027, 1, 20), 2)];
    assert_eq!(
        credit(&tyres, &e, &sixty),
        vec![Verdict::Organic(
            "workshop visit 2027-01-20: no message to K1 is for an occasion it answers (it concerns VA)".into()
        )]
    );
    // The service that follows is the response.
    let both = [
        tyres[0].clone(),
        visit_of("VA", "Inspektion", d(2027, 2, 3), 3),
    ];
    assert!(matches!(credit(&both, &e, &sixty)[1], Verdict::Credited(1)));
}

#[test]
fn a_service_of_the_customers_other_vehicle_does_not_answer_the_first_vehicles_reminder() {
    let e = [about(1, OccasionKind::ServiceDue, "VA", d(2027, 1, 1))];
    let other = [visit_of("VB", "Inspektion", d(2027, 1, 20), 2)];
    assert_eq!(
        credit(&other, &e, &sixty),
        vec![Verdict::Organic(
            "service visit 2027-01-20: no message to K1 is for an occasion it answers (it concerns VB)".into()
        )]
    );
    // A message about each vehicle: each visit answers its own, even
    // when the other vehicle's message is the later one.
    let e = [
        about(1, OccasionKind::ServiceDue, "VA", d(2027, 1, 1)),
        about(2, OccasionKind::ServiceDue, "VB", d(2027, 1, 5)),
    ];
    let v = [
        visit_of("VA", "Wartung", d(2027, 1, 20), 2),
        visit_of("VB", "Inspektion", d(2027, 1, 21), 3),
    ];
    assert_eq!(
        credit(&v, &e, &sixty),
        vec![Verdict::Credited(1), Verdict::Credited(2)]
    );
}

#[test]
fn a_workshop_visit_answers_an_inspection_reminder_of_the_same_vehicle() {
    let e = [about(1, OccasionKind::InspectionDue, "VA", d(2027, 1, 1))];
    let repair = [visit_of("VA", "Reparatur", d(2027, 1, 20), 2)];
    assert_eq!(credit(&repair, &e, &sixty), vec![Verdict::Credited(1)]);
    // Not of another vehicle.
    let other = [visit_of("VB", "Reparatur", d(2027, 1, 20), 2)];
    assert!(matches!(credit(&other, &e, &sixty)[0], Verdict::Organic(_)));
}

#[test]
fn an_unrecognised_type_is_a_workshop_visit() {
    let e = [
        about(1, OccasionKind::ServiceDue, "VA", d(2027, 1, 1)),
        about(2, OccasionKind::InspectionDue, "VB", d(2027, 1, 1)),
    ];
    let v = [
        visit_of("VA", "WA", d(2027, 1, 20), 2),
        visit_of("VB", "WA", d(2027, 1, 20), 3),
    ];
    let verdicts = credit(&v, &e, &sixty);
    assert!(
        matches!(&verdicts[0], Verdict::Organic(why) if why.starts_with("workshop visit 2027-01-20:")),
        "{verdicts:?}"
    );
    assert_eq!(verdicts[1], Verdict::Credited(2));
}

#[test]
fn a_response_or_an_occasion_without_a_vehicle_matches_on_the_recipient() {
    // An appointment by customer number answers the reminder about a vehicle.
    let e = [about(1, OccasionKind::ServiceDue, "VA", d(2027, 1, 1))];
    let appointment = [visit("K1", ResponseKind::Appointment, d(2027, 1, 9), 2)];
    assert_eq!(credit(&appointment, &e, &sixty), vec![Verdict::Credited(1)]);
    // A visit of any vehicle answers an occasion of the person (a history
    // row without a VIN).
    let e = [sent(1, "K1", OccasionKind::ServiceDue, d(2027, 1, 1))];
    let v = [visit_of("VB", "Inspektion", d(2027, 1, 20), 2)];
    assert_eq!(credit(&v, &e, &sixty), vec![Verdict::Credited(1)]);
}

#[test]
fn the_why_line_cites_the_row_the_days_and_the_value() {
    let c = Credited {
        kind: ResponseKind::ServiceVisit,
        date: d(2027, 1, 8),
        value: Some(Money(41_200)),
        source: "werkstatt.csv:214".into(),
    };
    assert_eq!(
        why_line(&c, d(2026, 12, 20), false),
        "service visit 2027-01-08 (werkstatt.csv:214), 19 days after sending, value 412.00 €"
    );
}

// ----- on a real store, through real imports -----------------------------------

struct Room {
    dir: tempfile::TempDir,
    _stores: Stores,
    store: Arc<TenantStore>,
}

impl Room {
    /// K1 (vehicle V…01), K2 (V…02) and K3 (V…03), imported from a file.
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (stores, store) = crate::testkit::one_tenant(&dir.path().join("state"));
        let room = Self {
            dir,
            _stores: stores,
            store,
        };
        room.import(
            "kunden.csv",
            "Kundennummer;Nachname;FIN;Erstzulassung\n\
             K1;Berg;WVWZZZ1KZ6W000001;01.03.2020\n\
             K2;Kurz;WVWZZZ1KZ6W000002;01.03.2020\n\
             K3;Lang;WVWZZZ1KZ6W000003;01.03.2020\n",
        );
        room
    }

    /// Imports an export (which credits its visits), then recounts what
    /// the credits are now (a pass that changes nothing).
    fn import(&self, name: &str, text: &str) -> Summary {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write export");
        let report = import_file(
            &self.store,
            Path::new(&path),
            name,
            &ImportOptions::default(),
        )
        .expect("import");
        assert!(
            report.is_committed() || matches!(report.status, ImportStatus::AlreadyImported { .. }),
            "{:?}",
            report.status
        );
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let s = attribute(&self.store, &Windows::default(), &|_| false).expect("attribute");
        assert_eq!(s.changed, 0, "the import's own pass left nothing to do");
        s
    }

    /// A message sent to `recipient` on `on` for a service due.
    fn sent(&self, recipient: &str, on: Date, status: MessageStatus) -> u64 {
        self.sent_for(recipient, on, status, OccasionKind::ServiceDue)
    }

    /// A message sent to `recipient` on `on` for an occasion of `kind`.
    fn sent_for(
        &self,
        recipient: &str,
        on: Date,
        status: MessageStatus,
        kind: OccasionKind,
    ) -> u64 {
        self.sent_about(recipient, on, status, kind, None)
    }

    /// A message sent to `recipient` on `on` for an occasion of `kind`
    /// about vehicle `vin` (`None`: of the person).
    fn sent_about(
        &self,
        recipient: &str,
        on: Date,
        status: MessageStatus,
        kind: OccasionKind,
        vin: Option<&str>,
    ) -> u64 {
        let id = self.store.reserve_message_ids(1).expect("id");
        let at = Timestamp::from_date(on).0 + 12 * 3_600_000;
        let m = Message {
            id,
            message_id: format!("<tp.d001.{id}@test>"),
            recipient: recipient.into(),
            channel: Channel::Email,
            service: "service_due".into(),
            template: "service_due".into(),
            occasions: vec![Occasion {
                key: format!("service_due:{recipient}:{id}"),
                service: "service_due".into(),
                kind,
                vin: vin.map(str::to_string),
                due: on.add_days(21),
                reason: "test".into(),
                value: 0,
            }],
            send_on: on,
            send_at: 600,
            cost: 0,
            value: 0,
            status,
            why: vec![Why {
                step: Step::Occasion,
                text: "test".into(),
            }],
            planned_at: Timestamp(at),
            policy: 0,
            history: vec![(Timestamp(at), status, "test".into())],
            dispatch: Dispatch::default(),
        };
        self.store
            .commit_plan(&PlanWrite {
                new: &[m],
                revised: &[],
                stamp: 0,
            })
            .expect("write message");
        id
    }

    /// Imports an export and returns its report, row errors and all.
    fn import_report(&self, name: &str, text: &str) -> ImportReport {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write export");
        import_file(&self.store, &path, name, &ImportOptions::default()).expect("import")
    }

    fn message(&self, id: u64) -> Message {
        self.store.message(id).expect("read").expect("message")
    }
}

const VISITS: &str = "FIN;Kundennummer;Auftragsdatum;Auftragsart;Rechnungsbetrag\n";

#[test]
fn a_credited_visit_is_on_the_message_and_a_reimport_changes_nothing() {
    let room = Room::new();
    let early = room.sent("K1", d(2026, 12, 1), MessageStatus::Sent);
    let late = room.sent("K1", d(2026, 12, 20), MessageStatus::Sent);
    let text = format!(
        "{VISITS}WVWZZZ1KZ6W000001;K1;08.01.2027;Inspektion;412,00\n\
         WVWZZZ1KZ6W000002;K2;09.01.2027;Inspektion;99,00\n"
    );
    let s = room.import("werkstatt.csv", &text);
    assert_eq!((s.responses, s.credited, s.organic), (2, 1, 1));
    let m = room.message(late);
    let line = "service visit 2027-01-08 (werkstatt.csv:2), 19 days after sending, value 412.00 €";
    assert_eq!(
        m.why.last().map(|w| w.to_string()),
        Some(format!("response: {line}"))
    );
    assert_eq!(
        m.history.last().map(|h| h.2.clone()),
        Some(format!("response: {line}"))
    );
    assert_eq!(m.status, MessageStatus::Sent);
    let credit = room.store.credit(late).expect("read").expect("credited");
    assert_eq!(
        (credit.date, credit.value),
        (d(2027, 1, 8), Some(Money(41_200)))
    );
    assert_eq!(room.store.credit(early).expect("read"), None);

    // The same export again, and the same rows in another order under
    // another name: nothing moves.
    let before = (room.message(late), room.store.credits().expect("credits"));
    room.import("werkstatt.csv", &text);
    assert_eq!(room.store.credits().expect("credits"), before.1);
    assert_eq!(room.message(late), before.0);
    let reordered = format!(
        "{VISITS}WVWZZZ1KZ6W000002;K2;09.01.2027;Inspektion;99,00\n\
         WVWZZZ1KZ6W000001;K1;08.01.2027;Inspektion;412,00\n"
    );
    room.import("werkstatt.csv", &reordered);
    // The row moved to line 3: the credit cites where it is now.
    let after = room.store.credit(late).expect("read").expect("credited");
    assert_eq!(after.source, "werkstatt.csv:3");
    assert_eq!(room.store.credit(early).expect("read"), None);
}

/// The reviewer's case: the dealer re-exports one vehicle's history under
/// the same file name to fix it. The other vehicles' visits in those days
/// are not in that file, and stay.
#[test]
fn a_partial_re_export_corrects_only_the_vehicles_it_names() {
    let room = Room::new();
    let id = room.sent("K1", d(2026, 12, 20), MessageStatus::Sent);
    room.import(
        "werkstatt.csv",
        &format!(
            "{VISITS}WVWZZZ1KZ6W000001;K1;08.01.2027;Inspektion;412,00\n\
             WVWZZZ1KZ6W000002;K2;12.01.2027;Inspektion;80,00\n"
        ),
    );
    assert!(room.store.credit(id).expect("read").is_some());
    // Only K2's vehicle, over days that hold K1's visit too.
    room.import(
        "werkstatt.csv",
        &format!(
            "{VISITS}WVWZZZ1KZ6W000002;K2;01.01.2027;Inspektion;80,00\n\
             WVWZZZ1KZ6W000002;K2;15.01.2027;Inspektion;80,00\n"
        ),
    );
    let k1: Vec<Date> = room
        .store
        .visits_of("WVWZZZ1KZ6W000001")
        .expect("visits")
        .into_iter()
        .map(|v| v.date)
        .collect();
    assert_eq!(
        k1,
        vec![d(2027, 1, 8)],
        "K1's visit is not in the file and stays"
    );
    assert!(room.store.credit(id).expect("read").is_some());
    let k2: Vec<Date> = room
        .store
        .visits_of("WVWZZZ1KZ6W000002")
        .expect("visits")
        .into_iter()
        .map(|v| v.date)
        .collect();
    assert_eq!(
        k2,
        vec![d(2027, 1, 1), d(2027, 1, 15)],
        "K2's 12 January is corrected away"
    );
}

#[test]
fn a_visit_corrected_away_takes_its_credit_back() {
    let room = Room::new();
    let id = room.sent("K1", d(2026, 12, 20), MessageStatus::Sent);
    room.import(
        "werkstatt.csv",
        &format!(
            "{VISITS}WVWZZZ1KZ6W000001;K1;08.01.2027;Inspektion;412,00\n\
             WVWZZZ1KZ6W000002;K2;12.01.2027;Inspektion;80,00\n"
        ),
    );
    assert!(room.store.credit(id).expect("read").is_some());
    // The dealer fixes a typo: K1's visit was on 2026-12-08, before the
    // message. The corrected export covers 2026-12-08..2027-01-12, which
    // holds the old row's day: the old row is gone, and so is the credit.
    let s = room.import(
        "werkstatt.csv",
        &format!(
            "{VISITS}WVWZZZ1KZ6W000001;K1;08.12.2026;Inspektion;412,00\n\
             WVWZZZ1KZ6W000002;K2;12.01.2027;Inspektion;80,00\n"
        ),
    );
    let all: Vec<(Date, String)> = room
        .store
        .visits()
        .map(|v| v.expect("visit"))
        .map(|v| (v.date, v.source))
        .collect();
    assert_eq!(
        all,
        vec![
            (d(2026, 12, 8), "werkstatt.csv:2".to_string()),
            (d(2027, 1, 12), "werkstatt.csv:3".to_string())
        ]
    );
    assert_eq!(
        (s.credited, s.organic),
        (0, 2),
        "{:?}",
        room.store.credits()
    );
    assert_eq!(room.store.credit(id).expect("read"), None);
    let visits: Vec<Date> = room
        .store
        .visits_of("WVWZZZ1KZ6W000001")
        .expect("visits")
        .into_iter()
        .map(|v| v.date)
        .collect();
    assert_eq!(visits, vec![d(2026, 12, 8)]);
    assert_eq!(
        room.store.stats().expect("stats").visits,
        2,
        "counted as stored"
    );
    assert_eq!(
        room.message(id).why.last().map(|w| w.text.clone()),
        Some("taken back: the service visit 2027-01-08 (werkstatt.csv:2) is no longer in the dealer's data or now belongs to a later message".into())
    );
    // Another file for other days leaves these visits alone.
    room.import(
        "werkstatt_feb.csv",
        &format!("{VISITS}WVWZZZ1KZ6W000003;K3;02.02.2027;Inspektion;10,00\n"),
    );
    assert_eq!(room.store.visits().count(), 3);
}

#[test]
fn a_merged_customer_is_one_recipient() {
    let room = Room::new();
    let id = room.sent("K1", d(2026, 12, 20), MessageStatus::Sent);
    room.store
        .record_merges(&[MergeRecord {
            merge_id: room.store.next_merge_id().expect("merge id"),
            survivor: "K1".into(),
            merged: "K2".into(),
            reasons: vec![MatchReason::SameEmail("k1@example.org".into())],
            at: Timestamp(0),
            import_id: None,
            undone_at: None,
            undone_by: None,
        }])
        .expect("merge");
    // K2's vehicle, K2's number: the visit is K1's, who got the message.
    room.import(
        "werkstatt.csv",
        &format!("{VISITS}WVWZZZ1KZ6W000002;K2;08.01.2027;Inspektion;\n"),
    );
    let c = room.store.credit(id).expect("read").expect("credited");
    assert_eq!(c.source, "werkstatt.csv:2");
}

#[test]
fn a_message_not_sent_gets_no_credit_and_a_control_record_does() {
    let room = Room::new();
    let planned = room.sent("K1", d(2026, 12, 20), MessageStatus::Planned);
    let control = room.sent("K2", d(2026, 12, 20), MessageStatus::Control);
    let s = room.import(
        "werkstatt.csv",
        &format!(
            "{VISITS}WVWZZZ1KZ6W000001;K1;08.01.2027;Inspektion;\n\
             WVWZZZ1KZ6W000002;K2;08.01.2027;Inspektion;\n"
        ),
    );
    assert_eq!((s.credited, s.to_control, s.organic), (1, 1, 1));
    assert_eq!(room.store.credit(planned).expect("read"), None);
    assert!(room.store.credit(control).expect("read").is_some());
    assert_eq!(
        room.message(control).why.last().map(|w| w.text.clone()),
        Some("service visit 2027-01-08 (werkstatt.csv:3), 19 days after the message would have gone out (control group)".into())
    );
}

const RESPONSES: &str = "Kundennummer;FIN;Datum;Reaktion;Wert;Bemerkung\n";

#[test]
fn a_response_file_credits_an_accepted_offer_to_the_warranty_offer_and_rejects_unknown_customers() {
    let room = Room::new();
    let warranty = room.sent_for(
        "K1",
        d(2026, 12, 1),
        MessageStatus::Sent,
        OccasionKind::WarrantyEnd,
    );
    // Later, but a service reminder asks for no offer to be accepted.
    let service = room.sent("K1", d(2026, 12, 20), MessageStatus::Sent);
    let k2 = room.sent("K2", d(2026, 12, 20), MessageStatus::Sent);
    let text = format!(
        "{RESPONSES}K1;;10.01.2027;Angebot angenommen;1.290,00;Garantieverlängerung 2 Jahre\n\
         ;WVWZZZ1KZ6W000002;05.01.2027;Termin;;\n\
         K9;;05.01.2027;Termin;;\n\
         K3;;05.01.2027;Probefahrt;;\n\
         K3;;06.01.2027;offer accepted;;\n"
    );
    let r = room.import_report("antworten.csv", &text);
    assert!(r.is_committed(), "{:?}", r.status);
    let errors: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        vec![
            "antworten.csv:4: customer_no: \"K9\" is not a customer of this dealer (import the customer first)",
            "antworten.csv:5: response_kind: \"Probefahrt\" is not a response kind (Termin / appointment, or Angebot angenommen / offer accepted)",
        ]
    );
    assert_eq!((r.rows_ok, r.rows_rejected), (3, 2));
    assert_eq!(r.responses.inserted, 3);
    assert_eq!(
        r.customers,
        Counts::default(),
        "a response file makes no customers"
    );
    assert_eq!(r.vehicles, Counts::default());
    assert_eq!(
        r.credited,
        Some(ResponseTally {
            to_messages: 2,
            to_control: 0,
            organic: 1,
            ..ResponseTally::default()
        })
    );
    assert_eq!(
        room.store
            .import(r.import_id)
            .expect("read")
            .map(|s| s.credited),
        Some(r.credited),
        "the tally is kept in the import history"
    );

    let c = room
        .store
        .credit(warranty)
        .expect("read")
        .expect("credited");
    assert_eq!(
        (c.kind, c.value, c.source.as_str()),
        (
            ResponseKind::OfferAccepted,
            Some(Money(129_000)),
            "antworten.csv:2"
        )
    );
    assert_eq!(
        room.message(warranty).why.last().map(|w| w.text.clone()),
        Some("offer accepted 2027-01-10 (antworten.csv:2), 40 days after sending, value 1290.00 €: \"Garantieverlängerung 2 Jahre\"".into())
    );
    assert_eq!(room.store.credit(service).expect("read"), None);
    let c = room.store.credit(k2).expect("read").expect("credited");
    assert_eq!(
        (c.kind, c.source.as_str()),
        (ResponseKind::Appointment, "antworten.csv:3")
    );

    // The same file again changes nothing.
    let credits = room.store.credits().expect("credits");
    let again = room.import_report("antworten.csv", &text);
    assert!(matches!(again.status, ImportStatus::AlreadyImported { .. }));
    assert_eq!(room.store.credits().expect("credits"), credits);

    // A corrected export for 2027-01-05..06 without K1's offer, and with
    // the same rows under new lines: the offer outside its days stays.
    let corrected = format!(
        "{RESPONSES}K3;;06.01.2027;Angebot angenommen;;\n\
         ;WVWZZZ1KZ6W000002;05.01.2027;Termin;;\n"
    );
    let r = room.import_report("antworten.csv", &corrected);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(room.store.credit(warranty).expect("read").is_some());
    assert_eq!(room.store.responses().count(), 3);
    // One that covers 2027-01-05..10 and names K1 without the offer: the
    // offer is gone, and its credit with it. (A re-export is the truth
    // only for the customers and vehicles it names: one that did not name
    // K1 would leave K1's rows alone.)
    let corrected = format!(
        "{RESPONSES};WVWZZZ1KZ6W000002;05.01.2027;Termin;;\n\
         K1;;05.01.2027;Termin;;\n\
         K3;;10.01.2027;Termin;;\n"
    );
    let r = room.import_report("antworten.csv", &corrected);
    assert_eq!(
        r.credited,
        Some(ResponseTally {
            to_messages: 2,
            to_control: 0,
            organic: 1,
            ..ResponseTally::default()
        })
    );
    assert_eq!(room.store.credit(warranty).expect("read"), None);
    let c = room.store.credit(service).expect("read").expect("credited");
    assert_eq!(c.kind, ResponseKind::Appointment);
    assert_eq!(room.store.responses().count(), 3);
}

#[test]
fn visits_of_unknown_vehicles_are_organic_and_each_report_counts_its_own() {
    let room = Room::new();
    let id = room.sent("K1", d(2026, 12, 20), MessageStatus::Sent);
    let r = room.import_report(
        "werkstatt.csv",
        &format!("{VISITS}WVWZZZ1KZ6W000001;K1;08.01.2027;Inspektion;412,00\n"),
    );
    assert_eq!(
        r.credited,
        Some(ResponseTally {
            to_messages: 1,
            to_control: 0,
            organic: 0,
            ..ResponseTally::default()
        })
    );
    // A visit by VIN alone, of a vehicle this dealer does not have.
    let r = room.import_report(
        "fin.csv",
        "FIN;Auftragsdatum;Auftragsart\nWVWZZZ1KZ6W000099;09.01.2027;Inspektion\n",
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(
        r.credited,
        Some(ResponseTally {
            to_messages: 0,
            to_control: 0,
            organic: 1,
            ..ResponseTally::default()
        })
    );
    assert!(room.store.credit(id).expect("read").is_some());
    let s = attribute(&room.store, &Windows::default(), &|_| false).expect("attribute");
    assert_eq!((s.responses, s.credited, s.organic), (2, 1, 1));
    // A later file's report counts its own rows only.
    let r = room.import_report(
        "werkstatt_feb.csv",
        &format!("{VISITS}WVWZZZ1KZ6W000003;K3;02.02.2027;Inspektion;10,00\n"),
    );
    assert_eq!(
        r.credited,
        Some(ResponseTally {
            to_messages: 0,
            to_control: 0,
            organic: 1,
            ..ResponseTally::default()
        })
    );
    // A file without visits or responses has no tally.
    let r = room.import_report("kunden2.csv", "Kundennummer;Nachname\nK4;Neu\n");
    assert_eq!(r.credited, None);
}

/// `touchpoint responses`: every response with the message it is credited
/// to, or in words why it is credited to nothing; by customer, organic
/// only, newest first and bounded.
#[test]
fn explain_lists_each_response_with_its_message_or_why_it_is_organic() {
    use touchpoint_common::report::ResponseVerdict as V;
    let room = Room::new();
    let id = room.sent("K1", d(2026, 12, 1), MessageStatus::Sent);
    room.import(
        "werkstatt.csv",
        &format!(
            "{VISITS}WVWZZZ1KZ6W000001;K1;08.01.2027;Inspektion;412,00\n\
             WVWZZZ1KZ6W000001;K1;09.03.2027;Inspektion;\n\
             WVWZZZ1KZ6W000002;K2;09.01.2027;Inspektion;\n"
        ),
    );
    room.import(
        "fin.csv",
        "FIN;Auftragsdatum;Auftragsart\nWVWZZZ1KZ6W000099;10.01.2027;Inspektion\n",
    );
    let all = |limit| Listing {
        limit,
        ..Listing::default()
    };
    let list = explain(&room.store, &Windows::default(), &all(100)).expect("explain");
    assert_eq!(
        (
            list.matched,
            list.to_messages,
            list.to_control,
            list.organic
        ),
        (4, 1, 0, 3)
    );
    let shown: Vec<(Date, &str, &V)> = list
        .lines
        .iter()
        .map(|l| (l.date, l.recipient.as_str(), &l.verdict))
        .collect();
    assert_eq!(
        shown,
        vec![
            (
                d(2027, 3, 9),
                "K1",
                &V::Organic {
                    why: format!(
                        "service visit 2027-03-09: the latest message for it (#{id}, 2026-12-01) went out 98 days before, outside the 60 days of service_due"
                    )
                }
            ),
            (
                d(2027, 1, 10),
                "",
                &V::Organic {
                    why: "service visit 2027-01-10: neither its customer nor its vehicle is known (a walk-in, or a VIN never imported)".into()
                }
            ),
            (
                d(2027, 1, 9),
                "K2",
                &V::Organic {
                    why: "service visit 2027-01-09: nothing was sent to K2 and they are in no control group".into()
                }
            ),
            (
                d(2027, 1, 8),
                "K1",
                &V::Message {
                    id,
                    sent: d(2026, 12, 1)
                }
            ),
        ]
    );
    assert_eq!(list.lines[3].value, Some(Money(41_200)));
    assert_eq!(list.lines[3].source, "werkstatt.csv:2");
    // One customer's; the organic ones; the newest only.
    let k1 = explain(
        &room.store,
        &Windows::default(),
        &Listing {
            customer: Some("K1"),
            ..all(100)
        },
    )
    .expect("explain");
    assert_eq!((k1.matched, k1.lines.len()), (2, 2));
    let organic = explain(
        &room.store,
        &Windows::default(),
        &Listing {
            organic_only: true,
            ..all(100)
        },
    )
    .expect("explain");
    assert_eq!((organic.matched, organic.organic), (3, 3));
    let newest = explain(&room.store, &Windows::default(), &all(1)).expect("explain");
    assert_eq!((newest.matched, newest.lines.len()), (4, 1));
    assert_eq!(newest.lines[0].date, d(2027, 3, 9));
    // The stored credits are what the listing says: nothing to change.
    let s = attribute(&room.store, &Windows::default(), &|_| false).expect("attribute");
    assert_eq!((s.credited, s.changed), (1, 0));
    // And the month counts the overview reads, by the response's month.
    let months = room.store.response_months().expect("months");
    let count = |to_messages, organic| touchpoint_common::report::MonthResponses {
        to_messages,
        to_control: 0,
        organic,
    };
    assert_eq!(
        months.into_iter().collect::<Vec<_>>(),
        vec![(202701, count(1, 2)), (202703, count(0, 1))]
    );
}

const V1: &str = "WVWZZZ1KZ6W000001";

/// Through a real import: K1 has two vehicles; the reminder about the
/// first is answered neither by its tyre change nor by the other
/// vehicle's service, only by its own service.
#[test]
fn on_a_store_a_reminder_is_credited_with_the_service_of_its_own_vehicle() {
    let room = Room::new();
    room.import(
        "kunden_k1.csv",
        "Kundennummer;Nachname;FIN;Erstzulassung\n\
         K1;Berg;WVWZZZ1KZ6W000001;01.03.2020\n\
         K1;Berg;WVWZZZ1KZ6W000004;01.03.2021\n",
    );
    let id = room.sent_about(
        "K1",
        d(2026, 12, 20),
        MessageStatus::Sent,
        OccasionKind::ServiceDue,
        Some(V1),
    );
    let r = room.import_report(
        "werkstatt.csv",
        &format!(
            "{VISITS}WVWZZZ1KZ6W000001;K1;05.01.2027;Reifenwechsel;80,00\n\
             WVWZZZ1KZ6W000004;K1;08.01.2027;Inspektion;300,00\n\
             WVWZZZ1KZ6W000001;K1;12.01.2027;Inspektion;412,00\n"
        ),
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(
        r.credited,
        Some(ResponseTally {
            to_messages: 1,
            organic: 2,
            ..ResponseTally::default()
        })
    );
    let c = room.store.credit(id).expect("read").expect("credited");
    assert_eq!(
        (c.kind, c.source.as_str()),
        (ResponseKind::ServiceVisit, "werkstatt.csv:4")
    );
}

/// A dealer whose system exports its own codes: its visits credit no
/// service reminder (they count as workshop visits), and the import's
/// report says how many visits of which types that was.
#[test]
fn an_unrecognised_visit_type_credits_no_service_reminder_and_the_report_names_it() {
    let room = Room::new();
    let service = room.sent_about(
        "K1",
        d(2026, 12, 20),
        MessageStatus::Sent,
        OccasionKind::ServiceDue,
        Some(V1),
    );
    let inspection = room.sent_about(
        "K2",
        d(2026, 12, 20),
        MessageStatus::Sent,
        OccasionKind::InspectionDue,
        Some("WVWZZZ1KZ6W000002"),
    );
    let r = room.import_report(
        "werkstatt.csv",
        &format!(
            "{VISITS}WVWZZZ1KZ6W000001;K1;08.01.2027;WA;\n\
             WVWZZZ1KZ6W000002;K2;08.01.2027;WA;\n\
             WVWZZZ1KZ6W000003;K3;09.01.2027;01;\n\
             WVWZZZ1KZ6W000003;K3;10.01.2027;Inspektion;\n"
        ),
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let tally = r.credited.expect("tally");
    assert_eq!(
        tally,
        ResponseTally {
            to_messages: 1,
            to_control: 0,
            organic: 3,
            unrecognised: 3,
            unrecognised_types: vec![("WA".into(), 2), ("01".into(), 1)],
        }
    );
    assert_eq!(
        tally.unrecognised_line().as_deref(),
        Some("3 visits of types not recognised, counted as workshop visits (no service reminder is credited with them): \"WA\" 2, \"01\" 1")
    );
    assert_eq!(room.store.credit(service).expect("read"), None);
    let c = room
        .store
        .credit(inspection)
        .expect("read")
        .expect("credited");
    assert_eq!(c.kind, ResponseKind::WorkshopVisit);
    assert_eq!(
        room.store
            .import(r.import_id)
            .expect("read")
            .and_then(|s| s.credited)
            .map(|t| t.unrecognised),
        Some(3),
        "the tally is kept in the import history"
    );
}

/// An appointment a response file reports by customer number names no
/// vehicle: it answers the reminder about the customer's vehicle.
#[test]
fn an_appointment_without_a_vin_answers_the_reminder_about_the_persons_vehicle() {
    let room = Room::new();
    let id = room.sent_about(
        "K1",
        d(2026, 12, 20),
        MessageStatus::Sent,
        OccasionKind::ServiceDue,
        Some(V1),
    );
    let r = room.import_report(
        "antworten.csv",
        &format!("{RESPONSES}K1;;05.01.2027;Termin;;\n"),
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let c = room.store.credit(id).expect("read").expect("credited");
    assert_eq!(
        (c.kind, c.source.as_str()),
        (ResponseKind::Appointment, "antworten.csv:2")
    );
}

/// What closes a control member's occasion for learning is what makes the
/// planner cancel a reminder: the work itself, on the same vehicle. A tyre
/// change answers an inspection reminder (a visit is a visit) but does not
/// do the inspection.
#[test]
fn only_the_work_itself_on_the_vehicle_closes_an_occasion() {
    let on = |kind, vin: Option<&str>| Response {
        vin: vin.map(str::to_string),
        ..visit("K1", kind, d(2026, 5, 1), 2)
    };
    let v1 = Some("V1".to_string());
    assert!(closes(
        OccasionKind::ServiceDue,
        &v1,
        &on(ResponseKind::ServiceVisit, Some("V1"))
    ));
    assert!(!closes(
        OccasionKind::ServiceDue,
        &v1,
        &on(ResponseKind::ServiceVisit, Some("V2"))
    ));
    assert!(!closes(
        OccasionKind::ServiceDue,
        &v1,
        &on(ResponseKind::ServiceVisit, None)
    ));
    assert!(!closes(
        OccasionKind::ServiceDue,
        &v1,
        &on(ResponseKind::Appointment, Some("V1"))
    ));
    assert!(closes(
        OccasionKind::InspectionDue,
        &v1,
        &on(ResponseKind::InspectionVisit, Some("V1"))
    ));
    assert!(answers(
        OccasionKind::InspectionDue,
        ResponseKind::WorkshopVisit
    ));
    assert!(!closes(
        OccasionKind::InspectionDue,
        &v1,
        &on(ResponseKind::WorkshopVisit, Some("V1"))
    ));
    assert!(!closes(
        OccasionKind::Birthday,
        &None,
        &on(ResponseKind::ServiceVisit, None)
    ));
}

/// A service visit answers the vehicle's service reminder and its later
/// inspection reminder; the pass credits the later one. For learning the
/// earlier message was still answered (`answers_of`), as a control member
/// in its place would be: the credit alone made earlier messages (longer
/// leads) look worse than they are.
#[test]
fn a_visit_credited_to_a_later_message_still_answers_the_earlier_one_for_learning() {
    let room = Room::new();
    let service = room.sent_about(
        "K1",
        d(2026, 12, 1),
        MessageStatus::Sent,
        OccasionKind::ServiceDue,
        Some(V1),
    );
    let inspection = room.sent_about(
        "K1",
        d(2026, 12, 20),
        MessageStatus::Sent,
        OccasionKind::InspectionDue,
        Some(V1),
    );
    room.import(
        "werkstatt.csv",
        &format!("{VISITS}WVWZZZ1KZ6W000001;K1;08.01.2027;Inspektion;412,00\n"),
    );
    assert_eq!(room.store.credit(service).expect("read"), None);
    assert!(room.store.credit(inspection).expect("read").is_some());
    let a = answers_of(&room.store).expect("answers");
    assert_eq!(a.messages.get(&service), Some(&vec![d(2027, 1, 8)]));
    assert_eq!(a.messages.get(&inspection), Some(&vec![d(2027, 1, 8)]));
    assert!(a.controls.is_empty());
}
