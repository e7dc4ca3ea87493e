//! The router: rate (refusals only), path, token, method, body, then dispatch's one way to
//! withdraw email consent; or, for `/c/{token}` (click tracking), the
//! redirect to the link the token's message carried. Answers carry no cookie, are never cached and
//! may not be framed (a one-click button in someone else's frame would be
//! a click-jacking target).

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::audit::{self, Refusal};
use super::{page, rate, Endpoint};
use crate::dispatch::{OneClickTarget, Unsubscribed};

type Answer = Response<Full<Bytes>>;

/// The one answer for every path and token that is not ours.
const NOT_FOUND: &str = "Not found\n";
/// What RFC 8058 §3.1 says the POST carries.
const ONE_CLICK: &str = "List-Unsubscribe=One-Click";
/// Our tokens are `{tenant}.{id}.{tag}`: far shorter than this.
const MAX_TOKEN: usize = 100;

pub(super) async fn handle(req: Request<Incoming>, peer: IpAddr, ep: &Arc<Endpoint>) -> Answer {
    let client = rate::client(peer, req.headers(), &ep.settings.trusted_proxies);
    if ep.rate.exhausted(client) {
        refuse(ep, Refusal::TooMany);
        let mut a = text(StatusCode::TOO_MANY_REQUESTS, "Too many requests\n");
        a.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return a;
    }
    let a = route(req, ep).await;
    // Refusals are what a token guesser or a flood produces; a genuine
    // one-click is never charged.
    if a.status().is_client_error() {
        ep.rate.charge(client);
    }
    a
}

async fn route(req: Request<Incoming>, ep: &Arc<Endpoint>) -> Answer {
    if let Some(token) = token_of(req.uri().path(), "/c/") {
        return click(req.method(), token, ep).await;
    }
    let Some(token) = token_of(req.uri().path(), "/u/") else {
        return not_found(ep);
    };
    let target = {
        let (ep, token) = (ep.clone(), token.to_string());
        tokio::task::spawn_blocking(move || ep.dispatcher.one_click_target(&token)).await
    };
    let target = match target {
        Ok(Ok(Some(t))) => t,
        Ok(Ok(None)) => return not_found(ep),
        Ok(Err(e)) => return unavailable(&e.to_string()),
        Err(e) => return unavailable(&e.to_string()),
    };
    let method = req.method().clone();
    match method {
        Method::GET | Method::HEAD => html(StatusCode::OK, page::confirm(&target.dealer)),
        Method::POST => post(req, target, ep).await,
        _ => {
            let mut a = text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed\n");
            a.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
            a
        }
    }
}

async fn post(req: Request<Incoming>, target: OneClickTarget, ep: &Arc<Endpoint>) -> Answer {
    let max = ep.settings.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return too_large(ep);
    }
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    let read = Limited::new(req.into_body(), max).collect();
    let body = match tokio::time::timeout(ep.settings.request_timeout, read).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(ep),
        Ok(Err(_)) => {
            return text(
                StatusCode::BAD_REQUEST,
                "The request body could not be read.\n",
            )
        }
        Err(_) => {
            return text(
                StatusCode::REQUEST_TIMEOUT,
                "The request body did not arrive in time.\n",
            )
        }
    };
    if !is_one_click(&body, multipart) {
        refuse(ep, Refusal::BadBody);
        return text(
            StatusCode::BAD_REQUEST,
            "The body must be List-Unsubscribe=One-Click (RFC 8058).\n",
        );
    }
    let done = {
        let (ep, t) = (ep.clone(), target.clone());
        tokio::task::spawn_blocking(move || {
            let r = ep.dispatcher.unsubscribe_one_click(&t.tenant, t.id);
            if let Ok(Some(Unsubscribed::Recorded)) = r {
                tracing::info!(tenant = %t.tenant, id = t.id, "one-click unsubscribe recorded");
                audit::unsubscribed(&ep.stores, &t.tenant, t.id);
            }
            r
        })
        .await
    };
    match done {
        Ok(Ok(Some(Unsubscribed::Recorded))) => html(StatusCode::OK, page::done(&target.dealer)),
        Ok(Ok(Some(Unsubscribed::Already))) => {
            refuse(ep, Refusal::Repeated);
            html(StatusCode::OK, page::done(&target.dealer))
        }
        // Gone between the look-up and now (erased).
        Ok(Ok(None)) => not_found(ep),
        Ok(Err(e)) => unavailable(&e.to_string()),
        Err(e) => unavailable(&e.to_string()),
    }
}

/// A click on a tracked link: 302 to the address the message linked, the
/// click recorded on it (the first of each link audited, the rest
/// counted). Only GET: what a link is followed with.
async fn click(method: &Method, token: &str, ep: &Arc<Endpoint>) -> Answer {
    if method != Method::GET {
        let mut a = text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed\n");
        a.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return a;
    }
    let done = {
        let (ep, token) = (ep.clone(), token.to_string());
        tokio::task::spawn_blocking(move || {
            let r = ep.dispatcher.click(&token);
            if let Ok(Some(c)) = &r {
                if c.first {
                    audit::clicked(&ep.stores, &c.tenant, c.id, c.link);
                }
            }
            r
        })
        .await
    };
    let c = match done {
        Ok(Ok(Some(c))) => c,
        Ok(Ok(None)) => return not_found(ep),
        Ok(Err(e)) => return unavailable(&e.to_string()),
        Err(e) => return unavailable(&e.to_string()),
    };
    if !c.first {
        refuse(ep, Refusal::ClickedAgain);
    }
    let Ok(location) = HeaderValue::from_str(&location(&c.url)) else {
        return not_found(ep);
    };
    let mut a = text(StatusCode::FOUND, "Found\n");
    a.headers_mut().insert(header::LOCATION, location);
    a
}

/// An address as a `Location` header carries it: bytes outside visible
/// ASCII percent-encoded (a template may link an address with umlauts).
fn location(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for b in url.bytes() {
        if (0x21..0x7f).contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `{prefix}{token}` → the token, if it could be one (URL-safe, short).
fn token_of<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let token = path.strip_prefix(prefix)?;
    let ok = !token.is_empty()
        && token.len() <= MAX_TOKEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    ok.then_some(token)
}

/// RFC 8058 §3.1: the body carries `List-Unsubscribe=One-Click`, as
/// `application/x-www-form-urlencoded` (what mail clients and our page
/// send) or `multipart/form-data`.
fn is_one_click(body: &[u8], multipart: bool) -> bool {
    let Ok(body) = std::str::from_utf8(body) else {
        return false;
    };
    if multipart {
        return body.split("\r\n--").any(|part| {
            let Some((head, value)) = part.split_once("\r\n\r\n") else {
                return false;
            };
            head.contains("name=\"List-Unsubscribe\"") && value.trim_end() == "One-Click"
        });
    }
    body.trim_end().split('&').any(|pair| pair == ONE_CLICK)
}

/// Counts a refusal; the first of its kind in a window is written at once.
pub(super) fn refuse(ep: &Arc<Endpoint>, r: Refusal) {
    if ep.tally.count(r) {
        let ep = ep.clone();
        tokio::task::spawn_blocking(move || audit::refused(&ep.stores, r));
    }
}

/// Counts a connection closed because its address holds its share of the
/// slots; the first from an address in a window is written at once.
pub(super) fn refuse_address(ep: &Arc<Endpoint>, key: IpAddr) {
    if ep.crowded.count(key) {
        tracing::info!(client = %key, "http: connection closed, its address holds max_connections_per_ip (more within a minute are counted)");
        let ep = ep.clone();
        tokio::task::spawn_blocking(move || audit::crowded(&ep.stores, key));
    }
}

fn not_found(ep: &Arc<Endpoint>) -> Answer {
    refuse(ep, Refusal::NotFound);
    text(StatusCode::NOT_FOUND, NOT_FOUND)
}

fn too_large(ep: &Arc<Endpoint>) -> Answer {
    refuse(ep, Refusal::TooLarge);
    text(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large\n")
}

/// A store that failed: the client may try again; what failed is logged,
/// not told.
fn unavailable(error: &str) -> Answer {
    tracing::error!(error, "http: one-click request failed");
    let mut a = text(StatusCode::SERVICE_UNAVAILABLE, "Please try again later.\n");
    a.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    a
}

fn text(status: StatusCode, body: &'static str) -> Answer {
    answer(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(body.as_bytes()),
    )
}

fn html(status: StatusCode, body: String) -> Answer {
    answer(status, "text/html; charset=utf-8", Bytes::from(body))
}

fn answer(status: StatusCode, content_type: &'static str, body: Bytes) -> Answer {
    let mut a = Response::new(Full::new(body));
    *a.status_mut() = status;
    let h = a.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_token_shaped_paths_are_looked_at() {
        assert_eq!(
            token_of("/u/d001.42.0123456789", "/u/"),
            Some("d001.42.0123456789")
        );
        assert_eq!(
            token_of("/c/d001.42.3.0123456789", "/c/"),
            Some("d001.42.3.0123456789")
        );
        assert_eq!(token_of("/c/d001.42.3.0123456789", "/u/"), None);
        for bad in [
            "/u/",
            "/",
            "/u",
            "/x/d001.1.ab",
            "/u/a/b",
            "/u/%2e%2e",
            "/u/a b",
        ] {
            assert_eq!(token_of(bad, "/u/"), None, "{bad}");
        }
        assert_eq!(token_of(&format!("/u/{}", "a".repeat(101)), "/u/"), None);
    }

    #[test]
    fn a_location_is_visible_ascii() {
        assert_eq!(
            location("https://a.example/x?a=1&b=2"),
            "https://a.example/x?a=1&b=2"
        );
        assert_eq!(
            location("https://a.example/Müller x"),
            "https://a.example/M%C3%BCller%20x"
        );
    }

    #[test]
    fn the_body_must_be_the_one_click_pair() {
        assert!(is_one_click(b"List-Unsubscribe=One-Click", false));
        assert!(is_one_click(b"List-Unsubscribe=One-Click\r\n", false));
        assert!(is_one_click(b"x=1&List-Unsubscribe=One-Click", false));
        for bad in [
            &b""[..],
            b"List-Unsubscribe=One-Clicks",
            b"list-unsubscribe=one-click",
            b"unsubscribe",
            b"\xff\xfe",
        ] {
            assert!(!is_one_click(bad, false), "{bad:?}");
        }
        let multipart = b"--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b--\r\n";
        assert!(is_one_click(multipart, true));
        assert!(!is_one_click(
            b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nOne-Click\r\n--b--\r\n",
            true
        ));
    }
}
