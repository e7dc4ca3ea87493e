#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use mail_parser::{MessageParser, MimeHeaders};
use touchpoint_common::domain::{Channel, Timestamp};
use touchpoint_common::outbox::MessageStatus;
use touchpoint_common::Date;

use super::*;

const SECRET: [u8; 32] = [7; 32];
const BOUNCE_DOMAIN: &str = "bounce.nordwagen.example";
const UNSUB_BASE: &str = "https://service.nordwagen.example/abmelden";

fn tenant() -> TenantId {
    TenantId::new("d001").unwrap()
}

fn message() -> Message {
    let day = Date::from_ymd(2026, 6, 2).unwrap();
    Message {
        id: 4711,
        message_id: "<tp.d001.4711@autohaus-mueller.example>".into(),
        recipient: "100234".into(),
        channel: Channel::Email,
        service: "service_due".into(),
        template: "service_due".into(),
        occasions: Vec::new(),
        send_on: day,
        send_at: 9 * 60,
        cost: 2,
        value: 3800,
        status: MessageStatus::Queued,
        why: Vec::new(),
        planned_at: Timestamp(0),
        policy: 0,
        history: Vec::new(),
        dispatch: Default::default(),
    }
}

fn rendered() -> RenderedEmail {
    RenderedEmail {
            subject: "Ihr Kombi Größe L: Zeit für die Inspektion – jetzt Termin sichern".into(),
            text: "Sehr geehrte Frau Müller,\n\nÖffnungszeiten: Mo–Fr 7:30–18:00 Uhr\n\nGrüße aus München\n".into(),
            html: "<!DOCTYPE html>\n<html><body><p>Sehr geehrte Frau Müller,</p>\n<p>Öffnungszeiten: Mo–Fr</p></body></html>\n".into(),
        }
}

/// 2026-06-02 09:00:00 UTC.
fn date() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_780_390_800)
}

struct Owned {
    message: Message,
    tenant: TenantId,
    rendered: RenderedEmail,
    url: String,
}

impl Owned {
    fn new() -> Self {
        let message = message();
        let tenant = tenant();
        let url = unsubscribe_url(UNSUB_BASE, &tenant, message.id, &SECRET);
        Owned {
            message,
            tenant,
            rendered: rendered(),
            url,
        }
    }

    fn parts(&self) -> MailParts<'_> {
        MailParts {
            message: &self.message,
            tenant: &self.tenant,
            from_name: "Autohaus Müller GmbH",
            from: "service@autohaus-mueller.example",
            reply_to: Some("werkstatt@autohaus-mueller.example"),
            to_name: "Jürgen Weiß",
            to: "j.weiss@Beispiel-Mail.DE",
            rendered: &self.rendered,
            unsubscribe_url: &self.url,
            bounce_domain: BOUNCE_DOMAIN,
            secret: &SECRET,
            date: date(),
        }
    }
}

fn header_block(bytes: &[u8]) -> &str {
    let text = std::str::from_utf8(bytes).unwrap();
    text.split("\r\n\r\n").next().unwrap()
}

#[test]
fn every_header_and_both_parts_round_trip() {
    let o = Owned::new();
    let out = build(&o.parts(), None).unwrap();
    let head = header_block(&out.bytes);
    assert!(head.is_ascii(), "{head}");
    let m = MessageParser::default().parse(&out.bytes).unwrap();

    assert_eq!(
        m.message_id(),
        Some("tp.d001.4711@autohaus-mueller.example")
    );
    assert!(
        head.contains("Message-ID: <tp.d001.4711@autohaus-mueller.example>\r\n"),
        "{head}"
    );
    assert_eq!(m.date().unwrap().to_timestamp(), 1_780_390_800);
    let from = m.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Autohaus Müller GmbH"));
    assert_eq!(from.address(), Some("service@autohaus-mueller.example"));
    let reply = m.reply_to().unwrap().first().unwrap();
    assert_eq!(reply.address(), Some("werkstatt@autohaus-mueller.example"));
    let to = m.to().unwrap().first().unwrap();
    assert_eq!(to.name(), Some("Jürgen Weiß"));
    assert_eq!(to.address(), Some("j.weiss@Beispiel-Mail.DE"));
    assert_eq!(m.subject(), Some(o.rendered.subject.as_str()));

    let mailto = verp::unsubscribe_address(&o.tenant, 4711, BOUNCE_DOMAIN, &SECRET);
    let token = verp::unsubscribe_token(&o.tenant, 4711, &SECRET);
    let list = m.header_raw("List-Unsubscribe").unwrap();
    let unfolded: String = list.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(
        unfolded,
        format!("<mailto:{mailto}>, <{UNSUB_BASE}?t={token}>")
    );
    assert_eq!(
        ListUnsubscribe::parse(&unfolded).unwrap(),
        ListUnsubscribe {
            mailto,
            url: format!("{UNSUB_BASE}?t={token}")
        }
    );
    assert_eq!(
        m.header_raw("List-Unsubscribe-Post").map(str::trim),
        Some("List-Unsubscribe=One-Click")
    );

    let ct = m.content_type().unwrap();
    assert_eq!(
        (ct.ctype(), ct.subtype()),
        ("multipart", Some("alternative"))
    );
    let crlf = |s: &str| s.replace("\r\n", "\n");
    assert_eq!(crlf(&m.body_text(0).unwrap()), o.rendered.text);
    assert_eq!(crlf(&m.body_html(0).unwrap()), o.rendered.html);
    for part in [m.text_part(0).unwrap(), m.html_part(0).unwrap()] {
        let ct = part.content_type().unwrap();
        assert_eq!(
            ct.attribute("charset")
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("utf-8")
        );
    }
    assert_eq!(m.text_body_count(), 1);
    assert_eq!(m.html_body_count(), 1);
    assert_eq!(m.attachment_count(), 0);
}

#[test]
fn the_envelope_sender_is_the_verp_address() {
    let o = Owned::new();
    let out = build(&o.parts(), None).unwrap();
    let from = out.envelope.from().unwrap().to_string();
    assert_eq!(
        from,
        verp::bounce_address(&o.tenant, 4711, BOUNCE_DOMAIN, &SECRET)
    );
    assert_eq!(
        verp::parse(&from, BOUNCE_DOMAIN, &SECRET),
        Some((verp::VerpKind::Bounce, o.tenant.clone(), 4711))
    );
    let to: Vec<String> = out.envelope.to().iter().map(ToString::to_string).collect();
    assert_eq!(to, ["j.weiss@Beispiel-Mail.DE"]);
    assert_eq!(out.domain, "beispiel-mail.de");
    // The From header is the dealer's, not the return path.
    let m = MessageParser::default().parse(&out.bytes).unwrap();
    assert_ne!(
        m.from().unwrap().first().unwrap().address(),
        Some(from.as_str())
    );
}

#[test]
fn without_reply_to_or_names_the_headers_are_plain() {
    let o = Owned::new();
    for reply_to in [None, Some(""), Some("  ")] {
        let mut p = o.parts();
        p.reply_to = reply_to;
        p.from_name = "";
        p.to_name = " ";
        let out = build(&p, None).unwrap();
        let m = MessageParser::default().parse(&out.bytes).unwrap();
        assert!(m.reply_to().is_none(), "{reply_to:?}");
        assert_eq!(m.from().unwrap().first().unwrap().name(), None);
        assert_eq!(m.to().unwrap().first().unwrap().name(), None);
    }
}

#[test]
fn bad_addresses_and_links_are_refused() {
    let o = Owned::new();
    let mut p = o.parts();
    p.to = "kein-at-zeichen";
    assert!(matches!(
        build(&p, None),
        Err(MimeError::Address { what: "To", .. })
    ));
    let mut p = o.parts();
    p.from = "";
    assert!(matches!(
        build(&p, None),
        Err(MimeError::Address { what: "From", .. })
    ));
    let mut p = o.parts();
    p.bounce_domain = "not a domain";
    assert!(matches!(
        build(&p, None),
        Err(MimeError::Address {
            what: "return path",
            ..
        })
    ));
    for url in [
        "",
        "https://x.example/a b",
        "https://x.example/>, <https://evil",
    ] {
        let mut p = o.parts();
        p.unsubscribe_url = url;
        assert!(
            matches!(build(&p, None), Err(MimeError::UnsubscribeUrl(_))),
            "{url}"
        );
    }
}

#[test]
fn a_subject_cannot_inject_headers() {
    let mut o = Owned::new();
    o.rendered.subject = "Hallo\r\nBcc: victim@example.org".into();
    let out = build(&o.parts(), None).unwrap();
    let head = header_block(&out.bytes);
    assert!(!head.contains("\r\nBcc:"), "{head}");
}

#[test]
fn unsubscribe_links_append_the_token() {
    let t = tenant();
    let token = verp::unsubscribe_token(&t, 9, &SECRET);
    assert_eq!(
        unsubscribe_url("https://a.example/u", &t, 9, &SECRET),
        format!("https://a.example/u?t={token}")
    );
    assert_eq!(
        unsubscribe_url("https://a.example/u?lang=de", &t, 9, &SECRET),
        format!("https://a.example/u?lang=de&t={token}")
    );
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dkim")
        .join(name)
}

fn key(file: &str) -> Dkim {
    Dkim::load(&DkimConfig {
        domain: "autohaus-mueller.example".into(),
        selector: "tp2026".into(),
        key_file: fixture(file).display().to_string(),
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// `tag=value` pairs of a DKIM-Signature.
fn dkim_tags(value: &str) -> Vec<(String, String)> {
    let unfolded: String = value.split_whitespace().collect();
    unfolded
        .split(';')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// RFC 6376 "relaxed" header canonicalization of one `Name: value`
/// field (folded lines included): written here from the RFC, not taken
/// from lettre, so the test checks lettre's signing.
fn relaxed_header(field: &str) -> String {
    let (name, value) = field.split_once(':').unwrap();
    let unfolded = value.replace("\r\n", "");
    let value: Vec<&str> = unfolded
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .collect();
    format!(
        "{}:{}\r\n",
        name.trim().to_ascii_lowercase(),
        value.join(" ")
    )
}

fn relaxed_body(body: &str) -> String {
    let mut lines: Vec<String> = body
        .split("\r\n")
        .map(|l| {
            // Runs of whitespace become one space; none at the line end.
            let mut out = String::new();
            let mut space = false;
            for c in l.chars() {
                if c == ' ' || c == '\t' {
                    space = true;
                } else {
                    if space {
                        out.push(' ');
                        space = false;
                    }
                    out.push(c);
                }
            }
            out
        })
        .collect();
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines.iter().map(|l| format!("{l}\r\n")).collect()
}

/// Checks the DKIM-Signature of `bytes` as a receiver would: body hash,
/// then the signature over the listed headers and the signature field.
fn verify_dkim(bytes: &[u8], file: &str) {
    use sha2::{Digest, Sha256};

    let text = std::str::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut fields: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            let last = fields.last_mut().unwrap();
            last.push_str("\r\n");
            last.push_str(line);
        } else {
            fields.push(line.to_string());
        }
    }
    let field = |name: &str| {
        fields.iter().find(|f| {
            f.split(':')
                .next()
                .unwrap()
                .trim()
                .eq_ignore_ascii_case(name)
        })
    };
    let sig_field = field("DKIM-Signature").unwrap();
    let tags = dkim_tags(sig_field.split_once(':').unwrap().1);
    let tag = |k: &str| tags.iter().find(|(t, _)| t == k).unwrap().1.clone();

    let bh = base64_encode(&Sha256::digest(relaxed_body(body).as_bytes()));
    assert_eq!(tag("bh"), bh, "{file}: body hash");

    let mut signed = String::new();
    for name in tag("h").split(':') {
        if let Some(f) = field(name) {
            signed.push_str(&relaxed_header(f));
        }
    }
    // The signature field itself, with an empty b= and no final CRLF.
    let without_b = relaxed_header(sig_field);
    let at = without_b.rfind("b=").unwrap();
    signed.push_str(&without_b[..at + 2]);
    let hash = Sha256::digest(signed.as_bytes());
    let sig = base64_decode(&tag("b")).unwrap();

    let pem_text = std::fs::read_to_string(fixture(file)).unwrap();
    match tag("a").as_str() {
        "rsa-sha256" => {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            use rsa::pkcs8::DecodePrivateKey;
            let private = rsa::RsaPrivateKey::from_pkcs8_pem(&pem_text)
                .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(&pem_text))
                .unwrap();
            rsa::RsaPublicKey::from(&private)
                .verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &hash, &sig)
                .unwrap_or_else(|e| panic!("{file}: signature does not verify: {e}"));
        }
        "ed25519-sha256" => {
            use ed25519_dalek::Verifier;
            let (_, der) = pem(&pem_text).unwrap();
            let (_, key) = pkcs8(&der).unwrap();
            let (_, seed, _) = der_item(key).unwrap();
            let public =
                ed25519_dalek::SigningKey::from_bytes(seed.try_into().unwrap()).verifying_key();
            let sig = ed25519_dalek::Signature::from_slice(&sig).unwrap();
            public
                .verify(&hash, &sig)
                .unwrap_or_else(|e| panic!("{file}: signature does not verify: {e}"));
        }
        other => panic!("{file}: a={other}"),
    }
}

#[test]
fn dkim_signatures_verify_and_cover_the_bulk_sender_headers() {
    let o = Owned::new();
    for (file, algorithm) in [
        ("test-rsa.pem", "rsa-sha256"),
        ("test-rsa-pkcs1.pem", "rsa-sha256"),
        ("test-ed25519.pem", "ed25519-sha256"),
    ] {
        let dkim = key(file);
        assert_eq!(
            (dkim.domain(), dkim.selector()),
            ("autohaus-mueller.example", "tp2026")
        );
        for reply_to in [Some("werkstatt@autohaus-mueller.example"), None] {
            let mut parts = o.parts();
            parts.reply_to = reply_to;
            let out = build(&parts, Some(&dkim)).unwrap();
            verify_dkim(&out.bytes, file);
            let m = MessageParser::default().parse(&out.bytes).unwrap();
            let sig = m
                .header_raw("DKIM-Signature")
                .unwrap_or_else(|| panic!("{file}: unsigned"));
            let tags = dkim_tags(sig);
            let tag = |k: &str| {
                tags.iter()
                    .find(|(t, _)| t == k)
                    .map(|(_, v)| v.as_str())
                    .unwrap_or_else(|| panic!("{file}: no {k}= in {sig}"))
            };
            assert_eq!(tag("v"), "1");
            assert_eq!(tag("a"), algorithm, "{file}");
            assert_eq!(tag("d"), "autohaus-mueller.example");
            assert_eq!(tag("s"), "tp2026");
            assert_eq!(tag("c"), "relaxed/relaxed");
            let signed: Vec<String> = tag("h").split(':').map(str::to_ascii_lowercase).collect();
            for h in [
                "from",
                "subject",
                "date",
                "message-id",
                "to",
                "list-unsubscribe",
                "list-unsubscribe-post",
            ] {
                assert!(
                    signed.iter().any(|s| s == h),
                    "{file}: {h} not in h={}",
                    tag("h")
                );
            }
            // Signed, the message still parses to the same thing.
            assert_eq!(m.subject(), Some(o.rendered.subject.as_str()));
        }
    }
}

/// The verifier above must be able to fail: a changed header or body
/// after signing is caught.
#[test]
#[should_panic(expected = "signature does not verify")]
fn a_header_changed_after_signing_fails_verification() {
    let o = Owned::new();
    let out = build(&o.parts(), Some(&key("test-rsa.pem"))).unwrap();
    let text = String::from_utf8(out.bytes).unwrap();
    let forged = text.replacen("Date: Tue, 02 Jun 2026", "Date: Wed, 03 Jun 2026", 1);
    assert_ne!(forged, text);
    verify_dkim(forged.as_bytes(), "test-rsa.pem");
}

#[test]
#[should_panic(expected = "body hash")]
fn a_body_changed_after_signing_fails_verification() {
    let o = Owned::new();
    let out = build(&o.parts(), Some(&key("test-ed25519.pem"))).unwrap();
    let text = String::from_utf8(out.bytes).unwrap();
    let forged = text.replacen("Sehr geehrte Frau", "Sehr geehrter Herr", 2);
    assert_ne!(forged, text);
    verify_dkim(forged.as_bytes(), "test-ed25519.pem");
}

#[test]
fn dkim_keys_that_cannot_be_used_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = |file: &Path| DkimConfig {
        domain: "a.example".into(),
        selector: "s".into(),
        key_file: file.display().to_string(),
    };
    let missing = dir.path().join("missing.pem");
    let err = Dkim::load(&cfg(&missing)).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("DKIM key {}: ", missing.display())),
        "{err}"
    );
    for (text, expect) in [
            ("hello", "not a PEM file"),
            ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "expected a private key"),
            ("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n", "encrypted"),
            ("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END RSA PRIVATE KEY-----\n", "encrypted"),
            ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not a PKCS#8"),
            ("-----BEGIN PRIVATE KEY-----\nMIIB\n", "no -----END PRIVATE KEY----- line"),
        ] {
            let f = dir.path().join("k.pem");
            std::fs::write(&f, text).unwrap();
            let err = Dkim::load(&cfg(&f)).unwrap_err().to_string();
            assert!(err.contains(expect), "{text:?}: {err}");
        }
}

#[test]
fn base64_round_trips() {
    for data in [
        &b""[..],
        b"f",
        b"fo",
        b"foo",
        b"foob",
        b"fooba",
        b"foobar",
        &[0, 255, 128, 7],
    ] {
        let enc = base64_encode(data);
        assert_eq!(base64_decode(&enc).unwrap(), data, "{enc}");
    }
    assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    assert_eq!(base64_encode(b"fooba"), "Zm9vYmE=");
    assert_eq!(base64_decode("Zm9v\nYg=="), Some(b"foob".to_vec()));
    assert_eq!(base64_decode("Zm9v!"), None);
}

/// Rendering and building one email from the shipped policies, timed:
/// `cargo test --release -p touchpoint-daemon --lib dispatch::mime -- --ignored --nocapture`.
#[test]
#[ignore]
fn time_render_and_build() {
    use crate::render::{Context, Renderer};
    use touchpoint_common::domain::{Customer, Salutation, Vehicle};
    use touchpoint_common::outbox::Occasion;
    use touchpoint_common::policy::OccasionKind;

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let set = crate::policy::load_dir(&dir).unwrap().set;
    let renderer = Renderer::new(&set).unwrap();
    let t = tenant();
    let policy = set.tenant(&t).unwrap();
    let customer = Customer {
        salutation: Salutation::Ms,
        first_name: "Anna".into(),
        last_name: "Müller".into(),
        ..Customer::default()
    };
    let vehicles = vec![Vehicle {
        vin: "WNW1234567890ABCD".into(),
        model: "Kombi".into(),
        first_registration: Date::from_ymd(2021, 3, 5),
        ..Vehicle::default()
    }];
    let mut msg = message();
    msg.occasions.push(Occasion {
        key: "k".into(),
        service: "service_due".into(),
        kind: OccasionKind::ServiceDue,
        vin: Some("WNW1234567890ABCD".into()),
        due: Date::from_ymd(2026, 7, 15).unwrap(),
        reason: "66000 km projected on 2026-07-15 at 100 km/day".into(),
        value: 0,
    });
    let cx = Context {
        renderer: &renderer,
        brand: &set.brand,
        tenant: policy,
        today: msg.send_on,
    };
    let ed = key("test-ed25519.pem");
    let rsa = key("test-rsa.pem");
    let run = |n: u32, dkim: Option<&Dkim>| {
        let start = std::time::Instant::now();
        let mut bytes = 0;
        for _ in 0..n {
            let url = unsubscribe_url(&set.brand.email.unsubscribe_url, &t, msg.id, &SECRET);
            let rendered = cx.email(&msg, &customer, &vehicles, &url).unwrap();
            let parts = MailParts {
                message: &msg,
                tenant: &t,
                from_name: &policy.sender.name,
                from: &policy.sender.email,
                reply_to: Some(&policy.sender.reply_to),
                to_name: "Anna Müller",
                to: "anna@example.org",
                rendered: &rendered,
                unsubscribe_url: &url,
                bounce_domain: &set.brand.email.bounce_domain,
                secret: &SECRET,
                date: date(),
            };
            bytes += build(&parts, dkim).unwrap().bytes.len();
        }
        (start.elapsed() / n, bytes / n as usize)
    };
    run(200, None);
    let (plain, size) = run(5000, None);
    let (with_ed, _) = run(2000, Some(&ed));
    let (with_rsa, _) = run(200, Some(&rsa));
    println!("render + build, one email of {size} bytes: {plain:?} unsigned, {with_ed:?} Ed25519, {with_rsa:?} RSA-2048");
    let start = std::time::Instant::now();
    for _ in 0..5000 {
        cx.email(&msg, &customer, &vehicles, "https://x.example/u?t=1")
            .unwrap();
    }
    println!("render alone: {:?}", start.elapsed() / 5000);
}
