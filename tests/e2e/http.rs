//! RFC 8058 one-click unsubscribe end to end: a real daemon sends through a
//! real SMTP sink with `[http]` on, and a real HTTP client (ureq) follows
//! the link the email carries.

use std::time::Duration;

use touchpoint_common::outbox::{Message, MessageStatus};
use touchpoint_common::protocol::PauseScope;
use touchpoint_common::report::answer::ReportQuery;
use touchpoint_tests::smtp::Received;
use touchpoint_tests::{free_port, tid};

use crate::dispatch::{day, dispatch_fixture, only, Rig};

/// An answer: status and body.
pub(crate) struct Answer {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request with a real HTTP client, off the test's runtime (ureq blocks).
pub(crate) async fn call(method: &'static str, url: &str, body: Option<&'static str>) -> Answer {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        // Redirects are answers to look at, not to follow.
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let r = match (method, body) {
            ("GET", _) => agent.get(&url).call(),
            ("POST", Some(b)) => agent
                .post(&url)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .send(b),
            ("POST", None) => agent.post(&url).send_empty(),
            ("PUT", _) => agent.put(&url).send_empty(),
            _ => panic!("method {method}"),
        };
        let mut r = r.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let headers = r
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        Answer {
            status: r.status().as_u16(),
            body: r.body_mut().read_to_string().expect("body"),
            headers,
        }
    })
    .await
    .expect("http client task")
}

pub(crate) const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

/// A rig whose daemon serves `[http]` on a free port of 127.0.0.1, with
/// `extra` keys of that section; returns it with the base URL.
pub(crate) fn rig_with_http(extra: &str) -> (Rig, String) {
    let port = free_port();
    let rig = Rig::start_with(
        &["s001"],
        &format!("[http]\nlisten = \"127.0.0.1:{port}\"\n{extra}"),
    );
    (rig, format!("http://127.0.0.1:{port}"))
}

/// The web link of a received message's `List-Unsubscribe`.
pub(crate) fn one_click_link(r: &Received) -> String {
    let text = r.text();
    // Unfolded: the header is long and may be folded.
    let head = text
        .split("\r\n\r\n")
        .next()
        .expect("a header")
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ");
    let start = head
        .find("List-Unsubscribe:")
        .expect("a List-Unsubscribe header");
    let value = &head[start..];
    let value = &value[..value.find("\r\n").unwrap_or(value.len())];
    let open = value.find("<http").expect("a web link") + 1;
    let close = value[open..].find('>').expect("a closing >") + open;
    value[open..close].to_string()
}

fn said(m: &Message, text: &str) -> bool {
    m.why.iter().any(|w| w.text.contains(text))
}

fn unsubscribed_lines(m: &Message) -> usize {
    m.history
        .iter()
        .filter(|h| h.2 == "recipient unsubscribed from email")
        .count()
}

/// Sends the fixture's four emails (K-201..K-204) and waits until they are
/// recorded as sent; returns what the relay got and the messages by customer.
pub(crate) async fn send_four(
    rig: &Rig,
) -> (Vec<Received>, std::collections::BTreeMap<String, Message>) {
    rig.import("s001", &dispatch_fixture("kunden-bounces.csv"))
        .await;
    let first = rig.plan("s001", day(2026, 11, 2)).await;
    let got = rig.wait_sink("all four", |g| g.len() >= 4).await;
    for m in first.values() {
        rig.wait_message("s001", m.id, "sent", |m| m.status == MessageStatus::Sent)
            .await;
    }
    (got, first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_click_post_withdraws_email_consent_and_the_next_email_is_cancelled() {
    let (rig, base) = rig_with_http("");
    let (got, first) = send_four(&rig).await;
    let paul = only(&got, "paul.herbst@example.de");
    let sent = &first["K-203"];

    // The header carries the daemon's own link and the one-click marker;
    // the text the person reads links the same address.
    let link = one_click_link(paul);
    assert!(
        link.starts_with(&format!("{base}/u/s001.{}.", sent.id)),
        "{link}"
    );
    assert!(
        paul.text()
            .contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{}",
        paul.text()
    );
    let parsed = paul.parsed().expect("parses");
    assert!(
        parsed.body_text(0).expect("text part").contains(&link),
        "the text part links another address than the header"
    );

    // A second email to K-203 waits, paused, while the person unsubscribes.
    let mut c = rig.client().await;
    c.pause(PauseScope::default()).await.expect("pause");
    let second = rig.plan("s001", day(2026, 11, 20)).await;
    let next = &second["K-203"];
    assert_eq!(next.channel, touchpoint_common::domain::Channel::Email);

    // A GET (a mail scanner, or the person opening the link) changes nothing.
    let before = rig.message("s001", sent.id).await;
    let page = call("GET", &link, None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<form method=\"post\""), "{}", page.body);
    assert!(page.body.contains("Autohaus Versand GmbH"), "{}", page.body);
    assert!(
        !page.body.contains("paul"),
        "no personal data: {}",
        page.body
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(rig.message("s001", sent.id).await, before);

    // The wrong body: 400, nothing recorded.
    let bad = call("POST", &link, Some("unsubscribe=yes")).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(
        bad.body.contains("List-Unsubscribe=One-Click"),
        "{}",
        bad.body
    );
    assert_eq!(rig.message("s001", sent.id).await, before);

    // The one-click POST: 200 at once.
    let done = call("POST", &link, Some(ONE_CLICK)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let m = rig.message("s001", sent.id).await;
    assert_eq!(unsubscribed_lines(&m), 1, "{:#?}", m.history);
    assert_eq!(m.status, MessageStatus::Sent);

    // Again: 200, nothing new.
    let again = call("POST", &link, Some(ONE_CLICK)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(rig.message("s001", sent.id).await, m);

    // Dispatch sees it at once: the waiting email is cancelled at claim,
    // saying why, and the relay never gets it.
    c.resume(PauseScope::default()).await.expect("resume");
    let cancelled = rig
        .wait_message("s001", next.id, "cancelled", |m| {
            m.status == MessageStatus::Cancelled
        })
        .await;
    assert!(
        said(&cancelled, "email: consent withdrawn") && said(&cancelled, "(one-click"),
        "{:#?}",
        cancelled.why
    );
    rig.full_round().await;
    let to_paul = rig
        .wait_sink("anything", |_| true)
        .await
        .iter()
        .filter(|r| r.to.iter().any(|t| t == "paul.herbst@example.de"))
        .count();
    assert_eq!(to_paul, 1, "an email went to the unsubscribed address");

    // The planner too: the next plan offers K-203 no email.
    let third = rig.plan("s001", day(2026, 12, 1)).await;
    if let Some(m) = third.get("K-203") {
        assert_ne!(
            m.channel,
            touchpoint_common::domain::Channel::Email,
            "{:#?}",
            m.why
        );
    }

    // One audit line: who, the tenant, the message.
    let audit = c
        .audit(Some(&tid("s001")), 50, "one-click")
        .await
        .expect("audit");
    let lines: Vec<_> = audit.iter().filter(|e| e.action == "unsubscribe").collect();
    assert_eq!(lines.len(), 1, "{audit:#?}");
    assert_eq!(lines[0].user, "one-click (http)");
    assert_eq!(lines[0].tenant, Some(tid("s001")));
    assert!(
        lines[0].detail.contains(&format!("message #{}", sent.id)),
        "{:?}",
        lines[0].detail
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_altered_and_truncated_links_get_the_same_plain_404() {
    let (rig, base) = rig_with_http("");
    let (got, first) = send_four(&rig).await;
    let link = one_click_link(only(&got, "paul.herbst@example.de"));
    let token = link.rsplit('/').next().expect("token").to_string();
    let (tenant_id, tag) = token.rsplit_once('.').expect("tag");
    let flipped = {
        let last = tag.chars().last().expect("a tag");
        let other = if last == '0' { '1' } else { '0' };
        format!("{tenant_id}.{}{other}", &tag[..tag.len() - 1])
    };
    let other_message = token.replacen(
        &format!(".{}.", first["K-203"].id),
        &format!(".{}.", first["K-203"].id + 1000),
        1,
    );
    let other_tenant = token.replacen("s001.", "s002.", 1);
    let cases = [
        format!("{base}/u/{flipped}"),
        format!("{base}/u/{}", &token[..token.len() - 1]),
        format!("{base}/u/{tenant_id}"),
        format!("{base}/u/{other_message}"),
        format!("{base}/u/{other_tenant}"),
        format!("{base}/u/"),
        format!("{base}/u/{token}/x"),
        format!("{base}/"),
        format!("{base}/admin"),
        format!("{base}/u/..%2f..%2fetc%2fpasswd"),
    ];
    let mut bodies = std::collections::BTreeSet::new();
    for url in &cases {
        for (method, body) in [("GET", None), ("POST", Some(ONE_CLICK))] {
            let a = call(method, url, body).await;
            assert_eq!(a.status, 404, "{method} {url}: {}", a.body);
            let kind = a.header("content-type").map(str::to_string);
            bodies.insert((a.body, kind));
        }
    }
    assert_eq!(bodies.len(), 1, "404s differ: {bodies:#?}");
    let (body, _) = bodies.into_iter().next().expect("one");
    for secret in ["s001", "tenant", "message", "Autohaus"] {
        assert!(!body.contains(secret), "{body}");
    }
    // Nothing was recorded for anyone.
    for m in first.values() {
        assert_eq!(unsubscribed_lines(&rig.message("s001", m.id).await), 0);
    }
    // A method other than GET and POST on a real link: 405, nothing recorded.
    let put = call("PUT", &link, None).await;
    assert_eq!(put.status, 405);
    assert_eq!(
        unsubscribed_lines(&rig.message("s001", first["K-203"].id).await),
        0
    );
}

/// A link the brand's material carries (with a query, `&amp;` in HTML).
const BOOKING: &str = "https://termin.autohaus.example/buchen?marke=nw&art=inspektion";

/// The shipped templates with a booking link in the text and the HTML part.
fn templates_with_a_link() -> Vec<(String, String)> {
    let dir = touchpoint_tests::repo_root().join("policies/templates");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).expect("templates").flatten() {
        let text = std::fs::read_to_string(e.path()).expect("template");
        let text = text
            .replacen(
                "text = '''{{ customer.salutation_line }}\n",
                &format!(
                    "text = '''{{{{ customer.salutation_line }}}}\nTermin online: {BOOKING}.\n"
                ),
                1,
            )
            .replacen(
                "html = '''<!DOCTYPE html>\n",
                &format!(
                    "html = '''<!DOCTYPE html>\n<p><a href=\"{}\">Termin online</a></p>\n",
                    BOOKING.replace('&', "&amp;")
                ),
                1,
            );
        assert!(text.contains(BOOKING), "{}", e.path().display());
        out.push((e.file_name().to_string_lossy().into_owned(), text));
    }
    out
}

/// A rig as [`rig_with_http`] with `public_url` set, the templates of
/// [`templates_with_a_link`], and the brand's `[tracking] clicks` as given.
fn rig_tracking(clicks: bool) -> (Rig, String) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let brand = std::fs::read_to_string(touchpoint_tests::repo_root().join("policies/brand.toml"))
        .expect("brand");
    let rig = Rig::start_with_material(
        &["s001"],
        &format!("[http]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"{base}\"\n"),
        Some(format!("{brand}\n[tracking]\nclicks = {clicks}\n")),
        templates_with_a_link(),
    );
    (rig, base)
}

fn parts(r: &Received) -> (String, String) {
    let parsed = r.parsed().expect("parses");
    (
        parsed.body_text(0).expect("text part").into_owned(),
        parsed.body_html(0).expect("html part").into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracked_link_redirects_to_the_original_and_the_report_counts_the_click() {
    let (rig, base) = rig_tracking(true);
    let (got, first) = send_four(&rig).await;
    let paul = only(&got, "paul.herbst@example.de");
    let sent = &first["K-203"];
    let (text, html) = parts(paul);

    // Both parts link the daemon's /c/ for the booking link, link 1 of
    // the message; the unsubscribe link and tel: are as they were.
    let prefix = format!("{base}/c/s001.{}.1.", sent.id);
    assert!(
        !text.contains(BOOKING) && !html.contains("termin.autohaus"),
        "{text}\n{html}"
    );
    let start = text
        .find(&prefix)
        .unwrap_or_else(|| panic!("no /c/ link: {text}"));
    let link: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let link = link.trim_end_matches('.').to_string();
    assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
    let unsubscribe = one_click_link(paul);
    assert!(text.contains(&unsubscribe), "{unsubscribe}\n{text}");
    // The template engine writes it escaped into the HTML (`/` as `&#x2f;`).
    let escaped = unsubscribe.replace('/', "&#x2f;");
    assert!(
        html.contains(&format!("href=\"{escaped}\"")),
        "{unsubscribe}\n{html}"
    );

    // No click yet.
    let mut c = rig.client().await;
    let r = c.report(ReportQuery::default()).await.expect("report");
    let t = r.total.tally.expect("total");
    assert_eq!((t.delivered, t.clicked, t.clicks), (4, 0, 0), "{r:?}");

    // The click: 302 to the address the message linked, recorded.
    let a = call("GET", &link, None).await;
    assert_eq!(a.status, 302, "{}", a.body);
    assert_eq!(a.header("location"), Some(BOOKING));
    assert_eq!(a.header("cache-control"), Some("no-store"));
    let m = rig.message("s001", sent.id).await;
    let lines: Vec<_> = m
        .history
        .iter()
        .filter(|h| h.2.starts_with("clicked"))
        .collect();
    assert_eq!(lines.len(), 1, "{:#?}", m.history);
    assert_eq!(
        lines[0].2,
        "clicked link 1 (https://termin.autohaus.example/buchen…)"
    );
    assert_eq!(m.status, MessageStatus::Sent);

    // Again: redirected, counted, no second history line.
    let a = call("GET", &link, None).await;
    assert_eq!(a.status, 302);
    let m = rig.message("s001", sent.id).await;
    assert_eq!(
        m.history
            .iter()
            .filter(|h| h.2.starts_with("clicked"))
            .count(),
        1
    );

    // The report: one email clicked, two clicks, click rate 1 of 4
    // delivered; a click is no response.
    let r = c.report(ReportQuery::default()).await.expect("report");
    let t = r.total.tally.expect("total");
    assert_eq!(
        (t.delivered, t.clicked, t.clicks, t.responses),
        (4, 1, 2, 0),
        "{r:?}"
    );
    assert_eq!(t.figures().click_rate, Some(0.25));
    let out = touchpoint_tests::touchpoint(&rig.d.socket, &["report"]);
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(shown.contains("cl.rate"), "{shown}");
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("total") && l.ends_with("4       1      2   25.0%")),
        "{shown}"
    );

    // Audited once, without the address or the person (a new connection:
    // the first may have idled out while the binary ran).
    let mut c = rig.client().await;
    let audit = c
        .audit(Some(&tid("s001")), 50, "clicked")
        .await
        .expect("audit");
    let clicks: Vec<_> = audit.iter().filter(|e| e.action == "click").collect();
    assert_eq!(clicks.len(), 1, "{audit:#?}");
    assert_eq!(
        clicks[0].detail,
        format!("message #{}: link 1 clicked (first click)", sent.id)
    );

    // Forged, altered, another link, another message: the same 404 as /u/.
    let token = link.rsplit('/').next().expect("token").to_string();
    let (head, tag) = token.rsplit_once('.').expect("tag");
    let flipped = format!(
        "{head}.{}{}",
        &tag[..tag.len() - 1],
        if tag.ends_with('0') { '1' } else { '0' }
    );
    let not_found = call("GET", &format!("{base}/u/s001.1.0000000000"), None).await;
    assert_eq!(not_found.status, 404);
    for bad in [
        format!("{base}/c/{flipped}"),
        format!("{base}/c/{}", token.replacen(".1.", ".2.", 1)),
        format!(
            "{base}/c/{}",
            token.replacen(&format!(".{}.", sent.id), &format!(".{}.", sent.id + 1), 1)
        ),
        format!("{base}/c/{}", &token[..token.len() - 1]),
        format!("{base}/c/{}", token.replacen("s001.", "s002.", 1)),
        format!("{base}/u/{token}"),
    ] {
        let a = call("GET", &bad, None).await;
        assert_eq!((a.status, &a.body), (404, &not_found.body), "{bad}");
    }
    let m2 = rig.message("s001", sent.id).await;
    assert_eq!(m2.history, m.history, "nothing recorded for a forged click");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_click_tracking_links_stay_as_written_and_c_is_404() {
    let (rig, base) = rig_tracking(false);
    let (got, first) = send_four(&rig).await;
    let paul = only(&got, "paul.herbst@example.de");
    let (text, html) = parts(paul);
    assert!(text.contains(BOOKING), "{text}");
    assert!(
        html.contains(&format!("href=\"{}\"", BOOKING.replace('&', "&amp;"))),
        "{html}"
    );
    assert!(
        !text.contains("/c/") && !html.contains("/c/"),
        "{text}\n{html}"
    );
    // Even a token the daemon signed is 404 while tracking is off.
    let key = std::fs::read(rig.d.state_dir.join("dispatch.key")).expect("dispatch key");
    let key: [u8; 32] = key.as_slice().try_into().expect("32 bytes");
    let token = touchpointd::dispatch::verp::click_token(&tid("s001"), first["K-203"].id, 1, &key);
    for path in [format!("/c/{token}"), "/c/".to_string()] {
        let a = call("GET", &format!("{base}{path}"), None).await;
        assert_eq!(a.status, 404, "{path}");
    }
}
