#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn enhanced_codes_stand_alone() {
    let code = |l: &str| enhanced_code(l).map(|(_, c)| c.to_string());
    assert_eq!(code("said: 550 5.1.1 <a@b>").as_deref(), Some("5.1.1"));
    assert_eq!(
        code("550-5.2.2 The email account").as_deref(),
        Some("5.2.2")
    );
    assert_eq!(code("#4.4.1 timeout").as_deref(), Some("4.4.1"));
    assert_eq!(code("RESOLVER 5.1.10").as_deref(), Some("5.1.10"));
    assert_eq!(code("Empfänger 5.1.1 unbekannt").as_deref(), Some("5.1.1"));
    assert_eq!(code("host 10.5.1.1 said"), None);
    assert_eq!(code("host 5.1.1.1 said"), None);
    assert_eq!(code("version 2.5.1"), None);
    assert_eq!(code("5.1 incomplete"), None);
}

#[test]
fn reply_codes_need_a_separator() {
    let class = |l: &str| reply_code(l).map(|(_, c)| c as char);
    assert_eq!(class("Remote host said: 550 Unknown"), Some('5'));
    assert_eq!(class("452-Mailbox full"), Some('4'));
    assert_eq!(class("port 5500 closed"), None);
    assert_eq!(class("id A550 x"), None);
    assert_eq!(class("220 ready"), None);
}

#[test]
fn smtp_status_reads_the_wrapped_reply() {
    let text = "The mail system\n\n\
                    <a@example.org>: host mx[192.0.2.1] said: 550 5.1.1\n    \
                    <a@example.org>: Recipient address rejected\n    \
                    (in reply to RCPT TO command)\n\n\
                    unrelated 421 line\n";
    assert_eq!(
        smtp_status(text),
        Some((
            "5.1.1".into(),
            "550 5.1.1 <a@example.org>: Recipient address rejected \
                 (in reply to RCPT TO command)"
                .into()
        ))
    );
    assert_eq!(
        smtp_status("Remote host said: 554 no\nGiving up"),
        Some(("5.0.0".into(), "554 no".into()))
    );
    assert_eq!(
        smtp_status("x #4.4.1 timed out"),
        Some(("4.4.1".into(), "4.4.1 timed out".into()))
    );
    assert_eq!(smtp_status("all fine 250 ok"), None);
}

#[test]
fn delivery_status_groups_and_folding() {
    let text = "Reporting-MTA: dns; mx.example\r\n\r\n\
                    Final-Recipient: rfc822; a@example.org\r\n\
                    Action: failed\r\n\
                    Status: 5.1.1 (user unknown)\r\n\
                    Diagnostic-Code: smtp; 550 5.1.1 <a@example.org>:\r\n \
                    Recipient address rejected\r\n\r\n\
                    Final-Recipient: rfc822; b@example.org\r\n\
                    Action: delayed\r\n\
                    Status: 4.4.1\r\n";
    let r = parse_delivery_status(text);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].action, "failed");
    assert_eq!(r[0].status, "5.1.1");
    assert_eq!(
        r[0].diagnostic,
        "550 5.1.1 <a@example.org>: Recipient address rejected"
    );
    assert_eq!(r[0].recipient.as_deref(), Some("a@example.org"));
    assert_eq!(r[1].action, "delayed");
    assert!(matches!(report_verdict(&r), Verdict::HardBounce { .. }));
    assert!(matches!(
        report_verdict(&r[1..]),
        Verdict::SoftBounce { .. }
    ));
}

#[test]
fn status_classes() {
    assert_eq!(status_class("5.1.1"), Some(5));
    assert_eq!(status_class("4.4.1"), Some(4));
    assert_eq!(status_class("2.0.0"), Some(2));
    assert_eq!(status_class("5.1.10"), Some(5));
    assert_eq!(status_class("3.1.1"), None);
    assert_eq!(status_class("5.1"), None);
    assert_eq!(status_class("5.1.1.1"), None);
    assert_eq!(status_class(""), None);
}

#[test]
fn failed_action_with_transient_status_is_soft() {
    let r = vec![RecipientReport {
        action: "failed".into(),
        status: "4.4.7".into(),
        ..Default::default()
    }];
    assert!(matches!(report_verdict(&r), Verdict::SoftBounce { .. }));
    let delivered = vec![RecipientReport {
        action: "delivered".into(),
        status: "2.0.0".into(),
        ..Default::default()
    }];
    assert_eq!(report_verdict(&delivered).kind(), "unknown");
    let no_status = vec![RecipientReport {
        action: "failed".into(),
        diagnostic: "smtp; 550 no such user".into(),
        ..Default::default()
    }];
    match report_verdict(&no_status) {
        Verdict::HardBounce { status, .. } => assert_eq!(status, "5.0.0"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn garbage_is_unknown_not_a_panic() {
    for raw in [&b""[..], b"\x00\x01\x02", b"\r\n\r\n", b"Subject"] {
        let c = classify(raw, "bounce.example", &[1; 32]);
        assert_eq!(c.target, None);
        assert_eq!(c.verdict.kind(), "unknown", "{raw:?}");
    }
}

#[test]
fn url_tokens() {
    assert_eq!(
        url_token("https://x.example/u?t=a.1.ff&x=1"),
        Some("a.1.ff")
    );
    assert_eq!(
        url_token("https://x.example/u?x=1&t=a.1.ff#frag"),
        Some("a.1.ff")
    );
    assert_eq!(url_token("https://x.example/u"), None);
    // The daemon's own one-click endpoint ([http] public_url).
    assert_eq!(url_token("https://x.example/pre/u/a.1.ff"), Some("a.1.ff"));
    assert_eq!(url_token("https://x.example/u/a.1.ff#f"), Some("a.1.ff"));
    assert_eq!(url_token("https://x.example/u/"), None);
    assert_eq!(url_token("https://x.example/u/a/b"), None);
}

/// Whatever a mail to the bounce domain says, each text of its verdict
/// and its subject is one clean line of about a kilobyte at most.
#[test]
fn every_text_of_a_verdict_is_one_short_clean_line() {
    let huge = "y".repeat(1 << 20);
    let raw = format!(
        "From: someone@example.org\r\nTo: postmaster@bounce.example\r\n\
         X-Autoreply: yes \u{1b}[2J{huge}\r\nSubject: Out of office {huge}\r\n\r\nbody\r\n"
    );
    let c = classify(raw.as_bytes(), "bounce.example", &[7; 32]);
    let Verdict::AutoReply { reason } = &c.verdict else {
        panic!("{:.300?}", c.verdict)
    };
    for text in [reason, &c.subject] {
        assert!(
            text.chars().count() <= 1_001,
            "{} chars",
            text.chars().count()
        );
        assert!(!text.contains(char::is_control), "{text:.100?}");
    }
    assert!(
        reason.starts_with("X-Autoreply: yes ?[2Jyyy"),
        "{reason:.100}"
    );
}

/// The maildir reader follows no symlink and reads no mail over the size
/// bound; both are left for the caller to file away.
#[test]
fn the_maildir_reads_no_symlink_and_no_huge_mail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let md = Maildir::open(&dir.path().join("bounces")).expect("maildir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "root only").expect("write");
    let link = md.root().join("new/1.link.host");
    std::os::unix::fs::symlink(&secret, &link).expect("symlink");
    let mail = md
        .deliver(b"Subject: hi\r\n\r\nhello\r\n")
        .expect("deliver");
    let huge = md.root().join("new/2.huge.host");
    std::fs::File::create(&huge)
        .and_then(|f| f.set_len(MAX_MAIL_BYTES + 1))
        .expect("huge");
    assert_eq!(
        md.read(&mail).expect("read"),
        Ok(b"Subject: hi\r\n\r\nhello\r\n".to_vec())
    );
    assert_eq!(
        md.read(&link).expect("read"),
        Err("a symbolic link, not a mail".into())
    );
    let why = md.read(&huge).expect("read").expect_err("too large");
    assert!(why.contains("not read"), "{why}");
}
