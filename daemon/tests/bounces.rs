//! Returned mail over the corpus in `tests/fixtures/bounces/`: every file is
//! classified with the real parser and compared with `expected.toml`; the
//! maildir is exercised on real files in a temporary directory.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use touchpoint_common::TenantId;
use touchpointd::dispatch::bounce::{classify, Classified, Maildir, MatchedBy, Verdict};
use touchpointd::dispatch::verp::{self, VerpKind};

/// The corpus's secret and domain, as documented at the top of
/// `expected.toml`.
const SECRET: [u8; 32] = [7; 32];
const DOMAIN: &str = "bounce.nordwagen.example";

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bounces")
}

#[derive(Debug, Deserialize)]
struct Expected {
    mail: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    file: String,
    verdict: String,
    target: String,
    matched_by: String,
    status: Option<String>,
    recipient: Option<String>,
    subject: Option<String>,
    reason_contains: Option<String>,
}

fn expected() -> Expected {
    let text = fs::read_to_string(corpus().join("expected.toml")).expect("read expected.toml");
    toml::from_str(&text).expect("parse expected.toml")
}

fn eml_files() -> BTreeSet<String> {
    fs::read_dir(corpus())
        .expect("read corpus")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".eml"))
        .collect()
}

fn target_str(c: &Classified) -> String {
    match &c.target {
        None => "none".into(),
        Some((kind, tenant, id)) => format!("{kind} {tenant} {id}"),
    }
}

fn matched_by_str(c: &Classified) -> &'static str {
    match c.matched_by {
        None => "none",
        Some(MatchedBy::Recipient) => "recipient",
        Some(MatchedBy::QuotedVerp) => "quoted-verp",
        Some(MatchedBy::QuotedMessageId) => "quoted-message-id",
    }
}

/// Every difference between `case` and what `classify` made of its file.
fn differences(case: &Case, c: &Classified) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut check = |what: &str, want: &str, got: &str| {
        if want != got {
            diffs.push(format!("{what}: want {want:?}, got {got:?}"));
        }
    };
    check("verdict", &case.verdict, c.verdict.kind());
    check("target", &case.target, &target_str(c));
    check("matched_by", &case.matched_by, matched_by_str(c));
    if let Some(subject) = &case.subject {
        check("subject", subject, &c.subject);
    }
    let (status, recipient, reason) = match &c.verdict {
        Verdict::HardBounce {
            status, recipient, ..
        } => (Some(status.as_str()), recipient.as_deref(), None),
        Verdict::SoftBounce { status, .. } => (Some(status.as_str()), None, None),
        Verdict::AutoReply { reason } | Verdict::Unknown { reason } => {
            (None, None, Some(reason.as_str()))
        }
        Verdict::Unsubscribe => (None, None, None),
    };
    if let Some(want) = &case.status {
        check("status", want, status.unwrap_or("-"));
    }
    if let Some(want) = &case.recipient {
        check("recipient", want, recipient.unwrap_or("-"));
    }
    if let Some(want) = &case.reason_contains {
        let got = reason.unwrap_or("-");
        if !got.contains(want.as_str()) {
            diffs.push(format!("reason: want it to contain {want:?}, got {got:?}"));
        }
    }
    diffs
}

#[test]
fn corpus_and_expectations_list_the_same_files() {
    let listed: BTreeSet<String> = expected().mail.into_iter().map(|c| c.file).collect();
    let files = eml_files();
    assert_eq!(listed, files, "expected.toml and the .eml files differ");
    assert!(files.len() >= 14, "corpus too small: {}", files.len());
}

#[test]
fn every_file_classifies_as_expected() {
    let mut failures = Vec::new();
    for case in expected().mail {
        let raw = fs::read(corpus().join(&case.file)).expect("read fixture");
        let c = classify(&raw, DOMAIN, &SECRET);
        for d in differences(&case, &c) {
            failures.push(format!("{}: {d}", case.file));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn hard_bounces_carry_the_servers_reply() {
    let raw = fs::read(corpus().join("01-postfix-user-unknown.eml")).expect("read");
    match classify(&raw, DOMAIN, &SECRET).verdict {
        Verdict::HardBounce { diagnostic, .. } => {
            assert_eq!(
                diagnostic,
                "550 5.1.1 <j.schneider@kundenmail.example>: Recipient address rejected: \
                 User unknown in virtual mailbox table"
            );
        }
        other => panic!("{other:?}"),
    }
    let raw = fs::read(corpus().join("07-qmail-failure-notice.eml")).expect("read");
    match classify(&raw, DOMAIN, &SECRET).verdict {
        Verdict::HardBounce { diagnostic, .. } => assert_eq!(
            diagnostic,
            "550 Requested action not taken: mailbox unavailable"
        ),
        other => panic!("{other:?}"),
    }
}

/// The corpus was made with the documented secret: each recipient-matched
/// file contains exactly the address `verp` makes for its target today.
#[test]
fn fixtures_use_the_documented_secret_and_domain() {
    for case in expected().mail {
        if case.matched_by != "recipient" {
            continue;
        }
        let parts: Vec<&str> = case.target.split(' ').collect();
        let [kind, tenant, id] = parts[..] else {
            panic!("{}: bad target {:?}", case.file, case.target);
        };
        let tenant = TenantId::new(tenant).expect("tenant");
        let id: u64 = id.parse().expect("id");
        let addr = match kind {
            "bounce" => verp::bounce_address(&tenant, id, DOMAIN, &SECRET),
            "unsubscribe" => verp::unsubscribe_address(&tenant, id, DOMAIN, &SECRET),
            other => panic!("{}: bad kind {other}", case.file),
        };
        let raw = fs::read_to_string(corpus().join(&case.file)).expect("read");
        assert!(raw.contains(&addr), "{} lacks {addr}", case.file);
    }
}

#[test]
fn another_secret_matches_nothing_by_tag() {
    for case in expected().mail {
        let raw = fs::read(corpus().join(&case.file)).expect("read");
        let c = classify(&raw, DOMAIN, &[8; 32]);
        assert!(
            !matches!(
                c.matched_by,
                Some(MatchedBy::Recipient | MatchedBy::QuotedVerp)
            ),
            "{}: {c:?}",
            case.file
        );
        // With every tag wrong the VERP addresses read as forged.
        if case.matched_by == "recipient" {
            assert_eq!(c.target, None, "{}", case.file);
            assert_eq!(c.verdict.kind(), "unknown", "{}", case.file);
        }
    }
}

#[test]
fn a_changed_tag_digit_voids_a_real_bounce() {
    let raw = fs::read_to_string(corpus().join("01-postfix-user-unknown.eml")).expect("read");
    let good = verp::bounce_address(
        &TenantId::new("autohaus-mueller").expect("tenant"),
        1001,
        DOMAIN,
        &SECRET,
    );
    let (local, _) = good.split_once('@').expect("address");
    let tag = local.rsplit('.').next().expect("tag");
    let flipped: String = tag
        .chars()
        .enumerate()
        .map(|(i, ch)| {
            if i == 0 {
                if ch == 'f' {
                    'e'
                } else {
                    'f'
                }
            } else {
                ch
            }
        })
        .collect();
    // Every copy of the bounce tag changes; the quoted original's
    // List-Unsubscribe keeps its valid unsubscribe tag and must not rescue a
    // forged envelope.
    let forged = raw.replace(tag, &flipped);
    let c = classify(forged.as_bytes(), DOMAIN, &SECRET);
    assert_eq!(c.target, None, "{c:?}");
    assert_eq!(c.verdict.kind(), "unknown");
    assert!(matches!(&c.verdict, Verdict::Unknown { reason } if reason.contains("forged")));

    let c = classify(raw.as_bytes(), DOMAIN, &SECRET);
    assert_eq!(
        c.target,
        Some((
            VerpKind::Bounce,
            TenantId::new("autohaus-mueller").expect("tenant"),
            1001
        ))
    );
}

#[test]
fn autoreply_marks_beat_a_bounce_address_but_not_a_report() {
    let ooo = fs::read_to_string(corpus().join("12-ooo-en-subject-only.eml")).expect("read");
    // The same notice sent to the unsubscribe address is still no unsubscribe.
    let tenant = TenantId::new("nordwagen-berlin").expect("tenant");
    let to_unsub = ooo.replace(
        &verp::bounce_address(&tenant, 1012, DOMAIN, &SECRET),
        &verp::unsubscribe_address(&tenant, 1012, DOMAIN, &SECRET),
    );
    let c = classify(to_unsub.as_bytes(), DOMAIN, &SECRET);
    assert_eq!(c.verdict.kind(), "autoreply");
    assert_eq!(c.target.as_ref().map(|t| t.0), Some(VerpKind::Unsubscribe));
    // Without its subject it is a plain mail to the unsubscribe address.
    let plain = to_unsub.replace(
        "Subject: Out of Office: Your inspection is due",
        "Subject: stop",
    );
    assert_eq!(
        classify(plain.as_bytes(), DOMAIN, &SECRET).verdict,
        Verdict::Unsubscribe
    );
    // A request generated for the recipient's click is still a request; a
    // machine's reply is not.
    let generated = plain.replace(
        "Subject: stop",
        "Subject: stop\nAuto-Submitted: auto-generated\nPrecedence: bulk",
    );
    assert_eq!(
        classify(generated.as_bytes(), DOMAIN, &SECRET).verdict,
        Verdict::Unsubscribe
    );
    let replied = plain.replace(
        "Subject: stop",
        "Subject: stop\nAuto-Submitted: auto-replied",
    );
    assert_eq!(
        classify(replied.as_bytes(), DOMAIN, &SECRET).verdict.kind(),
        "autoreply"
    );
    // Gmail's report is marked Auto-Submitted and still a hard bounce.
    let gmail = fs::read(corpus().join("04-gmail-mailbox-full-5.2.2.eml")).expect("read");
    assert_eq!(classify(&gmail, DOMAIN, &SECRET).verdict.kind(), "hard");
}

fn names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect()
}

fn cur_names(root: &Path) -> BTreeSet<String> {
    fs::read_dir(root.join("cur"))
        .expect("read cur")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn maildir_pending_done_not_pending_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("bounces");
    let md = Maildir::open(&root).expect("open");
    for sub in ["new", "cur", "tmp"] {
        assert!(root.join(sub).is_dir(), "{sub} missing");
    }
    assert!(md.pending().expect("pending").is_empty());

    // As an MDA delivers: files named by time, plus noise to ignore.
    fs::write(root.join("new/1749540000.M2P10.relay"), b"Subject: b\n\nb").expect("write");
    fs::write(root.join("new/1749530000.M1P10.relay"), b"Subject: a\n\na").expect("write");
    fs::write(root.join("new/.hidden"), b"x").expect("write");
    fs::create_dir(root.join("new/subdir")).expect("mkdir");
    fs::write(root.join("tmp/1749550000.M3P10.relay"), b"half").expect("write");

    let pending = md.pending().expect("pending");
    assert_eq!(
        names(&pending),
        ["1749530000.M1P10.relay", "1749540000.M2P10.relay"]
    );

    md.done(&pending[0]).expect("done");
    assert_eq!(
        names(&md.pending().expect("pending")),
        ["1749540000.M2P10.relay"]
    );
    assert_eq!(
        cur_names(&root),
        BTreeSet::from(["1749530000.M1P10.relay:2,S".to_string()])
    );
    assert_eq!(
        fs::read(root.join("cur/1749530000.M1P10.relay:2,S")).expect("read"),
        b"Subject: a\n\na"
    );
    // A repeated done (crash after the move, before the caller noted it)
    // is harmless.
    md.done(&pending[0]).expect("done again");

    md.done(&pending[1]).expect("done");
    assert!(md.pending().expect("pending").is_empty());
    assert_eq!(cur_names(&root).len(), 2);

    // Reopening finds the same state; nothing comes back.
    let again = Maildir::open(&root).expect("reopen");
    assert!(again.pending().expect("pending").is_empty());
}

#[test]
fn maildir_done_refuses_paths_outside_new() {
    let dir = tempfile::tempdir().expect("tempdir");
    let md = Maildir::open(dir.path()).expect("open");
    let stray = dir.path().join("tmp/1.M1P1.x");
    fs::write(&stray, b"x").expect("write");
    assert!(md.done(&stray).is_err());
    assert!(stray.exists());
    assert!(md.done(&dir.path().join("new/missing")).is_err());
}

#[test]
fn corpus_through_a_maildir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let md = Maildir::open(dir.path()).expect("open");
    let files = eml_files();
    for name in &files {
        let raw = fs::read(corpus().join(name)).expect("read");
        let path = md.deliver(&raw).expect("deliver");
        assert!(path.starts_with(dir.path().join("new")));
    }
    assert!(fs::read_dir(dir.path().join("tmp"))
        .expect("tmp")
        .next()
        .is_none());

    let pending = md.pending().expect("pending");
    assert_eq!(pending.len(), files.len());
    let mut hard = 0;
    for path in &pending {
        let raw = fs::read(path).expect("read");
        if classify(&raw, DOMAIN, &SECRET).verdict.kind() == "hard" {
            hard += 1;
        }
        md.done(path).expect("done");
    }
    let want_hard = expected()
        .mail
        .iter()
        .filter(|c| c.verdict == "hard")
        .count();
    assert_eq!(hard, want_hard);
    assert!(md.pending().expect("pending").is_empty());
    assert!(cur_names(dir.path()).iter().all(|n| n.ends_with(":2,S")));
    assert_eq!(cur_names(dir.path()).len(), files.len());
}
