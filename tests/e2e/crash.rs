//! Crash test: the real `touchpointd` binary killed with SIGKILL at random
//! moments while it sends a few thousand emails and writes letter batches,
//! restarted each time on the same state directory. Afterwards every
//! planned email reached the relay at least once, any email that arrived
//! twice was one the daemon found in flight after a kill, and every letter
//! is in exactly one complete batch.
//!
//! The relay is an [`SmtpSink`] in this process, so what it received
//! survives the kills. The kill moments come from a seeded generator
//! (`CRASH_SEED` overrides the seed), so a failing run can be repeated.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use touchpoint::client::{Client, PlanArgs};
use touchpoint_common::domain::Channel;
use touchpoint_common::outbox::{Message, MessageStatus};
use touchpoint_common::protocol::DispatchStatus;
use touchpoint_common::Date;
use touchpoint_tests::smtp::{Received, SmtpSink};
use touchpoint_tests::{daemon_files_with, fixture, tid, DaemonFiles, DaemonProcess};

/// Customers reached by email; every 25th address does not exist, so its
/// email becomes a letter (a fallback) while the others are being sent.
const EMAILS: usize = 3000;
/// Customers who take letters only.
const LETTERS: usize = 100;
/// Kills while sending.
const KILLS: usize = 10;
const DOMAINS: [&str; 6] = [
    "example.de",
    "posteingang.example",
    "mailbox.example",
    "kundenmail.example",
    "netz.example",
    "web.example",
];
const WAIT: Duration = Duration::from_secs(60);
/// Emails in flight at once at most: `connections` (4, below) times the
/// default `in_flight_per_connection` (8).
const IN_FLIGHT_MAX: u64 = 4 * 8;
const TENANT: &str = "s001";

fn address(i: usize) -> String {
    let local = if i % 25 == 7 { "nosuchuser" } else { "kunde" };
    format!("{local}.{i}@{}", DOMAINS[i % DOMAINS.len()])
}

/// A dealer export: `emails` customers with email and post, then `letters`
/// with post only, each with one vehicle whose HU is due on 2026-12-10.
fn export(path: &Path, emails: usize, letters: usize) {
    let mut csv = String::from(
        "Kundennummer;Anrede;Vorname;Nachname;Firma;Straße;PLZ;Ort;E-Mail;Telefon;Geburtsdatum;FIN;Marke;Modell;Erstzulassung;Letzter Service;km-Stand;Nächste HU;Garantieende;Einwilligung E-Mail;Einwilligung Post;Einwilligungsdatum\r\n",
    );
    for i in 0..emails + letters {
        let (email, consent) = if i < emails {
            (address(i), "ja")
        } else {
            (String::new(), "nein")
        };
        csv.push_str(&format!(
            "K-{no};Herr;Karl;Kunde{i:05};;Teststraße {house};{plz};München;{email};;;WNWZZZ3CZNB{vin:06};Nordwagen;Fjord;15.03.2022;20.01.2026;12.000;10.12.2026;;{consent};ja;01.02.2024\r\n",
            no = 10_000 + i,
            house = i + 1,
            plz = 80331 + i % 500,
            vin = 500_000 + i,
        ));
    }
    std::fs::write(path, csv).expect("write export");
}

async fn client(files: &DaemonFiles) -> Client {
    Client::connect(&files.socket).await.expect("connect")
}

/// Starts the daemon and waits until its dispatcher answers (the socket
/// answers a moment before the dispatcher is set up).
async fn start(files: &DaemonFiles, run: usize) -> DaemonProcess {
    let log = files.log.with_extension(format!("{run}.log"));
    let d = DaemonProcess::spawn(&files.config_file, &files.socket, &log);
    let deadline = Instant::now() + WAIT;
    loop {
        if client(files).await.dispatch_status().await.is_ok() {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "dispatch did not start: see {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn status(files: &DaemonFiles) -> DispatchStatus {
    client(files).await.dispatch_status().await.expect("status")
}

/// Polls `done` until it holds; `what` names it in the failure.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "not {what} after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn message_id(r: &Received) -> String {
    r.parsed()
        .and_then(|p| p.message_id().map(str::to_string))
        .expect("Message-ID")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_sending_it_loses_nothing_and_resends_only_what_was_in_flight() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_123_u64);
    let mut rng = fastrand::Rng::with_seed(seed);
    let sink = SmtpSink::new();
    sink.reply_for(
        "nosuchuser.",
        550,
        "5.1.1 Recipient address rejected: User unknown",
    );
    let root = tempfile::tempdir().expect("tempdir");
    let files = daemon_files_with(
        root.path(),
        &[],
        &format!(
            "[dispatch]\ntick_ms = 20\nbatch_at = \"00:00\"\n\n[dispatch.smtp]\nhost = \"127.0.0.1\"\n\
             port = {}\ntls = \"none\"\nconnections = 4\ntimeout_secs = 60\n",
            sink.addr().port()
        ),
    );
    std::fs::copy(
        fixture("dispatch/s001.toml"),
        files.policy_dir.join("dealers/s001.toml"),
    )
    .expect("dealer policy");
    let kunden = root.path().join("kunden.csv");
    export(&kunden, EMAILS, LETTERS);

    // Import and plan with dispatch paused, so that sending starts with the
    // first kill cycle.
    let mut d = start(&files, 0).await;
    let started = Instant::now();
    let mut c = client(&files).await;
    c.pause(Default::default()).await.expect("pause");
    let r = c.upload(&tid(TENANT), &kunden).await.expect("import");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let r = c
        .plan(PlanArgs {
            tenant: Some(tid(TENANT)),
            day: Some(Date::from_ymd(2026, 11, 16).expect("day")),
            dry_run: false,
            policies: None,
            show: 0,
        })
        .await
        .expect("plan");
    let planned = r.reports.iter().map(|r| r.planned_count).sum::<u64>();
    assert_eq!(planned as usize, EMAILS + LETTERS);
    c.resume(Default::default()).await.expect("resume");

    // Kill it while it sends, at a random point, and start it again.
    let mut resent = 0;
    let mut kills = Vec::new();
    for run in 1..=KILLS {
        let before = sink.count();
        let after = before + rng.usize(1..=EMAILS / (KILLS + 2));
        if rng.bool() {
            // A letter batch may be being written as well.
            let socket = files.socket.clone();
            tokio::spawn(async move {
                if let Ok(mut c) = Client::connect(&socket).await {
                    let _ = c.run_batches(Some(&tid(TENANT))).await;
                }
            });
        }
        wait_until(&format!("{after} emails at the relay"), || {
            sink.count() >= after
        })
        .await;
        tokio::time::sleep(Duration::from_millis(rng.u64(0..20))).await;
        d.signal(Signal::SIGKILL);
        d.wait_exit(WAIT).expect("the daemon dies");
        kills.push(sink.count());
        d = start(&files, run).await;
        // Recovery runs before the first claim after a start.
        let seen = sink.count();
        wait_until("sending after the restart", || sink.count() > seen).await;
        let again = status(&files).await.resent_after_crash;
        assert!(
            again <= IN_FLIGHT_MAX,
            "{again} emails resent after kill {run}, more than the {IN_FLIGHT_MAX} that can be in flight"
        );
        resent += again;
    }

    // Let it finish, then close the day's letters.
    let deadline = Instant::now() + WAIT;
    loop {
        let s = status(&files).await;
        let q = &s.queues[0];
        if q.email == 0 && q.in_flight == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "email still queued: {s:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c = client(&files).await;
    c.run_batches(Some(&tid(TENANT)))
        .await
        .expect("run batches");
    let s = status(&files).await;
    assert_eq!((s.queues[0].post, s.queues[0].in_flight), (0, 0), "{s:#?}");

    // Every message where it belongs.
    let mut messages: BTreeMap<u64, Message> = BTreeMap::new();
    for id in 1..=planned {
        let m = c.message(&tid(TENANT), id).await.expect("message");
        if let Some(letter) = m.dispatch.fallback_to {
            let l = c.message(&tid(TENANT), letter).await.expect("letter");
            messages.insert(letter, l);
        }
        messages.insert(id, m);
    }
    let mut expected = BTreeSet::new();
    let mut refused = 0;
    for m in messages.values() {
        match (m.channel, m.status) {
            (Channel::Email, MessageStatus::Sent) => {
                expected.insert(m.message_id.trim_matches(['<', '>']).to_string());
            }
            (Channel::Email, MessageStatus::Fallback) => {
                assert!(m.dispatch.address.starts_with("nosuchuser."), "{m:#?}");
                refused += 1;
            }
            (Channel::Post, MessageStatus::Sent) => {}
            _ => panic!("message {} ended {}: {:#?}", m.id, m.status, m.history),
        }
    }
    assert_eq!(refused, (0..EMAILS).filter(|i| i % 25 == 7).count());

    // At the relay: each sent email at least once; twice only if in flight at a kill.
    let got = sink.messages();
    let mut arrivals: BTreeMap<String, usize> = BTreeMap::new();
    for r in &got {
        *arrivals.entry(message_id(r)).or_insert(0) += 1;
    }
    let arrived: BTreeSet<String> = arrivals.keys().cloned().collect();
    let lost: Vec<_> = expected.difference(&arrived).collect();
    assert!(
        lost.is_empty(),
        "{} emails never reached the relay: {lost:?}",
        lost.len()
    );
    assert_eq!(
        arrived, expected,
        "the relay got emails the daemon does not count as sent"
    );
    let duplicates = got.len() - arrived.len();
    // Each email at most once more than it was resent: once per kill it was
    // in flight for, as its history records (packaging/README.md).
    for m in messages.values().filter(|m| m.channel == Channel::Email) {
        let resends = m
            .history
            .iter()
            .filter(|h| h.2.starts_with("was being sent when the daemon stopped"))
            .count();
        let copies = arrivals
            .get(m.message_id.trim_matches(['<', '>']))
            .copied()
            .unwrap_or(0);
        assert!(
            copies <= 1 + resends,
            "message {} reached the relay {copies} times but was resent {resends} times: {:#?}",
            m.id,
            m.history
        );
    }

    // Letters: every batch complete, every letter in exactly one.
    let dir = files.state_dir.join("letters").join(TENANT);
    let (mut pdfs, mut manifests, mut hidden) = (BTreeSet::new(), BTreeSet::new(), Vec::new());
    for e in std::fs::read_dir(&dir).expect("letters dir") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            hidden.push(name);
        } else if let Some(stem) = name.strip_suffix(".pdf") {
            pdfs.insert(stem.to_string());
        } else if let Some(stem) = name.strip_suffix(".csv") {
            manifests.insert(stem.to_string());
        } else {
            panic!("unexpected file {name} in {}", dir.display());
        }
    }
    assert_eq!(
        pdfs, manifests,
        "a batch without its manifest, or the other way round"
    );
    let mut in_batches: BTreeMap<u64, String> = BTreeMap::new();
    for stem in &pdfs {
        let pdf = std::fs::read(dir.join(format!("{stem}.pdf"))).expect("pdf");
        assert!(
            pdf.starts_with(b"%PDF-") && pdf.trim_ascii_end().ends_with(b"%%EOF"),
            "{stem}.pdf is not a whole PDF"
        );
        let text = std::fs::read_to_string(dir.join(format!("{stem}.csv"))).expect("manifest");
        for line in text.lines().skip(1) {
            let id: u64 = line
                .split(',')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("{stem}.csv: {line}"));
            if let Some(other) = in_batches.insert(id, stem.clone()) {
                panic!("letter {id} is in {other} and in {stem}");
            }
        }
    }
    let letters: BTreeMap<u64, String> = messages
        .values()
        .filter(|m| m.channel == Channel::Post)
        .map(|m| (m.id, m.dispatch.batch.trim_end_matches(".pdf").to_string()))
        .collect();
    assert_eq!(letters.len(), LETTERS + refused);
    assert_eq!(in_batches, letters, "letters and the batches they are in");

    // The ledger agrees with the messages: nothing reserved any more, and
    // what was booked is what the messages say they cost.
    let booked: i64 = messages.values().map(|m| m.dispatch.booked).sum();
    let rows = c.costs(Some(&tid(TENANT)), None).await.expect("costs");
    assert!(rows.iter().all(|r| r.reserved == 0), "{rows:#?}");
    assert_eq!(
        rows.iter().map(|r| r.booked).sum::<i64>(),
        booked,
        "{rows:#?}"
    );

    eprintln!(
        "crash test (seed {seed}): {KILLS} SIGKILLs at {kills:?} emails received; \
         {} emails planned, {} sent, {refused} refused and sent as letters; \
         the relay got {} emails, {duplicates} of them twice; {resent} found in flight \
         after the kills and sent again; {} letters in {} batches ({} hidden temp files left); {:.1} s",
        EMAILS,
        expected.len(),
        got.len(),
        letters.len(),
        pdfs.len(),
        hidden.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        duplicates as u64 <= resent,
        "{duplicates} duplicates, but only {resent} emails were in flight at the kills"
    );
    d.signal(Signal::SIGTERM);
    assert!(
        d.wait_exit(WAIT).is_some_and(|s| s.success()),
        "no clean stop at the end"
    );
}

/// The one moment a kill cannot be aimed at by chance: between the rename
/// of a batch's PDF and that of its manifest (letters.rs writes both to
/// temporary files, then renames the PDF, then the manifest). The state
/// such a kill leaves is made by hand in the stopped daemon's store and
/// letters folder; the restarted daemon must put the letters into a new,
/// complete batch and leave no PDF without its manifest, which a
/// lettershop could print.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_cut_between_its_pdf_and_its_manifest_is_written_again_whole() {
    let root = tempfile::tempdir().expect("tempdir");
    let files = daemon_files_with(
        root.path(),
        &[],
        "[dispatch]\ntick_ms = 20\nbatch_at = \"23:59\"\n",
    );
    std::fs::copy(
        fixture("dispatch/s001.toml"),
        files.policy_dir.join("dealers/s001.toml"),
    )
    .expect("dealer policy");
    let kunden = root.path().join("kunden.csv");
    export(&kunden, 0, 3);
    let mut d = start(&files, 0).await;
    let mut c = client(&files).await;
    c.upload(&tid(TENANT), &kunden).await.expect("import");
    let r = c
        .plan(PlanArgs {
            tenant: Some(tid(TENANT)),
            day: Some(Date::from_ymd(2026, 11, 16).expect("day")),
            dry_run: false,
            policies: None,
            show: 10,
        })
        .await
        .expect("plan");
    let ids: Vec<u64> = r.reports[0].planned.iter().map(|m| m.id).collect();
    assert_eq!(ids.len(), 3);
    // The status counts a release's write before its flush, so a kill
    // right after it may take the release with it (the letters planned
    // again, which the restarted daemon releases anew): killed until the
    // letters are queued on disk, the state the batch step starts from.
    for attempt in 0.. {
        let deadline = Instant::now() + WAIT;
        while status(&files).await.queues[0].post < 3 {
            assert!(Instant::now() < deadline, "the letters were not queued");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        d.signal(Signal::SIGKILL);
        d.wait_exit(WAIT).expect("the daemon dies");
        let queued = {
            let stores = touchpointd::store::Stores::open(&files.state_dir, &Default::default())
                .expect("open the stores");
            let store = stores.tenant(&tid(TENANT)).expect("tenant store");
            let all = ids.iter().all(|&id| {
                store
                    .message(id)
                    .expect("read")
                    .is_some_and(|m| m.status == MessageStatus::Queued)
            });
            drop(store);
            stores.close_all().expect("close");
            all
        };
        if queued {
            break;
        }
        assert!(attempt < 5, "the letters were never queued on disk");
        d = start(&files, 0).await;
    }

    // What the kill leaves: the letters marked sending in batch 01, whose
    // PDF has its final name and whose manifest is still a temporary file.
    let stem = format!("{TENANT}-{}-01", Date::today());
    {
        let stores = touchpointd::store::Stores::open(&files.state_dir, &Default::default())
            .expect("open the stores");
        let store = stores.tenant(&tid(TENANT)).expect("tenant store");
        let mut changes = Vec::new();
        for &id in &ids {
            let m = store.message(id).expect("read").expect("message");
            // The status counts a release's write before its flush, so the
            // kill may have taken the release with it: planned again (the
            // restarted daemon would release it anew). Either way the
            // batch step marks it sending, as here.
            assert!(
                matches!(m.status, MessageStatus::Queued | MessageStatus::Planned),
                "{:?}",
                m.status
            );
            let mut after = m.clone();
            after.dispatch.batch = format!("{stem}.pdf");
            after.dispatch.attempts += 1;
            after.set_status(
                touchpoint_common::domain::Timestamp::now(),
                MessageStatus::Sending,
                format!("into {stem}.pdf"),
            );
            changes.push(touchpointd::store::Change::new(m, after));
        }
        store.apply(&changes).expect("apply");
        drop(store);
        stores.close_all().expect("close");
    }
    let dir = files.state_dir.join("letters").join(TENANT);
    std::fs::create_dir_all(&dir).expect("letters dir");
    std::fs::write(
        dir.join(format!("{stem}.pdf")),
        b"%PDF-1.7\n% batch 01\n%%EOF\n",
    )
    .expect("pdf");
    std::fs::write(dir.join(format!(".{stem}.csv.tmp")), b"sequence,message\n").expect("tmp");

    let mut d = start(&files, 1).await;
    let mut c = client(&files).await;
    let batches = c
        .run_batches(Some(&tid(TENANT)))
        .await
        .expect("run batches");
    assert_eq!(batches.len(), 1, "{batches:#?}");
    assert_eq!(batches[0].messages, 3, "{batches:#?}");
    for &id in &ids {
        let m = c.message(&tid(TENANT), id).await.expect("message");
        assert_eq!(m.status, MessageStatus::Sent, "{:#?}", m.history);
        assert!(
            m.history.iter().any(|h| h
                .2
                .contains("batch was not completed when the daemon stopped")),
            "{:#?}",
            m.history
        );
        // The half batch was removed; the batch it is in now (which may
        // take the freed number) is a real, complete one.
        let pdf = std::fs::read(dir.join(&m.dispatch.batch)).expect("its batch");
        assert_ne!(pdf, b"%PDF-1.7\n% batch 01\n%%EOF\n".to_vec());
        assert!(dir.join(m.dispatch.batch.replace(".pdf", ".csv")).exists());
    }
    let mut pdfs = BTreeSet::new();
    let mut manifests = BTreeSet::new();
    for e in std::fs::read_dir(&dir).expect("letters dir") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        if let Some(s) = name.strip_suffix(".pdf") {
            pdfs.insert(s.to_string());
        } else if let Some(s) = name.strip_suffix(".csv") {
            manifests.insert(s.to_string());
        }
    }
    assert_eq!(
        pdfs,
        manifests,
        "a PDF without its manifest is left in {}",
        dir.display()
    );
    d.signal(Signal::SIGTERM);
    d.wait_exit(WAIT).expect("stops");
}
