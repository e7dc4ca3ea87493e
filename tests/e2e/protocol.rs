//! The control socket against clients that are wrong, hostile or slow: each
//! gets a clear answer (or is closed), and the daemon keeps serving everyone
//! else.

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use touchpoint::client::Client;
use touchpoint_common::codec::{decode_frame, encode_frame, MAX_FRAME_BYTES};
use touchpoint_common::protocol::{
    ErrorKind, ErrorReply, Hello, HelloReply, Request, RequestEnvelope, Response, ResponseEnvelope,
    PROTOCOL_MAGIC, PROTOCOL_VERSION,
};
use touchpoint_tests::{tid, Options, TestDaemon};

type Conn = Framed<UnixStream, LengthDelimitedCodec>;

/// Long enough for a loaded CI machine, short enough that a hang fails the test.
const ANSWER: Duration = Duration::from_secs(10);

async fn raw(daemon: &TestDaemon) -> Conn {
    let stream = UnixStream::connect(&daemon.socket).await.expect("connect");
    Framed::new(
        stream,
        LengthDelimitedCodec::builder()
            .max_frame_length(MAX_FRAME_BYTES)
            .new_codec(),
    )
}

async fn send_frame(conn: &mut Conn, payload: Vec<u8>) {
    conn.send(Bytes::from(payload)).await.expect("send a frame");
}

async fn send_hello(conn: &mut Conn, hello: &Hello) {
    send_frame(conn, encode_frame(hello).expect("encode hello")).await;
}

async fn send_request(conn: &mut Conn, id: u64, request: Request) {
    send_frame(
        conn,
        encode_frame(&RequestEnvelope { id, request }).expect("encode request"),
    )
    .await;
}

async fn next_frame(conn: &mut Conn) -> Bytes {
    tokio::time::timeout(ANSWER, conn.next())
        .await
        .expect("an answer in time")
        .expect("a frame, not the end of the stream")
        .expect("a well-formed frame")
        .freeze()
}

async fn hello_reply(conn: &mut Conn) -> HelloReply {
    decode_frame(&next_frame(conn).await).expect("a HelloReply")
}

async fn response(conn: &mut Conn) -> ResponseEnvelope {
    decode_frame(&next_frame(conn).await).expect("a ResponseEnvelope")
}

fn rejected(reply: HelloReply) -> String {
    match reply {
        HelloReply::Rejected { version, reason } => {
            assert_eq!(version, PROTOCOL_VERSION);
            reason
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn error_of(r: ResponseEnvelope) -> ErrorReply {
    match r.response {
        Response::Error(e) => e,
        other => panic!("expected an error reply, got {other:?}"),
    }
}

/// The daemon closed its end: the stream ends (or is reset) without another frame.
async fn assert_closed(conn: &mut Conn) {
    match tokio::time::timeout(ANSWER, conn.next())
        .await
        .expect("the daemon closes in time")
    {
        None | Some(Err(_)) => {}
        Some(Ok(f)) => panic!(
            "expected the connection to be closed, got a frame of {} bytes",
            f.len()
        ),
    }
}

async fn welcomed(daemon: &TestDaemon) -> Conn {
    let mut conn = raw(daemon).await;
    send_hello(&mut conn, &Hello::current("e2e raw")).await;
    match hello_reply(&mut conn).await {
        HelloReply::Welcome {
            version,
            daemon,
            identity,
        } => {
            assert_eq!(version, PROTOCOL_VERSION);
            assert!(daemon.starts_with("touchpointd "), "{daemon}");
            assert_eq!(identity.uid, nix::unistd::Uid::current().as_raw());
        }
        other => panic!("expected a welcome, got {other:?}"),
    }
    conn
}

/// A well-behaved client still gets its answers.
async fn assert_alive(daemon: &TestDaemon) {
    let mut c = daemon.client().await;
    let status = c.status().await.expect("status");
    assert_eq!(status.tenants, 3);
    assert_eq!(status.protocol_version, PROTOCOL_VERSION);
}

#[tokio::test]
async fn wrong_magic_is_rejected_and_closed() {
    let d = TestDaemon::start();
    let mut conn = raw(&d).await;
    send_hello(
        &mut conn,
        &Hello {
            magic: *b"HTTP",
            version: PROTOCOL_VERSION,
            client: "curl".into(),
        },
    )
    .await;
    assert_eq!(
        rejected(hello_reply(&mut conn).await),
        "not a touchpoint hello: wrong magic"
    );
    assert_closed(&mut conn).await;
    assert_alive(&d).await;
}

#[tokio::test]
async fn wrong_protocol_version_is_rejected_naming_both_versions() {
    let d = TestDaemon::start();
    let mut conn = raw(&d).await;
    let theirs = PROTOCOL_VERSION + 41;
    send_hello(
        &mut conn,
        &Hello {
            magic: PROTOCOL_MAGIC,
            version: theirs,
            client: "touchpoint 9.0.0".into(),
        },
    )
    .await;
    let reason = rejected(hello_reply(&mut conn).await);
    assert!(
        reason.starts_with(&format!("protocol version {theirs} is not supported: ")),
        "{reason}"
    );
    assert!(
        reason.contains(&format!("speaks version {PROTOCOL_VERSION}")),
        "{reason}"
    );
    assert_closed(&mut conn).await;
    assert_alive(&d).await;
}

#[tokio::test]
async fn a_frame_that_is_not_a_hello_is_rejected_and_closed() {
    let d = TestDaemon::start();
    // Too short for a hello (4 magic bytes, a version, a name).
    let mut conn = raw(&d).await;
    send_frame(&mut conn, vec![0xff, 0x00, 0x13]).await;
    let reason = rejected(hello_reply(&mut conn).await);
    assert_eq!(
        reason,
        "not a touchpoint hello: expected the protocol's first message"
    );
    assert_closed(&mut conn).await;

    // A request where the hello belongs.
    let mut conn = raw(&d).await;
    send_request(&mut conn, 1, Request::Status).await;
    let reason = rejected(hello_reply(&mut conn).await);
    assert!(reason.starts_with("not a touchpoint hello"), "{reason}");
    assert_closed(&mut conn).await;
    assert_alive(&d).await;
}

#[tokio::test]
async fn unframed_garbage_is_rejected_and_closed() {
    let d = TestDaemon::start();
    // Someone points an HTTP client at the socket: "GET " read as a length is ~1.1 GB.
    let mut stream = UnixStream::connect(&d.socket).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut conn = Framed::new(
        stream,
        LengthDelimitedCodec::builder()
            .max_frame_length(MAX_FRAME_BYTES)
            .new_codec(),
    );
    let reason = rejected(hello_reply(&mut conn).await);
    assert!(reason.starts_with("bad frame: "), "{reason}");
    assert_closed(&mut conn).await;
    assert_alive(&d).await;
}

/// A length prefix of 100 MB is refused from the 4 header bytes alone: the
/// answer comes although the 100 MB never follow, so the daemon neither waits
/// for them nor buffers them.
#[tokio::test]
async fn an_oversized_frame_is_refused_from_its_header() {
    let d = TestDaemon::start();
    let huge: u32 = 100_000_000;

    // In place of the hello.
    let mut stream = UnixStream::connect(&d.socket).await.expect("connect");
    // One write: the daemon may close as soon as it has read the length.
    let mut head = huge.to_be_bytes().to_vec();
    head.extend_from_slice(b"TPNT");
    stream
        .write_all(&head)
        .await
        .expect("write length and a little");
    let mut conn = Framed::new(
        stream,
        LengthDelimitedCodec::builder()
            .max_frame_length(MAX_FRAME_BYTES)
            .new_codec(),
    );
    let reason = rejected(hello_reply(&mut conn).await);
    assert!(reason.starts_with("bad frame: "), "{reason}");
    assert_closed(&mut conn).await;

    // After a valid hello.
    let mut conn = welcomed(&d).await;
    let stream = conn.get_mut();
    let mut head = huge.to_be_bytes().to_vec();
    head.extend_from_slice(&[0, 1, 2, 3]);
    stream
        .write_all(&head)
        .await
        .expect("write length and a little");
    let e = error_of(response(&mut conn).await);
    assert_eq!(e.kind, ErrorKind::Malformed);
    assert!(
        e.message.starts_with("bad frame: ") && e.message.ends_with("; closing"),
        "{}",
        e.message
    );
    assert_closed(&mut conn).await;
    assert_alive(&d).await;
}

#[tokio::test]
async fn a_malformed_request_after_the_hello_gets_a_malformed_error_then_close() {
    let d = TestDaemon::start();
    let mut conn = welcomed(&d).await;
    send_frame(&mut conn, vec![0xde, 0xad, 0xbe, 0xef]).await;
    let r = response(&mut conn).await;
    assert_eq!(r.id, 0, "the id of an undecodable request is unknown");
    let e = error_of(r);
    assert_eq!(e.kind, ErrorKind::Malformed);
    assert!(
        e.message.starts_with("cannot decode request: ") && e.message.ends_with("; closing"),
        "{}",
        e.message
    );
    assert_closed(&mut conn).await;

    // A valid request followed by a stray byte in the same frame.
    let mut conn = welcomed(&d).await;
    let mut bytes = encode_frame(&RequestEnvelope {
        id: 5,
        request: Request::Ping,
    })
    .expect("encode");
    bytes.push(0);
    send_frame(&mut conn, bytes).await;
    let e = error_of(response(&mut conn).await);
    assert_eq!(e.kind, ErrorKind::Malformed);
    assert!(e.message.contains("trailing"), "{}", e.message);
    assert_closed(&mut conn).await;
    assert_alive(&d).await;
}

/// A tenant id is validated while the request is decoded, so a path in its
/// place never reaches the stores.
#[tokio::test]
async fn a_tenant_id_that_is_a_path_is_malformed() {
    let d = TestDaemon::start();
    let valid = encode_frame(&RequestEnvelope {
        id: 1,
        request: Request::Tenant {
            tenant: tid("d001"),
        },
    })
    .expect("encode");
    // id 1, variant 3 (Tenant), then the id as a length-prefixed string.
    assert_eq!(
        valid,
        [1, 3, 4, b'd', b'0', b'0', b'1'],
        "the request layout this test forges"
    );
    let mut forged = vec![1, 3, 9];
    forged.extend_from_slice(b"../../etc");
    let mut conn = welcomed(&d).await;
    send_frame(&mut conn, forged).await;
    let e = error_of(response(&mut conn).await);
    assert_eq!(e.kind, ErrorKind::Malformed);
    assert!(e.message.contains("../../etc"), "{}", e.message);
    assert_closed(&mut conn).await;
    assert!(!d.state_dir.join("etc").exists());
    assert_alive(&d).await;
}

#[tokio::test]
async fn requests_are_answered_in_order_with_their_ids() {
    let d = TestDaemon::start();
    let mut conn = welcomed(&d).await;
    for (id, request) in [
        (7, Request::Ping),
        (8, Request::ListTenants),
        (
            9,
            Request::Tenant {
                tenant: tid("d999"),
            },
        ),
    ] {
        send_request(&mut conn, id, request).await;
    }
    let r = response(&mut conn).await;
    assert_eq!((r.id, r.response), (7, Response::Pong));
    let r = response(&mut conn).await;
    assert_eq!(r.id, 8);
    match r.response {
        Response::Tenants(t) => {
            let ids: Vec<&str> = t.iter().map(|t| t.id.as_str()).collect();
            assert_eq!(ids, ["d001", "d002", "d003"]);
        }
        other => panic!("expected tenants, got {other:?}"),
    }
    let r = response(&mut conn).await;
    assert_eq!(r.id, 9);
    let e = error_of(r);
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("\"d999\""), "{}", e.message);
    // An error about one request leaves the connection usable.
    send_request(&mut conn, 10, Request::Ping).await;
    let r = response(&mut conn).await;
    assert_eq!((r.id, r.response), (10, Response::Pong));
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_handshake_timeout_while_others_are_served() {
    let d = TestDaemon::start_with(Options {
        handshake_timeout_ms: 300,
        ..Options::default()
    });
    let mut silent = raw(&d).await;
    // Served while the silent one is still connected.
    let mut c = d.client().await;
    c.status()
        .await
        .expect("status while a silent client waits");
    let reason = rejected(hello_reply(&mut silent).await);
    assert_eq!(reason, "no hello within 300 ms");
    assert_closed(&mut silent).await;
    c.ping().await.expect("the first client is unaffected");
    assert_alive(&d).await;
}

#[tokio::test]
async fn an_idle_client_is_told_and_closed() {
    let d = TestDaemon::start_with(Options {
        idle_timeout_secs: 1,
        ..Options::default()
    });
    let mut conn = welcomed(&d).await;
    let r = response(&mut conn).await;
    let e = error_of(r);
    assert_eq!(e.kind, ErrorKind::Malformed);
    assert_eq!(e.message, "no request for 1 s; closing");
    assert_closed(&mut conn).await;
    assert_alive(&d).await;
}

/// Connects, retrying while all slots are taken: a connection the daemon has
/// not yet seen close (the harness's readiness probe, a dropped client)
/// holds its slot for a moment.
async fn connect_when_a_slot_is_free(d: &TestDaemon) -> Client {
    use touchpoint::client::ClientError;
    let mut last = None;
    for _ in 0..200 {
        match Client::connect(&d.socket).await {
            Ok(c) => return c,
            Err(ClientError::Rejected(r)) if r.starts_with("too many connections") => {
                last = Some(r)
            }
            Err(e) => panic!("connect: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no free slot within 5 s: {last:?}");
}

#[tokio::test]
async fn connections_beyond_the_limit_are_rejected_and_a_freed_slot_is_reused() {
    let d = TestDaemon::start_with(Options {
        max_connections: 2,
        ..Options::default()
    });
    let mut first = connect_when_a_slot_is_free(&d).await;
    let mut second = connect_when_a_slot_is_free(&d).await;

    let mut third = raw(&d).await;
    let reason = rejected(hello_reply(&mut third).await);
    assert_eq!(reason, "too many connections (limit 2); try again later");
    assert_closed(&mut third).await;

    first.ping().await.expect("first still served");
    second.ping().await.expect("second still served");
    assert_eq!(second.status().await.expect("status").connections, 2);

    drop(first);
    // The slot is free once the daemon has seen the close.
    let mut again = connect_when_a_slot_is_free(&d).await;
    again.status().await.expect("status on the reused slot");
}

/// Upload frames out of order or with lying sizes are refused and leave
/// nothing behind: no data, no spool file.
#[tokio::test]
async fn uploads_that_break_the_rules_are_refused_and_leave_nothing() {
    let d = TestDaemon::start();
    let mut conn = welcomed(&d).await;

    // End without a beginning.
    send_request(&mut conn, 1, Request::UploadEnd).await;
    let r = response(&mut conn).await;
    assert_eq!(r.id, 1);
    let e = error_of(r);
    assert_eq!(
        (e.kind, e.message.as_str()),
        (ErrorKind::Malformed, "no upload in progress")
    );

    // More bytes than announced.
    let begin = Request::UploadBegin {
        tenant: tid("d001"),
        file_name: "kunden.csv".into(),
        size: 4,
    };
    send_request(&mut conn, 2, begin).await;
    assert_eq!(
        response(&mut conn).await,
        ResponseEnvelope {
            id: 2,
            response: Response::UploadReady
        }
    );
    let chunk = Request::UploadChunk {
        data: b"Kundennummer;Name\nK1;M\xfcller\n".to_vec(),
    };
    send_request(&mut conn, 3, chunk).await;
    send_request(&mut conn, 4, Request::UploadEnd).await;
    let r = response(&mut conn).await;
    assert_eq!(r.id, 4, "chunks are not answered");
    let e = error_of(r);
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert_eq!(
        e.message,
        "kunden.csv sent more than the 4 bytes it announced"
    );

    // Fewer bytes than announced.
    let begin = Request::UploadBegin {
        tenant: tid("d001"),
        file_name: "../../kunden.csv".into(),
        size: 1000,
    };
    send_request(&mut conn, 5, begin).await;
    assert_eq!(response(&mut conn).await.response, Response::UploadReady);
    send_request(
        &mut conn,
        6,
        Request::UploadChunk {
            data: b"K1;x\n".to_vec(),
        },
    )
    .await;
    send_request(&mut conn, 7, Request::UploadEnd).await;
    let e = error_of(response(&mut conn).await);
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert_eq!(
        e.message, "kunden.csv announced 1000 bytes but sent 5",
        "the path is cut to its file name"
    );

    // A begun upload dropped by closing the connection.
    let begin = Request::UploadBegin {
        tenant: tid("d001"),
        file_name: "kunden.csv".into(),
        size: 10,
    };
    send_request(&mut conn, 8, begin).await;
    assert_eq!(response(&mut conn).await.response, Response::UploadReady);
    drop(conn);

    let mut c = d.client().await;
    let detail = c.tenant(&tid("d001")).await.expect("tenant");
    assert_eq!(detail.summary.stats.customers, 0);
    assert!(detail.imports.is_empty(), "{:?}", detail.imports);
    let spool = d.state_dir.join("spool");
    let spooled = || std::fs::read_dir(&spool).map(|rd| rd.count()).unwrap_or(0);
    assert!(
        touchpoint_tests::eventually(Duration::from_secs(10), || spooled() == 0),
        "spool files left behind: {:?}",
        std::fs::read_dir(&spool).map(|rd| rd.flatten().map(|e| e.path()).collect::<Vec<_>>())
    );
}

/// A console refused for the connection limit is always told so, never gets
/// a broken pipe: were the daemon to answer and close without reading the
/// hello, a console whose hello arrives after the close would fail writing
/// it (about 1 attempt in 300 did).
#[tokio::test]
async fn a_console_over_the_limit_always_gets_the_reason() {
    let d = TestDaemon::start_with(Options {
        max_connections: 1,
        ..Options::default()
    });
    let mut first = connect_when_a_slot_is_free(&d).await;
    first.ping().await.expect("ping");
    let mut other = Vec::new();
    for _ in 0..2000 {
        match Client::connect(&d.socket).await {
            Err(touchpoint::client::ClientError::Rejected(r))
                if r.starts_with("too many connections") => {}
            Err(e) => other.push(e.to_string()),
            Ok(_) => other.push("connected beyond the limit".into()),
        }
    }
    assert!(
        other.is_empty(),
        "{} of 2000 attempts: {:?}",
        other.len(),
        other.first()
    );
}
