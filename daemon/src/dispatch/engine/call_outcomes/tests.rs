#![allow(clippy::unwrap_used)]

use touchpoint_common::domain::{Channel, Consent, Timestamp};
use touchpoint_common::outbox::Message;

use super::*;
use crate::dispatch::engine::fixture::*;

/// The day's call list, written by `call_list`, with an outcome per task.
fn outcomes_of(rows: &[(u64, &str)]) -> Vec<u8> {
    let mut s = String::from("task_id;outcome;minutes;note\n");
    for (id, outcome) in rows {
        s.push_str(&format!("d003.{id};{outcome};3;\n"));
    }
    s.into_bytes()
}

#[test]
fn call_outcomes_are_recorded_once_and_a_refusal_stops_the_next_call() {
    let fx = Fx::new();
    customers(&fx, "d003", &["K7"]);
    let store = fx.store("d003");
    store
        .record_consent(&Consent {
            at: Timestamp(now() - 1_000),
            ..said("K7", Channel::Phone, true)
        })
        .unwrap();
    let first = fx.queued(
        "d003",
        &draft(
            &store,
            "K7",
            Channel::Phone,
            "quality_check",
            Some(VIN_A),
            today(),
        ),
    );
    assert!(fx
        .d
        .write_call_list(&store, &fx.p(), now())
        .unwrap()
        .is_some());
    let file = outcomes_of(&[(first.id, "abgelehnt"), (999, "erreicht")]);
    let all = |_: &TenantId| true;
    let report = fx.d.call_outcomes("ergebnisse.csv", &file, &all).unwrap();
    assert_eq!((report.applied, report.unchanged), (1, 0));
    assert_eq!(
        report.errors,
        vec![format!(
            "ergebnisse.csv:3: task_id: d003.999: no such message"
        )]
    );
    let m = fx.message("d003", first.id);
    assert_eq!(m.status, S::Sent);
    assert_eq!(last_history(&m), (S::Sent, "call outcome: Declined, 3 min"));
    let consent = store.consent("K7", Channel::Phone).unwrap().unwrap();
    assert!(!consent.granted);
    assert_eq!(consent.source, "call-centre:ergebnisse.csv");
    // The same file again: nothing new.
    let again = fx.d.call_outcomes("ergebnisse.csv", &file, &all).unwrap();
    assert_eq!((again.applied, again.unchanged), (0, 1));
    // Outside the operator's scope: skipped, reported.
    let none = |_: &TenantId| false;
    let denied = fx.d.call_outcomes("ergebnisse.csv", &file, &none).unwrap();
    assert_eq!(denied.applied, 0);
    assert_eq!(
        denied.errors.last().unwrap(),
        "ergebnisse.csv: tenant d003: outside your scope; 2 rows skipped"
    );

    // The next call to K7 is cancelled when the list is made.
    let second = fx.queued(
        "d003",
        &draft(
            &store,
            "K7",
            Channel::Phone,
            "quality_check",
            Some(VIN_B),
            today(),
        ),
    );
    assert!(fx
        .d
        .write_call_list(&store, &fx.p(), now())
        .unwrap()
        .is_none());
    let m = fx.message("d003", second.id);
    assert_eq!(m.status, S::Cancelled);
    assert!(
        last_history(&m).1.starts_with("phone: consent withdrawn "),
        "{:?}",
        m.history
    );
    assert_eq!(
        store.planned_occasion(&second.occasions[0].key).unwrap(),
        None
    );
}

/// "Termin": the appointment booked on the call is the call task's
/// response, credited to the task with the outcome file's line, once; a
/// later attribution pass over the dealer's visits leaves it alone.
#[test]
fn an_appointment_booked_on_the_call_is_credited_to_the_call_task() {
    let fx = Fx::new();
    customers(&fx, "d003", &["K7"]);
    let store = fx.store("d003");
    store
        .record_consent(&Consent {
            at: Timestamp(now() - 1_000),
            ..said("K7", Channel::Phone, true)
        })
        .unwrap();
    let call = fx.queued(
        "d003",
        &draft(
            &store,
            "K7",
            Channel::Phone,
            "quality_check",
            Some(VIN_A),
            today(),
        ),
    );
    assert!(fx
        .d
        .write_call_list(&store, &fx.p(), now())
        .unwrap()
        .is_some());
    let file = outcomes_of(&[(call.id, "Termin")]);
    let all = |_: &TenantId| true;
    let report = fx.d.call_outcomes("ergebnisse.csv", &file, &all).unwrap();
    assert_eq!((report.applied, report.errors.len()), (1, 0));
    let credit = store.credit(call.id).unwrap().unwrap();
    assert_eq!(
        (
            credit.kind,
            credit.date,
            credit.value,
            credit.source.as_str()
        ),
        (
            touchpoint_common::report::ResponseKind::Appointment,
            today(),
            None,
            "ergebnisse.csv:2"
        )
    );
    let m = fx.message("d003", call.id);
    assert_eq!(
        last_history(&m),
        (
            S::Sent,
            format!(
                "response: appointment {} (ergebnisse.csv:2), booked on the call",
                today()
            )
            .as_str()
        )
    );
    // Once: the same file again changes nothing.
    let again = fx.d.call_outcomes("ergebnisse.csv", &file, &all).unwrap();
    assert_eq!((again.applied, again.unchanged), (0, 1));
    assert_eq!(fx.message("d003", call.id), m);
}

/// Outcomes are about calls: a row naming a letter, an email or a phone
/// task not yet in a call list is refused with its line and why, and the
/// other rows of the file apply.
#[test]
fn an_outcome_for_anything_but_a_call_made_is_refused_by_line_and_the_rest_applies() {
    let fx = Fx::new();
    customers(&fx, "d003", &["K7"]);
    let store = fx.store("d003");
    store
        .record_consent(&Consent {
            at: Timestamp(now() - 1_000),
            ..said("K7", Channel::Phone, true)
        })
        .unwrap();
    let d = |channel, service, vin| draft(&store, "K7", channel, service, Some(vin), today());
    let call = fx.queued("d003", &d(Channel::Phone, "quality_check", VIN_A));
    let letter = fx.queued("d003", &d(Channel::Post, "service_due", VIN_A));
    let batches = fx.d.close_batches(&store, &fx.p(), now()).unwrap();
    assert_eq!(batches.len(), 2, "{batches:?}");
    let later = fx.queued("d003", &d(Channel::Phone, "quality_check", VIN_B));
    let (letter_before, later_before) =
        (fx.message("d003", letter.id), fx.message("d003", later.id));
    assert_eq!(letter_before.status, S::Sent);

    let file = outcomes_of(&[
        (letter.id, "abgelehnt"),
        (call.id, "erreicht"),
        (later.id, "falsche Nummer"),
    ]);
    let report =
        fx.d.call_outcomes("ergebnisse.csv", &file, &|_| true)
            .unwrap();
    assert_eq!(
        report.errors,
        vec![
            format!(
                "ergebnisse.csv:2: task_id: d003.{}: a letter (post), not a call task; \
                 outcome not applied",
                letter.id
            ),
            format!(
                "ergebnisse.csv:4: task_id: d003.{}: not in a call list yet (queued); \
                 outcome not applied",
                later.id
            ),
        ]
    );
    assert_eq!((report.applied, report.unchanged), (1, 0));
    assert_eq!(
        last_history(&fx.message("d003", call.id)),
        (S::Sent, "call outcome: Reached, 3 min")
    );
    // Nothing of the refused rows took effect.
    assert_eq!(fx.message("d003", letter.id), letter_before);
    assert_eq!(fx.message("d003", later.id), later_before);
    assert!(
        store
            .consent("K7", Channel::Phone)
            .unwrap()
            .unwrap()
            .granted
    );
    assert_eq!(store.bad_address("+49 89 1234567").unwrap(), None);
}

/// A number the call centre reported wrong is marked bad ("not used
/// again"), but nothing looks at it: the next call list has it again.
#[test]
fn a_number_reported_wrong_is_not_called_again() {
    let fx = Fx::new();
    customers(&fx, "d003", &["K7"]);
    let store = fx.store("d003");
    store
        .record_consent(&Consent {
            at: Timestamp(now() - 1_000),
            ..said("K7", Channel::Phone, true)
        })
        .unwrap();
    let first = fx.queued(
        "d003",
        &draft(
            &store,
            "K7",
            Channel::Phone,
            "quality_check",
            Some(VIN_A),
            today(),
        ),
    );
    assert!(fx
        .d
        .write_call_list(&store, &fx.p(), now())
        .unwrap()
        .is_some());
    let file = outcomes_of(&[(first.id, "falsche Nummer")]);
    let report =
        fx.d.call_outcomes("ergebnisse.csv", &file, &|_| true)
            .unwrap();
    assert_eq!(report.applied, 1);
    assert_eq!(
        store.bad_address("+49 89 1234567").unwrap().as_deref(),
        Some("call centre: wrong number")
    );
    let second = fx.queued(
        "d003",
        &draft(
            &store,
            "K7",
            Channel::Phone,
            "quality_check",
            Some(VIN_B),
            today(),
        ),
    );
    fx.d.write_call_list(&store, &fx.p(), now()).unwrap();
    let m = fx.message("d003", second.id);
    assert_ne!(
        m.status,
        S::Sent,
        "called the wrong number again: {:?}",
        m.history
    );
    assert!(store.in_flight().unwrap().is_empty());
}

/// A call-centre file is outside text: a note of megabytes (with a
/// terminal escape in it) is stored cut short, and outcome or minutes
/// texts it gets wrong are echoed into the report cut short. The message
/// stays readable, the queue lists the tenant, and the same file again
/// changes nothing.
#[test]
fn a_huge_note_or_wrong_text_is_cut_short_where_it_is_stored_or_echoed() {
    let fx = Fx::new();
    customers(&fx, "d003", &["K7"]);
    let store = fx.store("d003");
    store
        .record_consent(&Consent {
            at: Timestamp(now() - 1_000),
            ..said("K7", Channel::Phone, true)
        })
        .unwrap();
    let first = fx.queued(
        "d003",
        &draft(
            &store,
            "K7",
            Channel::Phone,
            "quality_check",
            Some(VIN_A),
            today(),
        ),
    );
    assert!(fx
        .d
        .write_call_list(&store, &fx.p(), now())
        .unwrap()
        .is_some());
    let note = format!("Rückruf \u{1b}[2J{}", "N".repeat(3 << 20));
    let bogus = "X".repeat(3 << 20);
    let file = format!(
        "task_id;outcome;minutes;note\n\
         d003.{id};erreicht;3;{note}\n\
         d003.{id}9;{bogus};;\n\
         d003.{id}8;erreicht;{bogus};\n",
        id = first.id
    );
    let all = |_: &TenantId| true;
    let report =
        fx.d.call_outcomes("ergebnisse.csv", file.as_bytes(), &all)
            .unwrap();
    assert_eq!((report.applied, report.unchanged), (1, 0));
    assert_eq!(report.errors.len(), 2, "{:.300?}", report.errors);
    for e in &report.errors {
        assert!(e.len() <= 4_096, "{} bytes: {e:.200}", e.len());
    }
    assert!(
        report.errors[0].starts_with("ergebnisse.csv:3: outcome: \"XXX"),
        "{:.200}",
        report.errors[0]
    );
    let m = store
        .message(first.id)
        .expect("the message decodes")
        .unwrap();
    let (_, line) = last_history(&m);
    assert!(
        line.starts_with("call outcome: Reached, 3 min, Rückruf ?[2JNNN"),
        "{line:.200}"
    );
    assert!(line.len() <= 4_096, "{} bytes", line.len());
    assert!(m.why.iter().all(|w| w.text.len() <= 4_096));
    crate::queue::page(&fx.stores, &[tid("d003")], &Default::default(), 0, 50)
        .expect("the queue lists the tenant");

    let again =
        fx.d.call_outcomes("ergebnisse.csv", file.as_bytes(), &all)
            .unwrap();
    assert_eq!((again.applied, again.unchanged), (0, 1));
}

/// A phone task of `t` for `customer`, sent in a call list (as
/// `write_call_list` leaves it), with `pad` bytes of occasion text.
fn called(fx: &Fx, t: &str, customer: &str, vin: &str, pad: usize) -> Message {
    let store = fx.store(t);
    let mut m = draft(
        &store,
        customer,
        Channel::Phone,
        "quality_check",
        Some(vin),
        today(),
    );
    m.occasions[0].reason = "r".repeat(pad);
    fx.put(t, &m);
    let mut sent = fx.message(t, m.id);
    sent.status = S::Sent;
    sent.dispatch.batch = format!("calls-{t}-test.csv");
    fx.rewrite(t, sent);
    fx.message(t, m.id)
}

/// Rows for two tenants, and one message of the second tenant no longer
/// decodes: its row is refused with its line, and every other row of both
/// tenants applies. The request does not fail after the first tenant was
/// written.
#[test]
fn a_message_that_cannot_be_read_refuses_its_row_and_the_rest_of_the_file_applies() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1"]);
    customers(&fx, "d003", &["K7"]);
    let ours = called(&fx, "d001", "K1", VIN_A, 0);
    let declined = called(&fx, "d003", "K7", VIN_A, 0);
    let bad = called(&fx, "d003", "K7", VIN_B, 0);
    // The second message of d003 becomes a record no build can read.
    fx.plant_raw_message("d003", bad.id, b"\x01\xff\xff\xff\xff");

    let file = format!(
        "task_id;outcome;minutes;note\n\
         d001.{};erreicht;3;\n\
         d003.{};erreicht;4;\n\
         d003.{};abgelehnt;2;\n",
        ours.id, bad.id, declined.id
    );
    let report =
        fx.d.call_outcomes("ergebnisse.csv", file.as_bytes(), &|_| true)
            .expect("a message that cannot be read is a row of the report");
    assert_eq!((report.applied, report.unchanged), (2, 0));
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(
        report.errors[0].starts_with(&format!(
            "ergebnisse.csv:3: task_id: d003.{}: the message cannot be read (corrupt record in outbox: ",
            bad.id
        )),
        "{:?}",
        report.errors
    );
    assert!(report.errors[0].ends_with("); outcome not applied"));
    assert_eq!(
        last_history(&fx.message("d001", ours.id)),
        (S::Sent, "call outcome: Reached, 3 min")
    );
    assert_eq!(
        last_history(&fx.message("d003", declined.id)),
        (S::Sent, "call outcome: Declined, 2 min")
    );
    let consent = fx.store("d003").consent("K7", Channel::Phone).unwrap();
    assert!(consent.is_some_and(|c| !c.granted));
}

/// Rows for two tenants, and the second tenant's outcomes cannot be
/// written (one of its messages would grow past the largest record a
/// store takes): the first tenant's outcomes apply, and the second
/// tenant's error row says exactly what of it was stored (the call
/// centre's answers, written first and together) and what was not (the
/// outcome lines and minutes, written together).
#[test]
fn outcomes_of_a_tenant_that_cannot_be_written_are_reported_with_what_was_stored() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1"]);
    customers(&fx, "d003", &["K7"]);
    let ours = called(&fx, "d001", "K1", VIN_A, 0);
    let declined = called(&fx, "d003", "K7", VIN_A, 0);
    // Just short of the limit: one more line does not fit.
    let mut pad = touchpoint_common::codec::MAX_RECORD_BYTES - 4_096;
    let probe = called(&fx, "d003", "K7", VIN_B, pad);
    let size = touchpoint_common::codec::encode_record(&probe)
        .unwrap()
        .len();
    pad += touchpoint_common::codec::MAX_RECORD_BYTES - 16 - size;
    let full = called(&fx, "d003", "K7", VIN_B, pad);
    assert_eq!(
        touchpoint_common::codec::encode_record(&full)
            .unwrap()
            .len(),
        touchpoint_common::codec::MAX_RECORD_BYTES - 16
    );

    let file = format!(
        "task_id;outcome;minutes;note\n\
         d001.{};erreicht;3;\n\
         d003.{};abgelehnt;2;\n\
         d003.{};erreicht;4;\n",
        ours.id, declined.id, full.id
    );
    let report =
        fx.d.call_outcomes("ergebnisse.csv", file.as_bytes(), &|_| true)
            .expect("a tenant's failure is a row of the report");
    assert_eq!((report.applied, report.unchanged), (1, 0));
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(
        report.errors[0].starts_with(
            "ergebnisse.csv: tenant d003: stored: 1 phone consent withdrawn; \
             not stored: the outcomes of 2 calls (history, minutes): "
        ),
        "{:?}",
        report.errors
    );
    assert!(report.errors[0].ends_with("; send the file again to store them"));
    assert_eq!(
        last_history(&fx.message("d001", ours.id)),
        (S::Sent, "call outcome: Reached, 3 min")
    );
    let withdrawn = fx.store("d003").consent("K7", Channel::Phone).unwrap();
    assert!(withdrawn.is_some_and(|c| !c.granted));
    assert_eq!(fx.message("d003", declined.id), declined);
    assert_eq!(fx.message("d003", full.id), full);
}

/// A file of many bad rows: the report lists the first errors and says how
/// many more there were (an answer fits one frame, its audit line is
/// short).
#[test]
fn a_report_lists_at_most_so_many_errors_and_counts_the_rest() {
    let fx = Fx::new();
    let mut file = String::from("task_id;outcome;minutes;note\n");
    for i in 0..REPORTED_ERRORS + 500 {
        file.push_str(&format!("d003.{i};vielleicht;;\n"));
    }
    let report =
        fx.d.call_outcomes("ergebnisse.csv", file.as_bytes(), &|_| true)
            .unwrap();
    assert_eq!(report.errors.len(), REPORTED_ERRORS + 1);
    assert_eq!(
        report.errors.last().unwrap(),
        "ergebnisse.csv: … and 500 more errors"
    );
}
