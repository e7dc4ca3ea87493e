//! A connection turned change feed (`Subscribe`): what changed in the
//! caller's scope, coalesced, never waiting on a client that stopped
//! reading.

use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use touchpoint_common::codec::decode_frame;
use touchpoint_common::protocol::{
    ErrorKind, Identity, Request, RequestEnvelope, Response, ResponseEnvelope, CHANGE_COALESCE_MS,
};

use tokio::sync::broadcast::Receiver;

use super::reply::{error_reply, send, Conn};
use crate::events::Event;

/// How long a subscriber may take to read one `Changed` before it is
/// dropped: the feed never waits on a client that stopped reading.
const SUBSCRIBER_SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection turned change feed: `Changed` frames (id `sub_id`) for the
/// changes in the caller's scope, the first at once, later ones gathered
/// over [`CHANGE_COALESCE_MS`]; `Ping` answered, anything else refused. Not
/// closed for being idle. What waits to be sent is one set of topics and
/// tenants, however much happens: the outbound queue is bounded.
///
/// `rx` was subscribed before `Subscribed` was sent, so that no change
/// made after the client learned it is subscribed can be missed.
pub(super) async fn run(
    framed: &mut Conn,
    mut rx: Receiver<Event>,
    who: &Identity,
    sub_id: u64,
    shutdown: &CancellationToken,
) {
    use tokio::sync::broadcast::error::RecvError;
    let mut pending = crate::events::Pending::default();
    let window = Duration::from_millis(CHANGE_COALESCE_MS);
    let mut next_at = tokio::time::Instant::now();
    loop {
        let reply = tokio::select! {
            _ = shutdown.cancelled() => return,
            e = rx.recv() => {
                match e {
                    Ok(e) => {
                        pending.add(&e, &who.scope, who.uid);
                    }
                    Err(RecvError::Lagged(_)) => pending.lagged(),
                    Err(RecvError::Closed) => return,
                }
                continue;
            }
            _ = tokio::time::sleep_until(next_at), if !pending.is_empty() => {
                let Some(changes) = pending.take() else { continue };
                next_at = tokio::time::Instant::now() + window;
                ResponseEnvelope { id: sub_id, response: Response::Changed(changes) }
            }
            frame = framed.next() => {
                let bytes = match frame {
                    Some(Ok(b)) => b,
                    _ => return,
                };
                match decode_frame::<RequestEnvelope>(&bytes) {
                    Ok(RequestEnvelope { id, request: Request::Ping, .. }) => {
                        ResponseEnvelope { id, response: Response::Pong }
                    }
                    Ok(env) => error_reply(
                        env.id,
                        ErrorKind::Invalid,
                        format!(
                            "this connection is a change feed: only ping is answered here, not {}; use another connection",
                            env.request.name()
                        ),
                    ),
                    Err(e) => {
                        let reply = error_reply(
                            0,
                            ErrorKind::Malformed,
                            format!("cannot decode request: {e}; closing"),
                        );
                        let _ = tokio::time::timeout(SUBSCRIBER_SEND_TIMEOUT, send(framed, &reply)).await;
                        return;
                    }
                }
            }
        };
        match tokio::time::timeout(SUBSCRIBER_SEND_TIMEOUT, send(framed, &reply)).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(_) => {
                tracing::info!(user = %who.user, "subscriber does not read its changes; dropped");
                return;
            }
        }
    }
}
