#![allow(clippy::unwrap_used)]

use super::*;
use mailin_embedded::response::{AUTH_OK, INVALID_CREDENTIALS, OK};
use mailin_embedded::{AuthMechanism, Handler, Response as Reply, Server, SslConfig};
use std::io::{Read, Write};
use std::net::TcpListener as StdListener;

// A test CA and a certificate for "localhost" and 127.0.0.1 signed by
// it (P-256, valid until 2126), made with openssl for these tests only.
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBojCCAUegAwIBAgIUHHFOLirnb099YJ+gAp7iwTD8/BQwCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwSVG91Y2hwb2ludCB0ZXN0IENBMCAXDTI2MTEyMzEzMTgwOVoY
DzIxMjYxMDMwMTMxODA5WjAdMRswGQYDVQQDDBJUb3VjaHBvaW50IHRlc3QgQ0Ew
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATXiGp+o8W2cB5m8vkOAgva1CENDk9h
QTmFlw5PixBs91jCF6PakpulPNYdh5GPiuVi63kTeUoq4yRpOUJxySSTo2MwYTAd
BgNVHQ4EFgQUqNWzT6OYgWL8AE6kATcGUcOLhDgwHwYDVR0jBBgwFoAUqNWzT6OY
gWL8AE6kATcGUcOLhDgwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAgQw
CgYIKoZIzj0EAwIDSQAwRgIhAIohFrRBTD02pXKZbTeEm1p8nlbarJkzFER4e/bU
bzyhAiEAvo8roopSvshu/SFxkVlZSAV8uS6bzRVyeKKSbsaT++Y=
-----END CERTIFICATE-----
";
const LEAF_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIByDCCAW6gAwIBAgIUKRJZBxk/8KoNENShfNPeIguXVwgwCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwSVG91Y2hwb2ludCB0ZXN0IENBMCAXDTI2MTEyMzEzMTgwOVoY
DzIxMjYxMDMwMTMxODA5WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjO
PQIBBggqhkjOPQMBBwNCAATJVTWCzZ6Y28t0WzxNw9RSg26tBJFSQKL8ENpbXp9u
MVb6r9iFv/NuvM8IiknVWAtw92nDlQtHYxjqPM7Ck4AUo4GSMIGPMAwGA1UdEwEB
/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMBoGA1Ud
EQQTMBGCCWxvY2FsaG9zdIcEfwAAATAdBgNVHQ4EFgQUIXB3W6JEKBs/9A8735ve
IVaxPD0wHwYDVR0jBBgwFoAUqNWzT6OYgWL8AE6kATcGUcOLhDgwCgYIKoZIzj0E
AwIDSAAwRQIgcVYyLGQYUJLuPR/9XXYw64mLzcsQ618u5mB24IOUuHgCIQCVMBkL
dcbf5B5ur2n3vecqzefJI2aIMqU3AjAt2J+iQA==
-----END CERTIFICATE-----
";
const LEAF_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgrBI54O/CTlEBqFy0
m56+8qehTwxTVI8iJZRPYXUQRoihRANCAATJVTWCzZ6Y28t0WzxNw9RSg26tBJFS
QKL8ENpbXp9uMVb6r9iFv/NuvM8IiknVWAtw92nDlQtHYxjqPM7Ck4AU
-----END PRIVATE KEY-----
";

/// 8-bit UTF-8, a line that starts with a dot (stuffed on the wire),
/// CRLF line ends including the last.
const MESSAGE: &[u8] = "From: Autohaus Müller <service@autohaus.test>\r\n\
To: kunde@example.test\r\n\
Subject: Ihr Termin\r\n\
Message-ID: <1.d001@autohaus.test>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Grüß Gott,\r\n\
.ein Punkt am Anfang\r\n\
..zwei Punkte\r\n\
.\r\n\
Ende\r\n"
    .as_bytes();

#[derive(Clone, Debug, Default, PartialEq)]
struct Got {
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

/// The mailin-embedded handler: keeps accepted messages; refuses
/// recipients containing "tempfail" (451) or "nosuchuser" (550).
#[derive(Clone)]
struct Recorder {
    got: Arc<Mutex<Vec<Got>>>,
    current: Got,
}

impl Handler for Recorder {
    fn rcpt(&mut self, to: &str) -> Reply {
        if to.contains("tempfail") {
            Reply::custom(451, "4.7.1 try again later".into())
        } else if to.contains("nosuchuser") {
            Reply::custom(550, "5.1.1 no such user".into())
        } else {
            OK
        }
    }

    fn data_start(&mut self, _domain: &str, from: &str, _8bit: bool, to: &[String]) -> Reply {
        self.current = Got {
            from: from.into(),
            to: to.to_vec(),
            data: Vec::new(),
        };
        OK
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        self.current.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Reply {
        self.got
            .lock()
            .unwrap()
            .push(std::mem::take(&mut self.current));
        Reply::custom(250, "2.0.0 Ok: queued".into())
    }

    fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Reply {
        self.auth_login(user, password)
    }

    fn auth_login(&mut self, user: &str, password: &str) -> Reply {
        if user == "touchpoint" && password == "s3cret" {
            AUTH_OK
        } else {
            INVALID_CREDENTIALS
        }
    }
}

fn install_crypto_provider() {
    // Both of rustls' providers are compiled in (see Cargo.toml), so
    // mailin-embedded's server config needs a process default.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A mailin-embedded server on 127.0.0.1:0 (its thread lives as long as
/// the test process: the library has no shutdown).
fn mailin(starttls: bool, auth: bool) -> (SocketAddr, Arc<Mutex<Vec<Got>>>) {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::default();
    let mut server = Server::new(Recorder {
        got: Arc::clone(&got),
        current: Got::default(),
    });
    server
        .with_name("relay.test")
        .with_num_threads(8)
        .with_tcp_listener(listener);
    if starttls {
        install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, LEAF_PEM).unwrap();
        std::fs::write(&key, LEAF_KEY).unwrap();
        server
            .with_ssl(SslConfig::SelfSigned {
                cert_path: cert.display().to_string(),
                key_path: key.display().to_string(),
            })
            .unwrap();
    }
    if auth {
        server
            .with_auth(AuthMechanism::Plain)
            .with_auth(AuthMechanism::Login);
    }
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    (addr, got)
}

/// A raw SMTP responder for what mailin-embedded cannot do: faults, and
/// refusing the data (554) of a message to a "spamtrap" recipient.
struct Raw {
    addr: SocketAddr,
    /// Command lines seen, upper-cased, from every connection.
    log: Arc<Mutex<Vec<String>>>,
    got: Arc<Mutex<Vec<Vec<u8>>>>,
    /// The next this many DATA phases read one line of the data, then
    /// hang up without a reply.
    drop_data: Arc<AtomicUsize>,
}

#[derive(Clone, Copy, PartialEq)]
enum After {
    /// Keep the connection after a message.
    Stay,
    /// Close it after each accepted message, as a relay does with
    /// connections that idle too long.
    Close,
}

fn raw(after: After, tls: Option<Arc<rustls::ServerConfig>>) -> Raw {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let raw = Raw {
        addr: listener.local_addr().unwrap(),
        log: Arc::default(),
        got: Arc::default(),
        drop_data: Arc::default(),
    };
    let (log, got, drop_data) = (
        Arc::clone(&raw.log),
        Arc::clone(&raw.got),
        Arc::clone(&raw.drop_data),
    );
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let (log, got, drop_data, tls) = (
                Arc::clone(&log),
                Arc::clone(&got),
                Arc::clone(&drop_data),
                tls.clone(),
            );
            std::thread::spawn(move || match tls {
                Some(cfg) => {
                    let conn = rustls::ServerConnection::new(cfg).unwrap();
                    let stream = rustls::StreamOwned::new(conn, tcp);
                    let _ = raw_session(stream, after, &log, &got, &drop_data);
                }
                None => {
                    let _ = raw_session(tcp, after, &log, &got, &drop_data);
                }
            });
        }
    });
    raw
}

fn read_line<S: Read>(s: &mut S, buf: &mut Vec<u8>) -> io::Result<Option<Vec<u8>>> {
    loop {
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            return Ok(Some(buf.drain(..=i).collect()));
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn raw_session<S: Read + Write>(
    mut s: S,
    after: After,
    log: &Mutex<Vec<String>>,
    got: &Mutex<Vec<Vec<u8>>>,
    drop_data: &AtomicUsize,
) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut spamtrap = false;
    let mut chatty = false;
    s.write_all(b"220 raw.test ESMTP\r\n")?;
    while let Some(line) = read_line(&mut s, &mut buf)? {
        let cmd = String::from_utf8_lossy(&line)
            .trim_end()
            .to_ascii_uppercase();
        log.lock().unwrap().push(cmd.clone());
        let verb = cmd.split([' ', ':']).next().unwrap_or_default().to_string();
        match verb.as_str() {
            "EHLO" => s.write_all(b"250-raw.test\r\n250 8BITMIME\r\n")?,
            "RCPT" if cmd.contains("CHATTY-REFUSAL") => {
                s.write_all(&chatty_reply("550", "5.1.1", "no such user"))?
            }
            "MAIL" | "RCPT" | "RSET" | "NOOP" => {
                spamtrap |= verb == "RCPT" && cmd.contains("SPAMTRAP");
                spamtrap &= verb != "RSET" && verb != "MAIL";
                chatty |= verb == "RCPT" && cmd.contains("CHATTY");
                chatty &= verb != "RSET" && verb != "MAIL";
                s.write_all(b"250 2.0.0 Ok\r\n")?
            }
            "QUIT" => {
                s.write_all(b"221 2.0.0 Bye\r\n")?;
                return Ok(());
            }
            "DATA" => {
                s.write_all(b"354 go ahead\r\n")?;
                let drop_now = drop_data
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                let mut data = Vec::new();
                loop {
                    let Some(line) = read_line(&mut s, &mut buf)? else {
                        return Ok(());
                    };
                    if drop_now {
                        return Ok(());
                    }
                    if line == b".\r\n" {
                        break;
                    }
                    data.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
                }
                if std::mem::take(&mut spamtrap) {
                    s.write_all(b"554 5.7.1 message refused\r\n")?;
                    continue;
                }
                got.lock().unwrap().push(data);
                if std::mem::take(&mut chatty) {
                    s.write_all(&chatty_reply("250", "2.0.0", "queued as RAW"))?;
                } else {
                    s.write_all(b"250 2.0.0 Ok: queued as RAW\r\n")?;
                }
                if after == After::Close {
                    return Ok(());
                }
            }
            _ => s.write_all(b"500 5.5.2 what?\r\n")?,
        }
        s.flush()?;
    }
    Ok(())
}

/// A reply of as many lines as the client takes (lettre reads 100 kB of
/// them, lines of up to 1000 bytes), with control characters in them.
fn chatty_reply(code: &str, status: &str, last: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..95 {
        out.extend_from_slice(
            format!(
                "{code}-{status} line {i:02} \u{1b}[31m{}\r\n",
                "x".repeat(950)
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(format!("{code} {status} {last}\r\n").as_bytes());
    out
}

fn tls_server_config() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(LEAF_PEM.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(LEAF_KEY.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    )
}

fn config(host: &str, addr: SocketAddr, tls: SmtpTls, connections: u32) -> SmtpConfig {
    SmtpConfig {
        host: host.into(),
        port: addr.port(),
        tls,
        username: String::new(),
        password_file: String::new(),
        ca_file: String::new(),
        connections,
        in_flight_per_connection: 8,
        timeout_secs: 10,
        hello_name: "touchpoint.test".into(),
    }
}

fn plain(addr: SocketAddr, connections: u32) -> Relay {
    Relay::new(&config("127.0.0.1", addr, SmtpTls::None, connections), None).unwrap()
}

fn envelope(to: &[&str]) -> Envelope {
    Envelope::new(
        Some("bounce+d001.42@autohaus.test".parse().unwrap()),
        to.iter().map(|t| t.parse().unwrap()).collect(),
    )
    .unwrap()
}

fn accepted(d: &Delivery) -> bool {
    matches!(d, Delivery::Accepted { .. })
}

#[tokio::test]
async fn accepted_mail_arrives_byte_exact() {
    let (addr, got) = mailin(false, false);
    let relay = plain(addr, 2);
    let d = relay
        .send(&envelope(&["kunde@example.test"]), MESSAGE)
        .await;
    let Delivery::Accepted { response } = d else {
        panic!("{d:?}")
    };
    assert_eq!(response, "250 2.0.0 Ok: queued");
    // Without a final line end, the end-of-data marker adds one.
    let d = relay
        .send(
            &envelope(&["b@example.test", "c@example.test"]),
            b"Subject: x\r\n\r\nno end",
        )
        .await;
    assert!(accepted(&d), "{d:?}");
    let got = got.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![
            Got {
                from: "bounce+d001.42@autohaus.test".into(),
                to: vec!["kunde@example.test".into()],
                data: MESSAGE.to_vec(),
            },
            Got {
                from: "bounce+d001.42@autohaus.test".into(),
                to: vec!["b@example.test".into(), "c@example.test".into()],
                data: b"Subject: x\r\n\r\nno end\r\n".to_vec(),
            }
        ]
    );
    let stats = relay.stats();
    assert_eq!((stats.sent, stats.connects, stats.open), (2, 1, 1));
}

#[tokio::test]
async fn refusals_are_classified_and_the_connection_kept() {
    let (addr, got) = mailin(false, false);
    let relay = plain(addr, 1);
    let d = relay
        .send(&envelope(&["tempfail@example.test"]), MESSAGE)
        .await;
    assert_eq!(
        d,
        Delivery::Transient {
            code: 451,
            message: "4.7.1 try again later".into()
        }
    );
    let d = relay
        .send(&envelope(&["nosuchuser@example.test"]), MESSAGE)
        .await;
    assert_eq!(
        d,
        Delivery::Permanent {
            code: 550,
            message: "5.1.1 no such user".into()
        }
    );
    // One refused recipient stops the whole transaction.
    let d = relay
        .send(
            &envelope(&["ok@example.test", "nosuchuser@example.test"]),
            MESSAGE,
        )
        .await;
    assert!(matches!(d, Delivery::Permanent { code: 550, .. }), "{d:?}");
    let d = relay.send(&envelope(&["ok@example.test"]), MESSAGE).await;
    assert!(accepted(&d), "{d:?}");
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].to, vec!["ok@example.test".to_string()]);
    let stats = relay.stats();
    assert_eq!(
        (stats.connects, stats.refused, stats.sent, stats.errors),
        (1, 3, 1, 0),
        "every message on the first connection"
    );
}

#[tokio::test]
async fn a_refusal_after_the_data_keeps_the_connection() {
    // mailin-embedded stays in its data state after refusing the data,
    // so this one runs against the raw responder.
    let raw = raw(After::Stay, None);
    let relay = plain(raw.addr, 1);
    let d = relay
        .send(&envelope(&["spamtrap@example.test"]), MESSAGE)
        .await;
    assert_eq!(
        d,
        Delivery::Permanent {
            code: 554,
            message: "5.7.1 message refused".into()
        }
    );
    let d = relay.send(&envelope(&["a@example.test"]), MESSAGE).await;
    assert!(accepted(&d), "{d:?}");
    assert_eq!(*raw.got.lock().unwrap(), vec![MESSAGE.to_vec()]);
    let stats = relay.stats();
    assert_eq!((stats.connects, stats.refused, stats.sent), (1, 1, 1));
}

/// Whatever a relay answers, what a delivery says of it (and what is
/// stored of it: the history, the why, the last error, a bad address's
/// reason) is one line of at most about a kilobyte.
#[tokio::test]
async fn a_relay_that_answers_at_length_is_heard_in_one_short_line() {
    let raw = raw(After::Stay, None);
    let relay = plain(raw.addr, 1);
    let refused = relay
        .send(&envelope(&["chatty-refusal@example.test"]), MESSAGE)
        .await;
    let Delivery::Permanent { code: 550, message } = &refused else {
        panic!("{refused:.300?}")
    };
    let accepted = relay
        .send(&envelope(&["chatty@example.test"]), MESSAGE)
        .await;
    let Delivery::Accepted { response } = &accepted else {
        panic!("{accepted:.300?}")
    };
    for text in [message, response] {
        assert!(
            text.chars().count() <= 1_001,
            "{} chars",
            text.chars().count()
        );
        assert!(!text.contains(char::is_control), "{text:.300?}");
    }
    assert!(
        message.starts_with("5.1.1 line 00 ?[31mxxx"),
        "{message:.100}"
    );
    assert!(message.ends_with('…'), "cut short, and says so");
    assert!(
        response.starts_with("250 2.0.0 line 00 ?[31mxxx"),
        "{response:.100}"
    );
    let stats = relay.stats();
    assert_eq!((stats.connects, stats.refused, stats.sent), (1, 1, 1));
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    let port = StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let relay = plain(port, 2);
    let d = relay.send(&envelope(&["a@example.test"]), MESSAGE).await;
    let Delivery::Unreachable { error } = d else {
        panic!("{d:?}")
    };
    assert!(error.contains("connect"), "{error}");
    let stats = relay.stats();
    assert_eq!((stats.errors, stats.open, stats.in_use), (1, 0, 0));
}

#[tokio::test]
async fn connections_are_reused() {
    let (addr, got) = mailin(false, false);
    let relay = plain(addr, 4);
    for _ in 0..50 {
        assert!(accepted(
            &relay.send(&envelope(&["a@example.test"]), MESSAGE).await
        ));
    }
    assert_eq!(
        relay.stats().connects,
        1,
        "one after another: one connection"
    );

    let relay = plain(addr, 4);
    let env = envelope(&["b@example.test"]);
    let sends = (0..50).map(|_| relay.send(&env, MESSAGE));
    let results = futures::future::join_all(sends).await;
    assert!(results.iter().all(accepted), "{results:?}");
    let stats = relay.stats();
    assert_eq!(
        (stats.connects, stats.open, stats.in_use, stats.sent),
        (4, 4, 0, 50),
        "at once: the pool's size"
    );
    assert_eq!(got.lock().unwrap().len(), 100);
}

#[tokio::test]
async fn the_stream_handed_to_lettre_has_nodelay() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stream = connect_tcp("127.0.0.1", addr.port(), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(stream.nodelay().unwrap());
}

#[tokio::test]
async fn a_drop_in_the_data_is_unreachable_and_the_connection_replaced() {
    let raw = raw(After::Stay, None);
    raw.drop_data.store(1, Ordering::SeqCst);
    let relay = plain(raw.addr, 1);
    let d = relay.send(&envelope(&["a@example.test"]), MESSAGE).await;
    let Delivery::Unreachable { error } = d else {
        panic!("{d:?}")
    };
    assert!(error.contains("may have taken the message"), "{error}");
    assert_eq!(relay.stats().open, 0, "the broken connection is gone");
    let d = relay.send(&envelope(&["a@example.test"]), MESSAGE).await;
    assert!(accepted(&d), "{d:?}");
    assert_eq!(*raw.got.lock().unwrap(), vec![MESSAGE.to_vec()]);
    let stats = relay.stats();
    assert_eq!((stats.connects, stats.errors, stats.sent), (2, 1, 1));
}

#[tokio::test]
async fn a_connection_the_relay_closed_while_idle_is_replaced() {
    let raw = raw(After::Close, None);
    let relay = plain(raw.addr, 1);
    for _ in 0..3 {
        let d = relay.send(&envelope(&["a@example.test"]), MESSAGE).await;
        assert!(accepted(&d), "{d:?}");
    }
    let stats = relay.stats();
    assert_eq!((stats.connects, stats.errors, stats.sent), (3, 0, 3));
    assert_eq!(raw.got.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn old_idle_connections_are_probed() {
    let raw = raw(After::Stay, None);
    let mut relay = plain(raw.addr, 1);
    relay.probe_after = Duration::ZERO;
    for _ in 0..2 {
        assert!(accepted(
            &relay.send(&envelope(&["a@example.test"]), MESSAGE).await
        ));
    }
    let log = raw.log.lock().unwrap().clone();
    assert_eq!(log.iter().filter(|c| *c == "NOOP").count(), 1, "{log:?}");
    assert_eq!(relay.stats().connects, 1);
}

#[tokio::test]
async fn starttls_and_auth() {
    let (addr, got) = mailin(true, true);
    let mut cfg = config("localhost", addr, SmtpTls::Starttls, 1);
    cfg.username = "touchpoint".into();
    let relay = Relay::new(&cfg, Some("s3cret".into()))
        .unwrap()
        .with_root_certificates(CA_PEM.as_bytes())
        .unwrap();
    let d = relay
        .send(&envelope(&["kunde@example.test"]), MESSAGE)
        .await;
    assert!(accepted(&d), "{d:?}");
    assert_eq!(got.lock().unwrap()[0].data, MESSAGE);

    let wrong = Relay::new(&cfg, Some("guess".into()))
        .unwrap()
        .with_root_certificates(CA_PEM.as_bytes())
        .unwrap();
    let d = wrong
        .send(&envelope(&["kunde@example.test"]), MESSAGE)
        .await;
    assert!(
        matches!(&d, Delivery::Unreachable { error } if error.contains("AUTH: 535")),
        "{d:?}"
    );

    // The public roots do not know the test CA.
    let untrusted = Relay::new(&cfg, Some("s3cret".into())).unwrap();
    let d = untrusted
        .send(&envelope(&["kunde@example.test"]), MESSAGE)
        .await;
    assert!(
        matches!(&d, Delivery::Unreachable { error } if error.contains("STARTTLS")),
        "{d:?}"
    );
    assert_eq!(got.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn implicit_tls() {
    let raw = raw(After::Stay, Some(tls_server_config()));
    let relay = Relay::new(&config("localhost", raw.addr, SmtpTls::Tls, 1), None)
        .unwrap()
        .with_root_certificates(CA_PEM.as_bytes())
        .unwrap();
    for _ in 0..2 {
        let d = relay.send(&envelope(&["a@example.test"]), MESSAGE).await;
        assert!(accepted(&d), "{d:?}");
    }
    assert_eq!(*raw.got.lock().unwrap(), vec![MESSAGE.to_vec(); 2]);
    assert_eq!(relay.stats().connects, 1);

    // A plain server does not answer a TLS handshake.
    let (addr, _) = mailin(false, false);
    let relay = Relay::new(&config("localhost", addr, SmtpTls::Tls, 1), None).unwrap();
    let d = relay.send(&envelope(&["a@example.test"]), MESSAGE).await;
    assert!(
        matches!(&d, Delivery::Unreachable { error } if error.contains("TLS")),
        "{d:?}"
    );
}

#[tokio::test]
async fn close_quits_idle_connections() {
    let raw = raw(After::Stay, None);
    let relay = plain(raw.addr, 2);
    assert!(accepted(
        &relay.send(&envelope(&["a@example.test"]), MESSAGE).await
    ));
    relay.close().await;
    assert!(raw.log.lock().unwrap().contains(&"QUIT".to_string()));
    assert_eq!(relay.stats().open, 0);
    let d = relay.send(&envelope(&["a@example.test"]), MESSAGE).await;
    assert!(matches!(d, Delivery::Unreachable { .. }), "{d:?}");
    assert_eq!(relay.stats().connects, 1);
}

#[test]
fn configuration_errors() {
    let addr: SocketAddr = "127.0.0.1:25".parse().unwrap();
    let mut cfg = config("", addr, SmtpTls::None, 1);
    assert!(matches!(Relay::new(&cfg, None), Err(SmtpError::NoHost)));
    cfg.host = "relay.test".into();
    cfg.connections = 0;
    assert!(matches!(
        Relay::new(&cfg, None),
        Err(SmtpError::NoConnections)
    ));
    cfg.connections = 1;
    cfg.username = "touchpoint".into();
    assert!(matches!(
        Relay::new(&cfg, None),
        Err(SmtpError::NoPassword(_))
    ));
    let relay = Relay::new(&cfg, Some("pw".into())).unwrap();
    assert!(relay.with_root_certificates(b"not a certificate").is_err());
}

#[test]
fn relay_and_send_are_shareable_across_tasks() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let addr: SocketAddr = "127.0.0.1:25".parse().unwrap();
    let relay = plain(addr, 1);
    send_sync(&relay);
    let env = envelope(&["a@example.test"]);
    let fut = relay.send(&env, MESSAGE);
    send(&fut);
}
