//! Brand material end to end (M6) through the real `touchpoint` binary:
//! proposals from files, each invalid one refused with its line and reason;
//! the list, the diff and a preview (email text, HTML, the letter's PDF page)
//! for a customer of a tenant; four eyes (an operator may not decide, a
//! reviewer not on their own proposal); a second Unix identity approves
//! (uid 4242, when the tests run as root), the new version is in force at
//! once: rendered, unsent messages are rendered again, sent ones keep the
//! version they went out with, and an email sent afterwards carries the new
//! text; a rejection needs a reason; a rollback is a proposal with its diff;
//! every step is in the audit log with who and what.
//!
//! The tenant and its customers are written by the tests, with service
//! dates relative to today, so the planner puts their messages on today
//! whatever day the tests run.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use chrono::Timelike;
use touchpoint::client::{Client, PlanArgs};
use touchpoint_common::config::AccessRule;
use touchpoint_common::domain::Channel;
use touchpoint_common::outbox::{Message, MessageStatus};
use touchpoint_common::policy::short_fingerprint;
use touchpoint_common::protocol::{MessageAction, PauseScope, Role, TemplateHistory};
use touchpoint_common::Date;
use touchpoint_tests::{repo_root, tid, touchpoint, Options, TestDaemon};

use crate::common::my_name;
use crate::today::{brand_with_window, customers_csv, dealer_file, LONG_LAST, LONG_NO, TENANT};

/// The second person of the four-eyes tests.
const REVIEWER_UID: u32 = 4242;
/// How errors about a proposed `service_due` name the file.
const FILE: &str = "templates/service_due.toml (proposal)";
/// How long any one thing may take before a test gives up on it.
const WAIT: Duration = Duration::from_secs(15);

/// The sentence the change replaces, in the text, HTML and letter parts.
const OLD_LINE: &str =
    "Ihr Nordwagen hat sich eine Pause verdient: Nach unseren Unterlagen ist die";
const NEW_LINE: &str =
    "Ihr Nordwagen freut sich über gründliche Pflege: Nach unseren Unterlagen ist die";
/// A word of [`NEW_LINE`] as the letter PDF prints it (WinAnsi: ü is 0xfc).
const NEW_WORD_PDF: &[u8] = b"gr\xfcndliche";

fn rule(uid: u32, role: Role) -> AccessRule {
    AccessRule {
        user: None,
        uid: Some(uid),
        group: None,
        gid: None,
        role,
        tenants: vec!["*".into()],
    }
}

fn me() -> u32 {
    nix::unistd::Uid::current().as_raw()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The command succeeded; its stdout.
fn ok(out: Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The daemon said no (exit 1); its stderr.
fn refused(out: Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

fn has_line(haystack: &str, line: &str) -> bool {
    haystack.lines().any(|l| l == line)
}

/// The shipped `service_due` template: version 1 once the daemon seeded it.
fn template_v1() -> String {
    std::fs::read_to_string(repo_root().join("policies/templates/service_due.toml"))
        .expect("policies/templates/service_due.toml")
}

/// Version 1 with [`OLD_LINE`] replaced by `line` in every part.
fn with_line(v1: &str, line: &str) -> String {
    assert_eq!(
        v1.matches(OLD_LINE).count(),
        3,
        "service_due.toml no longer has the sentence in text, html and letter"
    );
    v1.replace(OLD_LINE, line)
}

/// 1-based number of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in the template"))
}

/// `text` with the first `from` after `start` (a part's key line) replaced.
fn replace_in_part(text: &str, start: &str, from: &str, to: &str) -> String {
    let at = text
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} not in the template"));
    let (head, tail) = text.split_at(at);
    assert!(tail.contains(from), "{from:?} not after {start:?}");
    format!("{head}{}", tail.replacen(from, to, 1))
}

async fn upload_customers(c: &mut Client, dir: &Path) {
    let r = c
        .upload(&tid(TENANT), &customers_csv(dir, true))
        .await
        .expect("upload");
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
}

/// The `touchpoint` binary run as uid/gid 4242, whose console log goes to
/// `home`.
fn as_reviewer(socket: &Path, home: &Path, args: &[&str]) -> Output {
    touchpoint_tests::touchpoint_as(REVIEWER_UID, socket, home, args)
}

/// Writes `text` to `dir/name` and proposes it as `service_due`.
fn propose(socket: &Path, dir: &Path, name: &str, text: &str, comment: &str) -> Output {
    let file = dir.join(name);
    std::fs::write(&file, text).expect("proposal file");
    touchpoint(
        socket,
        &[
            "propose",
            &file.display().to_string(),
            "--template",
            "service_due",
            "--comment",
            comment,
        ],
    )
}

fn history(socket: &Path) -> TemplateHistory {
    let out = ok(touchpoint(socket, &["templates", "service_due", "--json"]));
    let mut list: Vec<TemplateHistory> =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"));
    assert_eq!(list.len(), 1, "{list:#?}");
    list.remove(0)
}

fn fingerprint(h: &TemplateHistory, version: u32) -> u64 {
    h.versions
        .iter()
        .find(|v| v.version == version)
        .unwrap_or_else(|| panic!("no version {version}: {h:#?}"))
        .fingerprint
}

async fn messages(c: &mut Client, ids: &[u64]) -> Vec<Message> {
    let mut out = Vec::new();
    for &id in ids {
        out.push(c.message(&tid(TENANT), id).await.expect("message"));
    }
    out
}

/// Polls the messages until `done` holds for them, or fails saying `what`.
async fn until(
    c: &mut Client,
    ids: &[u64],
    what: &str,
    done: impl Fn(&[Message]) -> bool,
) -> Vec<Message> {
    let deadline = Instant::now() + WAIT;
    loop {
        let m = messages(c, ids).await;
        if done(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {} s: {:#?}",
            WAIT.as_secs(),
            m.iter()
                .map(|m| (m.id, m.status, m.history.last().cloned()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn statuses(m: &[Message]) -> Vec<MessageStatus> {
    m.iter().map(|m| m.status).collect()
}

/// The spooled email of message `id`, parsed: its plain text.
fn spooled_text(state_dir: &Path, id: u64) -> String {
    let path = state_dir
        .join("mail")
        .join(TENANT)
        .join(format!("{id:010}.eml"));
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let parsed = mail_parser::MessageParser::default()
        .parse(&raw)
        .unwrap_or_else(|| panic!("{} does not parse", path.display()));
    parsed
        .body_text(0)
        .unwrap_or_else(|| panic!("{} has no text part", path.display()))
        .into_owned()
}

/// The audit line with all of `parts`, or a failure showing the log.
fn audit_line<'a>(audit: &'a str, parts: &[&str]) -> &'a str {
    audit
        .lines()
        .find(|l| parts.iter().all(|p| l.contains(p)))
        .unwrap_or_else(|| panic!("no audit entry with {parts:?}:\n{audit}"))
}

#[test]
fn invalid_proposals_are_refused_each_with_its_line_and_reason() {
    let d = TestDaemon::start_with(Options {
        access: vec![rule(me(), Role::Operator)],
        ..Options::default()
    });
    let dir = d.dir.path();
    let v1 = template_v1();

    // A Jinja syntax error, in the text part.
    let bad = v1.replacen(
        "Öffnungszeiten: {{ slots.opening_hours }}",
        "Öffnungszeiten: {{ slots.opening_hours | }}",
        1,
    );
    let err = refused(propose(&d.socket, dir, "syntax.toml", &bad, "Syntax"));
    let line = line_of(&bad, "opening_hours | }}");
    let prefix =
        format!("touchpoint: the proposal was refused:\n{FILE}:{line}: text: syntax error");
    assert!(err.starts_with(&prefix), "{err}");
    assert_eq!(err.lines().count(), 2, "one error: {err}");

    // A variable no template has, in the letter.
    let bad = replace_in_part(
        &v1,
        "\nletter = '''",
        "{{ dealer.phone }}",
        "{{ dealer.fax }}",
    );
    let err = refused(propose(&d.socket, dir, "variable.toml", &bad, "Fax"));
    let line = line_of(&bad, "dealer.fax");
    let prefix = format!(
        "touchpoint: the proposal was refused:\n{FILE}:{line}: letter: unknown variable `dealer.fax` (a template has: "
    );
    assert!(err.starts_with(&prefix), "{err}");
    assert!(err.contains("dealer.phone"), "names what there is: {err}");
    assert_eq!(err.lines().count(), 2, "one error: {err}");

    // The letter without the imprint.
    let bad = replace_in_part(
        &v1,
        "\nletter = '''",
        "Amtsgericht Braunschweig HRB 210001 · ",
        "",
    );
    let err = refused(propose(&d.socket, dir, "imprint.toml", &bad, "Kürzer"));
    assert_eq!(
        err,
        format!(
            "touchpoint: the proposal was refused:\n{FILE}:{}: letter: the imprint \"Amtsgericht Braunschweig HRB 210001\" is missing; every email and letter must carry it (brand.toml [brand] imprint)\n",
            line_of(&bad, "letter = '''")
        )
    );

    // The HTML email without its unsubscribe link.
    let bad = v1.replacen(
        "<a href=\"{{ unsubscribe_url }}\">Hier abmelden</a>",
        "<a href=\"https://www.nordwagen.example/abmelden\">Hier abmelden</a>",
        1,
    );
    assert_ne!(bad, v1);
    let err = refused(propose(&d.socket, dir, "unsubscribe.toml", &bad, "Link"));
    assert_eq!(
        err,
        format!(
            "touchpoint: the proposal was refused:\n{FILE}:{}: html: has no unsubscribe link; every email part must contain {{{{ unsubscribe_url }}}}\n",
            line_of(&bad, "html = '''")
        )
    );

    // A slot the brand does not declare.
    let bad = v1.replacen("{{ slots.opening_hours }}", "{{ slots.parking }}", 1);
    let err = refused(propose(&d.socket, dir, "slot.toml", &bad, "Parken"));
    assert_eq!(
        err,
        format!(
            "touchpoint: the proposal was refused:\n{FILE}:{}: text: slot `parking` is not declared by the brand (brand.toml [slots.parking]; declared: local_offer, logo, opening_hours, signature)\n",
            line_of(&bad, "slots.parking")
        )
    );

    // Nothing was proposed; each refusal is in the audit log.
    assert_eq!(
        ok(touchpoint(&d.socket, &["approvals", "--all"])),
        "no proposals\n"
    );
    let audit = ok(touchpoint(&d.socket, &["audit", "--limit", "100"]));
    let failed: Vec<&str> = audit
        .lines()
        .filter(|l| l.contains(" propose ") && l.contains("failed: "))
        .collect();
    assert_eq!(failed.len(), 5, "{audit}");
    audit_line(
        &audit,
        &[
            "propose",
            "failed: templates/service_due.toml (proposal):",
            "slot `parking`",
        ],
    );
}

#[test]
fn a_proposal_shows_its_diff_and_preview_and_its_author_cannot_approve_it() {
    let files = tempfile::tempdir().expect("tempdir");
    let d = TestDaemon::start_with(Options {
        access: vec![rule(me(), Role::Operator)],
        dealer_files: vec![dealer_file(files.path())],
        ..Options::default()
    });
    let dir = d.dir.path();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut c = d.client().await;
        upload_customers(&mut c, files.path()).await;
    });

    let v2 = with_line(&template_v1(), NEW_LINE);
    let file = dir.join("service_due.toml");
    std::fs::write(&file, &v2).expect("write");
    let out = ok(touchpoint(
        &d.socket,
        &[
            "propose",
            &file.display().to_string(),
            "--comment",
            "Freundlicher Einstieg für die Inspektion",
        ],
    ));
    assert!(
        out.starts_with("proposal 1: service_due, based on version 1\n"),
        "{out}"
    );
    assert!(has_line(&out, &format!("-{OLD_LINE}")), "{out}");
    assert!(has_line(&out, &format!("+{NEW_LINE}")), "{out}");
    assert!(has_line(&out, &format!("+<p>{NEW_LINE}")), "{out}");

    let list = ok(touchpoint(&d.socket, &["approvals"]));
    let row = list
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap_or_else(|| panic!("proposal 1 not listed:\n{list}"));
    for part in ["service_due", &my_name(), "v1", "pending", "Freundlicher"] {
        assert!(row.contains(part), "{part:?} not in {row:?}");
    }

    let detail = ok(touchpoint(&d.socket, &["approval", "1"]));
    assert!(has_line(&detail, "template  service_due"), "{detail}");
    assert!(has_line(&detail, "status    pending"), "{detail}");
    assert!(
        has_line(&detail, "base      version 1, in force"),
        "{detail}"
    );
    assert!(
        has_line(&detail, "--- service_due v1 (in force)"),
        "{detail}"
    );
    assert!(has_line(&detail, "+++ service_due proposal #1"), "{detail}");
    assert_eq!(
        detail
            .lines()
            .filter(|l| l.starts_with('-') && !l.starts_with("---"))
            .count(),
        3,
        "the sentence in text, html and letter: {detail}"
    );
    assert!(has_line(&detail, &format!("+{NEW_LINE}")), "{detail}");

    // The preview for the customer with the long name.
    let pdf = dir.join("vorschau.pdf");
    let out = ok(touchpoint(
        &d.socket,
        &[
            "preview",
            "1",
            "--tenant",
            TENANT,
            "--customer",
            LONG_NO,
            "--pdf",
            &pdf.display().to_string(),
        ],
    ));
    assert!(
        out.starts_with(&format!(
            "proposal 1 for tenant {TENANT}, customer {LONG_NO}\n"
        )),
        "{out}"
    );
    assert!(
        has_line(&out, "subject: Ihr Fjord: Zeit für die Inspektion"),
        "{out}"
    );
    let salutation = format!("  Sehr geehrte Frau {LONG_LAST},");
    assert_eq!(
        out.matches(&salutation).count(),
        2,
        "email and letter: {out}"
    );
    assert_eq!(out.matches(&format!("  {NEW_LINE}")).count(), 2, "{out}");
    assert!(!out.contains("Pause verdient"), "{out}");
    assert!(
        has_line(&out, "  Ihr Serviceteam – Jörg Weißmüller"),
        "{out}"
    );
    assert!(
        has_line(&out, "  Öffnungszeiten: Mo–Fr 7:30–18:00, Sa 9:00–13:00"),
        "{out}"
    );
    assert!(out.contains("letter PDF written to"), "{out}");

    let bytes = std::fs::read(&pdf).expect("the PDF");
    assert!(bytes.starts_with(b"%PDF"), "not a PDF");
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(has(NEW_WORD_PDF), "the new sentence, WinAnsi-encoded");
    assert!(!has("gründliche".as_bytes()), "UTF-8 in the PDF text");
    assert!(!has(b"Pause verdient"), "the old sentence in the PDF");
    assert!(
        has(b"L\xfcdenscheidt-W\xf6llersdorf"),
        "the long name, WinAnsi"
    );
    assert!(has(b"Wei\xdfm\xfcller"), "the signature slot, WinAnsi");

    // Exactly as rendered: the empty slot leaves no trace, dealer text is
    // escaped in the HTML, the long name stays whole.
    let out = ok(touchpoint(
        &d.socket,
        &[
            "preview",
            "1",
            "--tenant",
            TENANT,
            "--customer",
            LONG_NO,
            "--json",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let email = v["text"].as_str().expect("text");
    assert!(
        email.starts_with(&format!("Sehr geehrte Frau {LONG_LAST},\n\n{NEW_LINE}\n")),
        "{email}"
    );
    assert!(
        email.contains("oder per Antwort auf diese E-Mail.\n\nÖffnungszeiten: Mo–Fr"),
        "the empty local offer leaves no paragraph: {email}"
    );
    let html = v["html"].as_str().expect("html");
    assert!(html.contains("Autohaus Grün &amp; Söhne GmbH"), "{html}");
    assert!(!html.contains("Grün & Söhne"), "{html}");
    assert!(html.contains(&format!("<p>{NEW_LINE}")), "{html}");
    assert!(v["pdf_bytes"].as_u64().unwrap_or(0) > 1000, "{v}");

    // Four eyes: an operator decides nothing, not even on their own proposal.
    let err = refused(touchpoint(&d.socket, &["approve", "1"]));
    assert!(err.contains("role operator may not approve"), "{err}");
    let err = refused(touchpoint(&d.socket, &["reject", "1", "--comment", "nein"]));
    assert!(err.contains("role operator may not reject"), "{err}");
    let h = history(&d.socket);
    assert_eq!(h.in_force, 1, "{h:#?}");
    let list = ok(touchpoint(&d.socket, &["approvals"]));
    assert!(list.contains("pending"), "{list}");
    let audit = ok(touchpoint(&d.socket, &["audit", "--limit", "100"]));
    audit_line(
        &audit,
        &[
            &format!("{} ({})", my_name(), me()),
            "operator",
            "approve",
            "refused: role operator may not approve",
        ],
    );
    audit_line(&audit, &["reject", "refused: role operator may not reject"]);
    audit_line(
        &audit,
        &["propose", "ok", "proposal #1 for template service_due (base v1): Freundlicher Einstieg für die Inspektion"],
    );
    drop(d);

    // A reviewer may propose, but not approve what they proposed; they may
    // withdraw it, saying why.
    let d = TestDaemon::start_with(Options {
        access: vec![rule(me(), Role::Reviewer)],
        ..Options::default()
    });
    ok(propose(
        &d.socket,
        d.dir.path(),
        "service_due.toml",
        &v2,
        "Neuer Einstieg",
    ));
    let err = refused(touchpoint(
        &d.socket,
        &["approve", "1", "--comment", "passt"],
    ));
    let four_eyes = format!(
        "four eyes: {me} cannot approve proposal #1, which {me} proposed; another reviewer must",
        me = my_name()
    );
    assert!(err.contains(&four_eyes), "{err}");
    let err = refused(touchpoint(&d.socket, &["reject", "1", "--comment", " "]));
    assert!(
        err.contains("a rejection needs a comment saying why"),
        "{err}"
    );
    assert_eq!(
        ok(touchpoint(
            &d.socket,
            &["reject", "1", "--comment", "zurückgezogen"]
        )),
        "proposal 1 rejected: service_due stays at version 1\n"
    );
    assert_eq!(history(&d.socket).in_force, 1);
    assert_eq!(
        ok(touchpoint(&d.socket, &["approvals"])),
        "no pending proposals\n"
    );
    let audit = ok(touchpoint(&d.socket, &["audit", "--limit", "100"]));
    audit_line(
        &audit,
        &["reviewer", "approve", &format!("failed: {four_eyes}")],
    );
    audit_line(
        &audit,
        &["reject", "failed: a rejection needs a comment saying why"],
    );
    audit_line(
        &audit,
        &[
            "reviewer",
            "reject",
            "ok",
            &format!(
                "proposal #1 by {} for template service_due rejected: zurückgezogen",
                my_name()
            ),
        ],
    );
}

/// A daemon sending to its spool, the operator (this process) and a
/// reviewer (uid 4242, the real `touchpoint` binary), and the tenant's six
/// `service_due` messages planned for today and rendered with version 1:
/// three due (queued; dispatch of the tenant is paused) and three later
/// today (rendered, waiting for their time).
struct Cycle {
    d: TestDaemon,
    _files: tempfile::TempDir,
    /// The reviewer's home (console log).
    home: PathBuf,
    c: Client,
    paused: PauseScope,
    due: Vec<u64>,
    waiting: Vec<u64>,
    /// Fingerprint of `service_due` version 1.
    fp1: u64,
}

impl Cycle {
    /// `None`, saying why on stderr, where the cycle cannot run: not root
    /// (no second identity), or too close to midnight for a send window
    /// with messages both past and ahead.
    async fn start(email: bool) -> Option<Cycle> {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!(
                "skipped: four eyes needs a second Unix identity (uid {REVIEWER_UID}); the tests run as uid {}, not root",
                me()
            );
            return None;
        }
        // A window of 30 minutes from 12 minutes ago: six five-minute steps,
        // three past (due now) and three later today (rendered and
        // waiting). Each customer's step is the planner's draw from
        // (tenant, customer, service), the same every day and for either
        // channel: two of the six customers fall on a past step, four on
        // one to come.
        // The daemon's clock, which is this process's (moved off the
        // day's first hour before any daemon starts).
        touchpoint_tests::keep_off_midnight();
        let now = touchpoint_common::clock::now_local();
        let minute = (now.hour() * 60 + now.minute()) as u16;
        if !(15..=23 * 60 + 30).contains(&minute) {
            eprintln!(
                "skipped: at {now} there is no send window today with messages both past and ahead"
            );
            return None;
        }
        let files = tempfile::tempdir().expect("tempdir");
        let d = TestDaemon::start_with(Options {
            access: vec![
                rule(me(), Role::Operator),
                rule(REVIEWER_UID, Role::Reviewer),
            ],
            dealer_files: vec![dealer_file(files.path())],
            brand: Some(brand_with_window(minute - 12, minute + 18)),
            dispatch: Some("[dispatch]\ntick_ms = 50\nbatch_at = \"23:59\"\n".into()),
            // The test's own connection waits while the reviewer's commands
            // run as separate processes; on a loaded CI machine that can
            // take longer than the default idle timeout.
            idle_timeout_secs: 600,
            ..Options::default()
        });
        // The reviewer's process must reach the socket.
        let home = d.open_to_user(REVIEWER_UID);

        // Planned with dispatch paused, so that nothing goes before we look.
        let mut c = d.client().await;
        let paused = PauseScope {
            tenant: Some(tid(TENANT)),
            service: None,
        };
        let deadline = Instant::now() + WAIT;
        while c.pause(paused.clone()).await.is_err() {
            assert!(Instant::now() < deadline, "dispatch did not start");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let r = c
            .upload(&tid(TENANT), &customers_csv(files.path(), email))
            .await
            .expect("upload");
        assert!(r.errors.is_empty(), "{:#?}", r.errors);
        let plan = c
            .plan(PlanArgs {
                tenant: Some(tid(TENANT)),
                day: Some(Date::today()),
                dry_run: false,
                policies: None,
                show: 0,
            })
            .await
            .expect("plan");
        let planned: u64 = plan.reports.iter().map(|r| r.planned_count).sum();
        assert_eq!(planned, 6, "{plan:#?}");
        let ids: Vec<u64> = (1..=6).collect();
        let released = until(&mut c, &ids, "released", |m| {
            m.iter()
                .all(|m| matches!(m.status, MessageStatus::Queued | MessageStatus::Rendered))
        })
        .await;
        let v1 = history(&d.socket);
        assert_eq!(v1.in_force, 1, "{v1:#?}");
        let fp1 = fingerprint(&v1, 1);
        for m in &released {
            assert_eq!(m.dispatch.template_version, fp1, "rendered with v1: {m:#?}");
            assert_eq!(m.template, "service_due");
            assert_eq!(m.channel == Channel::Email, email, "{m:#?}");
        }
        let with = |s: MessageStatus| -> Vec<u64> {
            released
                .iter()
                .filter(|m| m.status == s)
                .map(|m| m.id)
                .collect()
        };
        let (due, waiting) = (with(MessageStatus::Queued), with(MessageStatus::Rendered));
        assert_eq!(
            (due.len(), waiting.len()),
            (2, 4),
            "{:?}",
            statuses(&released)
        );
        let cycle = Cycle {
            d,
            _files: files,
            home,
            c,
            paused,
            due,
            waiting,
            fp1,
        };
        let who = ok(cycle.reviewer(&["status"]));
        assert!(who.contains("reviewer"), "{who}");
        Some(cycle)
    }

    fn reviewer(&self, args: &[&str]) -> Output {
        as_reviewer(&self.d.socket, &self.home, args)
    }

    /// Proposes version 2 (the new sentence) as the operator and has the
    /// reviewer approve it; returns its fingerprint.
    fn approve_v2(&self) -> u64 {
        let v2 = with_line(&template_v1(), NEW_LINE);
        let out = ok(propose(
            &self.d.socket,
            self.d.dir.path(),
            "service_due.toml",
            &v2,
            "Neuer Einstieg",
        ));
        assert!(
            out.starts_with("proposal 1: service_due, based on version 1\n"),
            "{out}"
        );
        let list = ok(self.reviewer(&["approvals"]));
        assert!(list.contains("pending"), "{list}");
        let detail = ok(self.reviewer(&["approval", "1"]));
        assert!(has_line(&detail, &format!("+{NEW_LINE}")), "{detail}");
        let preview = ok(self.reviewer(&["preview", "1", "--tenant", TENANT]));
        assert!(preview.contains(NEW_LINE), "{preview}");

        // The author may not approve; the reviewer does.
        let err = refused(touchpoint(&self.d.socket, &["approve", "1"]));
        assert!(err.contains("role operator may not approve"), "{err}");
        assert_eq!(
            ok(self.reviewer(&["approve", "1", "--comment", "passt so"])),
            "proposal 1 approved: service_due version 2 is in force for every tenant\n"
        );
        let h = history(&self.d.socket);
        assert_eq!(h.in_force, 2, "{h:#?}");
        let fp2 = fingerprint(&h, 2);
        assert_ne!(self.fp1, fp2);
        fp2
    }
}

/// The name the daemon gives the reviewer, who has no passwd entry.
fn reviewer_name() -> String {
    format!("uid{REVIEWER_UID}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_reviewer_approves_and_unsent_messages_take_the_new_version() {
    let Some(mut cy) = Cycle::start(true).await else {
        return;
    };
    let reviewer_name = reviewer_name();
    let fp1 = cy.fp1;
    let waiting = cy.waiting.clone();

    // One due message is held back; the others go out with version 1.
    let (late, before) = (cy.due[0], cy.due[1..].to_vec());
    let held =
        cy.c.message_action(&tid(TENANT), &[late], MessageAction::Hold)
            .await
            .expect("hold");
    assert_eq!(held[0].outcome, Ok(MessageStatus::Held), "{held:?}");
    cy.c.resume(cy.paused.clone()).await.expect("resume");
    until(&mut cy.c, &before, "sent with version 1", |m| {
        m.iter().all(|m| m.status == MessageStatus::Sent)
    })
    .await;
    for &id in &before {
        let body = spooled_text(&cy.d.state_dir, id);
        assert!(body.contains(OLD_LINE), "{body}");
    }

    // The change: proposed by the operator, approved by the reviewer.
    let fp2 = cy.approve_v2();
    let h = history(&cy.d.socket);
    let v2 = h.versions.iter().find(|v| v.version == 2).expect("v2");
    assert_eq!(
        (v2.author.as_str(), v2.approved_by.as_str(), v2.proposal),
        (my_name().as_str(), reviewer_name.as_str(), Some(1))
    );
    let table = ok(touchpoint(&cy.d.socket, &["templates", "service_due"]));
    assert!(
        has_line(&table, "service_due: version 2 in force (*)"),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.contains(&short_fingerprint(fp2)))
        .unwrap_or_else(|| panic!("v2 not listed:\n{table}"));
    assert!(row.trim_start().starts_with("* "), "{row}");
    assert!(row.contains(&reviewer_name), "{row}");

    // Rendered, unsent messages were rendered again at the approval; sent
    // ones keep the version they went out with.
    let now = messages(&mut cy.c, &waiting).await;
    let rerendered = format!(
        "re-rendered with template service_due version {}: proposal #1 approved by {reviewer_name}",
        short_fingerprint(fp2)
    );
    for m in &now {
        assert_eq!(m.status, MessageStatus::Rendered, "{m:#?}");
        assert_eq!(m.dispatch.template_version, fp2, "{m:#?}");
        let last = m.history.last().expect("history");
        assert_eq!(
            (last.1, last.2.as_str()),
            (MessageStatus::Rendered, rerendered.as_str())
        );
    }
    for m in messages(&mut cy.c, &before).await {
        assert_eq!(m.status, MessageStatus::Sent);
        assert_eq!(m.dispatch.template_version, fp1, "{m:#?}");
        assert!(
            !m.history.iter().any(|h| h.2.contains("re-rendered")),
            "{m:#?}"
        );
    }

    // The held one goes now, with the new text.
    cy.c.message_action(&tid(TENANT), &[late], MessageAction::Release)
        .await
        .expect("release");
    let sent = until(&mut cy.c, &[late], "sent with version 2", |m| {
        m[0].status == MessageStatus::Sent
    })
    .await;
    assert_eq!(sent[0].dispatch.template_version, fp2, "{:#?}", sent[0]);
    let body = spooled_text(&cy.d.state_dir, late);
    assert!(body.contains(NEW_LINE), "{body}");
    assert!(!body.contains("Pause verdient"), "{body}");
    for &id in &before {
        assert!(spooled_text(&cy.d.state_dir, id).contains(OLD_LINE));
    }

    // A rejection needs a reason.
    let other = with_line(
        &template_v1(),
        "Ihr Nordwagen braucht Sie: Nach unseren Unterlagen ist die",
    );
    ok(propose(
        &cy.d.socket,
        cy.d.dir.path(),
        "service_due.toml",
        &other,
        "Kürzer",
    ));
    let err = refused(cy.reviewer(&["reject", "2", "--comment", " "]));
    assert!(
        err.contains("a rejection needs a comment saying why"),
        "{err}"
    );
    assert_eq!(
        ok(cy.reviewer(&["reject", "2", "--comment", "Zu fordernd im Ton"])),
        "proposal 2 rejected: service_due stays at version 2\n"
    );
    let err = refused(cy.reviewer(&["approve", "2"]));
    assert!(
        err.contains(&format!(
            "proposal #2 is not pending: it was rejected by {reviewer_name}"
        )),
        "{err}"
    );

    // Rolling back is a proposal with its diff; once approved, version 3
    // is version 1's text.
    let out = ok(touchpoint(
        &cy.d.socket,
        &[
            "rollback",
            "service_due",
            "--to",
            "1",
            "--comment",
            "Zurück zum alten Einstieg",
        ],
    ));
    assert!(
        out.starts_with("proposal 3: service_due, back to version 1 from version 2\n"),
        "{out}"
    );
    assert!(has_line(&out, &format!("-{NEW_LINE}")), "{out}");
    assert!(has_line(&out, &format!("+{OLD_LINE}")), "{out}");
    assert_eq!(
        ok(cy.reviewer(&["approve", "3"])),
        "proposal 3 approved: service_due version 3 is in force for every tenant\n"
    );
    let h = history(&cy.d.socket);
    assert_eq!(h.in_force, 3, "{h:#?}");
    assert_eq!(fingerprint(&h, 3), fp1, "version 3 is version 1's text");
    let back = format!(
        "re-rendered with template service_due version {}: proposal #3 approved by {reviewer_name}",
        short_fingerprint(fp1)
    );
    for m in messages(&mut cy.c, &waiting).await {
        assert_eq!(m.dispatch.template_version, fp1, "{m:#?}");
        assert_eq!(m.history.last().map(|h| h.2.as_str()), Some(back.as_str()));
    }
    assert_eq!(
        messages(&mut cy.c, &[late]).await[0]
            .dispatch
            .template_version,
        fp2,
        "a sent message keeps its version"
    );

    // Who proposed, approved and rejected what, and what was refused.
    let audit = ok(touchpoint(&cy.d.socket, &["audit", "--limit", "500"]));
    let root = format!("{} ({})", my_name(), me());
    let rev = format!("{reviewer_name} ({REVIEWER_UID})");
    let me_name = my_name();
    audit_line(
        &audit,
        &[
            &root,
            "operator",
            "propose",
            "ok",
            "proposal #1 for template service_due (base v1): Neuer Einstieg",
        ],
    );
    audit_line(
        &audit,
        &[&root, "approve", "refused: role operator may not approve"],
    );
    audit_line(
        &audit,
        &[
            &rev,
            "reviewer",
            "approve",
            "ok",
            &format!("proposal #1 by {me_name}: template service_due v2 in force: passt so"),
        ],
    );
    audit_line(
        &audit,
        &[
            &rev,
            "reject",
            "failed: a rejection needs a comment saying why",
        ],
    );
    audit_line(
        &audit,
        &[
            &rev,
            "reject",
            "ok",
            &format!(
                "proposal #2 by {me_name} for template service_due rejected: Zu fordernd im Ton"
            ),
        ],
    );
    audit_line(
        &audit,
        &[
            &root,
            "propose-rollback",
            "ok",
            "proposal #3 for template service_due (base v2, back to v1): Zurück zum alten Einstieg",
        ],
    );
    audit_line(
        &audit,
        &[
            &rev,
            "approve",
            "ok",
            &format!("proposal #3 by {me_name}: template service_due v3 in force"),
        ],
    );
}

/// The file `name` somewhere under `dir`.
fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(found) = find_file(&p, name) {
                return Some(found);
            }
        } else if e.file_name() == name {
            return Some(p);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_letter_printed_after_an_approval_records_the_version_it_was_printed_with() {
    let Some(mut cy) = Cycle::start(false).await else {
        return;
    };
    let fp2 = cy.approve_v2();
    // Letters later today were rendered again at the approval.
    for m in messages(&mut cy.c, &cy.waiting.clone()).await {
        assert_eq!(m.dispatch.template_version, fp2, "{m:#?}");
    }
    // Letters due wait for the day's batch; run it now.
    cy.c.resume(cy.paused.clone()).await.expect("resume");
    cy.c.run_batches(Some(&tid(TENANT))).await.expect("batches");
    let due = cy.due.clone();
    let sent = until(&mut cy.c, &due, "printed", |m| {
        m.iter().all(|m| m.status == MessageStatus::Sent)
    })
    .await;
    let batch = &sent[0].dispatch.batch;
    let pdf = find_file(&cy.d.state_dir.join("letters"), batch)
        .unwrap_or_else(|| panic!("batch {batch} not found"));
    let bytes = std::fs::read(&pdf).expect("batch PDF");
    assert!(
        bytes.windows(NEW_WORD_PDF.len()).any(|w| w == NEW_WORD_PDF),
        "printed with version 2"
    );
    for m in &sent {
        assert_eq!(
            m.dispatch.template_version, fp2,
            "printed with version 2, recorded as {:016x}: {m:#?}",
            m.dispatch.template_version
        );
    }
}

/// Lists written to a pipe or a file (a script, `> list.txt`) keep every
/// comment whole; on a terminal they are cut to its width. And an action
/// the daemon refuses is, with `--json`, an outcome in the one shape every
/// action command prints: `{tenant, id, ok, reason}`, exit 1.
#[test]
fn piped_lists_keep_comments_whole_and_a_refused_approval_is_an_outcome() {
    let d = TestDaemon::start_with(Options {
        access: vec![rule(me(), Role::Operator)],
        ..Options::default()
    });
    let comment = "Persönliche Ansprache im Einstieg, damit Kundinnen und Kunden \
                   sich gemeint fühlen, ohne dass die Inspektion aus dem Blick gerät";
    ok(propose(
        &d.socket,
        d.dir.path(),
        "service_due.toml",
        &with_line(&template_v1(), NEW_LINE),
        comment,
    ));
    // More than the 100 columns a table was fitted to before.
    assert!(comment.chars().count() > 100);
    let list = ok(touchpoint(&d.socket, &["approvals"]));
    assert!(list.contains(comment), "{list}");
    assert!(!list.contains('…'), "{list}");
    let templates = ok(touchpoint(&d.socket, &["templates", "service_due"]));
    assert!(!templates.contains('…'), "{templates}");

    // An operator may not decide: refused, said in the shape of every action.
    let out = touchpoint(&d.socket, &["approve", "1", "--json"]);
    let stdout = refused_json(&out);
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let list = v.as_array().unwrap_or_else(|| panic!("a list: {stdout}"));
    assert_eq!(list.len(), 1, "{stdout}");
    assert_eq!(list[0]["tenant"], serde_json::Value::Null, "{stdout}");
    assert_eq!(list[0]["id"], 1, "{stdout}");
    assert_eq!(list[0]["ok"], false, "{stdout}");
    assert!(
        list[0]["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{stdout}"
    );
    let keys: Vec<&String> = list[0].as_object().expect("object").keys().collect();
    assert_eq!(keys, ["id", "ok", "reason", "tenant"], "{stdout}");

    // A message that does not exist: the same shape, with its tenant.
    let out = touchpoint(&d.socket, &["cancel", "--tenant", "d001", "999", "--json"]);
    let stdout = refused_json(&out);
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(v[0]["tenant"], "d001", "{stdout}");
    assert_eq!(v[0]["id"], 999, "{stdout}");
    assert_eq!(v[0]["ok"], false, "{stdout}");
    assert!(v[0]["reason"].is_string(), "{stdout}");
}

/// Exit 1 with JSON on stdout; its stdout.
fn refused_json(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}
