#![allow(clippy::unwrap_used)]

use touchpoint_common::domain::{Channel, Timestamp};
use touchpoint_common::outbox::{month_of, Occasion};
use touchpoint_common::policy::{OccasionKind, Weekday};

use super::*;
use crate::dispatch::engine::fixture::*;
use crate::dispatch::engine::recovery::manifest_postage;
use crate::dispatch::engine::*;
use crate::planner::{plan_tenant, Mode};

#[test]
fn a_letter_batch_writes_pdf_and_manifest_and_books_each_letters_postage() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1", "K2"]);
    let store = fx.store("d001");
    let day = today();
    let a = fx.queued(
        "d001",
        &draft(&store, "K1", Channel::Post, "service_due", Some(VIN_A), day),
    );
    let b = fx.queued(
        "d001",
        &draft(&store, "K2", Channel::Post, "service_due", Some(VIN_B), day),
    );
    // Rendered when released; its template is gone by the time of the batch.
    let mut gone = draft(&store, "K2", Channel::Post, "service_due", Some(VIN_B), day);
    gone.template = "gone".into();
    fx.put("d001", &gone);
    let mut q = gone.clone();
    q.dispatch.retry_at = Some(Timestamp::now());
    q.set_status(Timestamp::now(), S::Queued, "post queue");
    fx.rewrite("d001", q);
    // An email is no business of the batch.
    let email = fx.queued(
        "d001",
        &draft(
            &store,
            "K1",
            Channel::Email,
            "hu_reminder",
            Some(VIN_A),
            day,
        ),
    );

    let at = now();
    let summary =
        fx.d.write_letter_batch(&store, &fx.p(), at)
            .unwrap()
            .unwrap();
    let batch = format!("d001-{day}-01.pdf");
    let pdf = fx.path("letters/d001").join(&batch);
    let manifest = fx.path("letters/d001").join(batch.replace(".pdf", ".csv"));
    assert_eq!(summary.kind, "letters");
    assert_eq!(
        summary.files,
        vec![pdf.display().to_string(), manifest.display().to_string()]
    );
    assert_eq!((summary.messages, summary.cost), (2, 190));
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
    let csv = std::fs::read_to_string(&manifest).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");

    for m in [&a, &b] {
        let m = fx.message("d001", m.id);
        assert_eq!(m.status, S::Sent);
        assert_eq!(m.dispatch.batch, batch);
        assert_eq!(m.dispatch.attempts, 1);
        let postage = manifest_postage(&manifest, m.id).unwrap();
        assert_eq!(postage, 95, "Standardbrief, no discount");
        assert_eq!((m.dispatch.booked, m.dispatch.brand_share), (postage, 48));
        let (status, text) = last_history(&m);
        assert_eq!(status, S::Sent);
        assert!(
            text.starts_with(&format!("in {batch} as letter "))
                && text.ends_with("(1 pages, 10 g, Standardbrief)"),
            "{text}"
        );
    }
    let held = fx.message("d001", gone.id);
    let reason = "template gone: no template \"gone\" in the policy set";
    assert_eq!(held.status, S::Held);
    assert_eq!(held.dispatch.held_from, Some(S::Queued));
    assert_eq!(held.dispatch.batch, "");
    assert_eq!(last_history(&held), (S::Held, reason));
    assert_eq!(dispatch_whys(&held), vec![format!("held: {reason}")]);
    assert!(store.in_flight().unwrap().is_empty());
    assert!(store.due(Channel::Post, LATER, 10).unwrap().is_empty());
    assert_eq!(
        store.due(Channel::Email, LATER, 10).unwrap(),
        vec![email.id]
    );
    // Two letters booked with the brand's half; the held letter and the
    // email keep their reservations.
    let e = fx.ledger("d001", month_of(day), "service_due");
    assert_eq!((e.reserved, e.booked, e.brand), (95, 190, 96));
    // Letters are no emails sent.
    assert_eq!(store.sent_on(day).unwrap(), 0);

    // Nothing left: no second batch.
    assert!(fx
        .d
        .write_letter_batch(&store, &fx.p(), now())
        .unwrap()
        .is_none());
}

/// A letter says what its email and its shown content say: the vehicles
/// its message is about, even one that has changed holder since planning
/// (the printed letter named none while the email and the console did).
#[test]
fn a_letter_names_the_vehicle_its_message_is_about_after_the_vehicle_changed_holder() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1", "K2"]);
    let store = fx.store("d001");
    let day = today();
    let letter = fx.queued(
        "d001",
        &draft(&store, "K1", Channel::Post, "service_due", Some(VIN_A), day),
    );
    // The dealer's next export: K1's car is K2's now.
    fx.import("d001", &[], &[car(VIN_A, "K2", None)], &[]);
    assert!(store.vehicles_of("K1").unwrap().is_empty());

    let shown =
        crate::content::content(&fx.stores, &fx.p(), &tid("d001"), letter.id, None).unwrap();
    let line = format!("Inspektion für Ihren Fjord (FIN {VIN_A}): fällig am");
    assert!(shown.text.contains(&line), "{}", shown.text);

    fx.d.write_letter_batch(&store, &fx.p(), now())
        .unwrap()
        .unwrap();
    let pdf = std::fs::read(fx.path("letters/d001").join(format!("d001-{day}-01.pdf"))).unwrap();
    let printed = |needle: &str| pdf.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(printed(VIN_A), "the letter does not name {VIN_A}");
    assert!(printed("Fjord"));
}

#[test]
fn a_quality_check_call_planned_by_the_planner_goes_out_in_the_days_call_list() {
    let fx = Fx::new();
    let today = today();
    // Planned on a day ten days ago, or the last before it the service
    // sends on (its window is Monday to Friday, and no holiday), so that
    // the test does not depend on the weekday it runs on.
    let p = fx.p();
    let window = &p.brand.services["quality_check"].send_window;
    let mut day = today.add_days(-10);
    while !window.weekdays.contains(&Weekday::of(day))
        || p.brand.calendar.holidays.iter().any(|h| h.0 == day)
        || p.brand.calendar.quiet_weekdays.contains(&Weekday::of(day))
    {
        day = day.add_days(-1);
    }
    let visit = day.add_days(-7);
    fx.import(
        "d003",
        &[person("K7")],
        &[car(VIN_A, "K7", Some(visit))],
        &[said("K7", Channel::Phone, true)],
    );
    let store = fx.store("d003");
    let report = plan_tenant(
        &store,
        &fx.p().set,
        day,
        Mode::Commit,
        &crate::learning::Learned::default(),
    )
    .unwrap();
    assert_eq!(report.planned.len(), 1, "{:?}", report.dropped);
    let planned = report.planned[0].clone();
    assert_eq!(
        (
            planned.channel,
            planned.service.as_str(),
            planned.occasions[0].kind
        ),
        (Channel::Phone, "quality_check", OccasionKind::AfterVisit)
    );
    assert!(planned.send_on < today);

    // The round releases it and, batch time being 00:00, closes the list.
    assert!(fx.d.next_jobs(Vec::new(), 8, true).is_empty());
    let list = format!("calls-d003-{today}-01.csv");
    let path = fx.path("calls/d003").join(&list);
    let text = std::fs::read_to_string(&path).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 2, "{text}");
    for part in [
        format!("d003.{}", planned.id),
        "K7".into(),
        "Anna Berg".into(),
        "+49 89 1234567".into(),
        "quality_check".into(),
        fx.p().brand.services["quality_check"].name.clone(),
        format!("7 days after the service on {visit}"),
    ] {
        assert!(rows[1].contains(&part), "{part} not in {}", rows[1]);
    }
    let m = fx.message("d003", planned.id);
    assert_eq!(m.status, S::Sent);
    assert_eq!(m.dispatch.batch, list);
    assert_eq!(
        last_history(&m),
        (S::Sent, format!("in call list {list}").as_str())
    );
    assert_eq!(m.dispatch.booked, 250);
    assert!(store.in_flight().unwrap().is_empty());
    assert!(store.due(Channel::Phone, LATER, 10).unwrap().is_empty());
    assert_eq!(
        fx.ledger("d003", month_of(planned.send_on), "quality_check")
            .reserved,
        0
    );
    let e = fx.ledger("d003", month_of(today), "quality_check");
    assert_eq!((e.booked, e.brand), (250, 0));
    // The day's list is closed: the next round writes none.
    assert!(fx.d.next_jobs(Vec::new(), 8, true).is_empty());
    assert!(!fx
        .path("calls/d003")
        .join(format!("calls-d003-{today}-02.csv"))
        .exists());
}

#[test]
fn a_letter_is_held_at_the_batch_when_the_budget_is_spent_but_a_fallback_letter_goes() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1", "K2"]);
    let store = fx.store("d001");
    // An email refused for good becomes a letter.
    let email = fx.queued(
        "d001",
        &draft(
            &store,
            "K1",
            Channel::Email,
            "service_due",
            Some(VIN_A),
            today(),
        ),
    );
    let jobs = fx.claim("d001", now(), 8);
    fx.d.record_and_flush(vec![outcome(
        &jobs[0],
        Delivery::Permanent {
            code: 554,
            message: "5.7.1 policy".into(),
        },
    )]);
    let fallback = fx.message("d001", email.id).dispatch.fallback_to.unwrap();
    fx.spent("d001", "service_due", fx.budget("d001", "service_due"));
    let planned = fx.queued(
        "d001",
        &draft(
            &store,
            "K2",
            Channel::Post,
            "service_due",
            Some(VIN_B),
            today(),
        ),
    );

    let summary =
        fx.d.write_letter_batch(&store, &fx.p(), now())
            .unwrap()
            .unwrap();
    assert_eq!(summary.messages, 1);
    assert_eq!(fx.message("d001", fallback).status, S::Sent);
    let m = fx.message("d001", planned.id);
    assert_eq!(m.status, S::Held);
    let (_, reason) = last_history(&m);
    assert!(reason.starts_with("budget exhausted: "), "{reason}");
    assert_eq!(m.dispatch.batch, "");
    assert!(store.in_flight().unwrap().is_empty());
}

/// A letter batch that cannot be written because the tenant's folder is no
/// folder (a file where it should be) fails before a letter is taken: they
/// stay queued as they were, and go with the batch after it is fixed.
#[test]
fn letters_wait_untouched_while_the_tenants_folder_is_not_a_folder() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1"]);
    let store = fx.store("d001");
    let letter = fx.queued(
        "d001",
        &draft(
            &store,
            "K1",
            Channel::Post,
            "service_due",
            Some(VIN_A),
            today(),
        ),
    );
    // A file where the tenant's letter directory should be.
    std::fs::create_dir_all(fx.path("letters")).unwrap();
    std::fs::write(fx.path("letters/d001"), b"").unwrap();
    let err =
        fx.d.write_letter_batch(&store, &fx.p(), now())
            .unwrap_err()
            .to_string();
    assert_eq!(
        err,
        format!(
            "letter batch of d001 not written: {}: not a folder (a symbolic link?); \
             the daemon writes nothing through links: make it a folder",
            fx.path("letters/d001").display()
        )
    );
    let m = fx.message("d001", letter.id);
    assert_eq!(m, letter, "the letter is untouched");
    assert!(store.in_flight().unwrap().is_empty());
    assert_eq!(
        store.due(Channel::Post, now(), 10).unwrap(),
        vec![letter.id]
    );
    assert_eq!(
        fx.ledger("d001", month_of(today()), "service_due").booked,
        0
    );

    // Fixed by the operator: an operator's batch takes the letter.
    std::fs::remove_file(fx.path("letters/d001")).unwrap();
    let summary = fx.d.run_batches(&[tid("d001")]).unwrap();
    assert_eq!(summary.len(), 1);
    let m = fx.message("d001", letter.id);
    assert_eq!(m.status, S::Sent);
    assert_eq!(m.dispatch.attempts, 1);
}

/// A pickup account swaps a tenant's letters and calls folders for links
/// to a folder it reads: nothing lands there, the tenant's batches fail
/// with the reason (the other tenant's go on), its letter and call stay
/// queued as they were however many rounds pass, and go once the folders
/// are folders again.
#[test]
fn a_tenant_folder_that_is_a_link_fails_its_batches_before_anything_is_taken() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1"]);
    fx.import(
        "d003",
        &[person("K7")],
        &[car(VIN_A, "K7", None)],
        &[said("K7", Channel::Phone, true)],
    );
    let (s1, s3) = (fx.store("d001"), fx.store("d003"));
    let theirs = fx.queued(
        "d001",
        &draft(
            &s1,
            "K1",
            Channel::Post,
            "service_due",
            Some(VIN_A),
            today(),
        ),
    );
    let letter = fx.queued(
        "d003",
        &draft(
            &s3,
            "K7",
            Channel::Post,
            "service_due",
            Some(VIN_A),
            today(),
        ),
    );
    let call = fx.queued(
        "d003",
        &draft(
            &s3,
            "K7",
            Channel::Phone,
            "quality_check",
            Some(VIN_A),
            today(),
        ),
    );
    let loot = fx.path("loot");
    std::fs::create_dir(&loot).unwrap();
    for kind in ["letters", "calls"] {
        std::fs::create_dir_all(fx.path(kind)).unwrap();
        std::os::unix::fs::symlink(&loot, fx.path(kind).join("d003")).unwrap();
    }

    let err =
        fx.d.run_batches(&[tid("d001"), tid("d003")])
            .unwrap_err()
            .to_string();
    for kind in ["letters", "calls"] {
        let folder = fx.path(kind).join("d003").display().to_string();
        assert!(err.contains(&format!("{folder}: not a folder")), "{err}");
    }
    assert!(
        err.ends_with("; closed meanwhile: d001 letters (1 messages)"),
        "{err}"
    );
    assert_eq!(fx.message("d001", theirs.id).status, S::Sent);
    // The rounds at batch time try again, and touch nothing either.
    for _ in 0..3 {
        assert!(fx.d.next_jobs(Vec::new(), 8, true).is_empty());
    }
    assert_eq!(fx.message("d003", letter.id), letter);
    assert_eq!(fx.message("d003", call.id), call);
    assert!(s3.in_flight().unwrap().is_empty());
    assert_eq!(std::fs::read_dir(&loot).unwrap().count(), 0);

    for kind in ["letters", "calls"] {
        std::fs::remove_file(fx.path(kind).join("d003")).unwrap();
    }
    let done = fx.d.run_batches(&[tid("d003")]).unwrap();
    let mut kinds: Vec<&str> = done.iter().map(|b| b.kind.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["calls", "letters"]);
    for m in [&letter, &call] {
        let m = fx.message("d003", m.id);
        assert_eq!((m.status, m.dispatch.attempts), (S::Sent, 1));
    }
    assert_eq!(std::fs::read_dir(&loot).unwrap().count(), 0);
}

/// One letter too heavy for the postage table does not stop the batch for
/// good: it is held, the others wait for the next batch.
#[test]
fn a_letter_too_heavy_for_the_postage_table_is_held_and_the_others_go_next_time() {
    let fx = Fx::new();
    customers(&fx, "d001", &["K1", "K2"]);
    let store = fx.store("d001");
    let light = fx.queued(
        "d001",
        &draft(
            &store,
            "K1",
            Channel::Post,
            "service_due",
            Some(VIN_A),
            today(),
        ),
    );
    // A fleet of 6000 vehicles named one per line: more than 100 pages,
    // heavier than the 500 g of a Grossbrief.
    let mut heavy = draft(&store, "K2", Channel::Post, "service_due", None, today());
    let template = heavy.occasions[0].clone();
    heavy.occasions = (0..6000)
        .map(|i| Occasion {
            key: format!("service_due:FLEET{i:05}:x"),
            vin: Some(format!("WNWFLEET{i:09}")),
            ..template.clone()
        })
        .collect();
    let heavy = fx.queued("d001", &heavy);

    let err =
        fx.d.write_letter_batch(&store, &fx.p(), now())
            .unwrap_err()
            .to_string();
    assert!(err.contains("more than the heaviest weight class"), "{err}");
    let h = fx.message("d001", heavy.id);
    assert_eq!(h.status, S::Held);
    assert_eq!(h.dispatch.held_from, Some(S::Queued));
    let (_, reason) = last_history(&h);
    assert!(
        reason.starts_with(&format!("message {}: ", heavy.id)),
        "{reason}"
    );
    let l = fx.message("d001", light.id);
    assert_eq!(l.status, S::Queued);
    assert!(store.in_flight().unwrap().is_empty());
    assert_eq!(store.due(Channel::Post, now(), 10).unwrap(), vec![light.id]);

    let summary = fx.d.run_batches(&[tid("d001")]).unwrap();
    assert_eq!((summary.len(), summary[0].messages), (1, 1));
    assert_eq!(fx.message("d001", light.id).status, S::Sent);
    assert_eq!(fx.message("d001", heavy.id).status, S::Held);
}
