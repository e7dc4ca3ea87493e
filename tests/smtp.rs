//! A real SMTP server for the end-to-end tests: [`SmtpSink`].
//!
//! The SMTP sessions are run by mailin-embedded, the real library, on an
//! internal port. The port the sink gives out is a small front door that
//! passes the bytes through, because mailin-embedded cannot stop listening
//! and the front door can: `stop()` makes the port refuse connections (the
//! relay is down) and cuts the open ones, `start()` opens the same port
//! again. The front door also makes the one fault the library cannot: a
//! connection cut in the middle of the data, without a reply.
//!
//! mailin-embedded has no shutdown, so its threads (one listener and a
//! pool of [`BACKEND_SESSIONS`]) stay parked until the test process ends.
//! It does not accept a null reverse path (`MAIL FROM:<>`), and it cannot
//! refuse a message after its data cleanly (a refused session stays in the
//! data state), so the sink refuses at RCPT only.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mailin_embedded::response::OK;
use mailin_embedded::{Handler, Response, Server};

/// SMTP sessions the sink serves at once; more wait for a free one.
pub const BACKEND_SESSIONS: u32 = 32;

/// One message the sink accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// Arrival order, from 0.
    pub seq: usize,
    /// The envelope sender (reverse path, without brackets).
    pub from: String,
    /// The envelope recipients, in RCPT order.
    pub to: Vec<String>,
    /// The message as received: dot-unstuffed, CRLF line ends.
    pub data: Vec<u8>,
}

impl Received {
    /// The message parsed by mail-parser.
    pub fn parsed(&self) -> Option<mail_parser::Message<'_>> {
        mail_parser::MessageParser::default().parse(&self.data)
    }

    /// The raw message as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// A reply the sink gives instead of accepting.
struct Rule {
    pattern: String,
    code: u16,
    text: String,
}

#[derive(Default)]
struct State {
    messages: Vec<Received>,
    rules: Vec<Rule>,
    drop_mid_data: usize,
    dropped: usize,
    /// Open connections through the front door: (client, backend).
    links: HashMap<u64, (TcpStream, TcpStream)>,
    next_link: u64,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    arrived: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn rule_for(&self, recipient: &str) -> Option<Response> {
        self.lock()
            .rules
            .iter()
            .find(|r| recipient.contains(&r.pattern))
            .map(|r| Response::custom(r.code, r.text.clone()))
    }

    /// Whether to cut the transaction now starting its data.
    fn take_drop(&self) -> bool {
        let mut state = self.lock();
        if state.drop_mid_data == 0 {
            return false;
        }
        state.drop_mid_data -= 1;
        state.dropped += 1;
        true
    }
}

/// The mailin-embedded handler: one clone per SMTP session.
#[derive(Clone)]
struct SinkHandler {
    shared: Arc<Shared>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for SinkHandler {
    fn rcpt(&mut self, to: &str) -> Response {
        self.shared.rule_for(to).unwrap_or(OK)
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.from = from.to_string();
        self.to = to.to_vec();
        self.data.clear();
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mut state = self.shared.lock();
        let seq = state.messages.len();
        state.messages.push(Received {
            seq,
            from: std::mem::take(&mut self.from),
            to: std::mem::take(&mut self.to),
            data: std::mem::take(&mut self.data),
        });
        drop(state);
        self.shared.arrived.notify_all();
        Response::custom(250, format!("2.0.0 Ok: queued as S{seq}"))
    }
}

/// The accept loop of the front door.
struct Front {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// A real SMTP server on 127.0.0.1 that keeps every accepted message in
/// memory. Behaviour can be changed while it runs. Dropping it stops it.
pub struct SmtpSink {
    addr: SocketAddr,
    backend: SocketAddr,
    shared: Arc<Shared>,
    front: Mutex<Option<Front>>,
}

impl SmtpSink {
    /// Starts a sink on a free port of 127.0.0.1.
    pub fn new() -> SmtpSink {
        let shared = Arc::new(Shared::default());
        let backend_listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink's backend");
        let backend = backend_listener.local_addr().expect("backend address");
        let mut server = Server::new(SinkHandler {
            shared: Arc::clone(&shared),
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
        });
        server
            .with_name("sink.test")
            .with_num_threads(BACKEND_SESSIONS)
            .with_tcp_listener(backend_listener);
        std::thread::Builder::new()
            .name("smtp-sink".into())
            .spawn(move || {
                let _ = server.serve();
            })
            .expect("spawn the sink's server");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
        let addr = listener.local_addr().expect("sink address");
        let sink = SmtpSink {
            addr,
            backend,
            shared,
            front: Mutex::new(None),
        };
        *sink.front_slot() = Some(sink.open_front(listener));
        sink
    }

    /// Where the sink listens (also while stopped: `start` reuses it).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every accepted message, in arrival order.
    pub fn messages(&self) -> Vec<Received> {
        self.shared.lock().messages.clone()
    }

    /// Accepted messages so far.
    pub fn count(&self) -> usize {
        self.shared.lock().messages.len()
    }

    /// Transactions cut by [`set_drop_mid_data`](Self::set_drop_mid_data) so far.
    pub fn dropped(&self) -> usize {
        self.shared.lock().dropped
    }

    /// Waits until at least `n` messages arrived; false after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.count() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// [`wait_for`](Self::wait_for) for code outside a runtime.
    pub fn wait_for_blocking(&self, n: usize, timeout: Duration) -> bool {
        let state = self.shared.lock();
        let (state, _) = self
            .shared
            .arrived
            .wait_timeout_while(state, timeout, |s| s.messages.len() < n)
            .unwrap_or_else(PoisonError::into_inner);
        state.messages.len() >= n
    }

    /// Answers RCPT for a recipient containing `recipient_substring` with
    /// `code` and `text` (e.g. `"tempfail"`, 451, `"4.7.1 try again later"`;
    /// `"nosuchuser"`, 550, `"5.1.1 no such user"`). A later rule for the
    /// same substring replaces the earlier.
    pub fn reply_for(&self, recipient_substring: &str, code: u16, text: &str) {
        self.set_rule(recipient_substring, code, text);
    }

    fn set_rule(&self, pattern: &str, code: u16, text: &str) {
        let mut state = self.shared.lock();
        state.rules.retain(|r| r.pattern != pattern);
        state.rules.push(Rule {
            pattern: pattern.to_string(),
            code,
            text: text.to_string(),
        });
    }

    /// Forgets every rule: all recipients are accepted again.
    pub fn clear_replies(&self) {
        self.shared.lock().rules.clear();
    }

    /// The next `n` transactions that reach DATA get the 354, send one line
    /// of their data, and then the connection is closed without a reply
    /// (the client cannot know whether the message was taken; it was not).
    pub fn set_drop_mid_data(&self, n: usize) {
        self.shared.lock().drop_mid_data = n;
    }

    /// Closes the port (connections are refused) and cuts every open
    /// connection: the relay is down. Received messages are kept.
    pub fn stop(&self) {
        let front = self.front_slot().take();
        if let Some(front) = front {
            front.stop.store(true, Ordering::SeqCst);
            // Wake the accept loop so that it sees the flag and lets go of the port.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5));
            let _ = front.thread.join();
        }
        let links = std::mem::take(&mut self.shared.lock().links);
        for (client, backend) in links.into_values() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = backend.shutdown(Shutdown::Both);
        }
    }

    /// Listens on the same port again after [`stop`](Self::stop).
    pub fn start(&self) {
        let mut slot = self.front_slot();
        if slot.is_none() {
            let listener = TcpListener::bind(self.addr)
                .unwrap_or_else(|e| panic!("re-open the sink on {}: {e}", self.addr));
            *slot = Some(self.open_front(listener));
        }
    }

    fn front_slot(&self) -> MutexGuard<'_, Option<Front>> {
        self.front.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn open_front(&self, listener: TcpListener) -> Front {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, shared, backend) = (Arc::clone(&stop), Arc::clone(&self.shared), self.backend);
        let thread = std::thread::Builder::new()
            .name("smtp-sink-front".into())
            .spawn(move || accept_loop(listener, backend, &shared, &flag))
            .expect("spawn the sink's front door");
        Front { stop, thread }
    }
}

impl Default for SmtpSink {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(
    listener: TcpListener,
    backend: SocketAddr,
    shared: &Arc<Shared>,
    stop: &AtomicBool,
) {
    for client in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let Ok(server) = TcpStream::connect(backend) else {
            continue;
        };
        // The front door must not add Nagle stalls of its own.
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
            client.try_clone(),
            server.try_clone(),
            client.try_clone(),
            server.try_clone(),
        ) else {
            continue;
        };
        let id = {
            let mut state = shared.lock();
            state.next_link += 1;
            let id = state.next_link;
            state.links.insert(id, (c3, s3));
            id
        };
        let up = Arc::clone(shared);
        std::thread::spawn(move || {
            pump_client(client, server, &up);
            up.lock().links.remove(&id);
        });
        std::thread::spawn(move || {
            let (mut from, mut to) = (s2, c2);
            let _ = std::io::copy(&mut from, &mut to);
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
        });
    }
}

/// Client to server, a line at a time, watching for DATA to cut a
/// transaction when asked. (BDAT is not offered by mailin, and after
/// STARTTLS the lines are opaque: no cuts there.)
fn pump_client(client: TcpStream, mut server: TcpStream, shared: &Shared) {
    let cut = |client: &TcpStream, server: &TcpStream| {
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
    };
    let Ok(client_side) = client.try_clone() else {
        cut(&client, &server);
        return;
    };
    let mut reader = BufReader::new(client_side);
    let mut line = Vec::new();
    let mut in_data = false;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if in_data {
            in_data = line != b".\r\n";
        } else if line.eq_ignore_ascii_case(b"DATA\r\n") {
            in_data = true;
            if shared.take_drop() {
                // DATA goes through and its 354 comes back; one line of the
                // data follows, then both sides are hung up on.
                let _ = server.write_all(&line);
                line.clear();
                let _ = reader.read_until(b'\n', &mut line);
                let _ = server.write_all(&line);
                break;
            }
        }
        if server.write_all(&line).is_err() {
            break;
        }
    }
    cut(&client, &server);
}

#[cfg(test)]
mod tests {
    use super::*;
    use touchpoint_common::config::{SmtpConfig, SmtpTls};
    use touchpointd::dispatch::smtp::{Delivery, Envelope, Relay};

    const MESSAGE: &[u8] = b"From: service@autohaus.test\r\nTo: kunde@example.test\r\nSubject: Termin\r\n\r\nHallo\r\n.Punkt\r\n";

    fn envelope(to: &str) -> Envelope {
        Envelope::new(
            Some("bounce@autohaus.test".parse().expect("from")),
            vec![to.parse().expect("to")],
        )
        .expect("envelope")
    }

    #[tokio::test]
    async fn sink_smoke() {
        let sink = SmtpSink::new();
        let cfg = SmtpConfig {
            host: "127.0.0.1".into(),
            port: sink.addr().port(),
            tls: SmtpTls::None,
            connections: 1,
            timeout_secs: 10,
            hello_name: "touchpoint.test".into(),
            ..SmtpConfig::default()
        };
        let relay = Relay::new(&cfg, None).expect("relay");
        let send = |to: &'static str| {
            let relay = &relay;
            async move { relay.send(&envelope(to), MESSAGE).await }
        };

        let d = send("kunde@example.test").await;
        assert!(matches!(d, Delivery::Accepted { .. }), "{d:?}");
        sink.reply_for("nosuchuser", 550, "5.1.1 no such user");
        let d = send("nosuchuser@example.test").await;
        assert_eq!(
            d,
            Delivery::Permanent {
                code: 550,
                message: "5.1.1 no such user".into()
            }
        );
        sink.reply_for("tempfail", 451, "4.7.1 try again later");
        let d = send("tempfail@example.test").await;
        assert_eq!(
            d,
            Delivery::Transient {
                code: 451,
                message: "4.7.1 try again later".into()
            }
        );

        sink.set_drop_mid_data(1);
        let d = send("second@example.test").await;
        assert!(matches!(d, Delivery::Unreachable { .. }), "{d:?}");
        assert_eq!((sink.dropped(), sink.count()), (1, 1));
        let d = send("second@example.test").await;
        assert!(matches!(d, Delivery::Accepted { .. }), "{d:?}");

        sink.stop();
        let d = send("third@example.test").await;
        let Delivery::Unreachable { error } = d else {
            panic!("{d:?}")
        };
        assert!(error.contains("connect"), "{error}");
        sink.start();
        let d = send("third@example.test").await;
        assert!(matches!(d, Delivery::Accepted { .. }), "{d:?}");

        assert!(sink.wait_for(3, Duration::from_secs(5)).await);
        assert!(sink.wait_for_blocking(3, Duration::from_secs(5)));
        let got = sink.messages();
        let to: Vec<&str> = got.iter().map(|m| m.to[0].as_str()).collect();
        assert_eq!(
            to,
            [
                "kunde@example.test",
                "second@example.test",
                "third@example.test"
            ]
        );
        assert_eq!(got[2].seq, 2);
        assert_eq!(got[0].from, "bounce@autohaus.test");
        assert_eq!(got[0].data, MESSAGE);
        let parsed = got[0].parsed().expect("parses");
        assert_eq!(parsed.subject(), Some("Termin"));
    }
}
