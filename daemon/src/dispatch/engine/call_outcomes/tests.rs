#![allow(clippy::unwrap_used)]

use touchpoint_common::domain::{Channel, Consent, Timestamp};

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
