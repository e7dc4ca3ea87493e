//! SMTP throughput on loopback, and the Nagle stall (release mode):
//!
//! ```sh
//! cargo bench -p touchpoint-daemon --bench smtp           # 300 messages
//! cargo bench -p touchpoint-daemon --bench smtp -- 1000   # another count
//! ```
//!
//! The relay is an in-process mailin-embedded server on 127.0.0.1. Small
//! messages (about 700 bytes) go out one after another over ONE connection:
//!
//! - our `Relay` (its own TCP stream, `TCP_NODELAY`);
//! - lettre's `send` on a stream we opened with `TCP_NODELAY`;
//! - lettre's `send` on a connection lettre opened itself (Nagle on);
//! - lettre's `AsyncSmtpTransport` as the workspace builds lettre: without
//!   its `pool` feature there is no `pool_config`, so it opens (EHLO, QUIT)
//!   a connection per message.
//!
//! Then our `Relay` with 1, 4 and 16 connections and four times as many
//! messages sent at once. Each run starts after one warm-up message.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mailin_embedded::{Handler, Server};
use touchpoint_common::config::{SmtpConfig, SmtpTls};
use touchpointd::dispatch::smtp::{Delivery, Envelope, Relay};

/// Counts the messages the server accepted.
#[derive(Clone)]
struct Count(Arc<AtomicUsize>);

impl Handler for Count {
    fn data_end(&mut self) -> mailin_embedded::Response {
        self.0.fetch_add(1, Ordering::Relaxed);
        mailin_embedded::response::OK
    }
}

fn start_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let mut server = Server::new(Count(Arc::clone(&count)));
    server
        .with_name("relay.bench")
        .with_num_threads(32)
        .with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    (addr, count)
}

fn message(i: usize) -> Vec<u8> {
    format!(
        "From: Autohaus Beispiel <service@autohaus.test>\r\n\
To: kunde{i}@example.test\r\n\
Subject: Ihr Fahrzeug ist bereit für den Service\r\n\
Date: Tue, 01 Dec 2026 09:00:00 +0100\r\n\
Message-ID: <{i}.d001@autohaus.test>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Guten Tag,\r\n\
\r\n\
Ihr Fahrzeug ist bald zur Inspektion fällig. Vereinbaren Sie einen Termin\r\n\
unter 0123 456789 oder antworten Sie auf diese E-Mail.\r\n\
\r\n\
Mit freundlichen Grüßen\r\n\
Ihr Autohaus Beispiel\r\n"
    )
    .into_bytes()
}

fn envelope(i: usize) -> Envelope {
    Envelope::new(
        Some("bounce@autohaus.test".parse().expect("from")),
        vec![format!("kunde{i}@example.test").parse().expect("to")],
    )
    .expect("envelope")
}

fn relay(addr: SocketAddr, connections: u32) -> Relay {
    let cfg = SmtpConfig {
        host: "127.0.0.1".into(),
        port: addr.port(),
        tls: SmtpTls::None,
        connections,
        timeout_secs: 30,
        hello_name: "bench.test".into(),
        ..SmtpConfig::default()
    };
    Relay::new(&cfg, None).expect("relay")
}

type Run = std::pin::Pin<Box<dyn std::future::Future<Output = Row> + Send>>;

struct Row {
    what: String,
    connections: u32,
    messages: usize,
    secs: f64,
}

impl Row {
    fn rate(&self) -> f64 {
        self.messages as f64 / self.secs
    }
}

fn expect_accepted(d: &Delivery) {
    assert!(matches!(d, Delivery::Accepted { .. }), "{d:?}");
}

async fn ours_sequential(addr: SocketAddr, n: usize) -> Row {
    let relay = relay(addr, 1);
    expect_accepted(&relay.send(&envelope(0), &message(0)).await);
    let t = Instant::now();
    for i in 0..n {
        expect_accepted(&relay.send(&envelope(i), &message(i)).await);
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(relay.stats().connects, 1);
    Row {
        what: "our Relay (TCP_NODELAY)".into(),
        connections: 1,
        messages: n,
        secs,
    }
}

async fn lettre_connection(addr: SocketAddr, n: usize, nodelay: bool) -> Row {
    let hello = ClientId::Domain("bench.test".into());
    let mut conn = if nodelay {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        tcp.set_nodelay(true).expect("nodelay");
        AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello)
            .await
            .expect("greeting")
    } else {
        AsyncSmtpConnection::connect_tokio1(
            ("127.0.0.1", addr.port()),
            Some(Duration::from_secs(30)),
            &hello,
            None,
            None,
        )
        .await
        .expect("lettre connect")
    };
    conn.send(&envelope(0), &message(0)).await.expect("send");
    let t = Instant::now();
    for i in 0..n {
        conn.send(&envelope(i), &message(i)).await.expect("send");
    }
    let secs = t.elapsed().as_secs_f64();
    let _ = conn.quit().await;
    Row {
        what: if nodelay {
            "lettre send, stream opened by us (TCP_NODELAY)".into()
        } else {
            "lettre send, lettre's own connect (Nagle on)".into()
        },
        connections: 1,
        messages: n,
        secs,
    }
}

async fn lettre_transport(addr: SocketAddr, n: usize) -> Row {
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(addr.port())
        .hello_name(ClientId::Domain("bench.test".into()))
        .build();
    transport
        .send_raw(&envelope(0), &message(0))
        .await
        .expect("send");
    let t = Instant::now();
    for i in 0..n {
        transport
            .send_raw(&envelope(i), &message(i))
            .await
            .expect("send");
    }
    Row {
        what: "lettre AsyncSmtpTransport (no pool feature: a connection per message)".into(),
        connections: 1,
        messages: n,
        secs: t.elapsed().as_secs_f64(),
    }
}

async fn ours_parallel(addr: SocketAddr, connections: u32, n: usize) -> Row {
    let relay = Arc::new(relay(addr, connections));
    let warm: Vec<_> = (0..connections as usize)
        .map(|i| {
            let relay = Arc::clone(&relay);
            tokio::spawn(async move { relay.send(&envelope(i), &message(i)).await })
        })
        .collect();
    for w in warm {
        expect_accepted(&w.await.expect("task"));
    }
    let t = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let relay = Arc::clone(&relay);
            tokio::spawn(async move { relay.send(&envelope(i), &message(i)).await })
        })
        .collect();
    for task in tasks {
        expect_accepted(&task.await.expect("task"));
    }
    let secs = t.elapsed().as_secs_f64();
    let stats = relay.stats();
    assert!(stats.connects <= u64::from(connections), "{stats:?}");
    relay.close().await;
    Row {
        what: "our Relay, all messages at once".into(),
        connections,
        messages: n,
        secs,
    }
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .find_map(|a| a.parse().ok())
        .unwrap_or(300);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (addr, count) = start_server();
    println!("SMTP to an in-process mailin-embedded server on {addr}, {n} messages of ~700 bytes");
    println!();

    // Every run is a task on the runtime's workers, as sends are in the
    // daemon (a future polled by `block_on` pays a thread hop per reply).
    let rows = rt.block_on(async {
        let run = |f| async move { tokio::spawn(f).await.expect("bench task") };
        let mut rows = vec![
            run(Box::pin(ours_sequential(addr, n)) as Run).await,
            run(Box::pin(lettre_connection(addr, n, true))).await,
            run(Box::pin(lettre_connection(addr, n, false))).await,
            run(Box::pin(lettre_transport(addr, n))).await,
        ];
        for k in [1, 4, 16] {
            rows.push(run(Box::pin(ours_parallel(addr, k, 4 * n))).await);
        }
        rows
    });

    println!("| run | connections | messages | s | messages/s | ms/message |");
    println!("|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.3} | {:.0} | {:.2} |",
            r.what,
            r.connections,
            r.messages,
            r.secs,
            r.rate(),
            r.secs * 1000.0 / r.messages as f64
        );
    }
    println!();
    println!(
        "one connection, one message after another: our Relay is {:.1}× lettre's own connect",
        rows[0].rate() / rows[2].rate()
    );
    // One warm-up message per sequential run, one per connection in parallel runs.
    let warm_ups = 4 + 1 + 4 + 16;
    let expected = rows.iter().map(|r| r.messages).sum::<usize>() + warm_ups;
    println!(
        "server accepted {} messages (expected {expected})",
        count.load(Ordering::Relaxed)
    );
}
