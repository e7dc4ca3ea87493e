//! The one-click endpoint faces the internet: oversized bodies, floods,
//! forged `X-Forwarded-For`, a client that never finishes its header.
//! Raw TCP where a polite client would not do what an attacker does.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::dispatch::only;
use crate::http::{call, one_click_link, rig_with_http, send_four, ONE_CLICK};

/// Writes `request` on a fresh connection and reads until the server closes;
/// the status code of what came back (0: closed without an answer).
async fn raw(addr: &str, request: Vec<u8>) -> (u16, String) {
    raw_from("127.0.0.1", addr, request).await
}

/// A connection to `addr` from the loopback address `source` (Linux
/// answers all of 127.0.0.0/8 on the loopback).
async fn connect_from(source: &str, addr: &str) -> TcpStream {
    let source: SocketAddr = format!("{source}:0").parse().expect("source");
    let addr: SocketAddr = addr.parse().expect("addr");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(source).expect("bind the source address");
    let s = socket.connect(addr).await.expect("connect");
    let s = s.into_std().expect("std stream");
    s.set_nonblocking(false).expect("blocking");
    s
}

/// [`raw`] from the loopback address `source`.
async fn raw_from(source: &str, addr: &str, request: Vec<u8>) -> (u16, String) {
    let mut s = connect_from(source, addr).await;
    tokio::task::spawn_blocking(move || {
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        // The server may answer and close before all of a large body is
        // written: a failed write is then expected.
        let _ = s.write_all(&request);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|t| t.get(..3))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, text)
    })
    .await
    .expect("raw client task")
}

fn path_of(link: &str) -> &str {
    let rest = link.strip_prefix("http://").expect("http link");
    &rest[rest.find('/').expect("a path")..]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_gets_413_and_records_nothing() {
    let (rig, base) = rig_with_http("max_body_bytes = 256\n");
    let (got, first) = send_four(&rig).await;
    let link = one_click_link(only(&got, "paul.herbst@example.de"));
    let (addr, path) = (base.trim_start_matches("http://"), path_of(&link));
    // Small enough to arrive in one read: the server has nothing unread
    // when it closes, so the client sees the answer, not a reset.
    let big = format!("{ONE_CLICK}&pad={}", "x".repeat(400));

    // Declared too large: refused before it is read.
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{big}",
        big.len()
    );
    let (status, text) = raw(addr, req.into_bytes()).await;
    assert_eq!(status, 413, "{text}");

    // Not declared (chunked): cut off once past the limit.
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let (status, text) = raw(addr, req.into_bytes()).await;
    assert_eq!(status, 413, "{text}");

    let m = rig.message("s001", first["K-203"].id).await;
    assert!(
        !m.history
            .iter()
            .any(|h| h.2 == "recipient unsubscribed from email"),
        "{:#?}",
        m.history
    );
    // A header block past the buffer ends the connection, not the daemon.
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nX-Pad: {}\r\n\r\n",
        "y".repeat(64 * 1024)
    );
    let (status, _) = raw(addr, req.into_bytes()).await;
    assert_ne!(status, 200);
    assert_eq!(call("GET", &link, None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_gets_429_and_everything_else_goes_on() {
    let (rig, base) = rig_with_http("requests_per_minute = 1\n");
    let (got, first) = send_four(&rig).await;
    let addr = base.trim_start_matches("http://").to_string();
    let mut statuses = Vec::new();
    for i in 0..40 {
        // A forged X-Forwarded-For from a peer that is no trusted proxy
        // does not buy a fresh allowance.
        let req = format!(
            "GET /u/s001.{i}.0000000000 HTTP/1.1\r\nHost: {addr}\r\nX-Forwarded-For: 203.0.113.{i}\r\n\r\n"
        );
        statuses.push(raw(&addr, req.into_bytes()).await.0);
    }
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(refused >= 35, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 404 || *s == 429),
        "{statuses:?}"
    );
    // A real one-click from the flooded address is refused too, and says when to come back.
    let link = one_click_link(only(&got, "paul.herbst@example.de"));
    let a = call("POST", &link, Some(ONE_CLICK)).await;
    assert_eq!(a.status, 429, "{}", a.body);
    assert_eq!(a.header("retry-after"), Some("60"));

    // The daemon goes on: the socket answers, dispatch runs, the audit
    // log has the refusals counted, not one line each.
    let s = rig.status().await;
    assert!(s.queues.iter().any(|q| q.tenant.as_str() == "s001"));
    let m = rig.message("s001", first["K-203"].id).await;
    assert_eq!(m.status, touchpoint_common::outbox::MessageStatus::Sent);
    let mut c = rig.client().await;
    let mut many = 0;
    for _ in 0..300 {
        let audit = c
            .audit(None, 200, "one-click request")
            .await
            .expect("audit");
        many = audit
            .iter()
            .filter(|e| e.user == "one-click (http)" && e.detail.contains("too many"))
            .count();
        if many > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The first at once, the rest counted (a minute's window may close
    // during the test: then a second line with the count).
    assert!(
        (1..=2).contains(&many),
        "{many} lines for {refused} refusals"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_is_believed_about_its_client_and_nobody_else_is() {
    // The test client is 127.0.0.1: here it stands in for the brand's proxy.
    let (rig, base) = rig_with_http("requests_per_minute = 2\ntrusted_proxies = [\"127.0.0.1\"]\n");
    let (got, _) = send_four(&rig).await;
    let addr = base.trim_start_matches("http://").to_string();
    let link = one_click_link(only(&got, "paul.herbst@example.de"));
    let path = path_of(&link).to_string();
    let request = |path: &str, client: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nX-Forwarded-For: {client}\r\n\r\n")
            .into_bytes()
    };
    let get = |client: &str| request("/u/s001.1.0000000000", client);
    // Genuine links are never charged: a mail provider's one address may
    // send many.
    for _ in 0..5 {
        assert_eq!(raw(&addr, request(&path, "198.51.100.1")).await.0, 200);
    }
    // Each client behind the proxy has its own allowance of refusals.
    for client in ["198.51.100.1", "198.51.100.2"] {
        for _ in 0..2 {
            assert_eq!(raw(&addr, get(client)).await.0, 404);
        }
        assert_eq!(raw(&addr, get(client)).await.0, 429);
    }
    // A client that writes its own header in front: the proxy appends the
    // real address, and that one is counted.
    assert_eq!(raw(&addr, get("198.51.100.9, 198.51.100.1")).await.0, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_that_never_ends_is_closed_and_others_are_served() {
    let (rig, base) = rig_with_http("request_timeout_ms = 1000\nmax_connections = 4\n");
    let (got, _) = send_four(&rig).await;
    let addr = base.trim_start_matches("http://").to_string();
    let link = one_click_link(only(&got, "paul.herbst@example.de"));
    // Four connections that send half a header and then nothing: each is
    // closed by the server (read_to_end returns) without an answer.
    let slow: Vec<_> = (0..4)
        .map(|_| {
            let addr = addr.clone();
            tokio::task::spawn_blocking(move || {
                let mut s = TcpStream::connect(&addr).expect("connect");
                s.set_read_timeout(Some(Duration::from_secs(60)))
                    .expect("timeout");
                s.write_all(b"GET /u/x HTTP/1.1\r\nHost: a\r\n")
                    .expect("write");
                let mut out = Vec::new();
                s.read_to_end(&mut out).map(|_| out)
            })
        })
        .collect();
    for t in slow {
        let closed = t.await.expect("task");
        let out = closed.expect("closed by the server, not by our read timeout");
        assert!(!String::from_utf8_lossy(&out).contains(" 200 "));
    }
    // The slots are free again.
    assert_eq!(call("GET", &link, None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_connection() {
    // The header timeout at its largest: the held connections stay held
    // however slow this machine is.
    let (rig, base) = rig_with_http("max_connections_per_ip = 3\nrequest_timeout_ms = 600000\n");
    let (got, _) = send_four(&rig).await;
    let addr = base.trim_start_matches("http://").to_string();
    let link = one_click_link(only(&got, "paul.herbst@example.de"));
    let get = format!("GET {} HTTP/1.1\r\nHost: {addr}\r\n\r\n", path_of(&link)).into_bytes();

    // 127.0.0.1 opens its three and holds them, half a header each. The
    // server accepts in order: these three hold their slots before the
    // fourth is looked at.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = connect_from("127.0.0.1", &addr).await;
        s.write_all(b"GET /u/x HTTP/1.1\r\n").expect("write");
        held.push(s);
    }
    // Its fourth is closed without a word.
    let (status, text) = raw_from("127.0.0.1", &addr, get.clone()).await;
    assert_eq!((status, text.as_str()), (0, ""), "served past the cap");
    // Another address is served.
    let (status, text) = raw_from("127.0.0.2", &addr, get.clone()).await;
    assert_eq!(status, 200, "{text}");

    // Released, 127.0.0.1 is served again (once the server has seen the
    // three close).
    drop(held);
    let mut served = false;
    for _ in 0..600 {
        if raw_from("127.0.0.1", &addr, get.clone()).await.0 == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        served,
        "127.0.0.1 not served after releasing its connections"
    );

    // Audited per address, counted: the first line at once, naming the
    // address and no request.
    let mut c = rig.client().await;
    let first = |a: &[touchpoint_common::protocol::AuditEntry]| {
        a.iter().any(|e| {
            e.user == "one-click (http)"
                && e.detail.starts_with("1 connection from 127.0.0.1 closed")
        })
    };
    let mut audit = Vec::new();
    for _ in 0..300 {
        audit = c
            .audit(None, 200, "max_connections_per_ip")
            .await
            .expect("audit");
        if first(&audit) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(first(&audit), "{audit:#?}");
    let lines: Vec<_> = audit
        .iter()
        .filter(|e| e.user == "one-click (http)")
        .collect();
    assert!(
        lines.iter().all(|e| !e.detail.contains("127.0.0.2")),
        "{audit:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_is_not_held_to_the_per_address_cap() {
    // Everyone behind the brand's proxy (here 127.0.0.1) comes from it.
    let (rig, base) = rig_with_http(
        "max_connections_per_ip = 1\nrequest_timeout_ms = 600000\ntrusted_proxies = [\"127.0.0.1\"]\n",
    );
    let (got, _) = send_four(&rig).await;
    let addr = base.trim_start_matches("http://").to_string();
    let link = one_click_link(only(&got, "paul.herbst@example.de"));
    let get = format!("GET {} HTTP/1.1\r\nHost: {addr}\r\n\r\n", path_of(&link)).into_bytes();
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = connect_from("127.0.0.1", &addr).await;
        s.write_all(b"GET /u/x HTTP/1.1\r\n").expect("write");
        held.push(s);
    }
    let (status, text) = raw_from("127.0.0.1", &addr, get.clone()).await;
    assert_eq!(status, 200, "{text}");
    // Anyone else still is.
    let mut other = connect_from("127.0.0.2", &addr).await;
    other.write_all(b"GET /u/x HTTP/1.1\r\n").expect("write");
    let (status, text) = raw_from("127.0.0.2", &addr, get).await;
    assert_eq!((status, text.as_str()), (0, ""));
    drop((held, other));
}
